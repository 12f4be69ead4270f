import Glibc

/// The kernel's tracefs: where it is, and private instances in it. An
/// instance has its own buffer, events, filters and options, so a session
/// never touches the system's main buffer or another tool's tracing.
public struct Tracefs: Sendable {
    public let root: String
    /// tracefs was not mounted and this process mounted it (unmount when done).
    public let mountedHere: Bool

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
    }

    static let candidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]

    /// Finds tracefs (checked with the effective credentials, so the
    /// capabilities of the attribution drop-in count); mounts it at /sys/kernel/tracing only when neither
    /// usual place has it (and `say` is told).
    public static func locate(say: (String) -> Void) throws(Failure) -> Tracefs {
        for root in candidates {
            if faccessat(AT_FDCWD, root + "/instances", F_OK, AT_EACCESS) == 0 { return Tracefs(root: root, mountedHere: false) }
            if errno == EACCES {
                throw .permission("tracefs at \(root) is open to root only: run as root (or under systemd with the attribution drop-in)")
            }
        }
        guard faccessat(AT_FDCWD, "/sys/kernel/tracing", F_OK, AT_EACCESS) == 0 else {
            throw .unavailable("no tracefs: neither \(candidates.joined(separator: " nor ")) exists (kernel without CONFIG_TRACING?)")
        }
        guard mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nil) == 0 else {
            let code = errno
            if code == EPERM || code == EACCES { throw .permission("tracefs is not mounted and mounting it needs CAP_SYS_ADMIN (run as root)") }
            throw .unavailable("tracefs is not mounted and could not be mounted: \(String(cString: strerror(code)))")
        }
        say("mounted tracefs at /sys/kernel/tracing (it was not mounted); it is unmounted again when the session ends")
        return Tracefs(root: "/sys/kernel/tracing", mountedHere: true)
    }

    public func unmountIfMounted() {
        if mountedHere { _ = umount2(root, Int32(MNT_DETACH)) }
    }

    /// Removes `slabwatch-PID-N` instances whose process is gone (a session
    /// killed with SIGKILL). Returns their names.
    @discardableResult
    public func removeStaleInstances() -> [String] {
        guard let directory = opendir(root + "/instances") else { return [] }
        var stale: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let parts = name.split(separator: "-")
            guard parts.count == 3, parts[0] == "slabwatch", let pid = Int32(parts[1]) else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { stale.append(name) }
        }
        closedir(directory)
        for name in stale { TraceInstance(tracefs: self, name: name).remove() }
        return stale
    }
}

/// One private instance (`instances/slabwatch-PID-N`): created, configured,
/// read, and removed — whatever happened in between.
struct TraceInstance {
    let tracefs: Tracefs
    let name: String
    var path: String { "\(tracefs.root)/instances/\(name)" }

    nonisolated(unsafe) private static var counter = 0

    static func create(in tracefs: Tracefs) throws(Tracefs.Failure) -> TraceInstance {
        while true {
            counter += 1
            let instance = TraceInstance(tracefs: tracefs, name: "slabwatch-\(getpid())-\(counter)")
            if mkdir(instance.path, 0o700) == 0 { return instance }
            let code = errno
            if code == EEXIST { continue }
            if code == EACCES || code == EPERM || code == EROFS {
                throw .permission("cannot create a tracefs instance in \(tracefs.root)/instances: \(String(cString: strerror(code))) (needs root, or CAP_DAC_OVERRIDE with write access to tracefs)")
            }
            throw .failed("cannot create \(instance.path): \(String(cString: strerror(code)))")
        }
    }

    /// Writes `text` to a control file of the instance.
    func write(_ relative: String, _ text: String) throws(Tracefs.Failure) {
        let file = "\(path)/\(relative)"
        let fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == EACCES || code == EPERM { throw .permission("cannot write \(file): \(String(cString: strerror(code)))") }
            throw .failed("cannot open \(file): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else {
            throw .failed("the kernel refused '\(text)' for \(file): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes without truncating: trigger files take `!trigger` to remove one.
    func append(_ relative: String, _ text: String) throws(Tracefs.Failure) {
        let fd = open("\(path)/\(relative)", O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw .failed("cannot open \(path)/\(relative)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw .failed("the kernel refused '\(text)'") }
    }

    func read(_ relative: String) -> String? {
        let fd = open("\(path)/\(relative)", O_RDONLY | O_CLOEXEC)
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

    /// Events off, then the directory (the kernel drops its buffer, filters
    /// and options with it). Safe to call more than once.
    func remove() {
        for event in ["kmem/kmem_cache_alloc", "kmem/kmem_cache_free", "kmem/kmalloc", "kmem/kfree"] {
            try? write("events/\(event)/enable", "0")
        }
        // Hist triggers are not dropped with the directory on every kernel: remove them first.
        for event in ["kmem/kmem_cache_alloc", "kmem/kmalloc"] {
            for trigger in (read("events/\(event)/trigger") ?? "").split(separator: "\n") where trigger.hasPrefix("hist:") {
                try? append("events/\(event)/trigger", "!" + (trigger.split(separator: " [").first.map(String.init) ?? String(trigger)))
            }
        }
        try? write("tracing_on", "0")
        // rmdir fails with EBUSY while a reader holds trace_pipe: retry briefly.
        for _ in 0..<50 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            usleep(20_000)
        }
    }
}
