import Glibc
import Logging
import SlabWatchCore
import Testing
import TestSupport
@testable import SlabWatch

/// The stderr log: one logfmt line per message, and no control character
/// from a value (a cache name, a server's text) reaches the terminal or
/// journal reading it.
struct LogfmtLogHandlerTests {
    @Test(arguments: [
        ("kmalloc-32", "kmalloc-32"),
        ("two words", "\"two words\""),
        ("q\"b\\", "\"q\\\"b\\\\\""),
        ("evil\u{1b}]0;pwned\u{7}", "\"evil\\u001b]0;pwned\\u0007\""),
        ("c1\u{9b}2J\u{9d}", "\"c1\\u009b2J\\u009d\""),
        ("crlf\r\nnul\u{0}del\u{7f}tab\t", "\"crlf\\r\\nnul\\u0000del\\u007ftab\\t\""),
        ("é漢", "é漢"),
    ])
    func valuesAreQuotedAndControlsEscaped(_ value: String, _ written: String) {
        #expect(LogfmtLogHandler.quoted(value) == written)
    }

    /// 2,000 generated messages and metadata values: the only control in a
    /// line is its final newline, and unquoting gives back every value.
    @Test func noControlSurvivesIntoALogLine() {
        var generator = SeededGenerator(seed: 7)
        var failures: [String] = []
        for _ in 0..<2000 {
            let message = HostileText.make(length: Int.random(in: 0...30, using: &generator), using: &generator)
            let slab = HostileText.make(length: Int.random(in: 1...30, using: &generator), using: &generator)
            let line = LogfmtLogHandler.line(level: .warning, message: message, metadata: ["slab": .string(slab)])
            guard line.hasSuffix("\n"), !line.dropLast().unicodeScalars.contains(where: HostileText.isControl),
                  Self.fields(String(line.dropLast())) == ["level": "warning", "msg": message, "slab": slab] else {
                failures.append(line.debugDescription)
                continue
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of 2000 lines, first: \(failures.first ?? "")")
    }

    /// A line given a time starts with it, in UTC to the millisecond, and
    /// reads back as the same fields plus `ts`.
    @Test func aLineStartsWithItsTime() throws {
        let line = LogfmtLogHandler.line(level: .info, message: "stopped", metadata: ["slab": "kmalloc-32"],
                                         timestampMilliseconds: 1_764_074_660_123)
        #expect(line == "ts=2025-11-25T12:44:20.123Z level=info msg=stopped slab=kmalloc-32\n")
        let fields = try #require(Self.fields(String(line.dropLast())))
        #expect(RFC3339.parse(try #require(fields["ts"])) == 1_764_074_660_123)
    }

    /// Lines are stamped unless stderr is the stream JOURNAL_STREAM names
    /// (device:inode, as systemd sets it): real descriptors, compared by fstat.
    @Test func journaldsStreamIsRecognisedByDeviceAndInode() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        var others: [Int32] = [-1, -1]
        try #require(pipe(&others) == 0)
        defer { for fd in ends + others { close(fd) } }
        var status = stat()
        try #require(fstat(ends[1], &status) == 0)
        let stream = "\(status.st_dev):\(status.st_ino)"
        #expect(LogfmtLogHandler.isJournalStream(stream, descriptor: ends[1]))
        #expect(!LogfmtLogHandler.isJournalStream(stream, descriptor: others[1]), "inherited by a child whose stderr is elsewhere")
        #expect(!LogfmtLogHandler.isJournalStream(nil, descriptor: ends[1]), "run by hand")
        for malformed in ["", "\(status.st_dev)", "\(status.st_dev):\(status.st_ino):1", "x:\(status.st_ino)", " \(stream)"] {
            #expect(!LogfmtLogHandler.isJournalStream(malformed, descriptor: ends[1]), "\(malformed)")
        }
        #expect(!LogfmtLogHandler.isJournalStream(stream, descriptor: -1))
    }

    /// A small logfmt reader for the test: key=value pairs, values bare or
    /// quoted with \" \\ \n \r \t \uXXXX.
    static func fields(_ line: String) -> [String: String]? {
        var result: [String: String] = [:]
        var rest = Substring(line).unicodeScalars[...]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "=") else { return nil }
            let key = String(String.UnicodeScalarView(rest[..<equals]))
            rest = rest[rest.index(after: equals)...]
            var value = String.UnicodeScalarView()
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let scalar = rest.first, scalar != "\"" {
                    rest = rest.dropFirst()
                    guard scalar == "\\" else { value.append(scalar); continue }
                    guard let escape = rest.popFirst() else { return nil }
                    switch escape {
                    case "n": value.append("\n")
                    case "r": value.append("\r")
                    case "t": value.append("\t")
                    case "u":
                        let hex = String(String.UnicodeScalarView(rest.prefix(4)))
                        guard hex.count == 4, let code = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(code) else { return nil }
                        value.append(decoded)
                        rest = rest.dropFirst(4)
                    default: value.append(escape)
                    }
                }
                guard rest.popFirst() == "\"" else { return nil }
            } else {
                while let scalar = rest.first, scalar != " " { value.append(scalar); rest = rest.dropFirst() }
            }
            result[key] = String(value)
            if rest.first == " " { rest = rest.dropFirst() }
        }
        return result
    }
}
