/// The value tree the state file is made of, and a Codable encoder and decoder
/// over it, so the types that survive a restart (ring, findings, alert
/// memory) say what they hold by conforming to Codable instead of by a second,
/// hand-kept list of their fields. Without Foundation there is no JSON or
/// property-list coder to lean on; this one is binary and small.
///
/// Pure. `StateNode.parse` treats its input as hostile: every length is checked
/// against the bytes left, nesting and the number of nodes are bounded, and it
/// throws rather than traps.
public enum StateNode: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    /// A numeric column (the ring's), held by reference and written as raw
    /// little-endian words: checkpointing a 15 MB ring copies none of it.
    case words32([UInt32])
    case words64([UInt64])
    case array([StateNode])
    case object([String: StateNode])
}

/// A numeric column a type hands the coder whole (the ring's slots): one
/// node holding the array, not one node per number.
public struct StateColumn<Word: FixedWidthInteger & Sendable>: Codable, Sendable, Equatable {
    public var words: [Word]
    public init(_ words: [Word]) { self.words = words }

    // Only StateEncoder/StateDecoder know this type; they handle it themselves.
    public init(from decoder: any Decoder) throws {
        throw DecodingError.typeMismatch(Self.self, .init(codingPath: decoder.codingPath, debugDescription: "a column outside a state file"))
    }

    public func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "a column outside a state file"))
    }
}

/// Why a state file's content could not be read back.
public struct StateFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

// MARK: binary form

extension StateNode {
    /// The first byte of every node. The values are the file format: each is
    /// written out so that reordering or inserting a case cannot change what a
    /// saved file means (Tests/Fixtures/state holds a file of format 2).
    private enum Tag: UInt8 {
        case null = 0
        case `false` = 1
        case `true` = 2
        case integer = 3
        case unsigned = 4
        case double = 5
        case string = 6
        case bytes = 7
        case array = 8
        case object = 9
        case words32 = 10
        case words64 = 11
    }
    static let maximumDepth = 64
    /// Nodes one parse may build. A node takes one byte in the file but a few
    /// dozen in memory, so a file of a million empty arrays would cost far more
    /// than its size. The largest ring slabwatch allows (1.25 M series) needs
    /// under 4 M (a name and two counters per series; the slots are columns).
    static let maximumNodes = 8_000_000
    private static let isLittleEndianHost = 1.littleEndian == 1

    /// The node as bytes (tests and small values; the state file streams).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        write { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the node to `sink` piece by piece: a tag, then the payload,
    /// lengths as LEB128. Columns go out straight from their arrays' storage.
    public func write(to sink: (UnsafeRawBufferPointer) -> Void) {
        var scratch: [UInt8] = []
        scratch.reserveCapacity(64)
        write(to: sink, scratch: &scratch)
        if !scratch.isEmpty { scratch.withUnsafeBytes(sink) }
    }

    /// Small pieces gather in `scratch`; it is flushed before anything large.
    private func write(to sink: (UnsafeRawBufferPointer) -> Void, scratch out: inout [UInt8]) {
        func flush() { out.withUnsafeBytes(sink); out.removeAll(keepingCapacity: true) }
        func large<T>(_ values: [T]) {
            flush()
            values.withUnsafeBytes(sink)
        }
        switch self {
        case .null: out.append(Tag.null.rawValue)
        case .bool(let b): out.append(b ? Tag.true.rawValue : Tag.false.rawValue)
        case .integer(let i):
            out.append(Tag.integer.rawValue)
            Self.writeVarint(UInt64(bitPattern: (i << 1) ^ (i >> 63)), into: &out)  // zigzag
        case .unsigned(let u): out.append(Tag.unsigned.rawValue); Self.writeVarint(u, into: &out)
        case .double(let d):
            out.append(Tag.double.rawValue)
            var bits = d.bitPattern.littleEndian
            withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
        case .string(let text):
            out.append(Tag.string.rawValue)
            Self.writeVarint(UInt64(text.utf8.count), into: &out)
            out.append(contentsOf: text.utf8)
        case .bytes(let b):
            out.append(Tag.bytes.rawValue)
            Self.writeVarint(UInt64(b.count), into: &out)
            large(b)
        case .words32(let words):
            out.append(Tag.words32.rawValue)
            Self.writeVarint(UInt64(words.count), into: &out)
            if Self.isLittleEndianHost { large(words) } else { large(words.map(\.littleEndian)) }
        case .words64(let words):
            out.append(Tag.words64.rawValue)
            Self.writeVarint(UInt64(words.count), into: &out)
            if Self.isLittleEndianHost { large(words) } else { large(words.map(\.littleEndian)) }
        case .array(let items):
            out.append(Tag.array.rawValue)
            Self.writeVarint(UInt64(items.count), into: &out)
            for item in items { item.write(to: sink, scratch: &out) }
        case .object(let members):
            out.append(Tag.object.rawValue)
            Self.writeVarint(UInt64(members.count), into: &out)
            for key in members.keys.sorted() {  // sorted: the same state, the same bytes
                Self.writeVarint(UInt64(key.utf8.count), into: &out)
                out.append(contentsOf: key.utf8)
                members[key]!.write(to: sink, scratch: &out)
            }
        }
        if out.count >= 4096 { flush() }
    }

    private static func writeVarint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    /// Reads a node written by `serialized()`; all of `bytes` must be used.
    public static func parse(_ bytes: [UInt8]) throws(StateFormatError) -> StateNode {
        var reader = Reader(bytes: bytes)
        let node = try reader.node(depth: 0)
        guard reader.offset == bytes.count else { throw StateFormatError("\(bytes.count - reader.offset) bytes after the content") }
        return node
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var nodes = 0

        mutating func byte() throws(StateFormatError) -> UInt8 {
            guard offset < bytes.count else { throw StateFormatError("truncated at byte \(offset)") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint() throws(StateFormatError) -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                let b = try byte()
                value |= UInt64(b & 0x7f) << UInt64(shift)
                if b < 0x80 { return value }
            }
            throw StateFormatError("integer too long at byte \(offset)")
        }

        /// A length, which can never exceed the bytes left (each item takes at least one).
        mutating func length() throws(StateFormatError) -> Int {
            let n = try varint()
            guard n <= UInt64(bytes.count - offset) else { throw StateFormatError("length \(n) past the end at byte \(offset)") }
            return Int(n)
        }

        mutating func raw() throws(StateFormatError) -> [UInt8] {
            let n = try length()
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }

        /// `count` little-endian words, copied once into their array.
        mutating func words<T: FixedWidthInteger>(_: T.Type) throws(StateFormatError) -> [T] {
            let count = try varint()
            let width = UInt64(MemoryLayout<T>.size)
            guard count <= UInt64(bytes.count - offset) / width else { throw StateFormatError("column of \(count) words past the end at byte \(offset)") }
            let n = Int(count)
            let start = offset
            offset += n * Int(width)
            return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
                bytes.withUnsafeBytes { raw in
                    let source = UnsafeRawBufferPointer(rebasing: raw[start..<start + n * Int(width)])
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                }
                if !StateNode.isLittleEndianHost { for i in 0..<n { buffer[i] = T(littleEndian: buffer[i]) } }
                initialized = n
            }
        }

        mutating func node(depth: Int) throws(StateFormatError) -> StateNode {
            guard depth < StateNode.maximumDepth else { throw StateFormatError("nested deeper than \(StateNode.maximumDepth)") }
            nodes += 1
            guard nodes <= StateNode.maximumNodes else { throw StateFormatError("more than \(StateNode.maximumNodes) values") }
            guard let tag = Tag(rawValue: try byte()) else { throw StateFormatError("unknown tag at byte \(offset - 1)") }
            switch tag {
            case .null: return .null
            case .false: return .bool(false)
            case .true: return .bool(true)
            case .integer:
                let z = try varint()
                return .integer(Int64(bitPattern: z >> 1) ^ -Int64(bitPattern: z & 1))
            case .unsigned: return .unsigned(try varint())
            case .double:
                guard bytes.count - offset >= 8 else { throw StateFormatError("truncated double at byte \(offset)") }
                var bits: UInt64 = 0
                for i in 0..<8 { bits |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
                offset += 8
                return .double(Double(bitPattern: bits))
            case .string: return .string(String(decoding: try raw(), as: UTF8.self))
            case .bytes: return .bytes(try raw())
            case .words32: return .words32(try words(UInt32.self))
            case .words64: return .words64(try words(UInt64.self))
            case .array:
                let n = try length()
                var items: [StateNode] = []
                items.reserveCapacity(min(n, 4096))  // grows with the items read, not with the length claimed
                for _ in 0..<n { items.append(try node(depth: depth + 1)) }
                return .array(items)
            case .object:
                let n = try length()
                var members: [String: StateNode] = [:]
                for _ in 0..<n {
                    let key = String(decoding: try raw(), as: UTF8.self)
                    members[key] = try node(depth: depth + 1)
                }
                return .object(members)
            }
        }
    }
}

// MARK: Encoder

/// Encodes a Codable value to a `StateNode`.
public enum StateEncoder: Sendable {
    public static func encode<T: Encodable>(_ value: T) throws -> StateNode {
        let root = NodeRef()
        try root.store(value, codingPath: [])
        return root.node
    }
}

/// A node under construction; containers write into it by reference.
///
/// Members and items live in stored properties of their own, so an insert
/// mutates the one array or dictionary in place. (Kept inside an enum's
/// payload, every insert copied the whole container: encoding n items cost
/// n²/2 copies.)
private final class NodeRef {
    private enum Kind { case value, object, array }
    private var kind = Kind.value
    private var value = StateNode.null
    private var members: [String: NodeRef] = [:]
    private var items: [NodeRef] = []

    var node: StateNode {
        switch kind {
        case .value: value
        case .object: .object(members.mapValues(\.node))
        case .array: .array(items.map(\.node))
        }
    }

    /// Turns the node into `new`, dropping what it held as another kind.
    private func become(_ new: Kind) {
        guard kind != new else { return }
        kind = new
        value = .null
        members = [:]
        items = []
    }

    func set(_ node: StateNode) {
        become(.value)
        value = node
    }

    func member(_ key: String) -> NodeRef {
        become(.object)
        let child = NodeRef()
        members[key] = child
        return child
    }

    func beginObject() { become(.object) }
    func beginArray() { become(.array) }

    func appendItem() -> NodeRef {
        become(.array)
        let child = NodeRef()
        items.append(child)
        return child
    }

    var itemCount: Int { kind == .array ? items.count : 0 }

    func store<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws {
        if let primitive = StateNode.primitive(value) { set(primitive); return }
        try value.encode(to: NodeEncoder(ref: self, codingPath: codingPath))
    }
}

extension StateNode {
    /// The node for a value the coder writes directly, or nil for one that encodes itself.
    fileprivate static func primitive<T>(_ value: T) -> StateNode? {
        switch value {
        case let v as StateColumn<UInt32>: .words32(v.words)
        case let v as StateColumn<UInt64>: .words64(v.words)
        case let v as Bool: .bool(v)
        case let v as String: .string(v)
        case let v as Double: .double(v)
        case let v as Float: .double(Double(v))
        case let v as Int: .integer(Int64(v))
        case let v as Int8: .integer(Int64(v))
        case let v as Int16: .integer(Int64(v))
        case let v as Int32: .integer(Int64(v))
        case let v as Int64: .integer(v)
        case let v as UInt: .unsigned(UInt64(v))
        case let v as UInt8: .unsigned(UInt64(v))
        case let v as UInt16: .unsigned(UInt64(v))
        case let v as UInt32: .unsigned(UInt64(v))
        case let v as UInt64: .unsigned(v)
        default: nil
        }
    }
}

private struct NodeEncoder: Encoder {
    let ref: NodeRef
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        ref.beginObject()
        return KeyedEncodingContainer(KeyedNodeEncoder<Key>(ref: ref, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        ref.beginArray()
        return UnkeyedNodeEncoder(ref: ref, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleNodeEncoder(ref: ref, codingPath: codingPath) }
}

private struct KeyedNodeEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let ref: NodeRef
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { ref.member(key.stringValue).set(.null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try ref.member(key.stringValue).store(value, codingPath: codingPath + [key])
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(ref: ref.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        NodeEncoder(ref: ref.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { NodeEncoder(ref: ref.member("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { NodeEncoder(ref: ref.member(key.stringValue), codingPath: codingPath + [key]) }
}

private struct UnkeyedNodeEncoder: UnkeyedEncodingContainer {
    let ref: NodeRef
    let codingPath: [any CodingKey]
    var count: Int { ref.itemCount }

    mutating func encodeNil() throws { ref.appendItem().set(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try ref.appendItem().store(value, codingPath: codingPath) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(ref: ref.appendItem(), codingPath: codingPath).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        NodeEncoder(ref: ref.appendItem(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { NodeEncoder(ref: ref.appendItem(), codingPath: codingPath) }
}

private struct SingleNodeEncoder: SingleValueEncodingContainer {
    let ref: NodeRef
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { ref.set(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try ref.store(value, codingPath: codingPath) }
}

// MARK: Decoder

/// Decodes a Codable value from a `StateNode`; a node of the wrong shape is a
/// `DecodingError`, never a trap.
public enum StateDecoder: Sendable {
    public static func decode<T: Decodable>(_ type: T.Type, from node: StateNode) throws -> T {
        try NodeDecoder(node: node, codingPath: []).decodeValue(type)
    }
}

private struct NodeDecoder: Decoder {
    let node: StateNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ expected: String) -> DecodingError {
        .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "expected \(expected)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = node else { throw mismatch("an object") }
        return KeyedDecodingContainer(KeyedNodeDecoder<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = node else { throw mismatch("an array") }
        return UnkeyedNodeDecoder(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleNodeDecoder(decoder: self) }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if let value = try primitive(type) { return value }
        return try T(from: self)
    }

    /// The value when `T` is a type the coder reads directly.
    private func primitive<T>(_ type: T.Type) throws -> T? {
        func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
            let converted: I? = switch node {
            case .integer(let v): I(exactly: v)
            case .unsigned(let v): I(exactly: v)
            default: nil
            }
            guard let converted else { throw mismatch("\(I.self)") }
            return converted
        }
        switch type {
        case is StateColumn<UInt32>.Type:
            guard case .words32(let w) = node else { throw mismatch("a column of 32-bit words") }
            return StateColumn(w) as? T
        case is StateColumn<UInt64>.Type:
            guard case .words64(let w) = node else { throw mismatch("a column of 64-bit words") }
            return StateColumn(w) as? T
        case is Bool.Type:
            guard case .bool(let b) = node else { throw mismatch("a Bool") }
            return b as? T
        case is String.Type:
            guard case .string(let s) = node else { throw mismatch("a String") }
            return s as? T
        case is Double.Type:
            guard case .double(let d) = node else { throw mismatch("a Double") }
            return d as? T
        case is Float.Type:
            guard case .double(let d) = node else { throw mismatch("a Float") }
            return Float(d) as? T
        case is Int.Type: return try integer(Int.self) as? T
        case is Int8.Type: return try integer(Int8.self) as? T
        case is Int16.Type: return try integer(Int16.self) as? T
        case is Int32.Type: return try integer(Int32.self) as? T
        case is Int64.Type: return try integer(Int64.self) as? T
        case is UInt.Type: return try integer(UInt.self) as? T
        case is UInt8.Type: return try integer(UInt8.self) as? T
        case is UInt16.Type: return try integer(UInt16.self) as? T
        case is UInt32.Type: return try integer(UInt32.self) as? T
        case is UInt64.Type: return try integer(UInt64.self) as? T
        default: return nil
        }
    }
}

private struct KeyedNodeDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: StateNode]
    let codingPath: [any CodingKey]
    var allKeys: [Key] { members.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func child(_ key: Key) throws -> NodeDecoder {
        guard let node = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return NodeDecoder(node: node, codingPath: codingPath + [key])
    }

    func decodeNil(forKey key: Key) throws -> Bool { members[key.stringValue].map { $0 == .null } ?? true }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decodeValue(type) }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { NodeDecoder(node: members["super"] ?? .null, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

private struct UnkeyedNodeDecoder: UnkeyedDecodingContainer {
    let items: [StateNode]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array ended"))
        }
        defer { currentIndex += 1 }
        return NodeDecoder(node: items[currentIndex], codingPath: codingPath)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decodeValue(type) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct SingleNodeDecoder: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.node == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
}
