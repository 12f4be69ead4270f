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
            let text = String(decoding: handle.availableData, as: UTF8.self)
            guard let self else { return }
            lock.lock(); logText += text; lock.unlock()
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

    /// Sends SIGTERM and returns the exit status and how long the exit took.
    func terminate() -> (status: Int32, seconds: Double) {
        let start = Date()
        signal(SIGTERM)
        process.waitUntilExit()
        return (process.terminationStatus, Date().timeIntervalSince(start))
    }

    func waitFor(_ what: String, timeout: Double = 15, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw Failure(message: "timed out waiting for \(what); log:\n\(log)")
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

/// Parses Prometheus text into `name{labels}` → value, for assertions.
func samples(_ text: String) -> [String: Double] {
    var result: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        result[String(line[..<space])] = value
    }
    return result
}
