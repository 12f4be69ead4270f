import Glibc
import Logging
import SlabWatch
import SlabWatchCore

/// `slabwatch`: the daemon (`run`, the default) and its operator commands.
/// Every configuration key is also a flag of the same dotted name, for the
/// commands that use it.
@main
enum SlabWatchCommand {
    static let commands: [CommandSpec] = [
        CommandSpec(name: "run", abstract: "Run the daemon (the default command).",
                    options: [configOption], keySections: Configuration.Section.allCases),
        CommandSpec(name: "snapshot", abstract: "Take one sample and print it as the /snapshot JSON, without starting the daemon.",
                    options: [configOption], keySections: [.path, .sampler, .slab, .log]),
        CommandSpec(name: "top", abstract: "Show slab caches like slabtop, with growth per minute and the detector's findings (s: sort, /: filter, q: quit).",
                    options: [("delay", "DURATION", "time between samples (also -d; default 2s)"),
                              ("sort", "KEY", "footprint (default), growth, objects, size or name"),
                              ("url", "URL", "show a running daemon (http://HOST:10077): its findings and caches, polled every delay"),
                              configOption],
                    flags: [("once", "print one screen as text and exit (two samples one delay apart; no escape codes)")],
                    keySections: [.path, .sampler, .ring, .detector, .log]),
        CommandSpec(name: "attribute", abstract: "Trace who allocates a cache: call sites ranked by net bytes, with their stacks, processes and cgroups (root; see README, Attribution).",
                    options: [("duration", "DURATION", "how long to trace (default 10s)"),
                              ("max-events", "N", "stop after this many events (default 200000)"),
                              ("source", "SOURCE", "auto (default: bpf where it can run, else tracefs), or force bpf, hist or trace"), configOption],
                    flags: [("json", "print the result as JSON"),
                            ("stream", "stream events even where the kernel has hist triggers (net bytes need the frees)"),
                            ("allocinfo", "rank call sites by /proc/allocinfo growth over the duration instead of tracing (kernels with CONFIG_MEM_ALLOC_PROFILING)")],
                    arguments: [("cache", "the slab cache, e.g. kmalloc-32 or shmem_inode_cache; '(outside caches, unreclaimable)': every kmalloc too large for any cache")],
                    keySections: [.attribution, .path, .log]),
        CommandSpec(name: "measure", abstract: "Run a command and report what it cost the slab caches: cost per inode, dentry or open file, and what stayed after it exited (see README, Measuring a change).",
                    options: [("interval", "DURATION", "time between samples while it runs and settles (default 200ms)"),
                              ("settle", "DURATION", "how long to keep sampling after it exits (default 10s)"),
                              ("baseline", "DURATION", "how long to sample before it starts (default 1s)"),
                              ("noise", "SIZE", "a cache moved when its footprint moved by this much, and by 16 slabs (default 1MiB)"),
                              ("budget", "LIMIT", "CACHE=SIZE/UNIT, unreclaimable=SIZE/UNIT or kept=SIZE (UNIT inode, dentry, open_file); repeatable"),
                              ("output", "FILE", "write the report to FILE instead of stderr (checked before COMMAND runs; never through a symbolic link)"),
                              ("attribute", "CACHE", "trace who allocates CACHE during the command, or 'auto': the unreclaimable cache grown most in the first second (root)"),
                              configOption],
                    flags: [("json", "write the report as JSON (the /snapshot vocabulary; 'slabwatch diff' reads it)")],
                    keySections: [.path], keys: ["detector.inode-caches", "attribution.max-events", "attribution.buffer-size"],
                    command: ("COMMAND [ARGS...]", "the workload; its stdio and environment are its own, its exit status goes in the report (measure exits 8 when it failed)")),
        CommandSpec(name: "diff", abstract: "Compare two 'measure --json' reports (before and after a change), per cache and in total.",
                    arguments: [("before", "the report of the run before the change"), ("after", "the report of the run after it")]),
        CommandSpec(name: "check-config", abstract: "Validate a configuration file (and the web configuration it names) and exit (0 valid, 2 invalid).",
                    arguments: [("file", "the YAML configuration file to check")]),
        CommandSpec(name: "record", abstract: "Record samples of this machine into DIR (one subdirectory per sample) for replay anywhere.",
                    options: [("duration", "DURATION", "stop after this long, e.g. 30m (default: until SIGINT/SIGTERM)"), configOption],
                    arguments: [("directory", "where to write the recording (created if missing)")],
                    keySections: [.path, .sampler, .log]),
        CommandSpec(name: "replay", abstract: "Run a recording through the sampler, ring and detector as fast as possible and print the findings.",
                    options: [("config", "FILE", "YAML configuration file; its detector.* and ring.* keys apply")],
                    flags: [("json", "print a JSON array of every finding that opened, in the /snapshot schema")],
                    arguments: [("directory", "a directory written by 'slabwatch record' (or by cp, see README)")],
                    keySections: [.detector, .ring, .log]),
    ]

    static let configOption = (name: "config", value: "FILE",
                               help: "YAML configuration file (see config/slabwatch.yml; default \(Configuration.defaultFile) when present)")

    static let overview = """
        slabwatch \(Host.version): watch kernel slab caches and tell which one grows, with what, and whether it comes back.

        Serves Prometheus metrics on /metrics, the latest sample as JSON on /snapshot
        and a health check on /healthz (default port \(Configuration.defaultPort)).
        Reading /proc/slabinfo needs root or CAP_DAC_READ_SEARCH.
        Every configuration key is also a flag: --KEY VALUE (see 'slabwatch run --help').
        Exit codes: \(ExitStatus.summary).
        """

    static func main() {
        StandardStreams.ensureOpen()
        let command: ParsedCommand
        do {
            // `-d 2s`, as slabtop and top spell the refresh delay.
            let arguments = CommandLine.arguments.dropFirst().map { $0 == "-d" ? "--delay" : $0 }
            switch try CommandLineParser.parse(arguments, commands: commands,
                                               defaultCommand: "run", overview: overview, version: Host.version) {
            case .print(let text): print(text); exit(ExitStatus.success.rawValue)
            case .run(let parsed): command = parsed
            }
        } catch {
            fail(.badConfiguration, error.description)
        }
        switch command.spec.name {
        case "run": run(command)
        case "snapshot": snapshot(command)
        case "check-config": checkConfig(command.arguments[0])
        case "record": record(command)
        case "top": top(command)
        case "attribute": Attribute.run(command, configuration: load(configurationSource(command)))
        case "measure": Measure.run(command, configuration: load(configurationSource(command)))
        case "diff": diff(command.arguments[0], command.arguments[1])
        default: replay(command)
        }
    }

    static func run(_ command: ParsedCommand) {
        let source = configurationSource(command)
        let configuration = load(source)
        let daemon = Daemon(source: source, configuration: configuration, logger: makeLogger(configuration.logLevel))
        exit(daemon.run().rawValue)
    }

    static func snapshot(_ command: ParsedCommand) {
        let configuration = load(configurationSource(command))
        let sampler: Sampler
        do {
            sampler = try Sampler(settings: configuration.sampler, ring: .init(fineCapacity: 2, coarseCapacity: 2),
                                  store: StateStore(), logger: makeLogger(.error))
        } catch { fail(.badConfiguration, "\(error)") }
        let state = sampler.sampleOnce()
        _ = state.snapshot.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }

    static func top(_ command: ParsedCommand) {
        var configuration = load(configurationSource(command))
        var options = TopView.Options()
        if let text = command.options["delay"] {
            guard let seconds = Units.seconds(text), seconds >= 0.1 else { fail(.badConfiguration, "--delay: '\(text)' is not a duration of at least 100ms") }
            configuration.sampler.intervalSeconds = seconds
        } else if !command.keyOverrides.contains(where: { $0.key == "sampler.interval" }) {
            configuration.sampler.intervalSeconds = 2
        }
        options.intervalSeconds = configuration.sampler.intervalSeconds
        if let key = command.options["sort"] {
            guard let sort = TopView.SortKey(rawValue: key) else {
                fail(.badConfiguration, "--sort: '\(key)' is not one of \(TopView.SortKey.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.sort = sort
        }
        let feed: TopFeed
        if let url = command.options["url"] {
            do { feed = .remote(RemoteTop(client: try SnapshotClient(url: url))) } catch { fail(.badConfiguration, error.description) }
            options.source = url
        } else {
            do {
                feed = .local(try Sampler(settings: configuration.sampler, ring: configuration.ring, store: StateStore(), logger: makeLogger(.error)))
            } catch { fail(.badConfiguration, "\(error)") }
        }
        Top.run(feed: feed, options: options, once: command.flags.contains("once"))
    }

    /// The file, and the web configuration it names (certificates and key
    /// loaded as the daemon would), as `promtool check web-config` does.
    static func checkConfig(_ file: String) {
        do {
            let configuration = try ConfigurationSource(file: file, overrides: []).load()
            if !configuration.webConfigFile.isEmpty {
                _ = try WebConfiguration.load(path: configuration.webConfigFile).security(origin: configuration.webConfigFile)
                print("\(configuration.webConfigFile): ok")
            }
            print("\(file): ok")
        } catch { fail(.badConfiguration, error.description) }
    }

    static func record(_ command: ParsedCommand) {
        let configuration = load(configurationSource(command))
        var stopAfter = Double.infinity
        if let duration = command.options["duration"] {
            guard let seconds = Units.seconds(duration) else {
                fail(.badConfiguration, "--duration: '\(duration)' is not a duration (e.g. 500ms, 5s, 1m)")
            }
            stopAfter = seconds
        }
        let directory = command.arguments[0]
        do {
            let recorder = try Recorder(paths: configuration.sampler.paths, directory: directory)
            let count = try recorder.run(intervalSeconds: configuration.sampler.intervalSeconds, durationSeconds: stopAfter)
            printError("recorded \(count) samples into \(directory)")
        } catch { fail(.runtimeFailure, error.description) }
    }

    static func replay(_ command: ParsedCommand) {
        let configuration = load(ConfigurationSource(file: command.options["config"], overrides: command.keyOverrides))
        let json = command.flags.contains("json")
        let outcome: Replay.Outcome
        do {
            outcome = try Replay(settings: configuration.pipeline)
                .run(command.arguments[0], warn: { printError($0) }) { event, _ in
                    if !json { print(Timeline.line(event)) }
                }
        } catch { fail(.runtimeFailure, error.description) }
        for skipped in outcome.skipped { printError("skipped \(skipped.path): \(skipped.reason)") }
        if json {
            let bytes = SnapshotRenderer.renderFindings(outcome.findings)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        } else {
            print(Timeline.summary(outcome), terminator: "")
        }
    }

    /// Two measurements side by side; a file that is not one is one line and exit 2.
    static func diff(_ before: String, _ after: String) {
        func read(_ path: String) -> Measurement {
            do { return try MeasurementReader.read(Measure.readReport(path)) } catch { fail(.badConfiguration, "\(path): \(error.description)") }
        }
        print(MeasurementDiff.text(before: read(before), after: read(after)), terminator: "")
    }

    /// `--config FILE`, else /etc/slabwatch/slabwatch.yml when present (like
    /// systemd's own daemons), then the key flags.
    static func configurationSource(_ command: ParsedCommand) -> ConfigurationSource {
        let file = command.options["config"] ?? (access(Configuration.defaultFile, F_OK) == 0 ? Configuration.defaultFile : nil)
        return ConfigurationSource(file: file, overrides: command.keyOverrides)
    }

    /// Defaults, file and flags; on error one line and exit 2.
    static func load(_ source: ConfigurationSource) -> Configuration {
        do { return try source.load() } catch { fail(.badConfiguration, error.description) }
    }

    static func fail(_ status: ExitStatus, _ message: String) -> Never {
        printError(message)
        exit(status.rawValue)
    }
}

func makeLogger(_ level: Logger.Level) -> Logger {
    Logger(label: "slabwatch") { LogfmtLogHandler(label: $0, level: level) }
}

/// One message on stderr. It may quote what others wrote (a server's
/// answer, a cache name, a file): every control but its newlines is shown as `?`.
func printError(_ message: String) {
    let text = message.split(separator: "\n", omittingEmptySubsequences: false).map(TerminalText.printable).joined(separator: "\n")
    let line = "slabwatch: \(text)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
