/// Parsers for the human forms config values take: durations (`500ms`, `5s`,
/// `1m`, `1h`, or plain seconds) and byte sizes (`4096`, `64KiB`, `64MiB`,
/// `1GiB`, `10kB`, `10MB`). Each returns nil for anything else.
public enum Units: Sendable {
    static let durationSuffixes: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]

    /// A duration's seconds. The number is decimal digits with an optional
    /// fraction (`1.5s`): Swift's own Double parser would also take `0x10`,
    /// `1e3`, `inf` and `.5`, which no one means as a duration.
    public static func seconds(_ text: String) -> Double? {
        let (number, scale) = durationSuffixes.first { text.hasSuffix($0.0) }.map { (text.dropLast($0.0.count), $0.1) } ?? (text[...], 1)
        guard isDecimal(number), let value = Double(number), value.isFinite else { return nil }
        return value * scale
    }

    /// `seconds` as a flag would take it, in the largest unit that keeps it
    /// whole (`10ms`, `1m`, `1h`), for messages that name a range.
    public static func durationText(_ seconds: Double) -> String {
        if seconds == 0 { return "0s" }
        for (suffix, scale) in durationSuffixes.reversed() where seconds >= scale && suffix != "ms" {
            let count = seconds / scale
            if count == count.rounded(), count < 1e9 { return "\(Int(count))\(suffix)" }
        }
        let milliseconds = (seconds * 1000).rounded()
        return milliseconds.isFinite && abs(milliseconds) < 1e15 ? "\(Int(milliseconds))ms" : "\(seconds)s"
    }

    /// `12`, `0.5`, `1.25`: digits, and at most one `.` with digits on both sides.
    private static func isDecimal(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return (1...2).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }
    }

    /// `bytes` as a flag would take it, in the largest binary unit that
    /// keeps it whole (`64KiB`, `1MiB`; `1000` stays bytes), for help texts.
    public static func sizeText(_ bytes: UInt64) -> String {
        let units: [(String, UInt64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        for (suffix, scale) in units where bytes >= scale && bytes % scale == 0 { return "\(bytes / scale)\(suffix)" }
        return "\(bytes)"
    }

    public static func bytes(_ text: String) -> UInt64? {
        let suffixes: [(String, UInt64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("kB", 1000), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
            ("B", 1),
        ]
        for (suffix, scale) in suffixes where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(suffix.count)) else { return nil }
            let (value, overflow) = number.multipliedReportingOverflow(by: scale)
            return overflow ? nil : value
        }
        return UInt64(text)
    }
}
