import CSystemd

/// The service manager side of systemd: readiness notifications, the watchdog
/// and socket activation. Thin: no policy, one function per C call.
public enum ServiceManager: Sendable {
    /// Sends a state string such as `READY=1` or `STATUS=…`.
    /// - Returns: false when no service manager listens (`NOTIFY_SOCKET` unset).
    /// - Throws: `SystemdError` when sending failed.
    @discardableResult
    public static func notify(_ state: String) throws(SystemdError) -> Bool {
        try SystemdError.check(sd_notify(0, state), "sd_notify") > 0
    }

    /// The watchdog interval in microseconds if the manager expects `WATCHDOG=1`, else nil.
    public static func watchdogMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 ? usec : nil
    }

    /// Descriptors passed by socket activation (starting at 3), or empty.
    /// Unsets `LISTEN_FDS`/`LISTEN_PID` so children do not inherit them.
    /// - Throws: `SystemdError` when the environment is malformed.
    public static func listenDescriptors() throws(SystemdError) -> [Int32] {
        let count = try SystemdError.check(sd_listen_fds(1), "sd_listen_fds")
        return (0..<count).map { SD_LISTEN_FDS_START + $0 }
    }
}
