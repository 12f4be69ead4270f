import Glibc
import Logging
import SlabWatch
import SlabWatchCore

func makeLogger(_ level: Logger.Level) -> Logger {
    Logger(label: "slabwatch") { LogfmtLogHandler(label: $0, level: level) }
}

/// One message on stderr. It may quote what others wrote (a server's
/// answer, a cache name, a file): every control but its newlines is shown as `?`.
func printError(_ message: String) {
    let text = message.split(separator: "\n", omittingEmptySubsequences: false).map(TerminalText.printable).joined(separator: "\n")
    let line = "slabwatch: \(text)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// One message on stderr, then exit with `status`.
func fail(_ status: ExitStatus, _ message: String) -> Never {
    printError(message)
    exit(status.rawValue)
}

/// `message` on stderr, and `status` to return from a command's `run`.
func failed(_ status: ExitStatus, _ message: String) -> Int32 {
    printError(message)
    return status.rawValue
}

/// Bytes to stdout, whole.
func writeOut(_ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}
