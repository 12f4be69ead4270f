/// Numbers as a person reads them in a sentence or a journal field, without
/// Foundation: `32.0 KiB`, `2 h 10 min`, `1,000,000`, `0.998`.
public enum Human: Sendable {
    /// `32.0 KiB`, `31.5 GiB`, `512 B`.
    public static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var scaled = value, unit = 0
        while abs(scaled) >= 1024 && unit < units.count - 1 { scaled /= 1024; unit += 1 }
        return unit == 0 ? "\(decimal(scaled, abs(scaled) < 10 ? 1 : 0)) B" : "\(decimal(scaled, 1)) \(units[unit])"
    }

    /// A window's length: `45 s`, `10 min`, `2.5 h`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 120 { return "\(decimal(seconds, 0)) s" }
        if seconds < 7200 { return "\(decimal(seconds / 60, seconds.truncatingRemainder(dividingBy: 60) == 0 ? 0 : 1)) min" }
        return "\(decimal(seconds / 3600, 1)) h"
    }

    /// Time since something happened: `45 s`, `12 min`, `2 h 10 min`, `3 d 4 h`.
    public static func elapsed(_ seconds: Double) -> String {
        let s = Int64(max(0, seconds.isFinite ? seconds : 0).rounded())
        if s < 120 { return "\(s) s" }
        let minutes = s / 60
        if minutes < 120 { return "\(minutes) min" }
        let hours = minutes / 60
        if hours < 48 { return minutes % 60 == 0 ? "\(hours) h" : "\(hours) h \(minutes % 60) min" }
        return hours % 24 == 0 ? "\(hours / 24) d" : "\(hours / 24) d \(hours % 24) h"
    }

    /// `1,000,000`.
    public static func grouped(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 9e18 else { return "∞" }
        let digits = String(Int64(value.rounded()).magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "−" : "") + out
    }

    /// Fixed-point: `decimal(0.9981, 3)` is `0.998`.
    public static func decimal(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return "∞" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return value < 0 ? "-∞" : "∞" }
        let whole = Int64(scaled / scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if places > 0 {
            let fraction = String(Int64(scaled) - whole * Int64(scale))
            text += "." + String(repeating: "0", count: places - fraction.count) + fraction
        }
        return text
    }
}
