import Testing
import TestSupport
@testable import SlabWatchCore

/// Kernel memory per memory cgroup over time, bounded however the cgroups churn.
struct CgroupHistoryTests {
    static func reading(_ entries: [(String, UInt64)], others: UInt64 = 0) -> CgroupMemory {
        CgroupMemory(version: .v1, entries: entries.map { .init(path: $0.0, kernelBytes: $0.1) }, others: others > 0 ? 1 : 0,
                     otherKernelBytes: others)
    }

    /// A reading carried forward by later samples is kept once; each cgroup
    /// keeps its column and its values; the other cgroups are one value.
    @Test func readingsAreKeptOnceWithTheirCgroups() throws {
        var history = CgroupHistory(capacity: 4, columns: 2)
        let kept = [history.append(Self.reading([("/a", 10), ("/b", 20)], others: 5), at: 1000),
                    history.append(Self.reading([("/a", 10), ("/b", 20)], others: 5), at: 1000),
                    history.append(Self.reading([("/b", 21), ("/a", 11)], others: 6), at: 2000)]
        #expect(kept == [true, false, true])
        #expect(history.count == 2 && history.version == .v1)
        let a = try #require(history.column(of: "/a")), b = try #require(history.column(of: "/b"))
        #expect((0..<2).map { history.kernelBytes(column: a, at: $0) } == [10, 11])
        #expect((0..<2).map { history.kernelBytes(column: b, at: $0) } == [20, 21])
        #expect((0..<2).map { history.otherKernelBytes(at: $0) } == [5, 6])
        #expect(history.firstPosition(coveringFrom: 1500) == 0 && history.firstPosition(coveringFrom: 2000) == 0)
        #expect(history.firstPosition(coveringFrom: 2500) == 1)
    }

    /// Readings wider than the history (`sampler.max-cgroups` exports more
    /// cgroups than the history keeps columns for): each reading's largest
    /// hold the columns, the rest are other; a small cgroup that rises into
    /// the largest takes the column of one that fell out, though both are
    /// still read. (Given the first comers' columns for as long as they were
    /// read, a pod that began small and rose was never ranked.)
    @Test func theLargestOfAWiderReadingHoldTheColumns() throws {
        var history = CgroupHistory(capacity: 8, columns: 2)
        history.append(Self.reading([("/big", 100), ("/mid", 50), ("/small", 10)], others: 1), at: 1)
        #expect(history.column(of: "/big") != nil && history.column(of: "/mid") != nil && history.column(of: "/small") == nil)
        #expect(history.otherKernelBytes(at: 0) == 11)
        history.append(Self.reading([("/big", 100), ("/small", 80), ("/mid", 50)], others: 1), at: 2)
        let small = try #require(history.column(of: "/small"), "the risen cgroup has a column")
        #expect(history.column(of: "/mid") == nil && history.kernelBytes(column: small, at: 1) == 80)
        #expect(history.otherKernelBytes(at: 1) == 51)
    }

    /// A cgroup no longer read gives its column to the next new one, its
    /// history dropped; one more than the columns hold is summed into other.
    @Test func aVanishedCgroupFreesItsColumn() throws {
        var history = CgroupHistory(capacity: 8, columns: 2)
        history.append(Self.reading([("/a", 10), ("/b", 20)]), at: 1)
        history.append(Self.reading([("/b", 21), ("/c", 30)]), at: 2)
        #expect(history.column(of: "/a") == nil && history.column(of: "/c") != nil && history.reusedColumns == 1)
        let c = try #require(history.column(of: "/c"))
        #expect(history.kernelBytes(column: c, at: 0) == nil && history.kernelBytes(column: c, at: 1) == 30)
        // Three at once with two columns: the one that finds none is counted as other.
        history.append(Self.reading([("/b", 22), ("/c", 31), ("/d", 40)], others: 1), at: 3)
        #expect(history.column(of: "/d") == nil && history.otherKernelBytes(at: 2) == 41)
    }

    /// 1,000 pods come and go, 50 at a time: columns are reused, the arrays
    /// never grow, and the newest pods are the ones held.
    @Test func aChurningPopulationKeepsMemoryFlat() throws {
        var history = CgroupHistory(capacity: 16, columns: 50)
        let bound = history.storageBytes
        for generation in 0..<20 {
            let pods = (0..<50).map { ("/kubepods/besteffort/pod\(generation * 50 + $0)", UInt64(1000 + $0)) }
            history.append(Self.reading(pods), at: Int64(generation + 1))
            #expect(history.storageBytes == bound)
        }
        #expect(history.cgroupNames.compactMap { $0 }.count == 50 && history.column(of: "/kubepods/besteffort/pod999") != nil)
        #expect(history.column(of: "/kubepods/besteffort/pod0") == nil && history.reusedColumns == 950 && history.count == 16)
    }

    /// Saved and read back, it is the same history; a file that lies about
    /// its sizes or names a cgroup twice is refused, not trusted.
    @Test func itRoundTripsThroughTheStateFileAndRefusesALie() throws {
        var history = CgroupHistory(capacity: 3, columns: 2)
        for time in 1...5 { history.append(Self.reading([("/a\n\"x\"", UInt64(time)), ("/b", 7)]), at: Int64(time)) }
        let node = try StateEncoder.encode(history)
        let decoded = try StateDecoder.decode(CgroupHistory.self, from: node)
        #expect(decoded == history)
        guard case .object(var members) = node else { Issue.record("not an object"); return }
        members["names"] = try StateEncoder.encode(["/a", "/a"])
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
        members["names"] = try StateEncoder.encode(["/a", ""])
        members["others"] = try StateEncoder.encode([1, 2] as [UInt64])
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
        // Bounds no daemon writes are refused before anything is allocated for them.
        members["columns"] = try StateEncoder.encode(1_000_000)
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
    }
}
