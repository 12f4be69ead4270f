import CSystemd
import Glibc

/// Structured entries to the systemd journal, one Swift call per C call.
public enum Journal: Sendable {
    /// The socket journald listens on; `sd_journal_sendv` always writes here.
    public static let defaultSocketPath = "/run/systemd/journal/socket"

    /// Sends one entry of `FIELD=value` pairs (field names upper-case, as journald requires).
    ///
    /// `sd_journal_sendv` returns success even when no journald listens, so
    /// callers check `isAvailable` first.
    /// - Throws: `SystemdError` with the errno libsystemd reported.
    public static func send(_ fields: [(name: String, value: String)]) throws(SystemdError) {
        let entries = fields.map { Array("\($0.name)=\($0.value)".utf8) }
        let result = entries.withUnsafeIovecs { iovecs in
            sd_journal_sendv(iovecs.baseAddress, Int32(iovecs.count))
        }
        _ = try SystemdError.check(result, "sd_journal_sendv")
    }

    /// Whether a socket exists at `path` (journald is there to receive entries).
    public static func isAvailable(socketPath: String = defaultSocketPath) -> Bool {
        var info = stat()
        return stat(socketPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with iovecs pointing at each element's bytes.
    fileprivate func withUnsafeIovecs<R>(_ body: (UnsafeBufferPointer<iovec>) -> R) -> R {
        var vectors: [iovec] = []
        vectors.reserveCapacity(count)
        func build(_ index: Int) -> R {
            if index == count { return vectors.withUnsafeBufferPointer(body) }
            return self[index].withUnsafeBytes { raw in
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count))
                return build(index + 1)
            }
        }
        return build(0)
    }
}
