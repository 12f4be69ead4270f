import Dispatch
import Glibc
import Logging
import SlabWatchHTTP
import Synchronization

/// Keeps the server's `WebSecurity` in step with the web configuration file
/// and the certificate, key and CA files it names: read again on SIGHUP and
/// when any of them changes on disk (checked every second), so a rotated
/// certificate needs no restart. A version that does not load is logged and
/// the running one kept; turning TLS on or off takes a restart.
final class WebSecurityReloader: @unchecked Sendable {  // `timer`: set in watch, cancelled in stop, both on the daemon's thread
    private struct Loaded {
        var path: String
        var tlsEnabled: Bool
        var fingerprints: [FileFingerprint]
        var files: [String]
    }

    private let server: HTTPServer
    private let logger: Logger
    private let loaded: Mutex<Loaded>
    private var timer: (any DispatchSourceTimer)?

    /// Loads `path` (empty: no web configuration) and applies it to `server`.
    /// - Throws: `ConfigurationError` for the first problem, so start-up can exit 2.
    init(path: String, server: HTTPServer, logger: Logger) throws(ConfigurationError) {
        self.server = server
        self.logger = logger
        let (security, files) = try Self.load(path)
        server.setSecurity(security)
        loaded = Mutex(Loaded(path: path, tlsEnabled: security.tls != nil,
                              fingerprints: files.map(FileFingerprint.init), files: files))
        if !path.isEmpty {
            logger.info("web configuration", metadata: [
                "file": "\(path)", "tls": "\(security.tls != nil)", "basic_auth": "\(security.authenticator != nil)",
            ])
        }
    }

    /// Starts the once-a-second check for changed files.
    func watch(on queue: DispatchQueue) {
        guard !loaded.withLock({ $0.path.isEmpty }) else { return }
        let source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now() + 1, repeating: 1, leeway: .milliseconds(200))
        source.setEventHandler { [self] in
            let changed = loaded.withLock { $0.files.map(FileFingerprint.init) != $0.fingerprints }
            if changed { reload(path: nil, reason: "file changed") }
        }
        timer = source
        source.resume()
    }

    func stop() {
        timer?.cancel()
        timer = nil
    }

    /// Reads the configuration again (from `path` when the main configuration names a new one).
    func reload(path newPath: String?, reason: String) {
        let (path, files, tlsEnabled) = loaded.withLock { ($0.path, $0.files, $0.tlsEnabled) }
        let target = newPath ?? path
        // Whatever the outcome, this version of the files has been seen: a
        // broken file is reported once, not every second.
        loaded.withLock { $0.fingerprints = files.map(FileFingerprint.init) }
        do {
            let (security, newFiles) = try Self.load(target)
            guard (security.tls != nil) == tlsEnabled else {
                logger.error("web configuration not applied: turning TLS on or off takes a restart", metadata: ["file": "\(target)"])
                return
            }
            server.setSecurity(security)
            loaded.withLock { $0 = Loaded(path: target, tlsEnabled: tlsEnabled, fingerprints: newFiles.map(FileFingerprint.init), files: newFiles) }
            logger.info("web configuration reloaded", metadata: ["file": "\(target)", "reason": "\(reason)"])
        } catch {
            logger.error("web configuration not reloaded, keeping the running one", metadata: ["error": "\(error)"])
        }
    }

    private static func load(_ path: String) throws(ConfigurationError) -> (WebSecurity, [String]) {
        guard !path.isEmpty else { return (.open, []) }
        let configuration = try WebConfiguration.load(path: path)
        return (try configuration.security(origin: path), configuration.files)
    }
}

/// What says a file changed: its identity, size and times (a rename over it
/// changes the inode; an edit in place changes mtime and ctime).
struct FileFingerprint: Equatable, Sendable {
    var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1
    var modified: Int = 0, modifiedNanoseconds: Int = 0, changed: Int = 0, changedNanoseconds: Int = 0

    init(_ path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        size = Int64(status.st_size)
        modified = status.st_mtim.tv_sec
        modifiedNanoseconds = status.st_mtim.tv_nsec
        changed = status.st_ctim.tv_sec
        changedNanoseconds = status.st_ctim.tv_nsec
    }
}
