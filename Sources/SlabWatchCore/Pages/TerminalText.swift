/// Text from outside slabwatch (a cache name the kernel reports, a daemon's
/// answer to `top --url`, a process's `comm` or cgroup, a report given to
/// `diff`) made safe to show on a terminal or in a log line. Every text a
/// person reads goes through it: `top`'s screen field by field, the reports
/// of `attribute`, `measure`, `diff` and `replay` line by line, and every
/// message on stderr.
///
/// A terminal acts on control characters: C0 (U+0000–U+001F, ESC among them),
/// DEL, and C1 (U+0080–U+009F: U+009B is CSI and U+009D is OSC, so one
/// scalar can start an escape sequence that sets the title or the colours; a
/// terminal in an 8-bit mode also reads the second byte of their UTF-8 form
/// as the control itself). None of them belongs in a name or a message.
public enum TerminalText: Sendable {
    /// True for every C0 control, DEL and C1 control.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// `text` with each control character shown as `?`; everything else,
    /// other scripts included, is kept as it is.
    public static func printable(_ text: some StringProtocol) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return String(text) }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { isControl($0) ? "?" : $0 }))
    }

    /// A report for a terminal: each line `printable` — a newline inside a
    /// line too, so no name can start a line of its own — joined by newlines,
    /// with one at the end.
    public static func printable(lines: some Sequence<String>) -> String {
        lines.map { printable($0) + "\n" }.joined()
    }
}
