import LinearRegex
import Logging
import SlabWatchCore
import SlabWatchHTTP
import Systemd

/// Why a value was refused, without the key (the caller adds key and line).
struct InvalidValue: Error {
    var message: String
}

/// One configuration key: its name, its default as a person writes it, a
/// line saying what it does, whether SIGHUP applies it, and how to set it.
struct ConfigurationKey: Sendable {
    let name: String
    let defaultText: String
    let reloadable: Bool
    /// Takes a YAML list (or repeated flags) rather than one value.
    let isList: Bool
    let summary: String
    let set: Configuration.Setter

    init(_ name: String, default defaultText: String, reloadable: Bool, list isList: Bool = false, _ summary: String,
         set: @escaping Configuration.Setter) {
        self.name = name
        self.defaultText = defaultText
        self.reloadable = reloadable
        self.isList = isList
        self.summary = summary
        self.set = set
    }
}

/// The table of every configuration key: how to parse its text and where it goes.
/// YAML and flags both go through it, so they cannot disagree.
extension Configuration {
    typealias Setter = @Sendable (inout Configuration, [String]) throws(InvalidValue) -> Void

    /// Every key, in the order the configuration reference and
    /// `config/slabwatch.yml` list them. YAML, the dotted flags, `--help`, the
    /// reference's table and the shipped file (`exampleYAML`) all come from here.
    static let keys: [ConfigurationKey] = [
        .init("web.listen-address", default: ":10077", reloadable: false, list: true,
              "one address or a list: `127.0.0.1:10077`, `[::1]:10077`, `:10077` (all interfaces, IPv6 and IPv4)") { config, values throws(InvalidValue) in
            guard !values.isEmpty else { throw InvalidValue(message: "needs at least one address") }
            config.listenAddresses = try values.map { (text) throws(InvalidValue) -> ListenAddress in
                do { return try ListenAddress(parsing: text) } catch { throw InvalidValue(message: "\(error)") }
            }
        },
        .init("web.max-connections", default: "64", reloadable: false,
              "at this many connections a new one makes room by closing the one idle longest; 503 only when all are owed a response") { config, values throws(InvalidValue) in
            config.limits.maxConnections = try integer(values, in: 1...65536)
        },
        .init("web.max-header-bytes", default: "8KiB", reloadable: false,
              "larger request heads get 431") { config, values throws(InvalidValue) in
            config.limits.maxHeaderBytes = Int(try byteSize(values, in: 256...(1 << 20)))
        },
        .init("web.header-timeout", default: "5s", reloadable: false,
              "from a request's first byte to the end of its head") { config, values throws(InvalidValue) in
            config.limits.headerTimeoutSeconds = try duration(values, in: 0.1...600)
        },
        .init("web.idle-timeout", default: "60s", reloadable: false,
              "idle keep-alive connections are closed") { config, values throws(InvalidValue) in
            config.limits.idleTimeoutSeconds = try duration(values, in: 0.1...3600)
        },
        .init("web.write-timeout", default: "10s", reloadable: false,
              "time a client may take to read a response") { config, values throws(InvalidValue) in
            config.limits.writeTimeoutSeconds = try duration(values, in: 0.1...600)
        },
        .init("web.config-file", default: "\"\"", reloadable: true,
              "exporter-toolkit web configuration (TLS, client certificates, basic auth, headers; see docs/operating/security.md), the file node_exporter reads with `--web.config.file`; empty: plain HTTP for anyone who can reach the port; re-read on SIGHUP and when it or a file it names changes; also `--web.config.file`") { config, values throws(InvalidValue) in
            let text = try single(values)
            config.webConfigFile = text.isEmpty ? "" : try path(values)
        },
        .init("path.procfs", default: "/proc", reloadable: true,
              "where to read the kernel's procfs (a recorded tree works too)") { config, values throws(InvalidValue) in
            config.sampler.paths.procfs = try path(values)
        },
        .init("path.sysfs", default: "/sys", reloadable: true,
              "where to read the kernel's sysfs") { config, values throws(InvalidValue) in
            config.sampler.paths.sysfs = try path(values)
        },
        .init("path.cgroupfs", default: "\"\"", reloadable: true,
              "where the cgroup file systems are mounted, as /sys/fs/cgroup on the node (v2 there, or v1's `memory` below it): the node's tree mounted into a pod (deploy/kubernetes/overlays/cgroups); empty: the memory hierarchy is found from /proc's mountinfo") { config, values throws(InvalidValue) in
            let text = try single(values)
            config.sampler.paths.cgroupfs = text.isEmpty ? "" : try path(values)
        },
        .init("sampler.interval", default: "5s", reloadable: true,
              "time between samples (`500ms`, `5s`, `1m`)") { config, values throws(InvalidValue) in
            config.sampler.intervalSeconds = try duration(values, in: 0.1...3600)
        },
        .init("sampler.max-caches", default: "2048", reloadable: false,
              "caches kept per sample; beyond it the smallest footprints are left out (counted in `slabwatch_caches{state=\"over_limit\"}`)") { config, values throws(InvalidValue) in
            config.sampler.limits.maxCaches = try integer(values, in: 16...1_000_000)
        },
        .init("sampler.max-cgroups", default: "512", reloadable: false,
              "memory cgroups whose kernel memory is exported (`slabwatch_cgroup_kernel_memory_bytes`), the largest; the rest are summed as `cgroup=\"other\"`; who is charged for a finding is ranked among the largest \(CgroupHistory.maxColumns) of them") { config, values throws(InvalidValue) in
            config.sampler.limits.maxCgroups = try integer(values, in: 0...10_000)
        },
        .init("sampler.max-source-bytes", default: "4MiB", reloadable: true,
              "source files larger than this are refused (the source is down)") { config, values throws(InvalidValue) in
            config.sampler.limits.maxSourceBytes = Int(try byteSize(values, in: 64 * 1024...(1 << 30)))
        },
        .init("ring.fine-samples", default: "720", reloadable: false,
              "samples at full resolution (1 hour at 5 s)") { config, values throws(InvalidValue) in
            config.ring.fineCapacity = try integer(values, in: 2...1_000_000)
        },
        .init("ring.coarse-samples", default: "720", reloadable: false,
              "samples in the coarse tier") { config, values throws(InvalidValue) in
            config.ring.coarseCapacity = try integer(values, in: 2...1_000_000)
        },
        .init("ring.coarse-every", default: "12", reloadable: false,
              "every Nth sample also goes to the coarse tier (1 a minute at 5 s → 12 hours)") { config, values throws(InvalidValue) in
            config.ring.coarseEvery = try integer(values, in: 1...100_000)
        },
        .init("slab.include", default: "\"\"", reloadable: true,
              "regex (RE2 syntax, linear time) on the whole cache name: only matching caches are exported to `/metrics`") { config, values throws(InvalidValue) in
            config.sampler.include = try pattern(values)
        },
        .init("slab.exclude", default: "\"\"", reloadable: true,
              "regex on the whole cache name: matching caches are not exported to `/metrics`") { config, values throws(InvalidValue) in
            config.sampler.exclude = try pattern(values)
        },
        .init("slab.min-memory-bytes", default: "0", reloadable: true,
              "caches with a smaller footprint are not exported (`64KiB`, `1MiB`, …)") { config, values throws(InvalidValue) in
            config.sampler.minimumFootprintBytes = try byteSize(values, in: 0...UInt64.max)
        },
        .init("slab.export", default: "bounded", reloadable: true,
              "which of the caches the three keys above admit are exported: `bounded`, every cache with a finding plus the top caches by footprint and by growth (the two keys below); `all`, every one (about nine series per cache)") { config, values throws(InvalidValue) in
            let text = try single(values)
            guard text == "bounded" || text == "all" else { throw InvalidValue(message: "'\(text)' is not one of bounded, all") }
            config.sampler.bound.all = text == "all"
        },
        .init("slab.top-by-footprint", default: "20", reloadable: true,
              "bounded: the largest caches exported; one that falls out of this top stays exported until it has been out for \(Human.duration(ExportBound.holdSeconds)) (0: none by footprint)") { config, values throws(InvalidValue) in
            config.sampler.bound.topByFootprint = try integer(values, in: 0...100_000)
        },
        .init("slab.top-by-growth", default: "10", reloadable: true,
              "bounded: the caches whose footprint grew most over the last \(Human.duration(ExportBound.growthWindowSeconds)), by at least \(Human.bytes(Double(ExportBound.minimumGrowthBytes))), exported, and held like the largest (0: none by growth)") { config, values throws(InvalidValue) in
            config.sampler.bound.topByGrowth = try integer(values, in: 0...100_000)
        },
        .init("detector.min-r-squared", default: "0.9", reloadable: true,
              "R² a fit must reach") { config, values throws(InvalidValue) in
            config.sampler.detector.minRSquared = try fraction(values)
        },
        .init("detector.min-growth-bytes", default: "64MiB", reloadable: true,
              "footprint growth over the window") { config, values throws(InvalidValue) in
            config.sampler.detector.minGrowthBytes = Double(try byteSize(values, in: 1...UInt64.max))
        },
        .init("detector.min-driver-change", default: "10000", reloadable: true,
              "inodes/dentries/negative dentries/open files the driver must move") { config, values throws(InvalidValue) in
            config.sampler.detector.minDriverChange = try number(values, in: 1...1e15)
        },
        .init("detector.min-socket-change", default: "1000", reloadable: true,
              "sockets the driver must move") { config, values throws(InvalidValue) in
            config.sampler.detector.minSocketChange = try number(values, in: 1...1e15)
        },
        .init("detector.min-task-change", default: "200", reloadable: true,
              "threads the driver must move") { config, values throws(InvalidValue) in
            config.sampler.detector.minTaskChange = try number(values, in: 1...1e15)
        },
        .init("detector.min-cgroup-change", default: "100", reloadable: true,
              "memory cgroups (all, or dying) the driver must move") { config, values throws(InvalidValue) in
            config.sampler.detector.minCgroupChange = try number(values, in: 1...1e15)
        },
        .init("detector.min-bytes-per-unit", default: "16", reloadable: true,
              "smallest slope per inode/dentry/open file") { config, values throws(InvalidValue) in
            config.sampler.detector.minBytesPerUnit = Double(try byteSize(values, in: 0...UInt64.max))
        },
        .init("detector.windows", default: "[5m, 15m, 1h, 3h, 12h]", reloadable: true, list: true,
              "window lengths (a flag takes `5m,15m`)") { config, values throws(InvalidValue) in
            // A YAML list, or one comma-separated value (as a flag gives it).
            let texts = values.flatMap { $0.split(separator: ",").map { String($0.trimmingPrefix(" ")) } }
            guard !texts.isEmpty else { throw InvalidValue(message: "needs at least one window") }
            config.sampler.detector.windowsSeconds = try texts.map { (text) throws(InvalidValue) -> Double in
                try duration([text], in: 1...86_400 * 30)
            }
        },
        .init("detector.inode-caches", default: InodeCacheSelector.defaultPattern, reloadable: true,
              "regex on the whole cache name: caches holding one filesystem's inodes, whose object counts are drivers of the other caches (empty: only the global inode count)") { config, values throws(InvalidValue) in
            let d = config.sampler.detector.inodeCaches
            config.sampler.detector.inodeCaches = try inodeCaches(pattern: try single(values), exclude: d.excludePattern)
        },
        .init("detector.inode-caches-exclude", default: InodeCacheSelector.defaultExcludePattern, reloadable: true,
              "regex on the whole cache name: look-alikes that count something else (LSM blobs, journal heads)") { config, values throws(InvalidValue) in
            let d = config.sampler.detector.inodeCaches
            config.sampler.detector.inodeCaches = try inodeCaches(pattern: d.pattern, exclude: try single(values))
        },
        .init("detector.open-after", default: "3", reloadable: true,
              "passing evaluations in a row before a finding opens") { config, values throws(InvalidValue) in
            config.sampler.detector.openAfterEvaluations = try integer(values, in: 1...10_000)
        },
        .init("detector.resolve-after", default: "10m", reloadable: true,
              "how long the memory must stay back before a finding resolves; reclaimable caches also resolve after this long without growth") { config, values throws(InvalidValue) in
            config.sampler.detector.resolveAfterSeconds = try duration(values, in: 1...86_400 * 7)
        },
        .init("detector.resolve-share", default: "0.75", reloadable: true,
              "the memory is back once the footprint fell by this share of its gain, from the peak towards the level before the rise") { config, values throws(InvalidValue) in
            config.sampler.detector.resolveShare = try fraction(values)
        },
        .init("detector.hold-after", default: "2m", reloadable: true,
              "a finding is `holding` once its footprint has neither risen nor fallen for this long") { config, values throws(InvalidValue) in
            config.sampler.detector.holdAfterSeconds = try duration(values, in: 1...86_400)
        },
        .init("detector.leak-grace", default: "5m", reloadable: true,
              "time a cache has to follow its falling driver") { config, values throws(InvalidValue) in
            config.sampler.detector.leakGraceSeconds = try duration(values, in: 0...86_400)
        },
        .init("detector.critical-memory-share", default: "0.1", reloadable: true,
              "critical above this share of MemTotal …") { config, values throws(InvalidValue) in
            config.sampler.detector.criticalMemoryShare = try fraction(values)
        },
        .init("detector.critical-exhaustion", default: "6h", reloadable: true,
              "… or, while rising, when MemAvailable would be used up sooner") { config, values throws(InvalidValue) in
            config.sampler.detector.criticalExhaustionSeconds = try duration(values, in: 0...86_400 * 365)
        },
        .init("detector.reclaimable", default: "true", reloadable: true,
              "report reclaimable caches (severity info)") { config, values throws(InvalidValue) in
            config.sampler.detector.reportReclaimable = try boolean(values)
        },
        .init("detector.trend-limit-share", default: "0.5", reloadable: true,
              "SUnreclaim share of MemTotal the trend projects towards") { config, values throws(InvalidValue) in
            config.sampler.detector.trendLimitShare = try fraction(values)
        },
        .init("alerts.cooldown", default: "10m", reloadable: true,
              "after a finding of a cache opened, a new finding of the same cache within this long does not alert (its transitions are held back too)") { config, values throws(InvalidValue) in
            config.alerts.cooldownSeconds = try duration(values, in: 0...86_400 * 7)
        },
        .init("alerts.trend-horizon", default: "24h", reloadable: true,
              "alert when SUnreclaim would reach its limit within this long") { config, values throws(InvalidValue) in
            config.alerts.trendHorizonSeconds = try duration(values, in: 60...86_400 * 365)
        },
        .init("alerts.journal-socket", default: Journal.defaultSocketPath, reloadable: false,
              "the journald socket alerts are sent to (a namespace's is `/run/systemd/journal.NAME/socket`); until a socket is there they go to stderr; once one has been, an alert it does not take is counted `failed`, logged, and written to stderr") { config, values throws(InvalidValue) in
            config.journalSocket = try socketPath(values)
        },
        .init("state.directory", default: "/var/lib/slabwatch", reloadable: false,
              "where history, findings and alert cooldowns are kept across restarts (the unit's `StateDirectory=`); empty: not kept") { config, values throws(InvalidValue) in
            let text = try single(values)
            config.state.directory = text.isEmpty ? "" : try path(values)
        },
        .init("state.checkpoint-interval", default: "1m", reloadable: false,
              "how often the state is written (and once at a clean stop)") { config, values throws(InvalidValue) in
            config.state.checkpointIntervalSeconds = try duration(values, in: 1...86_400)
        },
        .init("attribution.enabled", default: "false", reloadable: true,
              "when a finding on an unreclaimable cache opens or rises again, trace who allocates it (needs root or the attribution drop-in; see docs/attribution.md)") { config, values throws(InvalidValue) in
            config.attribution.enabled = try boolean(values)
        },
        .init("attribution.duration", default: "10s", reloadable: true,
              "how long one tracing session lasts") { config, values throws(InvalidValue) in
            config.attribution.durationSeconds = try duration(values, in: 0.1...600)
        },
        .init("attribution.max-events", default: "200000", reloadable: true,
              "a session stops at this many events, whatever its duration") { config, values throws(InvalidValue) in
            config.attribution.maxEvents = try integer(values, in: 1...100_000_000)
        },
        .init("attribution.buffer-size", default: "4MiB", reloadable: true,
              "the session's ring buffer per CPU (lost events are counted and reported)") { config, values throws(InvalidValue) in
            config.attribution.bufferKiBPerCPU = Int(try byteSize(values, in: 64 * 1024...(1 << 30)) / 1024)
        },
        .init("attribution.cooldown", default: "1h", reloadable: true,
              "at most one session per cache in this long") { config, values throws(InvalidValue) in
            config.attribution.cooldownSeconds = try duration(values, in: 0...86_400 * 7)
        },
        .init("attribution.source", default: "auto", reloadable: true,
              "`auto` (BPF where the kernel and privileges allow, else tracefs; the result says why), or one forced: `bpf`, `hist`, `trace`") { config, values throws(InvalidValue) in
            let text = try single(values)
            guard let source = AttributionSettings.Source(rawValue: text) else {
                throw InvalidValue(message: "'\(text)' is not one of \(AttributionSettings.Source.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.attribution.source = source
        },
        .init("attribution.max-live-objects", default: "1048576", reloadable: true,
              "objects a BPF session follows to their free at most (about 100 bytes of kernel memory each while followed; more are counted, not followed, and reported)") { config, values throws(InvalidValue) in
            config.attribution.maxLiveObjects = try integer(values, in: 1024...(1 << 26))
        },
        .init("attribution.btf", default: "/sys/kernel/btf/vmlinux", reloadable: true,
              "the kernel's BTF, which a BPF session needs; where it is missing, sessions trace with tracefs") { config, values throws(InvalidValue) in
            config.attribution.btfPath = try path(values)
        },
        .init("log.level", default: "info", reloadable: false,
              "`trace` … `critical`") { config, values throws(InvalidValue) in
            let text = try single(values)
            guard let level = Logger.Level(rawValue: text) else {
                throw InvalidValue(message: "'\(text)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            config.logLevel = level
        },
    ]

    static let settings: [String: Setter] = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0.set) })
    static let listKeys: Set<String> = Set(keys.filter(\.isList).map(\.name))
    static let sections: Set<String> = Set(keys.map { String($0.name.prefix { $0 != "." }) })

    /// The table's sections, in its order, for the commands to say which keys
    /// they read (`ConfigurationKeyTests` holds them to the table).
    public enum Section: String, CaseIterable, Sendable {
        case web, path, sampler, ring, slab, detector, alerts, state, attribution, log

        /// `web.`: what every key of the section starts with.
        public var prefix: String { rawValue + "." }
    }

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

    /// A regular expression, compiled here so a bad one is reported with its
    /// file line; empty means no filter.
    private static func pattern(_ values: [String]) throws(InvalidValue) -> String? {
        let text = try single(values)
        guard !text.isEmpty else { return nil }
        do { _ = try LinearRegex(text) } catch { throw InvalidValue(message: error.description) }
        return text
    }

    private static func inodeCaches(pattern: String, exclude: String) throws(InvalidValue) -> InodeCacheSelector {
        do { return try InodeCacheSelector(pattern: pattern, excludePattern: exclude) } catch {
            throw InvalidValue(message: error.description)
        }
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

    /// An absolute path short enough for an AF_UNIX address to hold.
    private static func socketPath(_ values: [String]) throws(InvalidValue) -> String {
        let text = try path(values)
        guard text.utf8.count <= Journal.maximumSocketPathBytes else {
            throw InvalidValue(message: "'\(text)' is longer than a socket address holds (\(Journal.maximumSocketPathBytes) bytes)")
        }
        return text
    }
}

extension Configuration {
    /// `config/slabwatch.yml` as shipped: every key at its default, under its
    /// section, with its summary as the comment above it. Generated from the
    /// key table so the file cannot contradict it (`ConfigurationKeyTests`).
    public static func exampleYAML() -> String {
        var lines = [
            "# slabwatch configuration, generated from slabwatch's table of keys. Every key",
            "# is optional: the values below are the embedded defaults, so this file changes",
            "# nothing as shipped. Command-line flags use the same dotted names",
            "# (--sampler.interval 1s) and override this file. `slabwatch check-config FILE`",
            "# validates a file; SIGHUP re-reads it (keys marked 'restart' need a restart).",
            "# Durations: 500ms, 5s, 1m, 1h. Sizes: 4096, 64KiB, 64MiB, 1GiB (also kB, MB, GB).",
        ]
        var section = ""
        for key in keys {
            let (name, field) = (String(key.name.prefix { $0 != "." }), String(key.name.drop { $0 != "." }.dropFirst()))
            if name != section {
                lines += ["", "\(name):"]
                section = name
            }
            let summary = key.summary.filter { $0 != "`" } + (key.reloadable ? "" : " (restart)")
            lines += wrapped(summary, width: 80, prefix: "  # ")
            lines.append("  \(field): \(yamlValue(key))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A default as YAML: lists and plain words as they are, anything a YAML
    /// reader could take for syntax (a leading `:`, a regex's `|` or `*`) quoted.
    private static func yamlValue(_ key: ConfigurationKey) -> String {
        let text = key.defaultText
        if text == "\"\"" || (key.isList && text.hasPrefix("[")) { return text }
        let plain = text.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || "/._-".utf8.contains(byte)
        }
        return plain ? text : "\"\(text)\""
    }

    /// `text` in lines of at most `width` columns (a longer word stands alone), each after `prefix`.
    private static func wrapped(_ text: String, width: Int, prefix: String) -> [String] {
        var lines: [String] = []
        var line = prefix
        for word in text.split(separator: " ") {
            if line.count > prefix.count && line.count + 1 + word.count > width {
                lines.append(line)
                line = prefix
            }
            line += (line.count > prefix.count ? " " : "") + word
        }
        return lines + [line]
    }
}
