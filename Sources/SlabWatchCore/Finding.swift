/// What a cache's footprint may grow with (the x of the regression).
public enum GrowthDriver: String, CaseIterable, Sendable, Comparable {
    case inodes
    case dentries
    case openFiles = "open_files"
    case time

    public static func < (a: GrowthDriver, b: GrowthDriver) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The ring column holding this driver (time is the slot's timestamp).
    var ringColumn: SampleRing.Driver? {
        switch self {
        case .inodes: .inodes
        case .dentries: .dentries
        case .openFiles: .openFiles
        case .time: nil
        }
    }
}

/// A cache the detector flagged: it grows linearly with a driver.
public struct Finding: Sendable, Equatable {
    public enum Classification: String, Sendable {
        /// The driver fell and the cache fell along the same line: memory
        /// attached to cached objects, not a leak.
        case tracksEviction = "tracks-eviction"
        /// The driver fell and the cache did not.
        case leakLike = "leak-like"
        /// The driver has only risen so far.
        case undetermined
    }

    public enum State: String, Sendable { case open, resolved }

    /// `info` for reclaimable caches, `warning` when opened, `critical` when the
    /// cache holds a large share of memory or would exhaust it soon.
    public enum Severity: String, Sendable, Comparable, CaseIterable {
        case info, warning, critical
        public static func < (a: Severity, b: Severity) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// A driver's fit over the finding's window.
    public struct DriverFit: Sendable, Equatable {
        public var driver: GrowthDriver
        public var bytesPerUnit: Double
        public var rSquared: Double
        public var driverChange: Double
        /// Whether this driver alone passed every threshold.
        public var flagged: Bool
    }

    /// One point the fit used, for plotting.
    public struct EvidencePoint: Sendable, Equatable {
        public var timestampMilliseconds: Int64
        public var driver: Double
        public var footprintBytes: UInt64
    }

    public var slab: String
    public var driver: GrowthDriver
    public var bytesPerUnit: Double
    public var rSquared: Double
    public var windowSeconds: Double
    /// Footprint change over the window (last − first), bytes.
    public var growthBytes: Double
    /// Driver change over the window (last − first), in its unit.
    public var driverChange: Double
    /// Footprint growth per second over the window (for exhaustion projections).
    public var bytesPerSecond: Double
    public var reclaimable: Bool?
    public var classification: Classification
    public var state: State
    public var severity: Severity
    public var firstSeenMilliseconds: Int64
    public var lastSeenMilliseconds: Int64
    /// Every driver fitted over the same window, the named one included, sorted by driver.
    public var fits: [DriverFit]
    public var evidence: [EvidencePoint]

    // Lifecycle bookkeeping (not rendered).
    var peakFootprint: UInt64 = 0
    var peakFootprintAt: Int64 = 0
    var peakDriver: Double = 0
    var footprintAtPeakDriver: UInt64 = 0
    var driverAtOpen: Double = 0
    var driverFellAt: Int64?

    /// The other drivers that also passed every threshold.
    public var otherDrivers: [DriverFit] { fits.filter { $0.driver != driver && $0.flagged } }

    /// One sentence a person can act on.
    public var message: String {
        var text = "\(slab) grows \(Self.bytes(bytesPerUnit)) \(Self.perUnit(driver)) "
        text += "(R² \(Self.decimal(rSquared, 3)) over \(Self.duration(windowSeconds)), "
        text += "\(growthBytes >= 0 ? "+" : "−")\(Self.bytes(abs(growthBytes))) "
        text += driver == .time ? "). " : "while \(Self.noun(driver)) rose by \(Self.grouped(driverChange))). "
        switch reclaimable {
        case true: text += "Reclaimable (counted in SReclaimable). "
        case false: text += "Unreclaimable. "
        default: text += "Reclaimability unknown. "
        }
        switch classification {
        case .tracksEviction:
            text += "It fell with the \(Self.singular(driver)) count when \(Self.noun(driver)) were evicted: memory attached to cached \(Self.noun(driver)), not a leak."
        case .leakLike:
            text += "The \(Self.singular(driver)) count fell but it did not: leak-like."
        case .undetermined:
            text += driver == .time
                ? "It does not follow inodes, dentries or open files: check for a leak."
                : "\(Self.noun(driver).prefix(1).uppercased() + Self.noun(driver).dropFirst()) have only risen so far: evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-\(Self.singular(driver)) cache from a leak."
        }
        return text
    }

    static func perUnit(_ driver: GrowthDriver) -> String {
        switch driver {
        case .inodes: "per cached inode"
        case .dentries: "per dentry"
        case .openFiles: "per open file"
        case .time: "per second"
        }
    }

    static func noun(_ driver: GrowthDriver) -> String {
        switch driver {
        case .inodes: "inodes"
        case .dentries: "dentries"
        case .openFiles: "open files"
        case .time: "time"
        }
    }

    static func singular(_ driver: GrowthDriver) -> String {
        switch driver {
        case .inodes: "inode"
        case .dentries: "dentry"
        case .openFiles: "open file"
        case .time: "second"
        }
    }

    /// `32.0 KiB`, `31.5 GiB`, `512 B`.
    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var scaled = value, unit = 0
        while abs(scaled) >= 1024 && unit < units.count - 1 { scaled /= 1024; unit += 1 }
        return unit == 0 ? "\(decimal(scaled, abs(scaled) < 10 ? 1 : 0)) B" : "\(decimal(scaled, 1)) \(units[unit])"
    }

    /// `10 min`, `2.5 h`, `45 s`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 120 { return "\(decimal(seconds, 0)) s" }
        if seconds < 7200 { return "\(decimal(seconds / 60, seconds.truncatingRemainder(dividingBy: 60) == 0 ? 0 : 1)) min" }
        return "\(decimal(seconds / 3600, 1)) h"
    }

    /// `1,000,000`.
    static func grouped(_ value: Double) -> String {
        let digits = String(Int64(value.rounded()).magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "−" : "") + out
    }

    /// Fixed-point without Foundation: `decimal(0.9981, 3)` is `0.998`.
    static func decimal(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return "∞" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int64(scaled / scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if places > 0 {
            let fraction = String(Int64(scaled) - whole * Int64(scale))
            text += "." + String(repeating: "0", count: places - fraction.count) + fraction
        }
        return text
    }
}
