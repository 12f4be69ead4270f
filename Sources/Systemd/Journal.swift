import Glibc

/// Structured entries to a journald, written in its native protocol to the
/// socket the caller names: the system journal's, or a journal namespace's
/// (`/run/systemd/journal.<namespace>/socket`). What `sd_journal_sendv` does,
/// except that it always writes to the system journal's socket and reports
/// success when that socket is missing; here every failure is an error.
public enum Journal: Sendable {
    /// The socket the system journal listens on.
    public static let defaultSocketPath = "/run/systemd/journal/socket"

    /// The longest socket path an AF_UNIX address holds, in bytes (107 on Linux).
    public static let maximumSocketPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Sends one entry of `NAME=value` fields to the journald at `socketPath`.
    /// An entry too large for one datagram goes as a sealed memfd, as
    /// systemd's `journal-send.c` does, so a field of any size arrives whole.
    /// Blocks while journald's receive queue is full (as libsystemd does).
    /// - Throws: `SystemdError` with the errno of the call that failed:
    ///   ENOENT (no socket there), ECONNREFUSED (a socket nobody listens on),
    ///   EACCES, ENAMETOOLONG, EINVAL (no fields, or a name journald would
    ///   drop: A-Z, 0-9 and _, not first a digit or _, at most 64), EMSGSIZE…
    public static func send(_ fields: [(name: String, value: String)], to socketPath: String = defaultSocketPath) throws(SystemdError) {
        let entry = try JournalEntry(fields)
        let socket = try UnixDatagramSocket()
        do throws(SystemdError) {
            try socket.send(entry.bytes, to: .path(socketPath))
        } catch let error where error.errno == EMSGSIZE || error.errno == ENOBUFS {
            let file = try SealedMemoryFile(entry.bytes, name: "journal-entry")
            try socket.send(passing: file, to: .path(socketPath))
        }
    }

    /// Whether a socket exists at `path` (a journald may be there to receive entries).
    public static func isAvailable(socketPath: String = defaultSocketPath) -> Bool {
        var info = stat()
        return stat(socketPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}
