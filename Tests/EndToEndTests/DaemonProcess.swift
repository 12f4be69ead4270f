import Foundation
import TestSupport
import Glibc

/// The real `slabwatch` binary, started as an operator would, on an
/// ephemeral loopback port that it reports in its log.
final class DaemonProcess: @unchecked Sendable {  // log text guarded by `lock`
    static let binary: URL = {
        // The test bundle sits beside the products of the same build.
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundleDirectory.appendingPathComponent("slabwatch")
    }()

    let process = Process()
    private let errors = Pipe()
    private let lock = NSLock()
    private var logText = ""
    /// The daemon's stderr reached its end (it exited and nothing else holds it).
    private var logEnded = false
    private(set) var port: UInt16 = 0
    /// How `get` reaches it: `https` and curl's TLS and credential options when
    /// the daemon runs with a web configuration.
    let scheme: String
    let clientOptions: [String]

    /// Starts the daemon and waits until it is listening and has published a sample.
    init(arguments: [String], wrapper: [String] = [], environment: [String: String] = [:], listen: Bool = true,
         scheme: String = "http", clientOptions: [String] = []) throws {
        self.scheme = scheme
        self.clientOptions = clientOptions
        // Keep nothing under /var/lib unless the test asks for a state directory.
        let arguments = arguments.contains("--state.directory") ? arguments : arguments + ["--state.directory", ""]
        if wrapper.isEmpty {
            process.executableURL = Self.binary
            process.arguments = (listen ? ["--web.listen-address", "127.0.0.1:0"] : []) + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: wrapper[0])
            process.arguments = Array(wrapper.dropFirst()) + [Self.binary.path]
                + (listen ? ["--web.listen-address", "127.0.0.1:0"] : []) + arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            lock.lock(); logText += String(decoding: data, as: UTF8.self); logEnded = logEnded || data.isEmpty; lock.unlock()
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while port == 0 {
            guard Date() < deadline, process.isRunning else {
                throw Failure(message: "daemon did not start; log:\n\(log)")
            }
            if let range = log.range(of: #"address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = UInt16(log[range].split(separator: ":").last!)!
            }
            usleep(20_000)
        }
        try waitFor("first sample") { (try? self.get("/healthz").status) == 200 }
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        errors.fileHandleForReading.readabilityHandler = nil
    }

    var log: String { lock.lock(); defer { lock.unlock() }; return logText }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    struct Response {
        var status: Int
        var headers: String
        var body: String
    }

    /// A request made with the real curl.
    func get(_ path: String, extra: [String] = []) throws -> Response {
        let result = try Self.run("/usr/bin/curl", ["-sS", "-D", "-", "--max-time", "5"] + clientOptions + extra + [url(path)])
        guard result.status == 0 else { throw Failure(message: "curl failed: \(result.error)") }
        let parts = result.output.components(separatedBy: "\r\n\r\n")
        let statusLine = parts[0].split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ")[1]) ?? 0
        return Response(status: status, headers: parts[0], body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }

    var pid: Int32 { process.processIdentifier }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// How the daemon ended after SIGTERM.
    struct Stop: CustomStringConvertible {
        var status: Int32
        /// Still running at the hang deadline, and killed.
        var hung: Bool
        /// Its whole log, read to the end.
        var log: String

        /// Exit 0, `stopped` logged and no sampler tick left blocked: the
        /// daemon's own shutdown deadline held, so the stop was as quick as
        /// that deadline makes it. How long it took is not measured here.
        var isClean: Bool { status == 0 && !hung && log.contains("msg=stopped") && !log.contains("still blocked") }

        var description: String { "exit \(status)\(hung ? ", hung and killed" : ""); log:\n\(log)" }
    }

    /// Sends SIGTERM and waits for the exit. `hangDeadline` only catches a
    /// daemon that never exits (it is killed, and the stop counts as hung):
    /// it is far beyond any stop that works, so a loaded machine never
    /// trips it, and the test asserts what the daemon did, not how fast.
    func terminate(hangDeadline: Double = 30) -> Stop {
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(hangDeadline)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        let hung = process.isRunning
        if hung { signal(SIGKILL) }
        process.waitUntilExit()
        // The last lines (msg=stopped) come through the pipe after the exit. A
        // wrapper's child may hold the pipe open: then the log is what came so far.
        let logDeadline = Date().addingTimeInterval(5)
        while Date() < logDeadline, !{ lock.lock(); defer { lock.unlock() }; return logEnded }() { usleep(10_000) }
        return Stop(status: process.terminationStatus, hung: hung, log: log)
    }

    func waitFor(_ what: String, timeout: Double = 15, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw Failure(message: "timed out waiting for \(what); log:\n\(log)")
    }

    /// Waits until `count` more ticks have run (`slabwatch_samples_total`
    /// advanced by that much): the event a "nothing more happened" check
    /// waits for, rather than a sleep that a loaded machine may not cover.
    /// Ticks are an interval apart at least, so `count` ticks also span
    /// `count` − 1 intervals of the daemon's own time. `timeout` only
    /// catches a daemon that stopped sampling.
    func waitForSamples(_ count: Int, timeout: Double = 120) throws {
        let target = try samplesTaken() + Double(count)
        try waitFor("\(count) more samples", timeout: timeout) { try samplesTaken() >= target }
    }

    /// `slabwatch_samples_total`: the ticks run so far.
    func samplesTaken() throws -> Double {
        guard let value = samples(try get("/metrics").body)["slabwatch_samples_total"] else {
            throw Failure(message: "no slabwatch_samples_total in /metrics")
        }
        return value
    }

    struct RunResult {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> RunResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), error = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return RunResult(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self),
                         error: String(decoding: err, as: UTF8.self))
    }
}

enum Paths {
    static let repositoryRoot = RepositoryPaths.root
    static let localCapture = RepositoryPaths.localCapture
    static let promtool = "/usr/bin/promtool"
    static let prometheus = "/usr/bin/prometheus"
}

/// Every `source` label of `slabwatch_source_up` a daemon on a live /proc
/// and /sys reports, spelled out so a source added or lost fails the tests
/// that say "every source is up".
let everySource = ["slabinfo", "sysfs_slab", "meminfo", "inode_nr", "dentry_state", "file_nr", "zoneinfo", "loadavg", "sockstat", "cgroups"]

/// Whether `metrics` (from `samples`) has every source up and no other.
func everySourceUp(_ metrics: [String: Double]) -> Bool {
    let reported = metrics.filter { $0.key.hasPrefix("slabwatch_source_up{") }
    return reported.count == everySource.count
        && everySource.allSatisfy { reported["slabwatch_source_up{source=\"\($0)\"}"] == 1 }
}

/// Parses Prometheus text into `name{labels}` → value, for assertions.
func samples(_ text: String) -> [String: Double] {
    var result: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        result[String(line[..<space])] = value
    }
    return result
}
