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
/// The directory is locked (`flock` on `lock`, held until exit, as Prometheus
/// locks its data directory): a second daemon pointed at it runs without
/// persistence and says which process holds it, instead of restoring the
/// first one's findings and overwriting its file.
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
    /// The open `lock` file while this daemon holds the directory, else -1.
    private let lockDescriptor = Mutex<Int32>(-1)
    static let lockFileName = "lock"

    init(settings: PersistenceSettings, logger: Logger) {
        directory = settings.directory
        intervalSeconds = settings.checkpointIntervalSeconds
        self.logger = logger
        var initial = PersistenceStatistics()
        initial.enabled = !directory.isEmpty
        status = Mutex(initial)
    }

    deinit {
        let fd = lockDescriptor.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    var statistics: PersistenceStatistics { status.withLock { $0 } }
    private var path: String { "\(directory)/\(Self.fileName)" }
    private var isEnabled: Bool { status.withLock { $0.enabled } }

    /// What a saved state must describe to be continued from here.
    struct Source: Sendable, Equatable {
        var pageSize: UInt64
        /// `sampler.procfs`: state recorded from another root is another machine's.
        var procfs = "/proc"
        /// The running ring's geometry, which bounds how large a state can be.
        var ring = SampleRing.Configuration()
    }

    /// The saved state, if there is one to continue from. A file that cannot be
    /// used — damaged, its values out of range (times beyond `now`, counters
    /// the ring cannot reach), or recorded for another source — is renamed
    /// `state.corrupt` (replacing an older one) with one warning, so no file
    /// can fail more than one start; a missing one starts fresh silently.
    func load(_ source: Source, now: Int64 = Clock.wallMilliseconds()) -> SavedState? {
        guard isEnabled else { return nil }
        guard prepareDirectory(), lockDirectory() else { return nil }
        unlink("\(directory)/.\(Self.fileName).tmp")  // half a write from a run killed mid-checkpoint
        defer { malloc_trim(0) }  // the file and its decompressed content are large and now free
        do throws(StateFile.ReadError) {
            let state = try StateFile.read(path, limit: StateFile.maximumContentBytes(for: source.ring))
            guard state.metadata.pageSize == source.pageSize else {
                throw .corrupt("written on a machine with \(state.metadata.pageSize)-byte pages, this one has \(source.pageSize)")
            }
            guard Self.sameRoot(state.metadata.procfs, source.procfs) else {
                throw .foreign("recorded from procfs \(state.metadata.procfs), this daemon reads \(source.procfs)")
            }
            do { try state.checkTimes(now: now) } catch { throw .corrupt("\(error)") }
            return state
        } catch .missing {
            return nil
        } catch {
            let kept = "\(path).corrupt"
            let moved = rename(path, kept) == 0
            let message: Logger.Message = if case .foreign = error {
                "state file describes another source; set aside, starting fresh"
            } else {
                "state file not used; starting fresh"
            }
            logger.warning(message, metadata: ["file": "\(path)", "error": "\(error)", "kept_as": "\(moved ? kept : "-")"])
            status.withLock { $0.restore = .discarded }
            return nil
        }
    }

    /// Whether two procfs roots name the same directory as written (`/proc/` is `/proc`).
    static func sameRoot(_ a: String, _ b: String) -> Bool {
        func trimmed(_ path: String) -> Substring {
            var path = Substring(path)
            while path.count > 1 && path.hasSuffix("/") { path = path.dropLast() }
            return path
        }
        return trimmed(a) == trimmed(b)
    }

    /// The saved state for this machine's page size and the default procfs root (tests).
    func load(pageSize: UInt64) -> SavedState? { load(Source(pageSize: pageSize)) }

    /// Takes the directory's lock for as long as this daemon runs. When
    /// another process holds it, persistence turns off with one warning that
    /// names that process (it writes its pid into the lock file).
    private func lockDirectory() -> Bool {
        lockDescriptor.withLock { held in
            if held >= 0 { return true }
            let lockPath = "\(directory)/\(Self.lockFileName)"
            // Non-blocking and checked with fstat: a FIFO in its place must not hang the start.
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0o600)
            var info = stat()
            var why: String?
            var heldByAnother = false
            if fd < 0 {
                why = "open \(lockPath): \(String(cString: strerror(errno)))"
            } else if fstat(fd, &info) != 0 || info.st_mode & S_IFMT != S_IFREG {
                why = "\(lockPath) is not a regular file"
            } else if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let error = errno
                let holder = Self.holder(fd)
                heldByAnother = error == EWOULDBLOCK
                why = heldByAnother
                    ? "locked by another slabwatch (pid \(holder ?? "unknown")) using the same state.directory"
                    : "flock \(lockPath): \(String(cString: strerror(error)))"
            }
            if let why {
                if fd >= 0 { close(fd) }
                let message: Logger.Message = heldByAnother
                    ? "state directory in use; running without persistence"
                    : "state directory cannot be locked; running without persistence"
                logger.warning(message, metadata: ["directory": "\(directory)", "error": "\(why)"])
                status.withLock { $0.enabled = false }
                return false
            }
            let pid = Array("\(getpid())\n".utf8)
            if ftruncate(fd, 0) == 0 { _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
            held = fd
            return true
        }
    }

    /// The pid the lock's holder wrote, if it reads as one.
    private static func holder(_ fd: Int32) -> String? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = bytes[0..<n].prefix { $0 != UInt8(ascii: "\n") }
        guard !text.isEmpty, text.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    func restored(_ restore: PersistenceStatistics.Restore) { status.withLock { $0.restore = restore } }

    /// Whether a checkpoint is due at sample time `now` (Unix milliseconds).
    func isDue(now: Int64) -> Bool {
        guard isEnabled, !writing.load(ordering: .relaxed) else { return false }
        let last = lastCheckpointAt.load(ordering: .relaxed)
        return last == .min || Double(elapsedMilliseconds(now, since: last)) / 1000 >= intervalSeconds
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
    private final class HandOver: @unchecked Sendable {  // `state`: set at init, taken once on the writer's queue
        private var state: SavedState?
        init(_ state: SavedState) { self.state = state }
        func take() -> SavedState {
            defer { state = nil }
            return state!
        }
    }

    /// Writes `state` now, after any write under way (clean stop), waiting at
    /// most `timeout` seconds: a write stuck in the kernel (a hung disk) must
    /// not keep the daemon from exiting. Returns false when it gave up waiting.
    @discardableResult
    func checkpointNow(_ state: SavedState, timeout: Double = 10) -> Bool {
        guard isEnabled else { return true }
        let done = DispatchSemaphore(value: 0)
        let handOver = HandOver(state)
        queue.async { [self] in
            write(handOver.take())
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else {
            status.withLock { $0.checkpointsFailed += 1 }
            logger.warning("state checkpoint still being written at shutdown; exiting without it", metadata: [
                "directory": "\(directory)", "waited": "\(timeout)s"])
            return false
        }
        return true
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
