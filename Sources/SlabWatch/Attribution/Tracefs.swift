import Glibc
import Synchronization

/// The kernel's tracefs as one session holds it: a descriptor on its root
/// directory, and every path of the session opened relative to it. An
/// instance in it has its own buffer, events, filters and options, so a
/// session never touches the system's main buffer or another tool's tracing.
///
/// Where tracefs is mounted (`/sys/kernel/tracing`, `/sys/kernel/debug/tracing`),
/// the descriptor holds that mount: nobody's unmount (another session's, an
/// operator's `umount -l`) can take it from under the session. Where it is
/// not, the session makes a mount of its own with the new mount API
/// (`fsopen`, `fsmount`; Linux 5.2): attached nowhere, in no mount table,
/// seen by no other process, and gone when its descriptor closes — when the
/// session ends, and when the process dies however it dies (SIGKILL too).
/// The descriptor closes when the value is released.
public final class Tracefs: Sendable {
    /// Where it is, for messages: a path, or "tracefs (this session's own mount)".
    let root: String
    /// On tracefs's root directory.
    let descriptor: Int32

    /// Why an attribution session could not run — through tracefs or BPF —
    /// in one line: no way to trace here, not permitted, or failed.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unavailable(String)
        case permission(String)
        case failed(String)

        public var description: String {
            switch self {
            case .unavailable(let why), .permission(let why), .failed(let why): why
            }
        }

        /// The same failure (and exit code), with what else went wrong after it.
        func adding(_ more: String) -> Failure {
            switch self {
            case .unavailable(let why): .unavailable("\(why); \(more)")
            case .permission(let why): .permission("\(why); \(more)")
            case .failed(let why): .failed("\(why); \(more)")
            }
        }
    }

    static let candidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]

    private init(root: String, descriptor: Int32) {
        self.root = root
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// tracefs where it is mounted (checked with the effective credentials,
    /// so the capabilities of the attribution drop-in count); else a mount
    /// of the session's own, which needs CAP_SYS_ADMIN.
    static func acquire() throws(Failure) -> Tracefs {
        for root in candidates {
            if faccessat(AT_FDCWD, root + "/instances", F_OK, AT_EACCESS) == 0 {
                let descriptor = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { throw .failed("cannot open \(root): \(String(cString: strerror(errno)))") }
                return Tracefs(root: root, descriptor: descriptor)
            }
            if errno == EACCES {
                throw .permission("tracefs at \(root) is open to root only: run as root (or under systemd with the attribution drop-in)")
            }
        }
        return try privateMount()
    }

    /// A tracefs mount that only this descriptor reaches.
    private static func privateMount() throws(Failure) -> Tracefs {
        let context = fsopen("tracefs", UInt32(FSOPEN_CLOEXEC))
        guard context >= 0 else {
            switch errno {
            case ENODEV: throw .unavailable("no tracefs: this kernel is built without it (CONFIG_TRACING)")
            case EPERM, EACCES:
                throw .permission("tracefs is not mounted, and a mount of the session's own needs CAP_SYS_ADMIN (run as root)")
            case ENOSYS:
                throw .unavailable("tracefs is not mounted, and this kernel (before Linux 5.2) cannot mount it for one process alone: "
                                   + "mount it (mount -t tracefs nodev /sys/kernel/tracing)")
            case let code: throw .unavailable("tracefs is not mounted and could not be mounted: \(String(cString: strerror(code)))")
            }
        }
        defer { close(context) }
        guard fsconfig(context, FSCONFIG_CMD_CREATE.rawValue, nil, nil, 0) == 0 else {
            throw .unavailable("tracefs is not mounted and could not be mounted: \(String(cString: strerror(errno)))")
        }
        let mount = fsmount(context, UInt32(FSMOUNT_CLOEXEC), 0)
        guard mount >= 0 else { throw .unavailable("tracefs is not mounted and could not be mounted: \(String(cString: strerror(errno)))") }
        return Tracefs(root: "tracefs (this session's own mount)", descriptor: mount)
    }

    /// Whether the kernel aggregates in hist triggers (`CONFIG_HIST_TRIGGERS`).
    var hasHistTriggers: Bool { faccessat(descriptor, "events/kmem/kmem_cache_alloc/hist", F_OK, 0) == 0 }

    /// Removes the slabwatch instances whose session is over, and never one
    /// whose session may still run (in this PID namespace or any other: every
    /// container that mounts tracefs sees the same instances). The rule:
    /// - in this process's PID namespace, the pid decides where it can: the
    ///   process that made the instance (the same start time) runs, and it
    ///   is left; no process has the pid, and the instance is removed with
    ///   everything it enabled;
    /// - where the pid cannot decide (another namespace, an older name, a
    ///   /proc that hides the process, the pid now another process's), the
    ///   kernel does: a session holds its
    ///   instance's `free_buffer` open from before it sets
    ///   `options/disable_on_free` to the instance's end, and the kernel
    ///   refuses rmdir (EBUSY) while any file of an instance is open. So an
    ///   instance with the option set whose rmdir succeeds had no holder: its
    ///   session is over. One without the option may be a session that has
    ///   just made it, and is left alone.
    /// Returns the names removed, and why any could not be.
    func removeStaleInstances() -> (removed: [String], failures: [String]) {
        var removed: [String] = [], failures: [String] = []
        for name in instanceNames() {
            guard let owner = TraceInstanceOwner(instanceName: name) else { continue }
            switch owner.liveness(seenBy: TraceInstanceOwner.thisProcess, lookup: TraceInstanceOwner.lookUp) {
            case .alive:
                continue
            case .gone:
                if let failure = TraceInstance(tracefs: self, name: name).remove() { failures.append(failure) } else { removed.append(name) }
            case .unknown:
                switch removeIfNobodyHolds(name) {
                case .removed: removed.append(name)
                case .kept: continue
                case .failed(let why): failures.append(why)
                }
            }
        }
        return (removed, failures)
    }

    private func instanceNames() -> [String] {
        let directory = openat(descriptor, "instances", O_DIRECTORY | O_RDONLY | O_CLOEXEC)
        guard directory >= 0, let listing = fdopendir(directory) else { return [] }
        defer { closedir(listing) }
        var names: [String] = []
        while let entry = readdir(listing) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names
    }

    private enum Sweep { case removed, kept, failed(String) }

    /// The kernel's half of the rule: rmdir, once, only with
    /// `disable_on_free` set; EBUSY means a holder, which may be the session.
    /// Nothing is written to the instance first: if its session lives, a
    /// write would change its tracing.
    private func removeIfNobodyHolds(_ name: String) -> Sweep {
        let marker = openat(descriptor, "instances/\(name)/options/disable_on_free", O_RDONLY | O_CLOEXEC)
        guard marker >= 0 else { return .kept }  // gone already
        var byte: UInt8 = 0
        let set = Glibc.read(marker, &byte, 1) == 1 && byte == UInt8(ascii: "1")
        close(marker)  // our own reading holds the instance too
        guard set else { return .kept }
        if unlinkat(descriptor, "instances/\(name)", AT_REMOVEDIR) == 0 { return .removed }
        switch errno {
        case EBUSY, ENOENT: return .kept
        case let code: return .failed("tracefs instance \(name): could not be removed (\(String(cString: strerror(code)))); the next session removes it")
        }
    }
}

/// One private instance (`instances/slabwatch-NS-PID-START-N`, named by
/// `TraceInstanceOwner`): created, configured, read, and removed — whatever
/// happened in between. Used by one thread.
final class TraceInstance {
    let tracefs: Tracefs
    let name: String
    /// Relative to the tracefs root.
    var relative: String { "instances/\(name)" }
    /// For messages.
    var path: String { "\(tracefs.root)/instances/\(name)" }
    /// The instance's `free_buffer`, open while the session runs. When this
    /// process ends, however it ends, the kernel closes it and, with
    /// `options/disable_on_free`, stops the instance's tracing and shrinks
    /// its buffer: a SIGKILLed session leaves an instance that records
    /// nothing and holds one page per CPU until the next session removes it.
    private var freeBuffer: Int32 = -1

    private static let counter = Atomic(0)

    /// The kmem events a session may enable, all turned off on removal.
    static let events = ["kmem/kmem_cache_alloc", "kmem/kmem_cache_free", "kmem/kmalloc", "kmem/kfree"]

    init(tracefs: Tracefs, name: String) {
        self.tracefs = tracefs
        self.name = name
    }

    static func create(in tracefs: Tracefs) throws(Tracefs.Failure) -> TraceInstance {
        while true {
            let number = counter.add(1, ordering: .relaxed).newValue
            let instance = TraceInstance(tracefs: tracefs, name: TraceInstanceOwner.nameForThisProcess(number: number))
            if mkdirat(tracefs.descriptor, instance.relative, 0o700) == 0 {
                do { try instance.stopWhenThisProcessEnds() } catch {
                    throw instance.remove().map(error.adding) ?? error
                }
                return instance
            }
            let code = errno
            if code == EEXIST { continue }
            if code == EACCES || code == EPERM || code == EROFS {
                throw .permission("cannot create a tracefs instance in \(tracefs.root)/instances: \(String(cString: strerror(code))) (needs root, or CAP_DAC_OVERRIDE with write access to tracefs)")
            }
            throw .failed("cannot create \(instance.path): \(String(cString: strerror(code)))")
        }
    }

    /// Before any event is enabled: tie the instance's tracing to this
    /// process. `free_buffer` is opened first, the option set second: a set
    /// option on an instance nobody holds then always means a session that
    /// is over, which is how sessions in other PID namespaces judge it
    /// (`Tracefs.removeStaleInstances`).
    private func stopWhenThisProcessEnds() throws(Tracefs.Failure) {
        freeBuffer = openat(tracefs.descriptor, "\(relative)/free_buffer", O_WRONLY | O_CLOEXEC)
        guard freeBuffer >= 0 else { throw .failed("cannot open \(path)/free_buffer: \(String(cString: strerror(errno)))") }
        try write("options/disable_on_free", "1")
    }

    /// Writes `text` to a control file of the instance.
    func write(_ file: String, _ text: String) throws(Tracefs.Failure) {
        let code = write(file, text, flags: O_TRUNC)
        guard code != 0 else { return }
        if code == EACCES || code == EPERM { throw .permission("cannot write \(path)/\(file): \(String(cString: strerror(code)))") }
        throw .failed("the kernel refused '\(text)' for \(path)/\(file): \(String(cString: strerror(code)))")
    }

    /// 0, or the errno of the open or the write. Trigger files take
    /// `O_APPEND`: `!trigger` removes one, and truncating would remove all.
    private func write(_ file: String, _ text: String, flags: Int32) -> Int32 {
        let fd = openat(tracefs.descriptor, "\(relative)/\(file)", O_WRONLY | O_CLOEXEC | flags)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return Glibc.write(fd, bytes, bytes.count) == bytes.count ? 0 : errno
    }

    /// Opens a file of the instance for reading (`trace_pipe`, O_NONBLOCK).
    func open(_ file: String, flags: Int32 = 0) -> Int32 {
        openat(tracefs.descriptor, "\(relative)/\(file)", O_RDONLY | O_CLOEXEC | flags)
    }

    func read(_ file: String) -> String? {
        let fd = open(file)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lost events: `overrun` and `dropped events` of every CPU's buffer.
    func lostEvents() -> UInt64 {
        var total: UInt64 = 0
        for cpu in 0..<Int(sysconf(Int32(_SC_NPROCESSORS_CONF))) {
            guard let stats = read("per_cpu/cpu\(cpu)/stats") else { continue }
            for line in stats.split(separator: "\n") where line.hasPrefix("overrun:") || line.hasPrefix("dropped events:") {
                total += UInt64(line.split(separator: ":").last?.trimmingPrefix(" ") ?? "") ?? 0
            }
        }
        return total
    }

    /// Events off first (a kmalloc session's `kfree` is unfiltered: it must
    /// not stay on whatever else fails), then their triggers (an event with
    /// a trigger stays hooked, "0*", when it is off), tracing off, then the
    /// directory (the kernel drops its buffer, filters and options with it).
    /// - Returns: what could not be undone, in one line; nil when all was
    ///   (or the instance was already gone). Safe to call more than once.
    @discardableResult
    func remove() -> String? {
        var problems: [String] = []
        func undo(_ file: String, _ text: String, flags: Int32, _ what: String) {
            let code = write(file, text, flags: flags)
            // ENOENT: the instance is gone already, or this kernel has no such event.
            if code != 0 && code != ENOENT { problems.append("\(what) (\(String(cString: strerror(code))))") }
        }
        for event in Self.events { undo("events/\(event)/enable", "0", flags: O_TRUNC, "\(event) could not be turned off") }
        for event in Self.events {
            for trigger in triggers(of: event) {
                undo("events/\(event)/trigger", "!" + trigger, flags: O_APPEND, "the \(event) trigger \(trigger) could not be removed")
            }
        }
        undo("tracing_on", "0", flags: O_TRUNC, "tracing could not be stopped")
        // free_buffer holds the instance: it must be closed before rmdir.
        if freeBuffer >= 0 {
            close(freeBuffer)
            freeBuffer = -1
        }
        if let why = removeDirectory() { problems.append("could not be removed (\(why))") }
        guard !problems.isEmpty else { return nil }
        return "tracefs instance \(name): \(problems.joined(separator: "; ")); the next session removes it"
    }

    /// The triggers on an event of the instance, as `!` removes them: a hist
    /// trigger by its whole definition, any other by its command.
    private func triggers(of event: String) -> [String] {
        (read("events/\(event)/trigger") ?? "").split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") { return nil }  // "# Available triggers:", shown when there are none
            if line.hasPrefix("hist:") { return line.split(separator: " [").first.map(String.init) }
            return String(line.prefix { $0 != ":" && $0 != " " })
        }
    }

    /// rmdir, retried for a second while EBUSY: the kernel refuses while any
    /// file of the instance is open (a reader of its `trace_pipe` finishing).
    private func removeDirectory() -> String? {
        var code: Int32 = 0
        for _ in 0..<50 {
            if unlinkat(tracefs.descriptor, relative, AT_REMOVEDIR) == 0 { return nil }
            code = errno
            if code == ENOENT { return nil }
            if code != EBUSY { break }
            usleep(20_000)
        }
        return String(cString: strerror(code))
    }
}
