import Testing
@testable import SlabWatchCore

/// Which field of a sample each driver and each ring column is: one mapping,
/// so what the detector reads from the latest sample and what it reads from
/// the ring are the same number.
struct GrowthDriverTests {
    static let sample = Sample(
        timestampMilliseconds: 1_795_600_000_000,
        meminfo: Meminfo(fields: [.init(name: "Slab", value: 7 << 20, isBytes: true),
                                  .init(name: "SReclaimable", value: 3 << 20, isBytes: true),
                                  .init(name: "SUnreclaim", value: 4 << 20, isBytes: true)]),
        inodes: InodeCounts(inodes: 11, freeInodes: 1),
        dentries: DentryCounts(dentries: 13, unusedDentries: 2, negativeDentries: 19),
        fileHandles: FileHandleCounts(allocated: 17, maximum: 100))
        .with {
            $0.sockets = SocketCounts(used: 23)
            $0.tasks = TaskCounts(threads: 29, runnable: 2)
            $0.memoryCgroups = MemoryCgroupCounts(total: 31, live: 10, dying: 21, version: .v1)
        }

    @Test(arguments: GrowthDriver.allCases)
    func driverReadsWhatTheRingStores(driver: GrowthDriver) throws {
        var ring = SampleRing()
        ring.append(Self.sample)
        let value = try #require(driver.value(in: Self.sample))
        if let counter = driver.ringCounter {
            #expect(ring.fine.counter(counter, at: 0).map { Double($0) } == value)
        } else {
            #expect(driver == .time && value == Double(ring.fine.time(at: 0)) / 1000)
        }
    }

    /// Each counter is its own field: 11 inodes, 13 dentries, 17 open files,
    /// the slab totals, 19 negative dentries, 23 sockets (no sock_inode_cache
    /// listed: this namespace's), 29 threads, 31 memory cgroups of which 21 dying.
    @Test func eachCounterIsItsOwnField() {
        #expect(SampleRing.Counter.allCases.map { $0.value(in: Self.sample) } == [11, 13, 17, 7 << 20, 4 << 20, 3 << 20, 19, 23, 29, 31, 21])
        #expect(SlabTrend.Memory.allCases.map { $0.counter.value(in: Self.sample) } == [7 << 20, 4 << 20])
        #expect(Set(GrowthDriver.allCases.compactMap(\.ringCounter)).count == GrowthDriver.allCases.count - 1)
    }

    /// The sockets column is every namespace's count, `sock_inode_cache`'s
    /// objects, where that cache is listed on its own; merged, its objects
    /// are other caches' too, and this namespace's count is what is left.
    @Test func socketsAreTheSocketCachesObjectsUnlessMerged() {
        var sample = Self.sample
        var cache = SlabCache(name: "sock_inode_cache", activeObjects: 2_128, objects: 2_200, objectSize: 832, objectsPerSlab: 19,
                              pagesPerSlab: 4, activeSlabs: 116, slabs: 116, pageSize: 4096)
        sample.caches = [cache]
        #expect(SampleRing.Counter.sockets.value(in: sample) == 2_128)
        cache.aliases = ["some_other_cache"]
        sample.caches = [cache]
        #expect(SampleRing.Counter.sockets.value(in: sample) == 23)
    }
}

extension Sample {
    /// This sample changed by `change`, for a static initialiser.
    func with(_ change: (inout Sample) -> Void) -> Sample {
        var copy = self
        change(&copy)
        return copy
    }
}
