import Foundation
import Glibc

/// A loopback HTTP "server" that answers every request with exactly the
/// bytes a test gives it, as a hostile or broken daemon would: on
/// 127.0.0.1, an ephemeral port, one thread per connection. `answer` runs
/// with the connection's descriptor after the request head has been read;
/// the connection is closed when it returns, unless `holdOpen` (then at `stop`).
final class HostileServer: @unchecked Sendable {  // `held` guarded by `lock`
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var held: [Int32] = []
    private var stopped = false

    init(holdOpen: Bool = false, answer: @escaping @Sendable (Int32) -> Void) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw DaemonProcess.Failure(message: "hostile server: \(String(cString: strerror(errno)))")
        }
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }  // the listener was shut down
                Thread { [self] in
                    Self.readRequestHead(connection)
                    answer(connection)
                    lock.lock()
                    if holdOpen && !stopped { held.append(connection); lock.unlock() } else { lock.unlock(); close(connection) }
                }.start()
            }
        }
        thread.start()
    }

    /// Closes the listener and every connection held open.
    func stop() {
        lock.lock()
        stopped = true
        let connections = held
        held = []
        lock.unlock()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in connections { close(connection) }
    }

    deinit { if !stopped { stop() } }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Writes all of `bytes`; false once the client has gone.
    @discardableResult
    static func send(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(connection, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    static func send(_ connection: Int32, _ text: String) { send(connection, Array(text.utf8)) }

    private static func readRequestHead(_ connection: Int32) {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]), head.count < 65536, recv(connection, &byte, 1, 0) == 1 {
            head.append(byte)
        }
    }

    /// A small valid snapshot naming one cache.
    static let snapshot = #"{"timestamp":"2026-11-26T05:40:00.000Z","interval_seconds":5,"caches":[{"name":"hostile-cache","objects":128,"slabs":1,"footprint_bytes":4096}],"findings":[]}"#
}

/// A command run with a limit: killed (SIGKILL) if still running after
/// `timeout` seconds, so a test of a hang cannot hang the suite.
func runLimited(_ executable: String, _ arguments: [String], timeout: Double) throws -> (status: Int32, error: String, output: String, seconds: Double, killed: Bool) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = FileHandle.nullDevice
    let start = Date()
    try process.run()
    var killed = false
    while process.isRunning {
        if Date().timeIntervalSince(start) > timeout { kill(process.processIdentifier, SIGKILL); killed = true; break }
        usleep(20_000)
    }
    process.waitUntilExit()
    let seconds = Date().timeIntervalSince(start)
    return (process.terminationStatus, String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), seconds, killed)
}
