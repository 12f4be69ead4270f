/// Reads a `slabwatch measure --json` report back into a `Measurement`
/// (for `slabwatch diff`). Budgets and attributions in the file are not read:
/// a diff compares costs. Every failure is an error naming what is wrong,
/// never a crash.
public enum MeasurementReader: Sendable {
    public struct ReadError: Error, Equatable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// - Throws: `ReadError` when `bytes` are not JSON, or not a measurement.
    public static func read(_ bytes: [UInt8]) throws(ReadError) -> Measurement {
        let document: JSONValue
        do { document = try JSONValue.parse(bytes) } catch { throw ReadError(description: error.description) }
        guard case .object = document else { throw ReadError(description: "not a measurement: the document is not an object") }
        let arguments = try array(document, "command").map { value throws(ReadError) -> String in
            guard let text = value.string else { throw ReadError(description: "command: not a list of strings") }
            return text
        }
        let command = Measurement.Command(arguments: arguments, exitStatus: Int32(try integer(document, "exit_status", in: Int(Int32.min)..<Int(Int32.max))),
                                          wallSeconds: try number(document, "wall_seconds", in: Plausible.seconds))
        let drivers = try array(document, "drivers").map { value throws(ReadError) in
            Measurement.DriverMovement(driver: try driver(value, "driver"), inodeCache: try optionalString(value, "inode_cache"),
                                       before: try number(value, "before", in: Plausible.count), peak: try number(value, "peak", in: Plausible.count),
                                       after: try number(value, "after", in: Plausible.count))
        }
        let caches = try array(document, "caches").map { value throws(ReadError) in try cache(value) }
        // Reports before quiet caches were recorded have none.
        let quiet = document["quiet_caches"] == nil ? [] : try array(document, "quiet_caches").map { value throws(ReadError) in
            Measurement.QuietCache(slab: try string(value, "slab"), noiseFloorBytes: try Self.bytes(value, "noise_floor_bytes"),
                                   keptBytes: try number(value, "kept_bytes", in: Plausible.signedBytes))
        }
        let total = document["slab_unreclaimable"]
        return Measurement(
            command: command, intervalSeconds: try number(document, "interval_seconds", in: Plausible.seconds),
            settleSeconds: try number(document, "settle_seconds", in: Plausible.seconds), samples: try integer(document, "samples", in: 0..<(1 << 40)),
            runSamples: try integer(document, "run_samples", in: 0..<(1 << 40)),
            noiseBytes: try Self.bytes(document, "noise_bytes"),
            drivers: drivers, caches: caches, slabUnreclaimable: total == nil || total == .null ? nil : try cache(total!), quietCaches: quiet)
    }

    private static func cache(_ value: JSONValue) throws(ReadError) -> Measurement.CacheReport {
        let slab = try string(value, "slab")
        let footprints = Measurement.Footprints(beforeBytes: try bytes(value, "before_bytes"), peakBytes: try bytes(value, "peak_bytes"),
                                                afterBytes: try bytes(value, "after_bytes"))
        var cost: Measurement.Cost?
        if let name = try optionalString(value, "driver") {
            guard let driver = GrowthDriver(rawValue: name) else { throw ReadError(description: "\(slab): unknown driver '\(name)'") }
            cost = Measurement.Cost(driver: driver, inodeCache: try optionalString(value, "inode_cache"),
                                    bytesPerUnit: try number(value, "bytes_per_unit", in: Plausible.signedBytes),
                                    rSquared: try number(value, "r_squared", in: Plausible.rSquared),
                                    driverChange: try number(value, "driver_change", in: Plausible.count),
                                    peakBytesPerUnit: try optionalNumber(value, "peak_bytes_per_unit", in: Plausible.signedBytes))
        }
        let fits = try array(value, "fits").map { fit throws(ReadError) in
            Finding.DriverFit(driver: try driver(fit, "driver"), inodeCache: try optionalString(fit, "inode_cache"),
                              bytesPerUnit: try number(fit, "bytes_per_unit", in: Plausible.signedBytes),
                              rSquared: try number(fit, "r_squared", in: Plausible.rSquared),
                              driverChange: try number(fit, "driver_change", in: Plausible.count), flagged: fit["flagged"]?.bool ?? false)
        }
        return Measurement.CacheReport(slab: slab, reclaimable: value["reclaimable"]?.bool, footprints: footprints, cost: cost,
                                       notJudged: try optionalString(value, "not_judged"), fits: fits)
    }

    /// What a figure of a real report can be: anything beyond is a crafted
    /// or damaged file, refused rather than shown as "∞ PiB" or "R² -∞".
    enum Plausible {
        /// A cost per unit, or bytes kept, either way: no cache holds more than 2⁶⁴ bytes.
        static let signedBytes = -1.8e19...1.8e19
        /// A driver's count, or its change: inodes, dentries, files (2⁵³, exact in a Double).
        static let count = -9.0e15...9.0e15
        /// A fit's R², which the fit clamps to 0…1.
        static let rSquared = 0.0...1.0
        /// A wall time, interval or settling: up to about 30 years.
        static let seconds = 0.0...1e9
    }

    private static func number(_ value: JSONValue, _ key: String,
                               in range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude) throws(ReadError) -> Double {
        guard let number = value[key]?.number, number.isFinite else { throw ReadError(description: "not a measurement: '\(key)' is not a number") }
        guard range.contains(number) else { throw ReadError(description: "not a measurement: '\(key)' is \(number), outside \(range.lowerBound)…\(range.upperBound)") }
        return number
    }

    private static func optionalNumber(_ value: JSONValue, _ key: String, in range: ClosedRange<Double>) throws(ReadError) -> Double? {
        switch value[key] {
        case nil, .null?: return nil
        default: return try number(value, key, in: range)
        }
    }

    /// A whole number in `range` (a Double beyond Int's range would trap on conversion).
    private static func integer(_ value: JSONValue, _ key: String, in range: Range<Int>) throws(ReadError) -> Int {
        let number = try number(value, key)
        guard number == number.rounded(), number >= Double(range.lowerBound), number < Double(range.upperBound) else {
            throw ReadError(description: "not a measurement: '\(key)' is not a whole number in range")
        }
        return Int(number)
    }

    private static func bytes(_ value: JSONValue, _ key: String) throws(ReadError) -> UInt64 {
        let number = try number(value, key)
        guard number >= 0, number < 1.8e19 else { throw ReadError(description: "not a measurement: '\(key)' is not a byte count") }
        return UInt64(number)
    }

    private static func string(_ value: JSONValue, _ key: String) throws(ReadError) -> String {
        guard let text = value[key]?.string else { throw ReadError(description: "not a measurement: '\(key)' is not a string") }
        return text
    }

    private static func optionalString(_ value: JSONValue, _ key: String) throws(ReadError) -> String? {
        switch value[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw ReadError(description: "not a measurement: '\(key)' is not a string")
        }
    }

    private static func driver(_ value: JSONValue, _ key: String) throws(ReadError) -> GrowthDriver {
        let name = try string(value, key)
        guard let driver = GrowthDriver(rawValue: name) else { throw ReadError(description: "not a measurement: unknown driver '\(name)'") }
        return driver
    }

    private static func array(_ value: JSONValue, _ key: String) throws(ReadError) -> [JSONValue] {
        guard let items = value[key]?.array else { throw ReadError(description: "not a measurement: '\(key)' is not a list") }
        return items
    }
}
