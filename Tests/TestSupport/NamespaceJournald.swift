import Foundation
import Glibc

/// A real journald of a journal namespace of its own, as
/// `systemd-journald@.service` runs one (`systemd-journald NAMESPACE`): it
/// listens on `/run/systemd/journal.NAMESPACE/socket`, a socket no program
/// writes to by default, and keeps its entries apart from the system
/// journal's. The test starts it, stops it by its pid, and removes what it
/// made: its socket directory and its journal directory (in /var/log/journal,
/// where namespaces write from the start, or /run/log/journal).
///
/// Not Sendable: its lifetime is the test's.
public final class NamespaceJournald {
    public static let binary = "/lib/systemd/systemd-journald"
    public let namespace: String
    private var process: Process?
    /// The journal roots (and their parents) that did not exist before it started.
    private let createdRoots: [String]
    private static let journalRoots = ["/run/log", "/run/log/journal", "/var/log/journal"]

    public var socketPath: String { "/run/systemd/journal.\(namespace)/socket" }
    public var socketDirectory: String { "/run/systemd/journal.\(namespace)" }

    public init() throws {
        namespace = "slabwatch-test-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        createdRoots = Self.journalRoots.filter { !FileManager.default.fileExists(atPath: $0) }
        let journald = Process()
        journald.executableURL = URL(fileURLWithPath: Self.binary)
        journald.arguments = [namespace]
        journald.standardOutput = FileHandle.nullDevice
        journald.standardError = FileHandle.nullDevice
        try journald.run()
        process = journald
        // A generous deadline: it only trips when journald does not start at all.
        let deadline = Date().addingTimeInterval(20)
        while !Self.listens(socketPath) {
            guard Date() < deadline, journald.isRunning else {
                stop()
                throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "journald for namespace \(namespace) did not start"])
            }
            usleep(20_000)
        }
    }

    deinit { stop() }

    /// Its entries matching `filters` (`FIELD=value`), as journalctl's JSON
    /// objects; `--all` so that fields of any size come whole.
    public func entries(_ filters: [String]) throws -> [[String: Any]] {
        let journalctl = Process()
        journalctl.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
        journalctl.arguments = ["--namespace=\(namespace)", "-o", "json", "--all", "--no-pager"] + filters
        let output = Pipe()
        journalctl.standardOutput = output
        journalctl.standardError = FileHandle.nullDevice
        try journalctl.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        journalctl.waitUntilExit()
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }

    /// Stops the journald it started (SIGTERM to its pid) and removes its
    /// sockets and journal files, so the socket path vanishes. Idempotent.
    public func stop() {
        guard let process else { return }
        self.process = nil
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: socketDirectory)
        for root in Self.journalRoots {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where entry.hasSuffix(".\(namespace)") {
                try? FileManager.default.removeItem(atPath: "\(root)/\(entry)")
            }
        }
        for root in createdRoots.reversed() { rmdir(root) }  // only if empty
    }

    /// Whether something receives datagrams at `path` (a socket file alone may be stale).
    public static func listens(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8).prefix($0.count - 1)) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}

@available(*, unavailable)
extension NamespaceJournald: Sendable {}
