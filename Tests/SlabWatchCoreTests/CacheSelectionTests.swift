import Testing
@testable import SlabWatchCore

/// The bounded default of `/metrics`: filters first, then every cache with a
/// finding, the top N by footprint and by growth, held for an hour after
/// they fall out; `slab.export: all` lists every admitted cache.
struct CacheSelectionTests {
    static let minute: Int64 = 60_000
    static let mebibyte: UInt64 = 1 << 20

    /// A cache of `bytes` footprint (4 KiB slabs).
    static func cache(_ name: String, bytes: UInt64) -> SlabCache {
        SampleRingTests.cache(name, slabs: bytes / 4096)
    }

    /// `count` caches named `small00`…, 1 MiB … `count` MiB, the last largest.
    static func caches(_ count: Int) -> [SlabCache] {
        (0..<count).map { cache("small" + (($0 < 10 ? "0" : "") + "\($0)"), bytes: UInt64($0 + 1) * mebibyte) }
    }

    static func sample(_ t: Int64, _ caches: [SlabCache]) -> Sample { Sample(timestampMilliseconds: t, caches: caches) }

    static func names(_ choice: CacheSelection.Choice) -> Set<String> { Set(choice.caches.map(\.name)) }

    @Test func theLargestAreExportedAndTheRestCountedBeyondTheTop() {
        var selection = CacheSelection(filter: .all, bound: .init(topByFootprint: 5, topByGrowth: 0))
        let choice = selection.choose(Self.sample(0, Self.caches(30)))
        #expect(Self.names(choice) == ["small25", "small26", "small27", "small28", "small29"])
        #expect(choice.caches.map(\.name) == choice.caches.map(\.name).sorted())  // the order /metrics needs
        #expect(choice.beyondTop == 25)
    }

    @Test func aCacheWithAFindingIsAlwaysExported() {
        var selection = CacheSelection(filter: .all, bound: .init(topByFootprint: 2, topByGrowth: 0))
        let open = AlertPolicyTests.finding("small03", firstSeen: 0)
        let resolved = AlertPolicyTests.finding("small07", firstSeen: 0, state: .resolved)
        let choice = selection.choose(Self.sample(0, Self.caches(30)), findings: [open, resolved])
        #expect(Self.names(choice) == ["small03", "small07", "small28", "small29"])
        #expect(choice.beyondTop == 26)
    }

    @Test func theCachesThatGrewMostOverTheHourAreExported() throws {
        var before = Self.caches(30)
        var now = before
        now[2] = Self.cache("small02", bytes: 3 * Self.mebibyte + 20 * Self.mebibyte)  // grew 20 MiB: first
        now[5] = Self.cache("small05", bytes: 6 * Self.mebibyte + 8 * Self.mebibyte)   // grew 8 MiB: second
        now[9] = Self.cache("small09", bytes: 10 * Self.mebibyte + Self.mebibyte / 2)  // grew 512 KiB: breathing
        before.removeLast()  // small29 is new this hour: no growth figure
        let hourAgo = try Self.baseline([(0, before)])
        var selection = CacheSelection(filter: .all, bound: .init(topByFootprint: 1, topByGrowth: 3))
        let choice = selection.choose(Self.sample(60 * Self.minute, now), growth: hourAgo)
        #expect(Self.names(choice) == ["small02", "small05", "small29"])  // small29 by footprint
    }

    /// A growth figure needs its samples to span half the window (`WindowCoverage`).
    @Test func noGrowthRanksBeforeTheHistorySpansHalfTheWindow() throws {
        var now = Self.caches(30)
        now[2] = Self.cache("small02", bytes: 100 * Self.mebibyte)
        let baseline = try Self.baseline([(0, Self.caches(30))])
        var selection = CacheSelection(filter: .all, bound: .init(topByFootprint: 1, topByGrowth: 3))
        #expect(Self.names(selection.choose(Self.sample(20 * Self.minute, now), growth: baseline)) == ["small02"])  // largest now
        now[2] = Self.cache("small02", bytes: 20 * Self.mebibyte)  // grew 17 MiB, smaller than small29
        var later = CacheSelection(filter: .all, bound: .init(topByFootprint: 1, topByGrowth: 3))
        #expect(Self.names(later.choose(Self.sample(20 * Self.minute, now), growth: baseline)) == ["small29"])
        #expect(Self.names(later.choose(Self.sample(40 * Self.minute, now), growth: baseline)) == ["small02", "small29"])
    }

    @Test func theFiltersApplyFirst() throws {
        let filter = try CacheFilter(include: "small1.|small2[0-7]", exclude: "small2[67]", minimumFootprintBytes: 12 * Self.mebibyte)
        var selection = CacheSelection(filter: filter, bound: .init(topByFootprint: 3, topByGrowth: 0))
        let excluded = AlertPolicyTests.finding("small27", firstSeen: 0)  // a finding does not beat exclude
        let tooSmall = AlertPolicyTests.finding("small10", firstSeen: 0)  // nor min-memory-bytes
        let choice = selection.choose(Self.sample(0, Self.caches(30)), findings: [excluded, tooSmall])
        // Admitted: small11…small25 (15); the top 3 of those, not of all caches.
        #expect(Self.names(choice) == ["small23", "small24", "small25"])
        #expect(choice.beyondTop == 12)
    }

    /// A cache that dips out of the top N keeps its series for an hour; one
    /// that stays out longer is dropped; at most N are held.
    @Test func aCacheThatDipsOutOfTheTopStaysForAnHour() {
        var selection = CacheSelection(filter: .all, bound: .init(topByFootprint: 2, topByGrowth: 0))
        var caches = Self.caches(10)
        #expect(Self.names(selection.choose(Self.sample(0, caches))) == ["small08", "small09"])

        // small07 overtakes small08 for a minute, then falls back: small08 never leaves.
        caches[7] = Self.cache("small07", bytes: 9 * Self.mebibyte + Self.mebibyte / 2)
        #expect(Self.names(selection.choose(Self.sample(Self.minute, caches))) == ["small07", "small08", "small09"])
        caches[7] = Self.cache("small07", bytes: 8 * Self.mebibyte)
        #expect(Self.names(selection.choose(Self.sample(2 * Self.minute, caches))) == ["small07", "small08", "small09"])
        // Held until it has been out an hour, then dropped.
        #expect(Self.names(selection.choose(Self.sample(60 * Self.minute, caches))) == ["small07", "small08", "small09"])
        #expect(Self.names(selection.choose(Self.sample(61 * Self.minute, caches))) == ["small08", "small09"])

        // Three newcomers in turn: the two most recently in the top are held, not all three.
        for (step, newcomer) in [0, 1, 2].enumerated() {
            var bigger = caches
            bigger[newcomer] = Self.cache(caches[newcomer].name, bytes: 100 * Self.mebibyte)
            _ = selection.choose(Self.sample((62 + Int64(step)) * Self.minute, bigger))
        }
        let choice = selection.choose(Self.sample(65 * Self.minute, caches))
        #expect(Self.names(choice) == ["small01", "small02", "small08", "small09"])
        #expect(choice.beyondTop == 6)
    }

    @Test func exportAllListsEveryAdmittedCache() throws {
        var selection = CacheSelection(filter: try CacheFilter(exclude: "small0."), bound: .unbounded)
        let choice = selection.choose(Self.sample(0, Self.caches(300)))
        #expect(choice.caches.count == 290 && choice.beyondTop == 0)
        #expect(choice.caches.map(\.name) == choice.caches.map(\.name).sorted())
    }

    /// A baseline read from a ring of `samples` (time, caches), every one kept in the coarse tier.
    static func baseline(_ samples: [(Int64, [SlabCache])]) throws -> FootprintBaseline {
        var ring = SampleRing(configuration: .init(coarseEvery: 1))
        for (t, caches) in samples { ring.append(Self.sample(t, caches)) }
        return try #require(FootprintBaseline(ring: ring, windowSeconds: ExportBound.growthWindowSeconds))
    }
}

struct FootprintBaselineTests {
    /// The oldest coarse sample within the window, and rebuilt only when the coarse tier moves.
    @Test func readsTheOldestCoarseSampleWithinTheWindow() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 10, coarseCapacity: 200, coarseEvery: 2))
        #expect(FootprintBaseline(ring: ring, windowSeconds: 3600) == nil)
        // One sample a minute; every other one reaches the coarse tier.
        for minute in 0..<100 {
            ring.append(SampleRingTests.sample(Int64(minute) * 60_000, [SampleRingTests.cache("a", slabs: UInt64(minute))]))
        }
        let baseline = try #require(FootprintBaseline(ring: ring, windowSeconds: 3600))
        #expect(baseline.timestampMilliseconds == 38 * 60_000)  // newest coarse: minute 98; 98 - 60
        #expect(baseline.isCurrent(for: ring))
        let now = SampleRingTests.cache("a", slabs: 99)
        #expect(baseline.growthBytes(of: now, at: 99 * 60_000, windowSeconds: 3600) == Int64(99 - 38) * 4096)
        #expect(baseline.growthBytes(of: SampleRingTests.cache("b", slabs: 9), at: 99 * 60_000, windowSeconds: 3600) == nil)
        ring.append(SampleRingTests.sample(100 * 60_000, [SampleRingTests.cache("a", slabs: 100)]))  // coarse moves
        #expect(!baseline.isCurrent(for: ring))
        ring.append(SampleRingTests.sample(101 * 60_000, [SampleRingTests.cache("a", slabs: 101)]))  // fine only
        #expect(!baseline.isCurrent(for: ring) && FootprintBaseline(ring: ring, windowSeconds: 3600)?.isCurrent(for: ring) == true)
    }

    /// A baseline refilled from a ring that moved on reads as a new one, in
    /// the storage it had (the sampler refills the one of two moves back
    /// rather than make a dictionary), and a copy taken before keeps what it read.
    @Test func aRefilledBaselineReadsAsANewOneInItsOwnStorage() throws {
        var ring = SampleRing(configuration: .init(coarseEvery: 1))
        let many = (0..<300).map { SampleRingTests.cache("c\($0)", slabs: 1) }
        for minute in 0..<3 { ring.append(SampleRingTests.sample(Int64(minute) * 60_000, many)) }
        var baseline = try #require(FootprintBaseline(ring: ring, windowSeconds: 3600))
        let before = baseline, capacity = baseline.capacity
        var later = SampleRing(configuration: .init(coarseEvery: 1))
        for minute in 0..<3 { later.append(SampleRingTests.sample(Int64(minute) * 60_000, [SampleRingTests.cache("a", slabs: UInt64(minute))])) }
        let refilled = baseline.refill(ring: later, windowSeconds: 3600)
        #expect(refilled)
        #expect(baseline == FootprintBaseline(ring: later, windowSeconds: 3600))
        #expect(baseline.capacity == capacity, "refilled in the storage a copy no longer shares")
        #expect(before.growthBytes(of: SampleRingTests.cache("c7", slabs: 2), at: 40 * 60_000, windowSeconds: 3600) == 4096)
        #expect(baseline.growthBytes(of: SampleRingTests.cache("c7", slabs: 2), at: 40 * 60_000, windowSeconds: 3600) == nil)
        let fromEmpty = baseline.refill(ring: SampleRing(configuration: .init(coarseEvery: 1)), windowSeconds: 3600)
        #expect(!fromEmpty && baseline.isCurrent(for: later), "a tier holding nothing leaves the baseline as it was")
    }
}
