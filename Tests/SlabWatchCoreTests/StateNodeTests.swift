import Testing
@testable import SlabWatchCore

/// The state file's value tree in bytes: each kind's tag is part of the
/// format, and the encoder builds long lists and many keys correctly.
struct StateNodeTests {
    /// Every kind of node, written out byte for byte. A changed tag changes
    /// what every saved file means, so it must fail here first.
    @Test(arguments: [
        (StateNode.null, [0]),
        (.bool(false), [1]),
        (.bool(true), [2]),
        (.integer(-1), [3, 1]),  // zigzag
        (.unsigned(300), [4, 0xac, 0x02]),  // LEB128
        (.double(1), [5, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]),
        (.string("a"), [6, 1, 0x61]),
        (.bytes([9]), [7, 1, 9]),
        (.array([.null]), [8, 1, 0]),
        (.object(["k": .null]), [9, 1, 1, 0x6b, 0]),
        (.words32([1]), [10, 1, 1, 0, 0, 0]),
        (.words64([1]), [11, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
    ] as [(StateNode, [UInt8])])
    func eachKindHasItsFixedTag(node: StateNode, bytes: [UInt8]) throws {
        #expect(node.serialized() == bytes)
        #expect(try StateNode.parse(bytes) == node)
    }

    /// Long lists and many keys come out whole and in order, and a container
    /// that is written again replaces what it held.
    @Test func encoderKeepsEveryItemAndKey() throws {
        let names = (0..<5000).map { "cache-\($0)" }
        #expect(try StateEncoder.encode(names) == .array(names.map { .string($0) }))
        let sizes = Dictionary(uniqueKeysWithValues: names.map { ($0, UInt64($0.utf8.count)) })
        #expect(try StateDecoder.decode([String: UInt64].self, from: StateEncoder.encode(sizes)) == sizes)
        struct Nested: Codable, Equatable { var rows: [[Int]]; var label: String? }
        let nested = Nested(rows: [[1, 2], [], [3]], label: nil)
        #expect(try StateDecoder.decode(Nested.self, from: StateEncoder.encode(nested)) == nested)
    }
}
