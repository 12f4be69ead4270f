import Glibc
public import Logging
import SlabWatchCore

/// Writes one logfmt line per message to stderr (`level=info msg="…" key=value`),
/// which journald stores as-is and people and scripts can both read.
/// Timestamps are left to journald (or the terminal); each line is one write(2).
public struct LogfmtLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = Self.line(level: event.level, message: event.message.description,
                             metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    /// One whole line, ending in its newline: the only control character in it.
    static func line(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "level=\(level.rawValue) msg=\(quoted(message))"
        for key in metadata.keys.sorted() {
            line += " \(quoted(key))=\(quoted(metadata[key]!.description))"
        }
        return line + "\n"
    }

    static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && value.allSatisfy { $0.isLetter || $0.isNumber || "-_./:[]@%+,".contains($0) }
        if plain { return value }
        // Scalar by scalar: "\r\n" is one Character, and a terminal reading the
        // log (stderr, journalctl) must never meet a raw control (ESC, C1 CSI).
        var escaped = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where TerminalText.isControl(scalar): escaped += hexEscape(scalar)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    /// `\u001b`, as JSON and go-logfmt write a control character.
    private static func hexEscape(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
