import CMalloc
import Dispatch
import Glibc
import Logging
import SlabWatchCore
import Synchronization

/// `state.*`: where the daemon keeps what survives a restart, and how often.
public struct PersistenceSettings: Sendable, Equatable {
    /// Empty: no persistence. The unit's `StateDirectory=slabwatch` makes this one.
    public var directory = "/var/lib/slabwatch"
    public var checkpointIntervalSeconds = 60.0

    public init() {}
}

/// Keeps the daemon's state in `state.directory` across restarts.
///
/// Checkpoints are encoded, compressed and written on a queue of their own
/// from a snapshot the sampler hands over, so a tick never waits for the
/// disk; a checkpoint due while the previous one is still being written is
/// skipped. A directory that cannot be written turns persistence off with
/// one warning; the daemon runs on without it.
final class StatePersistence: Sendable {
    static let fileName = "state"

    let directory: String
    let intervalSeconds: Double
    private let logger: Logger
    private let queue = DispatchQueue(label: "slabwatch.state", qos: .utility)
    private let writing = Atomic<Bool>(false)
    private let status: Mutex<PersistenceStatistics>
    private let lastCheckpointAt = Atomic<Int64>(.min)
    private let failing = Atomic<Bool>(false)

    init(settings: PersistenceSettings, logger: Logger) {
        directory = settings.directory
        intervalSeconds = settings.checkpointIntervalSeconds
        self.logger = logger
        var initial = PersistenceStatistics()
        initial.enabled = !directory.isEmpty
        status = Mutex(initial)
    }

    var statistics: PersistenceStatistics { status.withLock { $0 } }
    private var path: String { "\(directory)/\(Self.fileName)" }
    private var isEnabled: Bool { status.withLock { $0.enabled } }

    /// The saved state, if there is one to continue from. A file that cannot be
    /// used is renamed `state.corrupt` (replacing an older one) with one
    /// warning; a missing one starts fresh silently.
    func load(pageSize: UInt64) -> SavedState? {
        guard isEnabled else { return nil }
        guard prepareDirectory() else { return nil }
        unlink("\(directory)/.\(Self.fileName).tmp")  // half a write from a run killed mid-checkpoint
        defer { malloc_trim(0) }  // the file and its decompressed content are large and now free
        do throws(StateFile.ReadError) {
            let state = try StateFile.read(path)
            guard state.metadata.pageSize == pageSize else {
                throw .corrupt("written on a machine with \(state.metadata.pageSize)-byte pages, this one has \(pageSize)")
            }
            return state
        } catch .missing {
            return nil
        } catch {
            let kept = "\(path).corrupt"
            let moved = rename(path, kept) == 0
            logger.warning("state file not used; starting fresh", metadata: [
                "file": "\(path)", "error": "\(error)", "kept_as": "\(moved ? kept : "-")"])
            status.withLock { $0.restore = .discarded }
            return nil
        }
    }

    func restored(_ restore: PersistenceStatistics.Restore) { status.withLock { $0.restore = restore } }

    /// Whether a checkpoint is due at sample time `now` (Unix milliseconds).
    func isDue(now: Int64) -> Bool {
        guard isEnabled, !writing.load(ordering: .relaxed) else { return false }
        let last = lastCheckpointAt.load(ordering: .relaxed)
        return last == .min || Double(now - last) / 1000 >= intervalSeconds
    }

    /// Writes `state` on the persistence queue; returns at once. Skipped when a
    /// write is still under way.
    func checkpoint(_ state: SavedState, now: Int64) {
        guard isEnabled, writing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        lastCheckpointAt.store(now, ordering: .relaxed)
        let handOver = HandOver(state)
        queue.async { [self] in
            write(handOver.take())
            // The state (the ring's old buffers, once the sampler has copied
            // on its next append) is released by now: give the pages back.
            malloc_trim(0)
            writing.store(false, ordering: .releasing)
        }
    }

    /// Holds the state until the writer takes it, so nothing keeps it alive after the write.
    private final class HandOver: @unchecked Sendable {
        private var state: SavedState?
        init(_ state: SavedState) { self.state = state }
        func take() -> SavedState {
            defer { state = nil }
            return state!
        }
    }

    /// Writes `state` now, after any write under way (clean stop).
    func checkpointNow(_ state: SavedState) {
        guard isEnabled else { return }
        queue.sync { write(state) }
    }

    private func write(_ state: consuming SavedState) {
        let started = Clock.monotonicNanoseconds()
        do {
            let size = try StateFile.write(state, directory: directory, name: Self.fileName)
            let seconds = Double(Clock.monotonicNanoseconds() - started) / 1e9
            status.withLock {
                $0.checkpointsWritten += 1
                $0.lastCheckpointSeconds = Double(Clock.wallMilliseconds()) / 1000
                $0.lastCheckpointBytes = size
                $0.lastCheckpointDurationSeconds = seconds
            }
        } catch {
            status.withLock { $0.checkpointsFailed += 1 }
            // Said once, and again only after a success in between: a full
            // disk must not fill the log with the same line every minute.
            if !failing.exchange(true, ordering: .relaxed) {
                logger.warning("state checkpoint failed; will retry", metadata: ["directory": "\(directory)", "error": "\(error)"])
            }
            return
        }
        if failing.exchange(false, ordering: .relaxed) { logger.info("state checkpoint written again", metadata: ["directory": "\(directory)"]) }
    }

    /// Creates the directory (one level, mode 0700) when missing; when it
    /// cannot be used, persistence is turned off with one warning.
    private func prepareDirectory() -> Bool {
        var info = stat()
        if stat(directory, &info) != 0 && errno == ENOENT { _ = mkdir(directory, 0o700) }
        var why: String?
        if stat(directory, &info) != 0 {
            why = String(cString: strerror(errno))
        } else if info.st_mode & S_IFMT != S_IFDIR {
            why = "not a directory"
        } else if access(directory, W_OK | X_OK) != 0 {
            why = String(cString: strerror(errno))
        }
        let usable = why == nil
        if let why {
            logger.warning("state directory not usable; running without persistence", metadata: [
                "directory": "\(directory)", "error": "\(why)"])
            status.withLock { $0.enabled = false }
        }
        return usable
    }
}
