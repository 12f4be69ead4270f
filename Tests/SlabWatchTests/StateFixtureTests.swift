import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// A state file written by an earlier slabwatch must still load: the file in
/// Tests/Fixtures/state/ was written once (by `StateStories.busyMachine`), and
/// is never rewritten by a change that keeps `SavedState.formatVersion`.
/// Reordering `StateNode`'s tags, renaming a coding key or changing how a
/// column is laid out fails here instead of losing every node's history at
/// the next upgrade.
struct StateFixtureTests {
    static let fixture = RepositoryPaths.fixtures.appendingPathComponent("state/state-format-2")

    /// The generator's state equals the committed file where it identifies
    /// the state: the metadata; the ring's times, series, footprints and
    /// inode-cache counts; which findings are open, by what and since when
    /// (the detector's rules may change their other details). It fails when
    /// the generator or the decoder drifts. With UPDATE_STATE_FIXTURE=1 it
    /// first writes the current format's file beside this one (`writeFixture`),
    /// which fails while that file exists: raise `SavedState.formatVersion` first.
    @Test func theFixtureIsWhatItsGeneratorMakes() throws {
        let generated = try #require(StateStories.busyMachine(attributedBy: Self.attribution(endedMilliseconds: StateStories.busyMachineEnd)))
        if ProcessInfo.processInfo.environment["UPDATE_STATE_FIXTURE"] == "1" {
            try Self.writeFixture(generated, into: Self.fixture.deletingLastPathComponent())
        }
        let fixture = try StateFile.read(Self.fixture.path)
        #expect(fixture.metadata == generated.metadata)
        let (ring, expected) = (fixture.ring, generated.ring)
        #expect(ring.seriesNames == expected.seriesNames && ring.inodeCacheNames == expected.inodeCacheNames)
        for (tier, expectedTier) in [(ring.fine, expected.fine), (ring.coarse, expected.coarse)] {
            #expect(tier.count == expectedTier.count && tier.count > 0)
            for position in 0..<min(tier.count, expectedTier.count) {
                #expect(tier.time(at: position) == expectedTier.time(at: position))
                for series in expected.seriesNames.indices {
                    #expect(tier.footprint(series: series, at: position) == expectedTier.footprint(series: series, at: position))
                }
                for column in expected.inodeCacheNames.indices {
                    #expect(tier.inodeObjects(column: column, at: position) == expectedTier.inodeObjects(column: column, at: position))
                }
            }
        }
        func identities(_ state: SavedState) -> [String] {
            state.detector.openFindings.map { "\($0.slab) \($0.driver) \($0.inodeCache ?? "-") \($0.firstSeenMilliseconds)" }
        }
        #expect(identities(fixture) == identities(generated) && !identities(generated).isEmpty)
    }

    /// Writes `state` as the fixture of the current `SavedState.formatVersion`
    /// in `directory`, and never over one already there: a fixture keeps the
    /// bytes its version wrote (the format-2 file names no counters, which is
    /// what holds today's reader to such files), so rewriting it in today's
    /// format would test nothing old.
    static func writeFixture(_ state: SavedState, into directory: URL) throws {
        let url = directory.appendingPathComponent("state-format-\(SavedState.formatVersion)")
        guard !FileManager.default.fileExists(atPath: url.path) else {
            throw FileError(path: url.path, call: "write", errno: EEXIST,
                            reason: "a state fixture is written once; raise SavedState.formatVersion for a new one")
        }
        try Data(StateFile.encode(state)).write(to: url, options: .withoutOverwriting)
    }

    /// UPDATE_STATE_FIXTURE=1 adds the current format's file and leaves a
    /// written one as it is (it rewrote the format-2 file in place).
    @Test func updatingNeverRewritesAWrittenFixture() throws {
        let state = try StateFile.read(Self.fixture.path)
        let dir = try TemporaryDirectory()
        try Self.writeFixture(state, into: dir.url)
        let written = dir.url.appendingPathComponent("state-format-\(SavedState.formatVersion)")
        #expect(try StateFile.read(written.path).metadata == state.metadata)

        try Data("written by an earlier version".utf8).write(to: written)
        #expect(throws: FileError.self) { try Self.writeFixture(state, into: dir.url) }
        #expect(try Data(contentsOf: written) == Data("written by an earlier version".utf8))
    }

    /// The busy machine's attribution: a module's call site on tmpfs inodes.
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

    /// The format-2 file was written before negative dentries were counted:
    /// its slots read them as absent and every other counter as written, and
    /// the ring it restores counts them from the next sample on.
    @Test func negativeDentriesAreAbsentFromAnOlderFile() throws {
        var ring = try StateFile.read(Self.fixture.path).ring
        let last = ring.fine.count - 1
        #expect(ring.fine.counter(.dentries, at: last) != nil && ring.fine.counter(.inodes, at: last) != nil)
        #expect((0...last).allSatisfy { ring.fine.counter(.negativeDentries, at: $0) == nil })
        #expect((0..<ring.coarse.count).allSatisfy { ring.coarse.counter(.negativeDentries, at: $0) == nil })
        var next = Sample(timestampMilliseconds: ring.fine.time(at: last) + 5_000)
        next.dentries = DentryCounts(dentries: 90_000, unusedDentries: 80_000, negativeDentries: 70_000)
        ring.append(next)
        #expect(ring.fine.counter(.negativeDentries, at: ring.fine.count - 1) == 70_000)
        #expect(ring.fine.counter(.negativeDentries, at: ring.fine.count - 2) == nil)
        #expect(ring.fine.counter(.dentries, at: ring.fine.count - 2) != nil)
    }

    /// The format-2 file was written before memory cgroups were kept: it
    /// loads with no cgroup history, and a pipeline restored from it keeps
    /// one from the next reading on, which a checkpoint then saves and a
    /// restart restores (on the same boot; another boot's cgroups are gone).
    @Test func cgroupHistoryIsAbsentFromAnOlderFileAndKeptFromThenOn() throws {
        let old = try StateFile.read(Self.fixture.path)
        #expect(old.cgroups == nil)
        var pipeline = Pipeline(settings: .init(ring: old.ring.configuration))
        #expect(pipeline.restore(old, rebootSeenAt: nil).ringKept && pipeline.cgroups.count == 0)
        var next = Sample(timestampMilliseconds: old.metadata.lastSampleMilliseconds + 5_000)
        next.cgroupMemory = CgroupMemory(version: .v1, entries: [.init(path: "/system.slice/foo.service", kernelBytes: 30 << 20)])
        _ = pipeline.step(next)
        #expect(pipeline.cgroups.count == 1)
        let saved = SavedState(try #require(pipeline.latest), pageSize: 4096, bootID: old.metadata.bootID, procfs: "/proc",
                               version: "test", alerts: old.alerts)
        let reread = try StateFile.decode(StateFile.encode(saved))
        #expect(reread.cgroups == pipeline.cgroups)
        var restarted = Pipeline(settings: .init(ring: old.ring.configuration))
        _ = restarted.restore(reread, rebootSeenAt: nil)
        #expect(restarted.cgroups == pipeline.cgroups)
        var rebooted = Pipeline(settings: .init(ring: old.ring.configuration))
        _ = rebooted.restore(reread, rebootSeenAt: next.timestampMilliseconds + 1)
        #expect(rebooted.cgroups.count == 0)
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
