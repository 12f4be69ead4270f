import SlabWatch
import SlabWatchCore

/// `slabwatch measure [options] -- COMMAND [ARGS…]`: samples the machine
/// before the command (a baseline), while it runs and while it settles
/// after it exits (`MeasureRun`), then reports what it cost the slab caches
/// (`Measurement.report`) and judges the budgets. The command's stdin,
/// stdout and stderr are its own; SIGINT and SIGTERM are passed on to it.
///
/// Exit codes are measure's own, never the command's (any of which a
/// workload can return): 0 when the command succeeded and every budget
/// holds; 8 when the command failed (its status is in the report), else 6
/// when a budget is exceeded, 7 when one cannot be judged; 2 for bad usage
/// (an `--output` that cannot be written included, before anything runs);
/// 1 when no slab cache can be read (before the command runs); 127 when the
/// command cannot be found and 126 when it cannot be run, as env(1) and
/// timeout(1) say it. SIGINT or SIGTERM during the baseline ends measure by
/// that signal before the command starts; during the run the command gets
/// it, and when it dies of it measure reports and dies of it too; during
/// settling it ends settling, and measure reports and dies of it.
struct MeasureCommand: Subcommand {
    static let budget = TextOption(name: "budget", valueName: "LIMIT",
                                   help: "CACHE=SIZE/UNIT, unreclaimable=SIZE/UNIT or kept=SIZE (UNIT inode, dentry, open_file); repeatable")
    static let output = TextOption(name: "output", valueName: "FILE",
                                   help: "write the report to FILE instead of stderr (checked before COMMAND runs; never through a symbolic link)")
    static let attribute = TextOption(name: "attribute", valueName: "CACHE",
                                      help: "trace who allocates CACHE during the command, or 'auto': the unreclaimable cache grown most in the first second (root)")
    static let json = CommandSpec.Flag("json", "write the report as JSON (the /snapshot vocabulary; 'slabwatch diff' reads it)")
    static let spec = CommandSpec(
        name: "measure",
        summary: "Run a command and report what it cost the slab caches: cost per inode, dentry or open file, and what stayed after it exited (see docs/measure.md).",
        options: MeasureRun.Settings.options + [MeasurementSettings.noise, budget, output, attribute, ConfigurationSource.option],
        flags: [json], keySections: [.path], keys: ["detector.inode-caches", "attribution.max-events", "attribution.buffer-size"],
        command: .init("COMMAND [ARGS...]", "the workload; its stdio and environment are its own, its exit status goes in the report (measure exits 8 when it failed)"))

    let configuration: Configuration
    let phases: MeasureRun.Settings
    var report: MeasurementSettings
    let budgets: [Budget]
    /// A cache to attribute during the run, or `auto` (the unreclaimable one grown most in the first second).
    let attributed: String?
    let output: String?
    let asJSON: Bool
    let command: [String]

    init(_ line: ParsedCommand) throws(UsageError) {
        configuration = try ConfigurationSource(line).loadForCommand()
        guard !line.command.isEmpty, !line.command[0].isEmpty else {
            throw UsageError("measure needs a command: slabwatch measure [options] -- COMMAND [ARGS...]")
        }
        command = line.command
        phases = try MeasureRun.Settings(line)
        report = MeasurementSettings(daemon: configuration.sampler.detector)
        report.noiseBytes = try MeasurementSettings.noise.value(in: line) ?? report.noiseBytes
        var budgets: [Budget] = []
        for text in Self.budget.values(in: line) {
            do { budgets.append(try Budget.parse(text)) } catch { throw UsageError("--budget: \(error.description)") }
        }
        self.budgets = budgets
        attributed = Self.attribute.value(in: line)
        output = Self.output.value(in: line)
        asJSON = Self.json.isSet(in: line)
    }

    func run() -> Int32 {
        checkCachesExist()
        // Caught first: a signal as the report file is made ends measure with the file removed again.
        SignalForwarding.catchSignals()
        let file = MeasureReportFile.open(output)
        var sampling = MeasureRun(source: ProcReader(paths: configuration.sampler.paths, pageSize: Host.pageSize, limits: configuration.sampler.limits),
                                  clock: SystemMeasureClock(), interruptions: CaughtSignals(), intervalSeconds: phases.intervalSeconds)
        do { try sampling.sampleBaseline(seconds: phases.baselineSeconds) } catch {
            file.discard()
            switch error {
            case .interrupted: SignalForwarding.end()
            case .unreadable(let why):
                // Without caches every report would be empty, and pass: refuse before the command runs.
                return failed(.runtimeFailure, "measure cannot read the slab caches: \(why)\(why.contains("needs root") ? "" : " (needs root or CAP_DAC_READ_SEARCH)")")
            }
        }
        let resolved = budgets.map { $0.resolvingAlias(in: sampling.samples.kept[0].caches) }
        var watcher = attributed.map { cache in
            AttributionRun(cache: cache == "auto" ? nil : cache, settings: configuration.attribution,
                           inodeCaches: report.detector.inodeCaches, say: { printError($0) })
        }
        var workload = SpawnedCommand(command, forwardsSignals: true)
        let termination: Termination, wallSeconds: Double
        do {
            (termination, wallSeconds) = try sampling.sampleWorkload(&workload, watcher: &watcher)
        } catch {
            file.discard()
            switch error {
            case .stopped: SignalForwarding.end()
            case .cannotStart(let failure): printError(failure.description); return failure.status
            }
        }
        if termination == .lost {
            printError("measure: the command's exit status was lost (something else reaped it); counting it as failed")
        }
        let settled = sampling.sampleSettling(seconds: phases.settleSeconds)
        let attributions = watcher?.finish() ?? []

        let ran = Measurement.Command(arguments: command, exitStatus: termination.status, wallSeconds: wallSeconds)
        guard let measurement = sampling.samples.report(command: ran, intervalSeconds: sampling.samples.meanIntervalSeconds(else: sampling.intervalSeconds),
                                                        settleSeconds: settled, settings: report)
        else { return failed(.runtimeFailure, "too few samples to measure") }
        let judged = resolved.map { ($0, $0.judge(measurement)) }
        let bytes = asJSON
            ? MeasurementRenderer.json(measurement, budgets: judged, attributions: attributions)
            : Array(MeasurementRenderer.text(measurement, budgets: judged, attributions: attributions).utf8)
        file.write(bytes)
        if SignalForwarding.pending { SignalForwarding.end() }
        return ExitStatus.measured(commandStatus: termination.status, verdicts: judged.map(\.1)).rawValue
    }

    /// Each cache a `--budget` or `--attribute` names exists; else one line and exit 2.
    private func checkCachesExist() {
        let paths = configuration.sampler.paths
        for budget in budgets {
            if case .cache(let name) = budget.subject, !AttributeCommand.cacheExists(name, paths: paths) {
                fail(.badConfiguration, "--budget: no slab cache named '\(name)' (see /sys/kernel/slab or slabwatch top)")
            }
        }
        if let cache = attributed, cache != "auto", !AttributeCommand.cacheExists(cache, paths: paths) {
            fail(.badConfiguration, "--attribute: no slab cache named '\(cache)' (see /sys/kernel/slab or slabwatch top)")
        }
    }
}
