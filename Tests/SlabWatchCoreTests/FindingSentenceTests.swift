import Testing
@testable import SlabWatchCore

/// What a finding says, per driver and per phase.
struct FindingSentenceTests {
    static func finding(_ driver: GrowthDriver, growth: Double = 3.1 * 1024 * 1024 * 1024, window: Double = 600) -> Finding {
        let fit = Finding.RiseFit(
            bytesPerUnit: 4096, rSquared: 0.99, windowSeconds: window, growthBytes: growth, driverChange: 800_000,
            fits: [], points: [], footprintFloor: 100_000_000, driverFloor: 1000, driverPeak: 801_000,
            driverPeakAt: 0, footprintAtDriverPeak: 3_500_000_000)
        let cache = SlabCache(name: "filp", activeObjects: 1, objects: 1, objectSize: 256, objectsPerSlab: 16,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 3_500_000_000 / 4096, pageSize: 4096, reclaimable: false)
        return Finding(slab: "filp", driver: driver, fit: fit, cache: cache, now: 0, settings: .init())
    }

    @Test(arguments: [
        (GrowthDriver.inodes, "echo 2 > /proc/sys/vm/drop_caches"),
        (.dentries, "/proc/sys/fs/dentry-state"),
        (.openFiles, "/proc/*/fd"),
        (.time, "check for a leak"),
    ])
    func nextStepFitsTheDriver(_ driver: GrowthDriver, _ advice: String) {
        let message = Self.finding(driver).message
        #expect(message.contains(advice), "\(message)")
        if driver == .openFiles { #expect(!message.contains("drop_caches")) }  // it closes no file
    }

    @Test(arguments: [("shmem_inode_cache", "tmpfs inodes go only when their files are deleted"),
                      ("mystor_inode_cache", "echo 2 > /proc/sys/vm/drop_caches")])
    func anInodeCacheDriverIsNamedWithItsNextStep(_ cache: String, _ advice: String) {
        var f = Self.finding(.inodes)
        f.inodeCache = cache
        #expect(f.message.hasPrefix("filp grows 4.0 KiB per cached inode of \(cache) (R² 0.990"), "\(f.message)")
        #expect(f.message.contains("while \(cache) inodes rose by 800,000"))
        #expect(f.message.contains(advice), "\(f.message)")
    }

    /// A restored finding may hold any times: a state file once trapped the
    /// daemon on its first /snapshot with `lastSeen − lastRise` overflowing.
    @Test(arguments: [Finding.Phase.holding, .rising, .falling])
    func extremeRestoredTimesSaturate(_ phase: Finding.Phase) {
        var f = Self.finding(.inodes)
        f.phase = phase
        f.lastSeenMilliseconds = .max
        f.lastRiseMilliseconds = .min
        #expect(!f.message.isEmpty)
        f.state = .resolved
        f.resolution = .stoppedGrowing
        f.lastSeenMilliseconds = .min
        f.lastRiseMilliseconds = .max
        #expect(f.message.contains("It stopped growing"))
    }

    @Test func bytesPerSecondHasTheSignOfTheGrowth() {
        let f = Self.finding(.inodes)
        #expect(f.bytesPerSecond > 0)
        #expect(abs(f.bytesPerSecond - f.growthBytes / 600) < 1)
        #expect(Self.finding(.inodes, growth: -1e9).bytesPerSecond < 0)
    }

    @Test func phasesAreSaid() {
        var f = Self.finding(.inodes)
        #expect(f.message.contains("Still growing: holds 3.2 GiB more than before the rise."), "\(f.message)")
        let cache = SlabCache(name: "filp", activeObjects: 1, objects: 1, objectSize: 256, objectsPerSlab: 16,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 3_500_000_000 / 4096, pageSize: 4096, reclaimable: false)
        f.follow(cache, driverValue: 801_000, now: 7_800_000, settings: .init())  // 2 h 10 min later, unchanged
        #expect(f.phase == .holding)
        #expect(f.message.contains("Stopped growing 2 h 10 min ago and still holds 3.2 GiB."), "\(f.message)")
    }

    @Test func openFilesThatCloseAreNotEvicted() {
        var f = Self.finding(.openFiles)
        f.classification = .tracksEviction
        #expect(f.message.hasSuffix("It fell with the open file count when open files were closed: memory attached to open files, not a leak."))
    }

    @Test func evidenceTrailStaysBoundedHoweverLongTheFall() {
        var trail = EvidenceTrail(capacity: 20)
        for i in 0..<100_000 {
            trail.append(.init(timestampMilliseconds: Int64(i), driver: Double(i), footprintBytes: 0, segment: .fall))
        }
        #expect(trail.all.count <= 20)
        #expect(trail.all.first?.timestampMilliseconds == 0)  // the driver's peak stays
        #expect(trail.all.last?.timestampMilliseconds == 99_999)  // and the newest point is shown
        #expect(EvidenceTrail.spread(Array(0..<61), to: 60).count == 60)
        #expect(EvidenceTrail.spread(Array(0..<61), to: 60).last == 60)
    }

    @Test(arguments: [(0.0, "0 s"), (59.0, "59 s"), (119.0, "119 s"), (120.0, "2 min"), (7199.0, "119 min"),
                       (7200.0, "2 h"), (7800.0, "2 h 10 min"), (86_400.0 * 3 + 3600, "3 d 1 h")] as [(Double, String)])
    func elapsedReadsLikeAPerson(_ seconds: Double, _ expected: String) {
        #expect(Human.elapsed(seconds) == expected)
    }
}
