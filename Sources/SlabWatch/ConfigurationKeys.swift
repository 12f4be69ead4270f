import Logging
import SlabWatchCore
import SlabWatchHTTP

/// Why a value was refused, without the key (the caller adds key and line).
struct InvalidValue: Error {
    var message: String
}

/// The table of every configuration key: how to parse its text and where it goes.
/// YAML and flags both go through it, so they cannot disagree.
extension Configuration {
    typealias Setter = @Sendable (inout Configuration, [String]) throws(InvalidValue) -> Void

    static let sections: Set<String> = ["web", "path", "sampler", "ring", "slab", "detector", "alerts", "log"]
    static let listKeys: Set<String> = ["web.listen-address", "detector.windows"]

    static let settings: [String: Setter] = [
        "web.listen-address": { config, values throws(InvalidValue) in
            guard !values.isEmpty else { throw InvalidValue(message: "needs at least one address") }
            config.listenAddresses = try values.map { (text) throws(InvalidValue) -> ListenAddress in
                do { return try ListenAddress(parsing: text) } catch { throw InvalidValue(message: "\(error)") }
            }
        },
        "web.max-connections": { config, values throws(InvalidValue) in
            config.limits.maxConnections = try integer(values, in: 1...65536)
        },
        "web.max-header-bytes": { config, values throws(InvalidValue) in
            config.limits.maxHeaderBytes = Int(try byteSize(values, in: 256...(1 << 20)))
        },
        "web.header-timeout": { config, values throws(InvalidValue) in
            config.limits.headerTimeoutSeconds = try duration(values, in: 0.1...600)
        },
        "web.idle-timeout": { config, values throws(InvalidValue) in
            config.limits.idleTimeoutSeconds = try duration(values, in: 0.1...3600)
        },
        "web.write-timeout": { config, values throws(InvalidValue) in
            config.limits.writeTimeoutSeconds = try duration(values, in: 0.1...600)
        },
        "path.procfs": { config, values throws(InvalidValue) in
            config.sampler.paths.procfs = try path(values)
        },
        "path.sysfs": { config, values throws(InvalidValue) in
            config.sampler.paths.sysfs = try path(values)
        },
        "sampler.interval": { config, values throws(InvalidValue) in
            config.sampler.intervalSeconds = try duration(values, in: 0.1...3600)
        },
        "sampler.max-caches": { config, values throws(InvalidValue) in
            config.sampler.limits.maxCaches = try integer(values, in: 16...1_000_000)
        },
        "sampler.max-source-bytes": { config, values throws(InvalidValue) in
            config.sampler.limits.maxSourceBytes = Int(try byteSize(values, in: 64 * 1024...(1 << 30)))
        },
        "ring.fine-samples": { config, values throws(InvalidValue) in
            config.ring.fineCapacity = try integer(values, in: 2...1_000_000)
        },
        "ring.coarse-samples": { config, values throws(InvalidValue) in
            config.ring.coarseCapacity = try integer(values, in: 2...1_000_000)
        },
        "ring.coarse-every": { config, values throws(InvalidValue) in
            config.ring.coarseEvery = try integer(values, in: 1...100_000)
        },
        "slab.include": { config, values throws(InvalidValue) in
            config.sampler.include = try pattern(values)
        },
        "slab.exclude": { config, values throws(InvalidValue) in
            config.sampler.exclude = try pattern(values)
        },
        "slab.min-memory-bytes": { config, values throws(InvalidValue) in
            config.sampler.minimumMemoryBytes = try byteSize(values, in: 0...UInt64.max)
        },
        "detector.min-r-squared": { config, values throws(InvalidValue) in
            config.sampler.detector.minRSquared = try fraction(values)
        },
        "detector.min-growth-bytes": { config, values throws(InvalidValue) in
            config.sampler.detector.minGrowthBytes = Double(try byteSize(values, in: 1...UInt64.max))
        },
        "detector.min-driver-change": { config, values throws(InvalidValue) in
            config.sampler.detector.minDriverChange = try number(values, in: 1...1e15)
        },
        "detector.min-bytes-per-unit": { config, values throws(InvalidValue) in
            config.sampler.detector.minBytesPerUnit = Double(try byteSize(values, in: 0...UInt64.max))
        },
        "detector.open-after": { config, values throws(InvalidValue) in
            config.sampler.detector.openAfterEvaluations = try integer(values, in: 1...10_000)
        },
        "detector.resolve-after": { config, values throws(InvalidValue) in
            config.sampler.detector.resolveAfterSeconds = try duration(values, in: 1...86_400 * 7)
        },
        "detector.resolve-share": { config, values throws(InvalidValue) in
            config.sampler.detector.resolveShare = try fraction(values)
        },
        "detector.hold-after": { config, values throws(InvalidValue) in
            config.sampler.detector.holdAfterSeconds = try duration(values, in: 1...86_400)
        },
        "detector.leak-grace": { config, values throws(InvalidValue) in
            config.sampler.detector.leakGraceSeconds = try duration(values, in: 0...86_400)
        },
        "detector.critical-memory-share": { config, values throws(InvalidValue) in
            config.sampler.detector.criticalMemoryShare = try fraction(values)
        },
        "detector.critical-exhaustion": { config, values throws(InvalidValue) in
            config.sampler.detector.criticalExhaustionSeconds = try duration(values, in: 0...86_400 * 365)
        },
        "detector.windows": { config, values throws(InvalidValue) in
            // A YAML list, or one comma-separated value (as a flag gives it).
            let texts = values.flatMap { $0.split(separator: ",").map { String($0.trimmingPrefix(" ")) } }
            guard !texts.isEmpty else { throw InvalidValue(message: "needs at least one window") }
            config.sampler.detector.windowsSeconds = try texts.map { (text) throws(InvalidValue) -> Double in
                try duration([text], in: 1...86_400 * 30)
            }
        },
        "detector.reclaimable": { config, values throws(InvalidValue) in
            config.sampler.detector.reportReclaimable = try boolean(values)
        },
        "detector.trend-limit-share": { config, values throws(InvalidValue) in
            config.sampler.detector.trendLimitShare = try fraction(values)
        },
        "alerts.cooldown": { config, values throws(InvalidValue) in
            config.alerts.cooldownSeconds = try duration(values, in: 0...86_400 * 7)
        },
        "alerts.trend-horizon": { config, values throws(InvalidValue) in
            config.alerts.trendHorizonSeconds = try duration(values, in: 60...86_400 * 365)
        },
        "alerts.journal-socket": { config, values throws(InvalidValue) in
            config.journalSocket = try path(values)
        },
        "log.level": { config, values throws(InvalidValue) in
            let text = try single(values)
            guard let level = Logger.Level(rawValue: text) else {
                throw InvalidValue(message: "'\(text)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            config.logLevel = level
        },
    ]

    private static func single(_ values: [String]) throws(InvalidValue) -> String {
        guard values.count == 1 else { throw InvalidValue(message: "expected one value") }
        return values[0]
    }

    private static func integer(_ values: [String], in range: ClosedRange<Int>) throws(InvalidValue) -> Int {
        let text = try single(values)
        guard let value = Int(text) else { throw InvalidValue(message: "'\(text)' is not a whole number") }
        guard range.contains(value) else {
            throw InvalidValue(message: "\(value) is out of range (\(range.lowerBound) to \(range.upperBound))")
        }
        return value
    }

    private static func number(_ values: [String], in range: ClosedRange<Double>) throws(InvalidValue) -> Double {
        let text = try single(values)
        guard let value = Double(text), value.isFinite else { throw InvalidValue(message: "'\(text)' is not a number") }
        guard range.contains(value) else { throw InvalidValue(message: "\(text) is out of range (\(range.lowerBound) to \(range.upperBound))") }
        return value
    }

    /// A regular expression, compiled here so a bad one is reported with its file line.
    private static func pattern(_ values: [String]) throws(InvalidValue) -> String {
        let text = try single(values)
        do { _ = try LinearRegex(text) } catch { throw InvalidValue(message: error.description) }
        return text
    }

    private static func fraction(_ values: [String]) throws(InvalidValue) -> Double {
        let text = try single(values)
        guard let value = Double(text), value > 0, value <= 1 else {
            throw InvalidValue(message: "'\(text)' must be a number above 0 and at most 1")
        }
        return value
    }

    private static func boolean(_ values: [String]) throws(InvalidValue) -> Bool {
        switch try single(values).lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw InvalidValue(message: "'\(values[0])' is not true or false")
        }
    }

    private static func duration(_ values: [String], in range: ClosedRange<Double>) throws(InvalidValue) -> Double {
        let text = try single(values)
        guard let value = Units.seconds(text) else {
            throw InvalidValue(message: "'\(text)' is not a duration (e.g. 500ms, 5s, 1m)")
        }
        guard range.contains(value) else {
            throw InvalidValue(message: "\(text) is out of range (\(range.lowerBound)s to \(range.upperBound)s)")
        }
        return value
    }

    private static func byteSize(_ values: [String], in range: ClosedRange<UInt64>) throws(InvalidValue) -> UInt64 {
        let text = try single(values)
        guard let value = Units.bytes(text) else {
            throw InvalidValue(message: "'\(text)' is not a size in bytes (e.g. 4096, 64KiB, 64MiB)")
        }
        guard range.contains(value) else {
            throw InvalidValue(message: "\(text) is out of range (\(range.lowerBound) to \(range.upperBound) bytes)")
        }
        return value
    }

    private static func path(_ values: [String]) throws(InvalidValue) -> String {
        let text = try single(values)
        guard text.hasPrefix("/") else { throw InvalidValue(message: "'\(text)' must be an absolute path") }
        return text.count > 1 && text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}
