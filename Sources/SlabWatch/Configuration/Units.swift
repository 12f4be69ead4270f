/// Parsers for the human forms config values take: durations (`500ms`, `5s`,
/// `1m`, `1h`, or plain seconds) and byte sizes (`4096`, `64KiB`, `64MiB`,
/// `1GiB`, `10kB`, `10MB`). Each returns nil for anything else.
public enum Units: Sendable {
    public static func seconds(_ text: String) -> Double? {
        let suffixes: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in suffixes where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number.isFinite, number >= 0 else { return nil }
            return number * scale
        }
        guard let number = Double(text), number.isFinite, number >= 0 else { return nil }
        return number
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
