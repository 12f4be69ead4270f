import ArgumentParser
import Glibc
import Logging
import SlabWatch
import SlabWatchCore

/// `slabwatch`: the daemon (`run`, the default) and its operator commands.
/// Every configuration key is also a flag of the same dotted name, for the
/// commands that use it (`KeyFlags` takes them out before parsing the rest).
@main
struct SlabWatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slabwatch",
        abstract: "Watch kernel slab caches and tell which one grows, with what, and whether it comes back.",
        discussion: """
            Serves Prometheus metrics on /metrics, the latest sample as JSON on /snapshot
            and a health check on /healthz (default port \(Configuration.defaultPort)).
            Reading /proc/slabinfo needs root or CAP_DAC_READ_SEARCH.
            Every configuration key is also a flag: --KEY VALUE (see 'slabwatch run --help').
            Exit codes: \(ExitStatus.summary).
            """,
        version: Host.version,
        subcommands: [Run.self, Snapshot.self, CheckConfig.self, Record.self, ReplayCommand.self],
        defaultSubcommand: Run.self)

    /// ArgumentParser exits 64 (EX_USAGE) on an unknown flag or a missing
    /// argument; slabwatch documents one code for every usage or configuration
    /// error, 2, so scripts and systemd see the same code for both.
    static func main() {
        let flags: KeyFlags
        do { flags = try CommandLineKeys.flags.get() } catch { usageError(error.description) }
        var command: any ParsableCommand
        do { command = try parseAsRoot(flags.rest) } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }  // --help, --version
            usageError(fullMessage(for: error))
        }
        let prefixes = (type(of: command) as? any UsesKeys.Type)?.keyPrefixes ?? []
        if let key = flags.unused(by: prefixes).first {
            usageError("--\(key) does not apply to '\(type(of: command).configuration.commandName ?? "slabwatch")'")
        }
        do { try command.run() } catch { exit(withError: error) }
    }

    static func usageError(_ message: String) -> Never {
        printError(message)
        Glibc.exit(ExitStatus.badConfiguration.rawValue)
    }
}

/// The key flags of this process's command line, split once.
enum CommandLineKeys {
    static let flags = Result { () throws(KeyFlags.UsageError) in try KeyFlags.split(Array(CommandLine.arguments.dropFirst())) }
    static var overrides: [(key: String, value: String)] { (try? flags.get())?.overrides ?? [] }
}

/// A command that reads configuration keys: which ones (by prefix).
protocol UsesKeys {
    static var keyPrefixes: [String] { get }
}

extension ArgumentParser.ExitCode {
    init(_ status: ExitStatus) { self.init(status.rawValue) }
}

struct Run: ParsableCommand, UsesKeys {
    static let keyPrefixes = ["web.", "path.", "sampler.", "ring.", "slab.", "detector.", "alerts.", "log."]
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (the default command).",
        discussion: "Configuration keys as flags:\n" + Configuration.flagHelp(prefixes: keyPrefixes))

    @OptionGroup var file: ConfigurationFile

    func run() throws {
        let configuration = try file.loadOrExit()
        let daemon = Daemon(source: file.source, configuration: configuration, logger: makeLogger(configuration.logLevel))
        let status = daemon.run()
        if status != .success { throw ExitCode(status) }
    }
}

struct Snapshot: ParsableCommand, UsesKeys {
    static let keyPrefixes = ["path.", "sampler.", "slab.", "log."]
    static let configuration = CommandConfiguration(
        abstract: "Take one sample and print it as the /snapshot JSON, without starting the daemon.",
        discussion: "Configuration keys as flags:\n" + Configuration.flagHelp(prefixes: keyPrefixes))

    @OptionGroup var file: ConfigurationFile

    func run() throws {
        let configuration = try file.loadOrExit()
        let sampler = try Sampler(
            settings: configuration.sampler, ring: .init(fineCapacity: 2, coarseCapacity: 2),
            store: StateStore(), logger: makeLogger(.error))
        let state = sampler.sampleOnce()
        _ = state.snapshot.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
}

struct CheckConfig: ParsableCommand, UsesKeys {
    static let keyPrefixes: [String] = []
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file and exit (0 valid, 2 invalid).")

    @Argument(help: "The YAML configuration file to check.") var file: String

    func run() throws {
        do {
            _ = try ConfigurationSource(file: file, overrides: []).load()
            print("\(file): ok")
        } catch {
            printError(error.description)
            throw ExitCode(.badConfiguration)
        }
    }
}

struct Record: ParsableCommand, UsesKeys {
    static let keyPrefixes = ["path.", "sampler.", "log."]
    static let configuration = CommandConfiguration(
        abstract: "Record samples of this machine into DIR (one subdirectory per sample) for replay anywhere.",
        discussion: "Configuration keys as flags:\n" + Configuration.flagHelp(prefixes: keyPrefixes))

    @Argument(help: "Directory to write the recording into (created if missing).") var directory: String
    @Option(name: .customLong("duration"), help: "Stop after this long, e.g. 30m (default: until SIGINT/SIGTERM).")
    var duration: String?
    @OptionGroup var file: ConfigurationFile

    func run() throws {
        let configuration = try file.loadOrExit()
        var stopAfter = Double.infinity
        if let duration {
            guard let seconds = Units.seconds(duration) else {
                printError("--duration: '\(duration)' is not a duration (e.g. 500ms, 5s, 1m)")
                throw ExitCode(.badConfiguration)
            }
            stopAfter = seconds
        }
        do {
            let recorder = try Recorder(paths: configuration.sampler.paths, directory: directory)
            let count = try recorder.run(intervalSeconds: configuration.sampler.intervalSeconds, durationSeconds: stopAfter)
            printError("recorded \(count) samples into \(directory)")
        } catch {
            printError(error.description)
            throw ExitCode(.runtimeFailure)
        }
    }
}

struct ReplayCommand: ParsableCommand, UsesKeys {
    static let keyPrefixes = ["detector.", "ring.", "log."]
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a recording through the sampler, ring and detector as fast as possible and print the findings.",
        discussion: "Configuration keys as flags:\n" + Configuration.flagHelp(prefixes: keyPrefixes))

    @Argument(help: "A directory written by 'slabwatch record' (or by cp, see README).") var directory: String
    @Flag(name: .customLong("json"), help: "Print a JSON array of every finding that opened, in the /snapshot schema.")
    var json = false
    @Option(name: .customLong("config"), help: "YAML configuration file; its detector.* and ring.* keys apply.")
    var config: String?

    func run() throws {
        let configuration: Configuration
        do { configuration = try ConfigurationSource(file: config, overrides: CommandLineKeys.overrides).load() } catch {
            printError(error.description)
            throw ExitCode(.badConfiguration)
        }
        let replay = Replay(settings: configuration.sampler.detector, ring: configuration.ring)
        let outcome: Replay.Outcome
        do {
            outcome = try replay.run(directory, warn: { printError($0) }) { event, _ in
                if !json { print(Timeline.line(event)) }
            }
        } catch {
            printError(error.description)
            throw ExitCode(.runtimeFailure)
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

/// `--config FILE`, and the configuration it and the key flags make.
struct ConfigurationFile: ParsableArguments {
    @Option(name: .customLong("config"), help: "YAML configuration file (see config/slabwatch.yml; default /etc/slabwatch/slabwatch.yml when present).")
    var config: String?

    var source: ConfigurationSource {
        // Like systemd's own daemons: /etc/slabwatch/slabwatch.yml when present.
        let file = config ?? (access(Configuration.defaultFile, F_OK) == 0 ? Configuration.defaultFile : nil)
        return ConfigurationSource(file: file, overrides: CommandLineKeys.overrides)
    }

    /// Loads defaults, file and flags; on error prints one line and exits 2.
    func loadOrExit() throws -> Configuration {
        do {
            return try source.load()
        } catch {
            printError(error.description)
            throw ExitCode(.badConfiguration)
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
