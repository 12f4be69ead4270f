import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// A state file written by an earlier slabwatch must still load: the file in
/// Tests/Fixtures/state/ was written once, and is never rewritten by a change
/// that keeps `SavedState.formatVersion` (its README says how it was made).
/// Reordering `StateNode`'s tags, renaming a coding key or changing how a
/// column is laid out fails here instead of losing every node's history at
/// the next upgrade.
struct StateFixtureTests {
    static let fixture = RepositoryPaths.fixtures.appendingPathComponent("state/state-format-2")

    /// Ten minutes of a machine where kmalloc-32 holds 512 bytes per tmpfs
    /// inode while ext4's inodes come and go: the ring has inode-cache
    /// columns, the detector an open finding driven by shmem_inode_cache with
    /// an attribution, and the alert policy remembers the alerts it sent.
    static func busyState() throws -> SavedState {
        let start: Int64 = 1_795_600_000_000  // 2026-11-26T06:13:20Z
        var ring = SampleRing(configuration: .init(fineCapacity: 180, coarseCapacity: 60, coarseEvery: 12))
        var detector = GrowthDetector()
        var policy = AlertPolicy()
        var noise: UInt64 = 5
        for step in 0..<120 {
            let tmpfsInodes = 2_000 + Double(max(0, step - 20)) * 2_000
            let ext4Inodes = 60_000 + 15_000 * Self.noise(&noise)
            let kmalloc32 = 100e6 + 512 * tmpfsInodes + 1e6 * Self.noise(&noise)
            let caches = [
                Self.cache("ext4_inode_cache", objects: ext4Inodes, objectSize: 1128, perSlab: 29, pages: 8, reclaimable: true),
                Self.cache("shmem_inode_cache", objects: tmpfsInodes, objectSize: 752, perSlab: 21, pages: 4, reclaimable: false),
                Self.cache("kmalloc-32", objects: kmalloc32 / 32, objectSize: 32, perSlab: 128, pages: 1, reclaimable: false),
                Self.cache("dentry", objects: 1.1 * (ext4Inodes + tmpfsInodes), objectSize: 192, perSlab: 21, pages: 1, reclaimable: true),
            ]
            let inodes = ext4Inodes + tmpfsInodes + 20_000
            let sample = Sample(
                timestampMilliseconds: start + Int64(step) * 5000, caches: caches,
                inodes: InodeCounts(inodes: UInt64(inodes), freeInodes: 0),
                dentries: DentryCounts(dentries: UInt64(1.1 * inodes), unusedDentries: 0),
                fileHandles: FileHandleCounts(allocated: 2000, maximum: 1 << 20))
            ring.append(sample)
            let report = detector.evaluate(ring, latest: sample)
            _ = policy.alerts(for: report, now: sample.timestampMilliseconds)
        }
        let now = start + 119 * 5000
        let event = detector.attach(Self.attribution(endedMilliseconds: now), now: now)
        let attributed = try #require(event)
        _ = policy.alerts(for: [attributed], now: now)
        return SavedState(metadata: .init(pageSize: 4096, bootID: "6f1c9a52-3d0e-4b8f-9a7e-2c5d8e1f4a30", procfs: "/proc",
                                          version: "0.1.0", lastSampleMilliseconds: now),
                          ring: ring, detector: detector.memory, alerts: policy.memory)
    }

    /// A small deterministic generator, uniform in -1...1.
    static func noise(_ state: inout UInt64) -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }

    static func cache(_ name: String, objects: Double, objectSize: UInt64, perSlab: UInt64, pages: UInt64, reclaimable: Bool) -> SlabCache {
        let active = UInt64(max(0, objects).rounded())
        let slabs = (active + perSlab - 1) / perSlab
        return SlabCache(name: name, activeObjects: active, objects: slabs * perSlab, objectSize: objectSize, objectsPerSlab: perSlab,
                         pagesPerSlab: pages, activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: reclaimable)
    }

    static func attribution(endedMilliseconds: Int64) -> Attribution {
        Attribution(
            cache: "kmalloc-32", source: .trace,
            callSites: Attribution.ranked([
                .init(function: "shmem_attach_meta+0x2a", module: "mystor", allocations: 9_900, frees: 0, netCount: 9_900,
                      netBytes: 316_800, share: 0,
                      stacks: [.init(frames: ["shmem_attach_meta+0x2a [mystor]", "shmem_get_inode+0x11"], allocations: 9_900, net: 9_900)]),
                .init(function: "seq_open+0x3f", module: nil, allocations: 500, frees: 490, netCount: 10, netBytes: 320, share: 0,
                      stacks: []),
            ]),
            events: 20_400, dropped: 0, windowSeconds: 10, stopReason: .duration, endedMilliseconds: endedMilliseconds)
    }

    /// Writes the fixture; run once, by hand, only when the format version is raised:
    /// `SLABWATCH_WRITE_STATE_FIXTURE=1 swift test --filter StateFixtureTests`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SLABWATCH_WRITE_STATE_FIXTURE"] == "1"))
    func writeFixture() throws {
        let bytes = try StateFile.encode(Self.busyState())
        try Data(bytes).write(to: Self.fixture)
    }

    @Test func stateWrittenByFormatTwoLoadsWithItsContents() throws {
        let state = try StateFile.read(Self.fixture.path)
        #expect(state.metadata == .init(pageSize: 4096, bootID: "6f1c9a52-3d0e-4b8f-9a7e-2c5d8e1f4a30", procfs: "/proc",
                                        version: "0.1.0", lastSampleMilliseconds: 1_795_600_595_000))
        // The ring: both tiers, every series, the inode-cache columns with their counts.
        let ring = state.ring
        #expect(ring.fine.count == 120 && ring.coarse.count == 10)
        #expect(Set(ring.seriesNames) == ["ext4_inode_cache", "shmem_inode_cache", "kmalloc-32", "dentry"])
        #expect(Set(ring.inodeCacheNames) == ["ext4_inode_cache", "shmem_inode_cache"])
        let shmem = try #require(ring.inodeCacheColumn(named: "shmem_inode_cache"))
        #expect(ring.fine.inodeObjects(column: shmem, at: ring.fine.count - 1) == 200_000)
        #expect(ring.fine.time(at: 0) == 1_795_600_000_000)
        let kmalloc = try #require(ring.series(named: "kmalloc-32"))
        #expect(try #require(ring.fine.footprint(series: kmalloc, at: ring.fine.count - 1)) > 100_000_000)
        // The finding: kmalloc-32 per tmpfs inode, open, attributed.
        let finding = try #require(state.detector.openFindings.first { $0.slab == "kmalloc-32" })
        #expect(finding.driver == .inodes && finding.inodeCache == "shmem_inode_cache")
        #expect(abs(finding.bytesPerUnit - 512) < 16)
        #expect(finding.attribution == Self.attribution(endedMilliseconds: 1_795_600_595_000))
        // The alert policy remembers the alerts it sent (a fresh one remembers none).
        #expect(state.alerts != AlertPolicy().memory)
    }

    /// Written again, the fixture's values read back the same: decoding it
    /// lost nothing the encoder writes.
    @Test func fixtureSurvivesAnotherRoundTrip() throws {
        let fixture = try StateFile.read(Self.fixture.path)
        let again = try StateFile.decode(StateFile.encode(fixture))
        #expect(try again.serialized() == fixture.serialized())
        #expect(again.detector == fixture.detector && again.alerts == fixture.alerts)
    }
}
