import ArgumentParser
import Glibc
import Logging
import SlabWatch
import SlabWatchCore

/// `slabwatch`: the daemon (`run`, the default) and its operator commands.
@main
struct SlabWatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slabwatch",
        abstract: "Watch kernel slab caches and tell which one grows, with what, and whether it comes back.",
        discussion: """
            Serves Prometheus metrics on /metrics, the latest sample as JSON on /snapshot
            and a health check on /healthz (default port \(Configuration.defaultPort)).
            Reading /proc/slabinfo needs root or CAP_DAC_READ_SEARCH.
            Exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad configuration, 3 cannot listen.
            """,
        version: Sampler.version,
        subcommands: [Run.self, Snapshot.self, CheckConfig.self, Record.self, Replay.self],
        defaultSubcommand: Run.self)

    /// ArgumentParser exits 64 (EX_USAGE) on an unknown flag or a missing
    /// argument; slabwatch documents one code for every usage or configuration
    /// error, 2, so scripts and systemd see the same code for both.
    static func main() {
        var command: any ParsableCommand
        do { command = try parseAsRoot() } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }  // --help, --version
            printError(fullMessage(for: error))
            Glibc.exit(2)
        }
        do { try command.run() } catch { exit(withError: error) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon (the default command).")

    @OptionGroup var options: DaemonOptions

    func run() throws {
        let configuration = try options.loadOrExit()
        let logger = makeLogger(configuration.logLevel)
        let daemon = Daemon(source: options.source, configuration: configuration, logger: logger)
        let code = daemon.run()
        if code != .success { throw ExitCode(code.rawValue) }
    }
}

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take one sample and print it as the /snapshot JSON, without starting the daemon.")

    @OptionGroup var options: DaemonOptions

    func run() throws {
        let configuration = try options.loadOrExit()
        let sampler = try Sampler(
            settings: configuration.sampler, ring: .init(fineCapacity: 2, coarseCapacity: 2),
            store: StateStore(), logger: makeLogger(.error))
        let state = sampler.sampleOnce()
        _ = state.snapshot.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file and exit (0 valid, 2 invalid).")

    @Argument(help: "The YAML configuration file to check.") var file: String

    func run() throws {
        do {
            _ = try ConfigurationSource(file: file, overrides: []).load()
            print("\(file): ok")
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
    }
}

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record samples of this machine into DIR (one subdirectory per sample) for replay anywhere.")

    @Argument(help: "Directory to write the recording into (created if missing).") var directory: String
    @Option(name: .customLong("duration"), help: "Stop after this long, e.g. 30m (default: until SIGINT/SIGTERM).")
    var duration: String?
    @OptionGroup var options: DaemonOptions

    func run() throws {
        let configuration = try options.loadOrExit()
        var stopAfter = Double.infinity
        if let duration {
            guard let seconds = parseDuration(duration) else {
                printError("--duration: '\(duration)' is not a duration (e.g. 500ms, 5s, 1m)")
                throw ExitCode(2)
            }
            stopAfter = seconds
        }
        let recorder: Recorder
        do { recorder = try Recorder(paths: configuration.sampler.paths, directory: directory) } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        do {
            let count = try recorder.run(intervalSeconds: configuration.sampler.intervalSeconds, durationSeconds: stopAfter)
            printError("recorded \(count) samples into \(directory)")
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recording through the sampler, ring and detector as fast as possible and print the findings.")

    @Argument(help: "A directory written by 'slabwatch record' (or by cp, see README).") var directory: String
    @Flag(name: .customLong("json"), help: "Print a JSON array of every finding that opened, in the /snapshot schema.")
    var json = false
    @Option(name: .customLong("config"), help: "YAML configuration file; its detector.* and ring.* keys apply.")
    var config: String?
    @OptionGroup var detector: DetectorOptions

    func run() throws {
        let configuration: Configuration
        do { configuration = try ConfigurationSource(file: config, overrides: detector.overrides).load() } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let replay = SlabWatch.Replay(settings: configuration.sampler.detector, ring: configuration.ring)
        let outcome: SlabWatch.Replay.Outcome
        do {
            outcome = try replay.run(directory) { event, _ in
                if !json { print(Timeline.line(event)) }
            }
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        for skipped in outcome.skipped { printError("skipped \(skipped.path): \(skipped.reason)") }
        if json {
            let bytes = SnapshotRenderer.renderFindings(outcome.findings)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        } else {
            print(Timeline.summary(outcome))
        }
    }
}

/// The detector's thresholds as flags, shared by `run`, `record` and `replay`.
struct DetectorOptions: ParsableArguments {
    @Option(name: .customLong("detector.min-r-squared"), help: "A fit must reach this R² (default 0.9).")
    var minRSquared: String?
    @Option(name: .customLong("detector.min-growth-bytes"), help: "The footprint must grow this much over a window, e.g. 64MiB (default).")
    var minGrowthBytes: String?
    @Option(name: .customLong("detector.min-driver-change"), help: "Inodes, dentries or open files must move this much (default 10000).")
    var minDriverChange: String?
    @Option(name: .customLong("detector.min-bytes-per-unit"), help: "Slope must be at least this many bytes per inode/dentry/file (default 16).")
    var minBytesPerUnit: String?
    @Option(name: .customLong("detector.open-after"), help: "Consecutive passing evaluations before a finding opens (default 3).")
    var openAfter: String?
    @Option(name: .customLong("detector.resolve-after"), help: "Resolve once the memory has been back this long; reclaimable caches also after this long without growth (default 10m).")
    var resolveAfter: String?
    @Option(name: .customLong("detector.resolve-share"), help: "The memory is back once the footprint fell by this share of its gain (default 0.75).")
    var resolveShare: String?
    @Option(name: .customLong("detector.hold-after"), help: "A finding is holding once its footprint has not moved for this long (default 2m).")
    var holdAfter: String?
    @Option(name: .customLong("detector.leak-grace"), help: "After the driver falls, time for the cache to follow before it is leak-like (default 5m).")
    var leakGrace: String?
    @Option(name: .customLong("detector.windows"), help: "Window lengths to fit, comma-separated (default 5m,15m,1h,3h,12h).")
    var windows: String?
    @Option(name: .customLong("detector.reclaimable"), help: "Report reclaimable caches (severity info): true or false (default true).")
    var reclaimable: String?

    var overrides: [(key: String, value: String)] {
        [("detector.min-r-squared", minRSquared), ("detector.min-growth-bytes", minGrowthBytes),
         ("detector.min-driver-change", minDriverChange), ("detector.min-bytes-per-unit", minBytesPerUnit),
         ("detector.open-after", openAfter), ("detector.resolve-after", resolveAfter),
         ("detector.resolve-share", resolveShare), ("detector.hold-after", holdAfter),
         ("detector.leak-grace", leakGrace), ("detector.windows", windows), ("detector.reclaimable", reclaimable)]
            .compactMap { key, value in value.map { (key, $0) } }
    }
}

/// Every configuration key as a flag of the same dotted name.
struct DaemonOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "YAML configuration file (see config/slabwatch.yml; default /etc/slabwatch/slabwatch.yml when present).")
    var config: String?

    @Option(name: .customLong("web.listen-address"), help: "Address to serve on, e.g. 127.0.0.1:10077, [::1]:10077, :10077 (repeatable; default :\(Configuration.defaultPort)).")
    var listenAddress: [String] = []
    @Option(name: .customLong("web.max-connections"), help: "Open connections beyond this are refused with 503 (default 64).")
    var maxConnections: String?
    @Option(name: .customLong("web.max-header-bytes"), help: "Largest request head accepted; larger gets 431 (default 8KiB).")
    var maxHeaderBytes: String?
    @Option(name: .customLong("web.header-timeout"), help: "Time a client has to send a request head (default 5s).")
    var headerTimeout: String?
    @Option(name: .customLong("web.idle-timeout"), help: "Idle keep-alive connections are closed after this (default 60s).")
    var idleTimeout: String?
    @Option(name: .customLong("web.write-timeout"), help: "Time a client may take to read a response (default 10s).")
    var writeTimeout: String?
    @Option(name: .customLong("path.procfs"), help: "procfs mount point (default /proc).")
    var procfs: String?
    @Option(name: .customLong("path.sysfs"), help: "sysfs mount point (default /sys).")
    var sysfs: String?
    @Option(name: .customLong("sampler.interval"), help: "Time between samples: 500ms, 5s, 1m (default 5s).")
    var interval: String?
    @Option(name: .customLong("sampler.max-caches"), help: "Caches kept per sample; the smallest beyond this are left out (default 2048).")
    var maxCaches: String?
    @Option(name: .customLong("sampler.max-source-bytes"), help: "Source files larger than this are refused (default 4MiB).")
    var maxSourceBytes: String?
    @Option(name: .customLong("ring.fine-samples"), help: "Samples kept at full resolution (default 720).")
    var fineSamples: String?
    @Option(name: .customLong("ring.coarse-samples"), help: "Samples kept in the coarse tier (default 720).")
    var coarseSamples: String?
    @Option(name: .customLong("ring.coarse-every"), help: "Keep every Nth sample in the coarse tier (default 12).")
    var coarseEvery: String?
    @Option(name: .customLong("slab.include"), help: "Export only caches whose whole name matches this regex.")
    var include: String?
    @Option(name: .customLong("slab.exclude"), help: "Do not export caches whose whole name matches this regex.")
    var exclude: String?
    @Option(name: .customLong("slab.min-memory-bytes"), help: "Do not export caches smaller than this footprint, e.g. 1MiB (default 0).")
    var minMemoryBytes: String?
    @Option(name: .customLong("log.level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?
    @OptionGroup var detector: DetectorOptions

    var source: ConfigurationSource {
        var overrides: [(key: String, value: String)] = []
        let single: [(String, String?)] = [
            ("web.max-connections", maxConnections), ("web.max-header-bytes", maxHeaderBytes),
            ("web.header-timeout", headerTimeout), ("web.idle-timeout", idleTimeout),
            ("web.write-timeout", writeTimeout),
            ("path.procfs", procfs), ("path.sysfs", sysfs), ("sampler.interval", interval),
            ("sampler.max-caches", maxCaches), ("sampler.max-source-bytes", maxSourceBytes),
            ("ring.fine-samples", fineSamples), ("ring.coarse-samples", coarseSamples),
            ("ring.coarse-every", coarseEvery), ("slab.include", include), ("slab.exclude", exclude),
            ("slab.min-memory-bytes", minMemoryBytes), ("log.level", logLevel),
        ]
        for (key, value) in single { if let value { overrides.append((key, value)) } }
        // Repeated flags add addresses; together they replace the file's list.
        overrides += listenAddress.map { ("web.listen-address", $0) }
        // Like systemd's own daemons: /etc/slabwatch/slabwatch.yml when present.
        let file = config ?? (access(Configuration.defaultFile, F_OK) == 0 ? Configuration.defaultFile : nil)
        return ConfigurationSource(file: file, overrides: overrides + detector.overrides)
    }

    /// Loads defaults, file and flags; on error prints one line and exits 2.
    func loadOrExit() throws -> Configuration {
        do {
            return try source.load()
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
    }
}

func makeLogger(_ level: Logger.Level) -> Logger {
    Logger(label: "slabwatch") { LogfmtLogHandler(label: $0, level: level) }
}

func printError(_ message: String) {
    let line = "slabwatch: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

func parseDuration(_ text: String) -> Double? { Units.seconds(text) }
