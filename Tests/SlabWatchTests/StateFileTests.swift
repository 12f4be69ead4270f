import Foundation
import Glibc
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// The state file on disk: written whole or not at all, and read with
/// suspicion — every kind of damage is a clear error, kept aside, never a trap.
struct StateFileTests {
    /// 2026-11-26: the state's times must lie between 2000 and a day from now to be restored.
    static let start: Int64 = 1_795_600_000_000

    static func state(samples: Int = 30, pageSize: UInt64 = 4096, procfs: String = "/proc") -> SavedState {
        var ring = SampleRing(configuration: .init(fineCapacity: 60, coarseCapacity: 60, coarseEvery: 12))
        for t in 0..<samples {
            let caches = (0..<50).map {
                SlabCache(name: "cache-\($0)", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64, pagesPerSlab: 1,
                          activeSlabs: 10, slabs: UInt64(10 + $0), pageSize: 4096, reclaimable: false)
            }
            ring.append(Sample(timestampMilliseconds: start + Int64(t) * 5000, caches: caches))
        }
        return SavedState(metadata: .init(pageSize: pageSize, bootID: "boot-a", procfs: procfs, version: "test",
                                          lastSampleMilliseconds: start + Int64(samples - 1) * 5000),
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
        // What the file holds unpacked: each slot's time, counters and 256 footprints.
        let raw = 1440 * (8 + SampleRing.Counter.allCases.count * 8 + 256 * 4)
        #expect(bytes.count < raw / 10, "\(bytes.count) bytes on disk for \(raw) unpacked")
    }

    /// A file that cannot be used is set aside as state.corrupt (one
    /// generation) and the daemon starts fresh; a missing one is no event.
    @Test func unusableFilesAreSetAsideAndCounted() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        #expect(persistence.load(pageSize: 4096)?.metadata == nil)
        #expect(persistence.statistics.restore == .none)

        try Data().write(to: directory.url.appendingPathComponent("state"))  // zero-length
        #expect(persistence.load(pageSize: 4096)?.metadata == nil)
        #expect(persistence.statistics.restore == .discarded)
        #expect(FileManager.default.fileExists(atPath: directory.path("state.corrupt")))
        #expect(!FileManager.default.fileExists(atPath: directory.path("state")))

        // Another machine's page size: set aside too, replacing the older corrupt file.
        _ = try StateFile.write(Self.state(pageSize: 65536), directory: directory.url.path, name: "state")
        #expect(persistence.load(pageSize: 4096)?.metadata == nil)
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
        #expect(persistence.load(pageSize: 4096)?.metadata == nil)
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

    // MARK: hostile files (value ranges, claimed lengths, FIFOs, a second daemon)

    /// Values that pass the checksum but would trap the first tick after a
    /// restore, each as the hostile tester wrote it.
    enum Extreme: String, CaseIterable, Sendable {
        case lastSampleAtInt64Max, fineTimeAtInt64Min, appendedAtInt64Max, sampleAYearAhead, sampleBefore2000
        case timesOutOfOrder, coarseEveryZero, lastSeenAtIntMin, appendsDisagreeWithTheTier

        func apply(to state: inout [String: StateNode]) {
            switch self {
            case .lastSampleAtInt64Max: state[path: ["metadata", "lastSampleMilliseconds"]] = .integer(.max)
            case .fineTimeAtInt64Min: state.changeFineTimes { $0[0] = .min }
            case .appendedAtInt64Max: state[path: ["ring", "appended"]] = .integer(.max)
            case .sampleAYearAhead:
                let ahead = Clock.wallMilliseconds() + 365 * 86_400_000
                state.changeFineTimes { $0[29] = ahead }
                state[path: ["metadata", "lastSampleMilliseconds"]] = .integer(ahead)
            case .sampleBefore2000: state.changeFineTimes { $0[0] = 1000 }
            case .timesOutOfOrder: state.changeFineTimes { $0.swapAt(3, 4) }
            case .coarseEveryZero: state[path: ["ring", "configuration", "coarseEvery"]] = .integer(0)
            case .lastSeenAtIntMin: state[path: ["ring", "lastSeen"]] = .array(Array(repeating: .integer(.min), count: 50))
            case .appendsDisagreeWithTheTier: state[path: ["ring", "appended"]] = .integer(7)
            }
        }
    }

    /// Each is set aside as state.corrupt at the first start, so the next
    /// start finds nothing to fail on: no file causes more than one failed start.
    @Test(arguments: Extreme.allCases)
    func extremeValuesAreSetAsideNotRestored(_ extreme: Extreme) throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        guard case .object(var members) = try StateEncoder.encode(Self.state()) else { Issue.record("not an object"); return }
        let file = directory.path("state")
        // Unchanged, the same content is restored: what follows tests the change alone.
        try Data(StateFile.encode(content: StateNode.object(members).serialized())).write(to: URL(fileURLWithPath: file))
        #expect(StatePersistence(settings: settings, logger: quietLogger).load(pageSize: 4096) != nil)

        extreme.apply(to: &members)
        try Data(StateFile.encode(content: StateNode.object(members).serialized())).write(to: URL(fileURLWithPath: file))
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        #expect(persistence.load(pageSize: 4096)?.metadata == nil)
        #expect(persistence.statistics.restore == .discarded)
        #expect(FileManager.default.fileExists(atPath: directory.path("state.corrupt")))
        #expect(!FileManager.default.fileExists(atPath: file), "the next start must not meet it again")
    }

    /// A 5.8 KB file whose header claims 1 GiB of content is refused before
    /// anything is allocated for it (deflate cannot expand 1032-fold), and so
    /// is a claim beyond what the running ring's geometry can hold.
    @Test func claimedLengthsAreCheckedBeforeAllocating() throws {
        var random: UInt64 = 5
        let noise = (0..<100_000).map { _ -> UInt8 in
            random = random &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: random >> 33)
        }
        func claiming(_ length: UInt64, content: [UInt8]) throws -> [UInt8] {
            var file = try StateFile.encode(content: content)
            withUnsafeBytes(of: length.littleEndian) { file.replaceSubrange(24..<32, with: $0) }  // outside the CRC
            return file
        }
        func error(_ file: [UInt8], limit: UInt64 = StateFile.maximumContentBytes) -> String {
            do { _ = try StateFile.decode(file, limit: limit); return "decoded" } catch { return error.description }
        }
        let small = try claiming(1 << 30, content: Array(noise.prefix(5800)))
        #expect(error(small).contains("deflate expands at most 1032-fold"), "\(error(small))")

        let tinyRing = SampleRing.Configuration(fineCapacity: 2, coarseCapacity: 2, coarseEvery: 1, maxSeries: 1)
        let limit = StateFile.maximumContentBytes(for: tinyRing)
        #expect(limit < 80 << 20)
        let large = try claiming(80 << 20, content: noise)
        #expect(error(large, limit: limit).contains("more than a ring of this configuration holds"), "\(error(large, limit: limit))")
        // The default ring's state is far below its bound.
        #expect(UInt64(try Self.state().serialized().count) < StateFile.maximumContentBytes(for: .init()))
    }

    /// A FIFO where the temporary file goes used to block the checkpoint in
    /// open(2) for good (and SIGTERM behind it); now it is replaced.
    @Test func aFIFOInPlaceOfTheTemporaryFileDoesNotBlockACheckpoint() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        _ = persistence.load(pageSize: 4096)
        let fifo = directory.path(".state.tmp")
        #expect(mkfifo(fifo, 0o600) == 0)
        defer {  // release a writer stuck in open(2), so a failure does not hang the run
            let reader = open(fifo, O_RDONLY | O_NONBLOCK)
            if reader >= 0 { close(reader) }
        }
        #expect(persistence.checkpointNow(Self.state(), timeout: 5), "the checkpoint is still blocked")
        #expect(persistence.statistics.checkpointsWritten == 1)
        #expect(try StateFile.read(directory.path("state")).ring.fine.count == 30)
    }

    /// A second daemon on the same directory runs without persistence and
    /// names the first; once the first is gone, the directory is free again.
    @Test func aSecondPersistenceOnTheSameDirectoryIsRefusedTheLock() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        _ = try StateFile.write(Self.state(), directory: directory.url.path, name: "state")
        do {
            let first = StatePersistence(settings: settings, logger: quietLogger)
            #expect(first.load(pageSize: 4096) != nil)
            let lockText = try String(contentsOfFile: directory.path("lock"), encoding: .utf8)
            #expect(lockText == "\(getpid())\n")
            let second = StatePersistence(settings: settings, logger: quietLogger)
            #expect(second.load(pageSize: 4096)?.metadata == nil)
            #expect(!second.statistics.enabled)
            #expect(!second.isDue(now: 0))
            #expect(first.statistics.enabled)
            #expect(FileManager.default.fileExists(atPath: directory.path("state")), "the first one's state is left alone")
        }
        let third = StatePersistence(settings: settings, logger: quietLogger)
        #expect(third.load(pageSize: 4096) != nil)
        #expect(third.statistics.enabled)
    }

    /// State recorded from another procfs root describes another machine
    /// (a fake root, a container's): set aside, not restored.
    @Test func stateFromAnotherProcfsRootIsSetAside() throws {
        let directory = try TemporaryDirectory()
        var settings = PersistenceSettings()
        settings.directory = directory.url.path
        _ = try StateFile.write(Self.state(procfs: "/proc"), directory: directory.url.path, name: "state")
        let persistence = StatePersistence(settings: settings, logger: quietLogger)
        #expect(persistence.load(.init(pageSize: 4096, procfs: "/srv/fake/proc"))?.metadata == nil)
        #expect(persistence.statistics.restore == .discarded)
        #expect(FileManager.default.fileExists(atPath: directory.path("state.corrupt")))
        let kept = try StateFile.read(directory.path("state.corrupt"))
        #expect(kept.metadata.procfs == "/proc")
        // The same root written another way is the same source.
        _ = try StateFile.write(Self.state(procfs: "/proc"), directory: directory.url.path, name: "state")
        #expect(persistence.load(.init(pageSize: 4096, procfs: "/proc/"))?.metadata.procfs == "/proc")
    }
}

extension [String: StateNode] {
    /// The node at a path of object keys (nil when the path does not exist).
    subscript(path path: [String]) -> StateNode? {
        get {
            guard let first = path.first else { return nil }
            guard path.count > 1 else { return self[first] }
            guard case .object(let members) = self[first] else { return nil }
            return members[path: Array(path.dropFirst())]
        }
        set {
            guard let first = path.first else { return }
            guard path.count > 1 else { self[first] = newValue; return }
            guard case .object(var members) = self[first] else { return }
            members[path: Array(path.dropFirst())] = newValue
            self[first] = .object(members)
        }
    }

    /// Rewrites the fine tier's time column (slots in storage order; the test
    /// states have not wrapped, so slot = position).
    mutating func changeFineTimes(_ change: (inout [Int64]) -> Void) {
        guard case .words64(let words) = self[path: ["ring", "fine", "times"]] else { return }
        var times = words.map { Int64(bitPattern: $0) }
        change(&times)
        self[path: ["ring", "fine", "times"]] = .words64(times.map { UInt64(bitPattern: $0) })
    }
}
