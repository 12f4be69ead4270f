import Glibc

/// The service manager side of systemd: readiness and status notifications,
/// the watchdog and socket activation, spoken as sd-daemon(3) speaks them
/// (libsystemd's `sd_notify`, `sd_watchdog_enabled`, `sd_listen_fds`) without
/// linking libsystemd: a notification is one datagram to `$NOTIFY_SOCKET`, the
/// rest is what the manager put in the environment. No policy.
public enum ServiceManager: Sendable {
    /// The first descriptor socket activation passes (`SD_LISTEN_FDS_START`);
    /// the others follow it.
    public static let firstListenDescriptor: Int32 = 3

    /// Sends a state string such as `READY=1` or `STATUS=…` to `$NOTIFY_SOCKET`.
    /// - Returns: false when no service manager listens (`NOTIFY_SOCKET` unset).
    /// - Throws: `SystemdError`: EINVAL for an empty state or a `NOTIFY_SOCKET`
    ///   that is neither an absolute path nor `@name`; the errno of sending.
    @discardableResult
    public static func notify(_ state: String) throws(SystemdError) -> Bool {
        guard let socket = environment("NOTIFY_SOCKET") else { return false }
        try notify(state, to: socket)
        return true
    }

    /// Sends `state` as one datagram to the notification socket `socket`
    /// names, as `NOTIFY_SOCKET` names it.
    static func notify(_ state: String, to socket: String) throws(SystemdError) {
        guard !state.isEmpty else { throw SystemdError(call: "notify with an empty state", errno: EINVAL) }
        try UnixDatagramSocket().send(Array(state.utf8), to: try notificationAddress(socket))
    }

    /// `NOTIFY_SOCKET`'s value as an address: an absolute path, or `@` and a
    /// name in the abstract namespace. (Newer managers may also pass `vsock:`
    /// addresses to a service in a virtual machine: not spoken here.)
    static func notificationAddress(_ socket: String) throws(SystemdError) -> UnixDatagramSocket.Address {
        if socket.hasPrefix("/") { return .path(socket) }
        if socket.hasPrefix("@"), socket.utf8.count > 1 { return .abstract(String(socket.dropFirst())) }
        throw SystemdError(call: "NOTIFY_SOCKET='\(socket)' (an absolute path or @name)", errno: EINVAL)
    }

    /// The watchdog interval in microseconds when the manager expects
    /// `WATCHDOG=1` from this process, else nil.
    public static func watchdogMicroseconds() -> UInt64? {
        watchdogMicroseconds(interval: environment("WATCHDOG_USEC"), pid: environment("WATCHDOG_PID"),
                             processID: getpid())
    }

    /// The watchdog rules of `sd_watchdog_enabled`: `interval` (`WATCHDOG_USEC`)
    /// is a decimal above 0 and below infinity (`UInt64.max`), and when `pid`
    /// (`WATCHDOG_PID`) is set it names this process (a child that inherited
    /// the variables is not the one the manager watches). Anything malformed
    /// reads as no watchdog.
    static func watchdogMicroseconds(interval: String?, pid: String?, processID: pid_t) -> UInt64? {
        guard let interval, let microseconds = decimal(interval), microseconds > 0, microseconds != .max else { return nil }
        if let pid, processIdentifier(pid) != processID { return nil }
        return microseconds
    }

    /// Descriptors passed by socket activation (from `firstListenDescriptor`
    /// on), made close-on-exec; empty when none were passed to this process.
    /// Unsets `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` (and
    /// `LISTEN_PIDFDID`) whatever they say, so children do not inherit them.
    /// Call it once, before other threads read the environment.
    /// - Throws: `SystemdError` when the variables are malformed (EINVAL) or
    ///   name a descriptor that is not open (EBADF).
    public static func listenDescriptors() throws(SystemdError) -> [Int32] {
        defer { for name in ["LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) } }
        let count = try listenDescriptorCount(pid: environment("LISTEN_PID"), count: environment("LISTEN_FDS"),
                                              processID: getpid())
        return try closeOnExec(firstListenDescriptor..<firstListenDescriptor + count)
    }

    /// The rules of `sd_listen_fds`: nothing unless `pid` (`LISTEN_PID`) names
    /// this process; then `count` (`LISTEN_FDS`) is a decimal from 1 to as many
    /// as fit after the first descriptor.
    static func listenDescriptorCount(pid: String?, count: String?, processID: pid_t) throws(SystemdError) -> Int32 {
        guard let pid else { return 0 }
        guard let listenPID = processIdentifier(pid) else {
            throw SystemdError(call: "socket activation (LISTEN_PID='\(pid)')", errno: EINVAL)
        }
        guard listenPID == processID, let count else { return 0 }
        guard let n = decimal(count), n >= 1, n <= UInt64(Int32.max - firstListenDescriptor) else {
            throw SystemdError(call: "socket activation (LISTEN_FDS='\(count)')", errno: EINVAL)
        }
        return Int32(n)
    }

    /// Sets close-on-exec on each descriptor: the daemon's children (a BPF
    /// session's tools, a TLS library's helpers) must not hold its listening sockets.
    /// - Throws: `SystemdError` (EBADF) at the first descriptor that is not open.
    static func closeOnExec(_ descriptors: Range<Int32>) throws(SystemdError) -> [Int32] {
        for descriptor in descriptors {
            let flags = fcntl(descriptor, F_GETFD)
            try SystemdError.check(syscall: flags, "socket activation: fcntl(\(descriptor), F_GETFD)")
            if flags & FD_CLOEXEC == 0 {
                try SystemdError.check(syscall: fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC),
                                       "socket activation: fcntl(\(descriptor), F_SETFD)")
            }
        }
        return Array(descriptors)
    }

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// A process ID as systemd parses one: a decimal above 0 that fits a `pid_t`.
    private static func processIdentifier(_ text: String) -> pid_t? {
        guard let value = decimal(text), value > 0, value <= UInt64(pid_t.max) else { return nil }
        return pid_t(value)
    }

    /// Digits only (no sign, no space), without overflow.
    private static func decimal(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(text)
    }
}
