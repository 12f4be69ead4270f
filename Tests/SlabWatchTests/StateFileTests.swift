import Foundation
import Glibc
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// The state file on disk: written whole or not at all, and read with
/// suspicion — every kind of damage is a clear error, kept aside, never a trap.
struct StateFileTests {
    static func state(samples: Int = 30, pageSize: UInt64 = 4096) -> SavedState {
        var ring = SampleRing(configuration: .init(fineCapacity: 60, coarseCapacity: 60, coarseEvery: 12))
        for t in 0..<samples {
            let caches = (0..<50).map {
                SlabCache(name: "cache-\($0)", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64, pagesPerSlab: 1,
                          activeSlabs: 10, slabs: UInt64(10 + $0), pageSize: 4096, reclaimable: false)
            }
            ring.append(Sample(timestampMilliseconds: Int64(t) * 5000, caches: caches))
        }
        return SavedState(metadata: .init(pageSize: pageSize, bootID: "boot-a", version: "test", lastSampleMilliseconds: Int64(samples - 1) * 5000),
                          ring: ring, detector: GrowthDetector().memory, alerts: AlertPolicy().memory)
    }

    @Test func writtenFileReadsBackAndLeavesNoTemporaryFile() throws {
        let directory = try TemporaryDirectory()
        let state = Self.state()
        #expect(try StateFile.write(state, directory: directory.url.path, name: "state") == StateFile.encode(state).count)
        let read = try StateFile.read(directory.path("state"))
        #expect(read.metadata == state.metadata)
        #expect(read.ring.seriesNames == state.ring.seriesNames)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["state"])
        // A second write replaces the first.
        _ = try StateFile.write(Self.state(samples: 31), directory: directory.url.path, name: "state")
        #expect(try StateFile.read(directory.path("state")).ring.fine.count == 31)
    }

    @Test func everyKindOfDamageIsAClearError() throws {
        let good = try StateFile.encode(Self.state())
        func error(_ bytes: [UInt8]) -> StateFile.ReadError? {
            do { _ = try StateFile.decode(bytes); return nil } catch { return error }
        }
        #expect(error(good) == nil)
        #expect(error([]) == .corrupt("0 bytes, shorter than the header"))
        #expect(error(Array(good.prefix(good.count - 1)))?.description.contains("checksum") == true)
        var flipped = good
        flipped[good.count / 2] ^= 0x10
        #expect(error(flipped)?.description.contains("checksum") == true)
        var foreign = good
        foreign[0] = UInt8(ascii: "X")
        #expect(error(foreign) == .corrupt("not a slabwatch state file"))
        var newer = good
        newer[16] = UInt8(SavedState.formatVersion + 1)
        #expect(error(newer) == .newerFormat(SavedState.formatVersion + 1))
        #expect(throws: StateFile.ReadError.missing) { try StateFile.read("/nonexistent/slabwatch/state") }
    }

    /// At defaults the ring is most of the state and compresses well.
    @Test func aFullRingIsSmallOnDisk() throws {
        var ring = SampleRing()
        var state: UInt64 = 9
        for t in 0..<(720 * 12) {
            let caches = (0..<240).map { i -> SlabCache in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let slabs = UInt64(100 + i) + (i % 10 == 0 ? (state >> 60) : 0)  // a tenth wobble
                return SlabCache(name: "cache-\(i)", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64,
                                 pagesPerSlab: 1, activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: false)
            }
            ring.append(Sample(timestampMilliseconds: Int64(t) * 5000, caches: caches))
        }
        let saved = SavedState(metadata: .init(pageSize: 4096, bootID: "", version: "test", lastSampleMilliseconds: 0),
                               ring: ring, detector: GrowthDetector().memory, alerts: AlertPolicy().memory)
        let bytes = try StateFile.encode(saved)
        #expect(bytes.count < ring.storageBytes / 10, "\(bytes.count) bytes on disk for \(ring.storageBytes) in memory")
    }

    /// A file that cannot be used is set aside as state.corrupt (one
    /// generation) and the daemon starts fresh; a missing one is no event.
    @Test func unusableFilesAreSetAsideAndCounted() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        #expect(persistence.load(pageSize: 4096) == nil)
        #expect(persistence.statistics.restore == .none)

        try Data().write(to: directory.url.appendingPathComponent("state"))  // zero-length
        #expect(persistence.load(pageSize: 4096) == nil)
        #expect(persistence.statistics.restore == .discarded)
        #expect(FileManager.default.fileExists(atPath: directory.path("state.corrupt")))
        #expect(!FileManager.default.fileExists(atPath: directory.path("state")))

        // Another machine's page size: set aside too, replacing the older corrupt file.
        _ = try StateFile.write(Self.state(pageSize: 65536), directory: directory.url.path, name: "state")
        #expect(persistence.load(pageSize: 4096) == nil)
        #expect(try Data(contentsOf: directory.url.appendingPathComponent("state.corrupt")).count > 0)

        _ = try StateFile.write(Self.state(), directory: directory.url.path, name: "state")
        #expect(persistence.load(pageSize: 4096)?.metadata.bootID == "boot-a")
    }

    /// A directory that cannot be made or written: persistence turns off,
    /// checkpoints are skipped, and the metric says so.
    @Test func unusableDirectoryTurnsPersistenceOff() throws {
        let directory = try TemporaryDirectory()
        try Data("a file".utf8).write(to: directory.url.appendingPathComponent("file"))
        var settings = PersistenceSettings()
        settings.directory = directory.path("file/state")  // under a regular file
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        #expect(persistence.statistics.enabled)
        #expect(persistence.load(pageSize: 4096) == nil)
        #expect(!persistence.statistics.enabled)
        #expect(!persistence.isDue(now: 0))
        persistence.checkpointNow(Self.state())
        #expect(persistence.statistics.checkpointsWritten == 0 && persistence.statistics.checkpointsFailed == 0)
    }

    /// A directory that goes away after start (a full or read-only disk acts
    /// alike): each failed checkpoint is counted, the last good one stays the
    /// last, persistence stays on to retry, and the next success writes again.
    @Test func failingCheckpointsAreCountedAndRetried() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.path("state-dir")
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        _ = persistence.load(pageSize: 4096)  // makes the directory
        persistence.checkpointNow(Self.state())
        let good = try #require(persistence.statistics.lastCheckpointSeconds)
        try FileManager.default.removeItem(atPath: settings.directory)
        persistence.checkpointNow(Self.state())
        persistence.checkpointNow(Self.state())
        #expect(persistence.statistics.checkpointsFailed == 2)
        #expect(persistence.statistics.checkpointsWritten == 1)
        #expect(persistence.statistics.lastCheckpointSeconds == good)
        #expect(persistence.statistics.enabled)
        try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: false)
        persistence.checkpointNow(Self.state())
        #expect(persistence.statistics.checkpointsWritten == 2)
    }

    /// Checkpoints are written off the caller's thread, at most one at a time,
    /// every interval of sample time.
    @Test func checkpointsFollowTheInterval() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        settings.checkpointIntervalSeconds = 60
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        _ = persistence.load(pageSize: 4096)
        #expect(persistence.isDue(now: 1_000_000))
        persistence.checkpoint(Self.state(), now: 1_000_000)
        persistence.checkpointNow(Self.state(samples: 2))  // waits for the one under way, then writes
        #expect(persistence.statistics.checkpointsWritten == 2)
        #expect(!persistence.isDue(now: 1_000_000 + 59_000))
        #expect(persistence.isDue(now: 1_000_000 + 60_000))
        #expect(try StateFile.read(directory.path("state")).ring.fine.count == 2)
        #expect(persistence.statistics.lastCheckpointBytes > 0)
    }
}
