import Testing
@testable import SlabWatchCore

struct SampleRingTests {
    static func cache(_ name: String, slabs: UInt64) -> SlabCache {
        SlabCache(name: name, activeObjects: slabs, objects: slabs, objectSize: 64, objectsPerSlab: 64,
                  pagesPerSlab: 1, activeSlabs: slabs, slabs: slabs, pageSize: 4096)
    }

    static func sample(_ t: Int64, _ caches: [SlabCache], inodes: UInt64? = nil) -> Sample {
        Sample(timestampMilliseconds: t, caches: caches, inodes: inodes.map { InodeCounts(inodes: $0, freeInodes: 0) })
    }

    @Test func fineTierKeepsTheNewestSamplesInOrder() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 2))
        for t in 0..<10 { ring.append(Self.sample(Int64(t), [Self.cache("a", slabs: UInt64(t))], inodes: UInt64(t * 10))) }
        #expect(ring.fine.count == 4)
        #expect((0..<4).map { ring.fine.time(at: $0) } == [6, 7, 8, 9])
        let a = try #require(ring.series(named: "a"))
        #expect((0..<4).map { ring.fine.footprint(series: a, at: $0) } == [6, 7, 8, 9].map { UInt64($0) * 4096 })
        #expect(ring.fine.counter(.inodes, at: 3) == 90)
        #expect(ring.fine.counter(.dentries, at: 3) == nil)
    }

    /// An append finds each cache's series by its position in the last
    /// sample, checked by name: caches that change places, and a new name at
    /// a place whose series was given to another cache, still land in their own.
    @Test func cachesThatChangePlacesKeepTheirOwnSeries() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 2, coarseEvery: 100, maxSeries: 3))
        ring.append(Self.sample(0, [Self.cache("a", slabs: 1), Self.cache("b", slabs: 2), Self.cache("c", slabs: 3)]))
        ring.append(Self.sample(1, [Self.cache("c", slabs: 30), Self.cache("a", slabs: 10), Self.cache("b", slabs: 20)]))
        // "a" is evicted for "d", which takes its series; "a" comes back at d's place.
        ring.append(Self.sample(2, [Self.cache("d", slabs: 400), Self.cache("c", slabs: 300), Self.cache("b", slabs: 200)]))
        ring.append(Self.sample(3, [Self.cache("a", slabs: 5000), Self.cache("c", slabs: 3000), Self.cache("b", slabs: 2000)]))
        let footprints = { (name: String) in
            try (0..<4).map { ring.fine.footprint(series: try #require(ring.series(named: name)), at: $0).map { $0 / 4096 } }
        }
        #expect(try footprints("b") == [2, 20, 200, 2000])
        #expect(try footprints("c") == [3, 30, 300, 3000])
        #expect(try footprints("a") == [nil, nil, nil, 5000])  // a new series: its old history went with the eviction
        #expect(ring.series(named: "d") == nil)
    }

    /// A cache's series by its place in the last sample is its series by
    /// name: after reorders and an eviction, for a name asked at another
    /// place, past the sample's end, and for a name the ring does not hold.
    @Test func aSeriesByPlaceIsTheSeriesByName() {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 2, coarseEvery: 100, maxSeries: 3))
        ring.append(Self.sample(0, [Self.cache("a", slabs: 1), Self.cache("b", slabs: 2), Self.cache("c", slabs: 3)]))
        ring.append(Self.sample(1, [Self.cache("c", slabs: 30), Self.cache("a", slabs: 10), Self.cache("b", slabs: 20)]))
        ring.append(Self.sample(2, [Self.cache("d", slabs: 400), Self.cache("c", slabs: 300), Self.cache("b", slabs: 200)]))
        let last = ["d", "c", "b"]
        for (position, name) in last.enumerated() {
            #expect(ring.series(ofCacheAt: position, named: name) == ring.series(named: name))
        }
        #expect(ring.series(ofCacheAt: 0, named: "c") == ring.series(named: "c"))  // at another place
        #expect(ring.series(ofCacheAt: 7, named: "b") == ring.series(named: "b"))  // past the end
        #expect(ring.series(ofCacheAt: 0, named: "a") == nil)  // evicted for "d", whose series sits at 0
        #expect(Set(last.compactMap { ring.series(named: $0) }).count == 3)
    }

    @Test func coarseTierKeepsEveryNthSample() {
        var ring = SampleRing(configuration: .init(fineCapacity: 3, coarseCapacity: 3, coarseEvery: 4))
        for t in 0..<13 { ring.append(Self.sample(Int64(t), [Self.cache("a", slabs: 1)])) }
        #expect(ring.coarse.count == 3)
        #expect((0..<3).map { ring.coarse.time(at: $0) } == [4, 8, 12])
        #expect(ring.coarse.footprint(series: 0, at: 2) == 4096)
    }

    @Test func cachesThatAppearAndVanishReadAsAbsent() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 2, coarseEvery: 100))
        ring.append(Self.sample(0, [Self.cache("a", slabs: 1)]))
        ring.append(Self.sample(1, [Self.cache("a", slabs: 2), Self.cache("module_cache", slabs: 5)]))
        ring.append(Self.sample(2, [Self.cache("a", slabs: 3)]))
        let module = try #require(ring.series(named: "module_cache"))
        #expect((0..<3).map { ring.fine.footprint(series: module, at: $0) } == [nil, 5 * 4096, nil])
    }

    @Test func widensWhenMoreCachesThanInitialCapacityAndKeepsHistory() {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 1), initialSeriesCapacity: 2)
        ring.append(Self.sample(0, [Self.cache("a", slabs: 1), Self.cache("b", slabs: 2)]))
        ring.append(Self.sample(1, (0..<5).map { Self.cache("c\($0)", slabs: UInt64($0)) } + [Self.cache("a", slabs: 9)]))
        #expect(ring.fine.seriesCapacity >= 7)
        #expect(ring.fine.footprint(series: ring.series(named: "a")!, at: 0) == 4096)
        #expect(ring.fine.footprint(series: ring.series(named: "b")!, at: 0) == 2 * 4096)
        #expect(ring.fine.footprint(series: ring.series(named: "c4")!, at: 1) == 4 * 4096)
        #expect(ring.coarse.footprint(series: ring.series(named: "b")!, at: 0) == 2 * 4096)
    }

    /// Once both tiers are full (their blocks too), appending the same kind
    /// of samples reuses the evicted blocks' buffers.
    @Test func storageStaysConstantInSteadyState() {
        var ring = SampleRing(configuration: .init(fineCapacity: 16, coarseCapacity: 16, coarseEvery: 3))
        let caches = (0..<250).map { Self.cache("cache\($0)", slabs: UInt64($0)) }
        for t in 0..<100 { ring.append(Self.sample(Int64(t), caches)) }
        let bytes = ring.storageBytes
        for t in 100..<300 { ring.append(Self.sample(Int64(t), caches)) }
        #expect(ring.storageBytes == bytes)
    }

    @Test func churningCacheNamesRecycleSeriesInsteadOfGrowing() {
        var ring = SampleRing(configuration: .init(fineCapacity: 2, coarseCapacity: 2, coarseEvery: 1000), initialSeriesCapacity: 4)
        for t in 0..<50 {
            ring.append(Self.sample(Int64(t), [Self.cache("base", slabs: 1), Self.cache("module\(t)", slabs: 1)]))
        }
        #expect(ring.fine.seriesCapacity <= 8)
        #expect(ring.fine.footprint(series: ring.series(named: "module49")!, at: 1) == 4096)
        // module0 is still in the coarse tier (sample 0), so it keeps its series;
        // module1 is stored nowhere any more and gave its series away.
        #expect(ring.coarse.footprint(series: ring.series(named: "module0")!, at: 0) == 4096)
        #expect(ring.series(named: "module1") == nil)
    }

    /// 500 new cache names every sample (a hostile or broken procfs): the ring
    /// stays within maxSeries, counts what it evicted, and keeps the newest.
    @Test func churnBeyondMaxSeriesEvictsTheOldestAndStaysBounded() {
        let configuration = SampleRing.Configuration(fineCapacity: 60, coarseCapacity: 60, coarseEvery: 12, maxSeries: 1000)
        var ring = SampleRing(configuration: configuration, initialSeriesCapacity: 256)
        for t in 0..<40 {
            let caches = [Self.cache("steady", slabs: 1)] + (0..<500).map { Self.cache("churn\(t)-\($0)", slabs: 1) }
            ring.append(Self.sample(Int64(t), caches))
        }
        #expect(ring.fine.seriesCapacity <= 1000)
        #expect(ring.seriesNames.count <= 1000)
        #expect(ring.evictedSeries > 0)
        #expect(ring.series(named: "churn39-499") != nil)
        #expect(ring.series(named: "churn0-0") == nil)
        let steady = ring.series(named: "steady")!
        #expect((0..<ring.fine.count).allSatisfy { ring.fine.footprint(series: steady, at: $0) == 4096 })  // never evicted
        #expect(ring.storageBytes <= (60 + 60) * (1000 + 7) * 8)
    }

    /// A sample with more caches than maxSeries: the caches that fit keep
    /// their series tick after tick, the rest are left out, and caches that
    /// go away free their series for those left out.
    @Test func sampleLargerThanMaxSeriesKeepsWhatFits() {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 4, maxSeries: 100))
        let oversized = (0..<150).map { Self.cache("c\($0)", slabs: 1) }
        for t in 0..<3 { ring.append(Self.sample(Int64(t), oversized)) }
        #expect(ring.seriesNames.count == 100)
        #expect(ring.series(named: "c149") == nil)
        #expect(ring.fine.footprint(series: ring.series(named: "c99")!, at: 2) == 4096)
        // c0…c49 leave; once they have aged out of both tiers, c100…c149 get series.
        let rest = Array(oversized[50...])
        for t in 3..<60 { ring.append(Self.sample(Int64(t), rest)) }
        #expect(ring.series(named: "c149") != nil)
        #expect(ring.series(named: "c0") == nil)
        #expect(ring.seriesNames.count == 100)
    }

    /// After a burst of short-lived caches has aged out of both tiers, the
    /// widened ring gives its memory back.
    @Test func sparseRingShrinksAfterABurst() {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 4), initialSeriesCapacity: 16)
        ring.append(Self.sample(0, [Self.cache("steady", slabs: 1)] + (0..<200).map { Self.cache("burst\($0)", slabs: 1) }))
        let widened = ring.storageBytes
        #expect(ring.fine.seriesCapacity >= 201)
        for t in 1..<400 { ring.append(Self.sample(Int64(t), [Self.cache("steady", slabs: UInt64(t))])) }
        #expect(ring.storageBytes < widened / 4, "\(ring.storageBytes) vs \(widened)")
        let steady = ring.series(named: "steady")!
        #expect(ring.fine.footprint(series: steady, at: ring.fine.count - 1) == 399 * 4096)  // history kept across the rebuild
        #expect(ring.coarse.footprint(series: steady, at: ring.coarse.count - 1) == 396 * 4096)
        #expect(ring.series(named: "burst0") == nil)
    }

    @Test func documentedDefaultCostsAFewMegabytes() {
        let ring = SampleRing(configuration: .init())
        #expect(ring.storageBytes < 4 << 20)
    }

    /// What a full default ring holds follows what its caches moved: quiet
    /// caches cost a block header each per 64 samples beside the newest
    /// block kept raw; caches that move all the time cost the bits of the
    /// range they moved, and never more than the raw 4 bytes a value.
    @Test func storageFollowsWhatTheCachesMoved() {
        func fullRing(_ slabs: (_ step: Int, _ cache: Int) -> UInt64) -> SampleRing {
            var ring = SampleRing()
            for step in 0..<(720 * 12) {
                ring.append(Self.sample(Int64(step) * 5000, (0..<250).map { Self.cache("cache\($0)", slabs: slabs(step, $0)) }))
            }
            return ring
        }
        let raw = 1440 * (8 + 7 * 8 + 256 * 4)  // every slot's time, counters and 256 footprints, unpacked
        let quiet = fullRing { _, cache in UInt64(100 + cache) }
        let moving = fullRing { step, cache in UInt64(100 + cache + step * 13 % 4096) }  // 10 to 12 bits a value
        #expect(quiet.storageBytes < raw / 4, "\(quiet.storageBytes) of \(raw)")
        #expect(moving.storageBytes > quiet.storageBytes + 2 * 11 * 250 * 64 * 10 / 8, "\(moving.storageBytes)")
        #expect(moving.storageBytes < raw, "\(moving.storageBytes) of \(raw)")
    }
}

/// `/snapshot?slab=&history=SECONDS` takes any number a client sends.
struct HistoryPointTests {
    @Test(arguments: [1e16, 9.3e15, Double.greatestFiniteMagnitude, .infinity, -5, .nan, 0])
    func anySpanIsSafe(_ seconds: Double) throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 2))
        for t in 0..<10 { ring.append(SampleRingTests.sample(1_795_600_000_000 + Int64(t) * 1000, [SampleRingTests.cache("a", slabs: 1)])) }
        let points = try #require(HistoryPoint.collect(ring, slab: "a", seconds: seconds))
        let everything = seconds > 100 && !seconds.isNaN
        #expect(points.count == (everything ? 6 : 1), "\(points.count)")  // 4 fine + 2 older coarse, or the newest
    }
}

extension SampleRingTests {
    /// Footprints are stored in 4 KiB units in 32 bits: exact for whole pages
    /// of any page size, up to 16 TiB per cache.
    @Test func footprintsRoundTripInFourKiBUnits() {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 1))
        let sizes: [UInt64] = [4096, 65536 * 3, 1 << 40, 16 << 40]
        for (t, slabs) in sizes.enumerated() {
            ring.append(Self.sample(Int64(t), [SlabCache(name: "c", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64,
                                                         pagesPerSlab: 1, activeSlabs: 1, slabs: slabs / 4096, pageSize: 4096)]))
        }
        let c = ring.series(named: "c")!
        #expect((0..<3).map { ring.fine.footprint(series: c, at: $0) } == sizes.prefix(3).map { $0 })
        #expect(ring.fine.footprint(series: c, at: 3) == (UInt64(UInt32.max) - 1) * 4096)  // saturates, never reads as absent
    }
}

/// Inode caches' object counts: a column each, beside the footprints.
struct SampleRingInodeCacheTests {
    static func inodeCache(_ name: String, objects: UInt64, aliases: [String] = []) -> SlabCache {
        SlabCache(name: name, activeObjects: objects, objects: objects, objectSize: 1024, objectsPerSlab: 32,
                  pagesPerSlab: 8, activeSlabs: objects / 32, slabs: objects / 32, pageSize: 4096, aliases: aliases)
    }

    @Test func inodeCachesGetAColumnOfTheirActiveObjects() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 2))
        for t in 0..<6 {
            ring.append(SampleRingTests.sample(Int64(t), [
                Self.inodeCache("ext4_inode_cache", objects: UInt64(1000 * t)),
                SampleRingTests.cache("kmalloc-32", slabs: 3),
                Self.inodeCache("lsm_inode_cache", objects: 7),              // excluded by name
                Self.inodeCache("mystor_inode_cache", objects: 5, aliases: ["other"]),  // merged: not only inodes
            ] + (t >= 3 ? [Self.inodeCache("xfs_inode", objects: UInt64(t))] : [])))
        }
        #expect(ring.inodeCacheNames == ["ext4_inode_cache", "xfs_inode"])
        let ext4 = try #require(ring.inodeCacheColumn(named: "ext4_inode_cache"))
        let xfs = try #require(ring.inodeCacheColumn(named: "xfs_inode"))
        #expect((0..<4).map { ring.fine.inodeObjects(column: ext4, at: $0) } == [2000, 3000, 4000, 5000])
        #expect((0..<4).map { ring.fine.inodeObjects(column: xfs, at: $0) } == [nil, 3, 4, 5])
        #expect((0..<ring.coarse.count).map { ring.coarse.inodeObjects(column: ext4, at: $0) } == [0, 2000, 4000])
        #expect(ring.inodeCacheColumn(named: "kmalloc-32") == nil)
    }

    @Test func anEmptyPatternFollowsNoInodeCacheAndChangingItStartsAfresh() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 2))
        ring.append(SampleRingTests.sample(0, [Self.inodeCache("ext4_inode_cache", objects: 10)]))
        #expect(ring.inodeCacheNames == ["ext4_inode_cache"])
        ring.inodeCaches = try InodeCacheSelector(pattern: "")
        ring.append(SampleRingTests.sample(1, [Self.inodeCache("ext4_inode_cache", objects: 11)]))
        #expect(ring.inodeCacheNames.isEmpty && ring.fine.objectColumns == 0)
        ring.inodeCaches = try InodeCacheSelector(pattern: "ext4_.*")
        ring.append(SampleRingTests.sample(2, [Self.inodeCache("ext4_inode_cache", objects: 12)]))
        let column = try #require(ring.inodeCacheColumn(named: "ext4_inode_cache"))
        #expect((0..<3).map { ring.fine.inodeObjects(column: column, at: $0) } == [nil, nil, 12])
    }

    @Test func columnsRoundTripThroughTheStateAndOldStateLoadsWithoutThem() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 2, coarseEvery: 2))
        for t in 0..<5 { ring.append(SampleRingTests.sample(Int64(t), [Self.inodeCache("shmem_inode_cache", objects: UInt64(t))])) }
        var restored = try StateDecoder.decode(SampleRing.self, from: StateEncoder.encode(ring))
        #expect(restored.inodeCacheNames == ["shmem_inode_cache"])
        ring.inodeCaches = try InodeCacheSelector(pattern: "shmem_.*")
        ring.append(SampleRingTests.sample(5, [Self.inodeCache("shmem_inode_cache", objects: 5)]))
        restored = try StateDecoder.decode(SampleRing.self, from: StateEncoder.encode(ring))
        #expect(restored.inodeCaches == ring.inodeCaches, "the selector that chose the columns comes back with them")
        restored.inodeCaches = try InodeCacheSelector(pattern: "shmem_.*")  // the same configuration: nothing forgotten
        #expect(restored.inodeCacheNames == ["shmem_inode_cache"])
        #expect(restored.fine.inodeObjects(column: 0, at: 3) == 5)
        // A state file from before inode caches were followed has none of the keys.
        guard case .object(var members) = try StateEncoder.encode(ring),
              case .object(var fine) = members["fine"], case .object(var coarse) = members["coarse"] else {
            Issue.record("ring does not encode as an object"); return
        }
        for key in ["inodeColumn", "inodeCacheNames", "inodeCachesPattern", "inodeCachesExclude"] { members[key] = nil }
        for key in ["objectColumns", "objects"] { fine[key] = nil; coarse[key] = nil }
        members["fine"] = .object(fine)
        members["coarse"] = .object(coarse)
        var old = try StateDecoder.decode(SampleRing.self, from: .object(members))
        #expect(old.inodeCacheNames.isEmpty)
        old.append(SampleRingTests.sample(5, [Self.inodeCache("shmem_inode_cache", objects: 5)]))
        #expect(old.inodeCacheNames == ["shmem_inode_cache"])
        #expect(old.fine.inodeObjects(column: 0, at: old.fine.count - 1) == 5)
        // Columns that disagree with the tiers are refused.
        members["inodeCacheNames"] = .array([.string("a")])
        #expect(throws: DecodingError.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
    }

    // MARK: which caches hold the 32 columns

    /// `count` inode caches named `prefix0_inode_cache`, … with `objects` each.
    static func inodeCaches(_ prefix: String, _ count: Int, objects: (Int) -> UInt64 = { _ in 10 }) -> [SlabCache] {
        (0..<count).map { Self.inodeCache("\(prefix)\($0)_inode_cache", objects: objects($0)) }
    }

    @Test func aVanishedCachesColumnIsFreedOnceNeitherTiersNewestSlotHoldsIt() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 3))
        let gone = Self.inodeCaches("gone", 32)
        let shmem = Self.inodeCache("shmem_inode_cache", objects: 500)
        ring.append(SampleRingTests.sample(0, gone + [shmem]))  // a coarse copy: the 32 are its newest slot
        #expect(ring.inodeCacheNames.compactMap { $0 }.count == 32 && ring.inodeCacheColumn(named: "shmem_inode_cache") == nil)
        #expect(ring.isInodeCache(named: "shmem_inode_cache"), "an inode cache waiting for a column is still one")
        ring.append(SampleRingTests.sample(1, [shmem]))
        ring.append(SampleRingTests.sample(2, [shmem]))
        #expect(ring.inodeCacheColumn(named: "shmem_inode_cache") == nil, "a coarse window could still use them")
        ring.append(SampleRingTests.sample(3, [shmem]))  // the next coarse copy lacks them: no window can
        let taken = ring.inodeCacheColumn(named: "shmem_inode_cache")
        let column = try #require(taken)
        #expect(ring.inodeCacheNames.compactMap { $0 } == ["shmem_inode_cache"])
        // The column starts with no past: the vanished cache's counts are gone.
        #expect((0..<ring.fine.count).map { ring.fine.inodeObjects(column: column, at: $0) } == [nil, nil, nil, 500])
        #expect((0..<ring.coarse.count).map { ring.coarse.inodeObjects(column: column, at: $0) } == [nil, 500])
        // A sample in which no cache could be read frees nothing.
        ring.append(SampleRingTests.sample(4, []))
        let afterSourceDown = ring.inodeCacheColumn(named: "shmem_inode_cache")
        #expect(afterSourceDown == column)
    }

    @Test func freeColumnsGoToCachesThatMovedThenToTheLongestWaiting() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2))
        let first = Self.inodeCaches("first", 32)
        ring.append(SampleRingTests.sample(0, first + [Self.inodeCache("old_inode_cache", objects: 10)]))
        // Newcomers are listed first, as /proc/slabinfo lists the newest caches.
        ring.append(SampleRingTests.sample(1, Self.inodeCaches("new", 3) + [Self.inodeCache("mover_inode_cache", objects: 100)]
                                             + first + [Self.inodeCache("old_inode_cache", objects: 10)]))
        ring.append(SampleRingTests.sample(2, Self.inodeCaches("new", 3) + [Self.inodeCache("mover_inode_cache", objects: 20_100)]
                                             + Array(first.dropFirst(2)) + [Self.inodeCache("old_inode_cache", objects: 10)]))
        // Two of the first are gone from both tiers' newest slots (a coarse copy): two columns free.
        #expect(first.dropFirst(2).allSatisfy { ring.inodeCacheColumn(named: $0.name) != nil })
        #expect(ring.inodeCacheColumn(named: "mover_inode_cache") != nil, "it moved by min-driver-change while it waited")
        #expect(ring.inodeCacheColumn(named: "old_inode_cache") != nil, "it waited longest")
        #expect((0..<3).allSatisfy { ring.inodeCacheColumn(named: "new\($0)_inode_cache") == nil })
    }

    @Test func withNoColumnFreeACacheThatMovesTakesTheColumnOfOneThatStandsStill() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 100))
        var settings = DetectorSettings()
        settings.minDriverChange = 5_000
        ring.follow(settings)
        let still = Self.inodeCaches("still", 32)
        let quiet = Self.inodeCache("quiet_inode_cache", objects: 7)
        for t in 0..<8 { ring.append(SampleRingTests.sample(Int64(t), still + [quiet])) }
        var tmpfs: UInt64 = 2_000
        for t in 8..<20 {
            tmpfs += 1_000
            let movers = [Self.inodeCache("shmem_inode_cache", objects: tmpfs), Self.inodeCache("xfs_inode", objects: 2 * tmpfs)]
            ring.append(SampleRingTests.sample(Int64(t), still + [quiet] + movers))
            if t == 12 { #expect(ring.inodeCacheColumn(named: "shmem_inode_cache") == nil, "moved 4,000 so far: not yet") }
        }
        let columns = (ring.inodeCacheColumn(named: "shmem_inode_cache"), ring.inodeCacheColumn(named: "xfs_inode"))
        let shmem = try #require(columns.0)
        #expect(columns.1 != nil)
        #expect(ring.fine.inodeObjects(column: shmem, at: ring.fine.count - 1) == tmpfs)
        #expect(ring.inodeCacheNames.compactMap { $0 }.filter { $0.hasPrefix("still") }.count == 30)
        #expect(ring.inodeCacheColumn(named: "quiet_inode_cache") == nil, "a waiting count that stands still takes nothing")
    }

    @Test func amongCachesThatAllMoveNoneTakesAnothersColumn() {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 100))
        for t in 0..<20 {
            ring.append(SampleRingTests.sample(Int64(t), Self.inodeCaches("busy", 33, objects: { _ in UInt64(t * 2_000) })))
        }
        #expect(ring.inodeCacheNames == (0..<32).map { "busy\($0)_inode_cache" })
    }

    @Test func aNameListedTwiceTakesOneColumn() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 4, coarseEvery: 1))
        let twice = [Self.inodeCache("twice_inode_cache", objects: 3), Self.inodeCache("twice_inode_cache", objects: 4)]
        ring.append(SampleRingTests.sample(0, twice))
        ring.append(SampleRingTests.sample(1, [Self.inodeCache("other_inode_cache", objects: 5)]))
        ring.append(SampleRingTests.sample(2, twice))
        #expect(ring.inodeCacheNames.filter { $0 == "twice_inode_cache" }.count == 1)
        #expect(try StateDecoder.decode(SampleRing.self, from: StateEncoder.encode(ring)).inodeCacheNames == ring.inodeCacheNames)
    }

    @Test func aStateFromBeforeColumnsWereFreedLetsTheWaitingCacheIn() throws {
        // Written as slabwatch wrote it before: 32 columns of caches since
        // gone, shmem_inode_cache marked as no inode cache for want of room.
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2))
        let shmem = Self.inodeCache("shmem_inode_cache", objects: 500)
        ring.append(SampleRingTests.sample(0, Self.inodeCaches("gone", 32) + [shmem]))
        guard case .object(var members) = try StateEncoder.encode(ring), case .array(var columns) = members["inodeColumn"],
              let series = ring.series(named: "shmem_inode_cache") else {
            Issue.record("ring does not encode as expected"); return
        }
        columns[series] = .integer(Int64(SampleRing.notInodeCache))
        members["inodeColumn"] = .array(columns)
        var restored = try StateDecoder.decode(SampleRing.self, from: .object(members))
        for t in 1...3 { restored.append(SampleRingTests.sample(Int64(t), [shmem])) }
        #expect(restored.inodeCacheColumn(named: "shmem_inode_cache") != nil)
        #expect(restored.inodeCacheNames.compactMap { $0 } == ["shmem_inode_cache"], "the dead columns are freed")
        // Free columns survive a round trip.
        let again = try StateDecoder.decode(SampleRing.self, from: StateEncoder.encode(restored))
        #expect(again.inodeCacheNames == restored.inodeCacheNames)
    }

    @Test(arguments: [("shmem_inode_cache", "tmpfs"), ("ext4_inode_cache", "ext4"), ("xfs_inode", "xfs"),
                      ("mystor_inode_cache", "mystor"), ("ceph_inode_info", "ceph")])
    func filesystemNames(cache: String, filesystem: String) {
        #expect(InodeCacheSelector.filesystem(of: cache) == filesystem)
    }

    @Test func theGenericInodeCacheNamesNoFilesystem() {
        #expect(InodeCacheSelector.filesystem(of: "inode_cache") == nil)
        #expect(InodeCacheSelector.standard.selects(Self.inodeCache("inode_cache", objects: 1)))
        #expect(!InodeCacheSelector.standard.selects(Self.inodeCache("dentry", objects: 1)))
    }
}

/// Growth per minute, as top and the web page show it beside each cache.
struct GrowthPerMinuteTests {
    @Test func footprintAndCountersPerMinuteOverTheLastSeconds() {
        var ring = SampleRing()
        #expect(ring.footprintPerMinute("a", seconds: 60) == nil)  // no history
        // a grows one 4 KiB slab every 5 s sample: 48 KiB per minute; the inode count by 10 a sample.
        for t in 0..<40 {
            ring.append(SampleRingTests.sample(Int64(t) * 5000, [SampleRingTests.cache("a", slabs: UInt64(10 + t))],
                                               inodes: UInt64(1000 + 10 * t)))
        }
        for seconds in [60.0, 300] {
            #expect(abs((ring.footprintPerMinute("a", seconds: seconds) ?? 0) - 12 * 4096) < 1e-6)
            #expect(abs((ring.counterPerMinute(.inodes, seconds: seconds) ?? 0) - 120) < 1e-9)
        }
        #expect(ring.footprintPerMinute("absent", seconds: 60) == nil)
    }

    /// A figure over a window needs history spanning half of it
    /// (`WindowCoverage`), the share the detector's windows need: two
    /// samples a second apart give neither column (top --once -d 1s showed
    /// both, identical, 60 times the second's noise).
    @Test(arguments: [
        (1, 60.0, false), (1, 300, false),  // two samples 5 s apart
        (5, 60, false), (6, 60, true),  // 25 s and 30 s of a minute
        (29, 300, false), (30, 300, true),  // 145 s and 150 s of five minutes
    ])
    func aWindowNeedsHalfItsLengthOfHistory(steps: Int, seconds: Double, given: Bool) {
        var ring = SampleRing()
        for t in 0...steps {
            ring.append(SampleRingTests.sample(Int64(t) * 5000, [SampleRingTests.cache("a", slabs: UInt64(10 + t))],
                                               inodes: UInt64(1000 + 10 * t)))
        }
        #expect((ring.footprintPerMinute("a", seconds: seconds) != nil) == given)
        #expect((ring.counterPerMinute(.inodes, seconds: seconds) != nil) == given)
        if given { #expect(abs((ring.footprintPerMinute("a", seconds: seconds) ?? 0) - 12 * 4096) < 1e-6) }
    }
}
