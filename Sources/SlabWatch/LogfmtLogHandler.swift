import Glibc
public import Logging
import SlabWatchCore

/// Writes one logfmt line per message to stderr (`ts=… level=info msg="…" key=value`),
/// which journald stores as-is and people and scripts can both read. Each
/// line is one write(2).
///
/// A line starts with its time (`ts=`, RFC 3339 in UTC, to the millisecond),
/// except when stderr is journald's stream: journald stamps every line itself,
/// and a second time in the message would only differ from it.
public struct LogfmtLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    /// Whether lines carry `ts=`: decided once, from where stderr leads when the handler is made.
    private let stamped: Bool

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
        self.stamped = !Self.isJournalStream(getenv("JOURNAL_STREAM").map { String(cString: $0) }, descriptor: 2)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = Self.line(level: event.level, message: event.message.description,
                             metadata: metadata.merging(event.metadata ?? [:]) { $1 },
                             timestampMilliseconds: stamped ? Clock.wallMilliseconds() : nil)
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    /// Whether `descriptor` is the stream systemd connected to journald for
    /// this service: `JOURNAL_STREAM` (`journalStream`) names that stream's
    /// device and inode, and a process must compare them with its own stderr,
    /// since a child started with stderr elsewhere inherits the variable
    /// (systemd.exec(5), "JOURNAL_STREAM").
    static func isJournalStream(_ journalStream: String?, descriptor: Int32) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// One whole line, ending in its newline: the only control character in
    /// it. It starts with `ts=` when given a time.
    static func line(level: Logger.Level, message: String, metadata: Logger.Metadata,
                     timestampMilliseconds: Int64? = nil) -> String {
        var line = timestampMilliseconds.map { "ts=\(RFC3339.format(unixMilliseconds: $0)) " } ?? ""
        line += "level=\(level.rawValue) msg=\(quoted(message))"
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
