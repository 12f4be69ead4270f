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

    static func v2(_ entries: [(String, kernel: UInt64, reclaimable: UInt64, unreclaimable: UInt64)], others: Int = 0) -> CgroupMemory {
        .largest(entries.map { .init(path: $0.0, kernelBytes: $0.kernel, slabReclaimableBytes: $0.reclaimable, slabUnreclaimableBytes: $0.unreclaimable) },
                 limit: entries.count - others, version: .v2)
    }

    /// v2's slab is kept per cell beside kernel memory, with "other"'s sums
    /// (the cgroups beyond the reading's limit and beyond the columns); a v1
    /// history has no slab planes and its memory is what it was.
    @Test func v2SlabIsKeptPerCellAndV1PaysNothing() throws {
        var v1 = CgroupHistory(capacity: 4, columns: 2)
        let v1Bytes = v1.storageBytes
        v1.append(Self.reading([("/a", 10), ("/b", 20)]), at: 1)
        #expect(!v1.hasSlab && v1.storageBytes == v1Bytes && v1.storageBytes == (4 * (2 + 2) + 2) * 8)
        #expect(v1.slabBytes(.unreclaimable, column: 0, at: 0) == nil && v1.otherSlabBytes(.reclaimable, at: 0) == nil)

        var history = CgroupHistory(capacity: 4, columns: 2)
        // Four cgroups, the reading's limit three (one summed as its other), two columns.
        history.append(Self.v2([("/a", 100, 10, 60), ("/b", 90, 20, 50), ("/c", 80, 30, 40), ("/d", 70, 1, 2)], others: 1), at: 1)
        #expect(history.hasSlab && history.storageBytes == (4 * (3 * 2 + 4) + 2) * 8)
        let a = try #require(history.column(of: "/a")), b = try #require(history.column(of: "/b"))
        #expect(history.slabBytes(.reclaimable, column: a, at: 0) == 10 && history.slabBytes(.unreclaimable, column: a, at: 0) == 60)
        #expect(history.slabBytes(.reclaimable, column: b, at: 0) == 20 && history.slabBytes(.unreclaimable, column: b, at: 0) == 50)
        #expect(history.otherKernelBytes(at: 0) == 150 && history.otherSlabBytes(.reclaimable, at: 0) == 31
            && history.otherSlabBytes(.unreclaimable, at: 0) == 42)
        // /c rises past /b and takes its column: /b's slab history goes with it.
        history.append(Self.v2([("/a", 100, 11, 61), ("/c", 95, 31, 41), ("/b", 90, 21, 51)]), at: 2)
        let c = try #require(history.column(of: "/c"))
        #expect(c == b && history.slabBytes(.reclaimable, column: c, at: 0) == nil && history.slabBytes(.unreclaimable, column: c, at: 1) == 41)
        #expect(history.hasSlab(at: 0) && history.hasSlab(at: 1))
    }

    /// With the slab planes: saved and read back, the same history; a cell
    /// not read is written as UInt64.max, as every version reads it; a file whose
    /// slab planes lie about their sizes, or hold only some of them, is refused.
    @Test func slabPlanesRoundTripAndALyingOneIsRefused() throws {
        var history = CgroupHistory(capacity: 3, columns: 3)
        for time in 1...5 {
            history.append(Self.v2([("/a", UInt64(100 + time), UInt64(time), UInt64(2 * time)), ("/b", 50, 5, 6)]), at: Int64(time))
        }
        let node = try StateEncoder.encode(history)
        #expect(try StateDecoder.decode(CgroupHistory.self, from: node) == history)
        #expect(try StateDecoder.decode(CgroupHistory.self, from: StateNode.parse(node.serialized())) == history, "through the file's bytes")
        guard case .object(var members) = node, case .array(let cells)? = members["slabUnreclaimable"], case .array(let values)? = members["values"]
        else { Issue.record("no slab plane"); return }
        // Two cgroups in three columns: one column never read, UInt64.max in every plane (what
        // every earlier version reads: a daemon rolled back keeps its history) ...
        #expect(cells.count == 9 && cells.filter { $0 == .unsigned(UInt64.max) }.count == 3)
        #expect(values.filter { $0 == .unsigned(UInt64.max) }.count == 3 && !values.contains(.null))
        // ... and the format's null reads as not read too.
        var nulls = members
        nulls["values"] = .array(values.map { $0 == .unsigned(UInt64.max) ? .null : $0 })
        #expect(try StateDecoder.decode(CgroupHistory.self, from: .object(nulls)) == history)
        members["slabReclaimable"] = try StateEncoder.encode([1, 2] as [UInt64])
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
        members["slabReclaimable"] = nil
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
        members["otherSlabUnreclaimable"] = try StateEncoder.encode([1, 2, 3, 4] as [UInt64])
        members["slabReclaimable"] = members["slabUnreclaimable"]
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
        // A small file claiming a capacity whose three planes would take
        // 3 × 6 M cells (144 MB) is refused before they are allocated.
        let empty = try StateEncoder.encode([] as [UInt64])
        for key in ["times", "values", "others", "slabReclaimable", "slabUnreclaimable", "otherSlabReclaimable", "otherSlabUnreclaimable"] {
            members[key] = empty
        }
        members["capacity"] = try StateEncoder.encode(100_000)
        members["columns"] = try StateEncoder.encode(60)
        members["names"] = try StateEncoder.encode(Array(repeating: "", count: 60))
        members["lastRead"] = try StateEncoder.encode(Array(repeating: Int64(0), count: 60))
        #expect(throws: DecodingError.self) { try StateDecoder.decode(CgroupHistory.self, from: .object(members)) }
        for key in ["slabReclaimable", "slabUnreclaimable", "otherSlabReclaimable", "otherSlabUnreclaimable"] { members[key] = nil }
        #expect(try StateDecoder.decode(CgroupHistory.self, from: .object(members)).capacity == 100_000, "one plane of 6 M cells is allowed")
    }

    /// A file written before v2's slab was kept (no slab keys, a cell not read
    /// written as UInt64.max) still loads: the same readings, no slab, and a
    /// cell it wrote as UInt64.max is not read.
    @Test func aFileFromBeforeSlabWasKeptStillLoads() throws {
        var history = CgroupHistory(capacity: 3, columns: 3)
        for time in 1...2 { history.append(Self.reading([("/a", UInt64(time)), ("/b", 7)]), at: Int64(time)) }
        guard case .object(var members) = try StateEncoder.encode(history) else { Issue.record("not an object"); return }
        members["values"] = try StateEncoder.encode([1, 7, UInt64.max, 2, 7, UInt64.max] as [UInt64])
        members["others"] = try StateEncoder.encode([0, 0] as [UInt64])
        let decoded = try StateDecoder.decode(CgroupHistory.self, from: .object(members))
        #expect(decoded == history && !decoded.hasSlab && decoded.kernelBytes(column: 2, at: 1) == nil)
        #expect(decoded.kernelBytes(column: try #require(decoded.column(of: "/a")), at: 1) == 2)
    }
}
