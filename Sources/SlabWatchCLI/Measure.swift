import Dispatch
import Glibc
import SlabWatch
import SlabWatchCore
import Synchronization

/// `slabwatch measure [options] -- COMMAND [ARGS…]`: samples the machine
/// before the command (a baseline), while it runs and while it settles
/// after it exits, then reports what it cost the slab caches
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
enum Measure {
    struct Options {
        var intervalSeconds = 0.2
        var settleSeconds = 10.0
        var baselineSeconds = 1.0
        var settings = MeasurementSettings()
        var budgets: [Budget] = []
        var output: String?
        var json = false
        /// A cache to attribute during the run, or `auto` (the unreclaimable one grown most in the first second).
        var attribute: String?
    }

    static let commandExited = Atomic<Bool>(false)

    static func run(_ command: ParsedCommand, configuration: Configuration) -> Never {
        let options = parse(command, configuration: configuration)
        // Caught first: a signal as the report file is made ends measure with the file removed again.
        Interruption.catchSignals()
        let report = MeasureReportFile.open(options.output)
        var run = Run(reader: ProcReader(paths: configuration.sampler.paths, pageSize: Host.pageSize, limits: configuration.sampler.limits),
                      intervalSeconds: options.intervalSeconds, report: report)
        run.sampleBaseline(seconds: options.baselineSeconds)
        let budgets = options.budgets.map { $0.resolvingAlias(in: run.samples.kept[0].caches) }
        var attribution = AttributionRun(cache: options.attribute == "auto" ? nil : options.attribute, settings: configuration.attribution)
        let (status, wallSeconds) = run.sampleCommand(command.command, attribution: &attribution, auto: options.attribute == "auto",
                                                      inodeCaches: options.settings.detector.inodeCaches)
        let settled = run.sampleSettling(seconds: options.settleSeconds)
        let attributions = attribution.finish()

        let ran = Measurement.Command(arguments: command.command, exitStatus: status, wallSeconds: wallSeconds)
        guard let measurement = run.samples.report(command: ran, intervalSeconds: run.samples.meanIntervalSeconds(else: run.intervalSeconds),
                                                   settleSeconds: settled, settings: options.settings)
        else { SlabWatchCommand.fail(.runtimeFailure, "too few samples to measure") }
        let judged = budgets.map { ($0, $0.judge(measurement)) }
        let bytes = options.json
            ? MeasurementRenderer.json(measurement, budgets: judged, attributions: attributions)
            : Array(MeasurementRenderer.text(measurement, budgets: judged, attributions: attributions).utf8)
        report.write(bytes)
        if Interruption.pending { Interruption.end() }
        exit(outcome(status, judged.map(\.1)))
    }

    /// The samples of one run, and the sampling of each phase.
    struct Run {
        let reader: ProcReader
        /// Grows as a long run or settling is thinned (`MeasurementSamples`).
        private(set) var intervalSeconds: Double
        private(set) var samples = MeasurementSamples()
        /// Discarded when the run ends before the command, or without a report.
        let report: MeasureReportFile
        private var exitedAt: UInt64 = 0

        init(reader: ProcReader, intervalSeconds: Double, report: MeasureReportFile) {
            self.reader = reader
            self.intervalSeconds = intervalSeconds
            self.report = report
        }

        private mutating func sample() {
            if samples.append(reader.sample(timestampMilliseconds: wallMilliseconds())) { intervalSeconds *= 2 }
        }

        /// At least one sample, the last just before the command starts. A
        /// signal ends measure here, before the command ever runs.
        mutating func sampleBaseline(seconds: Double) {
            let count = max(1, Int((seconds / intervalSeconds).rounded()))
            for i in 0..<count {
                if i > 0 { Measure.sleep(seconds: intervalSeconds) }
                if Interruption.pending { report.discard(); Interruption.end() }
                sample()
                // Without caches every report would be empty, and pass: refuse before the command runs.
                if i == 0, samples.kept[0].caches.isEmpty {
                    let why = samples.kept[0].status(of: .slabinfo).error ?? "no slab caches listed"
                    let hint = why.contains("needs root") ? "" : " (needs root or CAP_DAC_READ_SEARCH)"
                    report.discard()
                    SlabWatchCommand.fail(.runtimeFailure, "measure cannot read the slab caches: \(why)\(hint)")
                }
            }
            samples.commandStarted()
        }

        /// Runs the command, sampling every interval until it exits (checked
        /// every 5 ms, so the wall time is the command's), then once more.
        /// - Returns: its exit status (128 + signal) and wall time.
        mutating func sampleCommand(_ arguments: [String], attribution: inout AttributionRun, auto: Bool,
                                    inodeCaches: InodeCacheSelector) -> (Int32, Double) {
            if Interruption.pending { report.discard(); Interruption.end() }
            let spawnedAt = Clock.monotonicNanoseconds()
            let pid: pid_t
            switch Measure.spawn(arguments) {
            case .success(let started): pid = started
            case .failure(let failure):
                report.discard()
                exit(failure.status)
            }
            Interruption.commandStarted(pid)
            attribution.startIfNamed()
            var status: Int32 = 0
            var next = spawnedAt
            while true {
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid { break }
                if reaped < 0 && errno == ECHILD {
                    // Reaped by someone else: its status is lost, and a lost status must not pass CI.
                    printError("measure: the command's exit status was lost (something else reaped it); counting it as failed")
                    status = 1 << 8
                    break
                }
                let now = Clock.monotonicNanoseconds()
                if now >= next {
                    sample()
                    next = max(next + UInt64(intervalSeconds * 1e9), now)  // a slow read skips a beat rather than sampling in a burst
                    if auto, now - spawnedAt >= 1_000_000_000, let latest = samples.kept.last {
                        attribution.startOnGrowthSince(samples.kept[0], latest: latest, inodeCaches: inodeCaches)
                    }
                }
                usleep(5000)
            }
            exitedAt = Clock.monotonicNanoseconds()
            commandExited.store(true, ordering: .relaxed)
            Interruption.commandEnded(diedOfSignal: status & 0x7F != 0)
            if samples.commandExited(firstAfter: reader.sample(timestampMilliseconds: wallMilliseconds())) { intervalSeconds *= 2 }
            return (decode(status), Double(exitedAt - spawnedAt) / 1e9)
        }

        /// Every interval until `seconds` after the command exited, or until a signal.
        /// - Returns: how long it settled.
        mutating func sampleSettling(seconds: Double) -> Double {
            func elapsed() -> Double { Double(Clock.monotonicNanoseconds() - exitedAt) / 1e9 }
            while elapsed() < seconds, !Interruption.pending {
                Measure.sleep(seconds: min(intervalSeconds, seconds - elapsed()))
                if Interruption.pending { break }
                sample()
            }
            return Interruption.pending ? min(seconds, elapsed()) : seconds
        }
    }

    /// The command's failure first (CI must see the workload broke), then
    /// an exceeded budget, then one that cannot be judged.
    static func outcome(_ exitStatus: Int32, _ verdicts: [Budget.Verdict]) -> Int32 {
        if exitStatus != 0 { return ExitStatus.commandFailed.rawValue }
        if verdicts.contains(where: { if case .exceeded = $0 { true } else { false } }) { return ExitStatus.budgetExceeded.rawValue }
        if verdicts.contains(where: { if case .cannotJudge = $0 { true } else { false } }) { return ExitStatus.cannotJudge.rawValue }
        return ExitStatus.success.rawValue
    }

    // MARK: options

    static func parse(_ command: ParsedCommand, configuration: Configuration) -> Options {
        var options = Options(settings: MeasurementSettings(daemon: configuration.sampler.detector))
        guard !command.command.isEmpty, !command.command[0].isEmpty else {
            SlabWatchCommand.fail(.badConfiguration, "measure needs a command: slabwatch measure [options] -- COMMAND [ARGS...]")
        }
        func duration(_ name: String, minimum: Double, maximum: Double) -> Double? {
            guard let text = command.options[name] else { return nil }
            guard let seconds = Units.seconds(text), seconds >= minimum, seconds <= maximum else {
                SlabWatchCommand.fail(.badConfiguration, "--\(name): '\(text)' is not a duration from \(Units.durationText(minimum)) to \(Units.durationText(maximum))")
            }
            return seconds
        }
        if let seconds = duration("interval", minimum: 0.01, maximum: 60) { options.intervalSeconds = seconds }
        if let seconds = duration("settle", minimum: 0, maximum: 3600) { options.settleSeconds = seconds }
        if let seconds = duration("baseline", minimum: 0, maximum: 600) { options.baselineSeconds = seconds }
        if let text = command.options["noise"] {
            guard let bytes = Units.bytes(text) else { SlabWatchCommand.fail(.badConfiguration, "--noise: '\(text)' is not a size (e.g. 64KiB)") }
            options.settings.noiseBytes = bytes
        }
        let paths = configuration.sampler.paths
        for text in command.repeated["budget"] ?? [] {
            let budget: Budget
            do { budget = try Budget.parse(text) } catch { SlabWatchCommand.fail(.badConfiguration, "--budget: \(error.description)") }
            if case .cache(let name) = budget.subject, !Attribute.cacheExists(name, sysfs: paths.sysfs, procfs: paths.procfs) {
                SlabWatchCommand.fail(.badConfiguration, "--budget: no slab cache named '\(name)' (see /sys/kernel/slab or slabwatch top)")
            }
            options.budgets.append(budget)
        }
        if let cache = command.options["attribute"] {
            guard cache == "auto" || Attribute.cacheExists(cache, sysfs: paths.sysfs, procfs: paths.procfs) else {
                SlabWatchCommand.fail(.badConfiguration, "--attribute: no slab cache named '\(cache)' (see /sys/kernel/slab or slabwatch top)")
            }
            options.attribute = cache
        }
        options.output = command.options["output"]
        options.json = command.flags.contains("json")
        return options
    }

    // MARK: the command

    /// Starts `arguments` with this process's stdio and environment, found on
    /// PATH. A command that cannot be found or run is said on stderr, with
    /// the status env(1) and timeout(1) give it: 127 or 126.
    static func spawn(_ arguments: [String]) -> Result<pid_t, SpawnFailure> {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let error = posix_spawnp(&pid, arguments[0], nil, nil, &argv, environ)
        guard error == 0 else {
            printError("cannot run '\(arguments[0])': \(String(cString: strerror(error)))")
            return .failure(SpawnFailure(status: error == ENOENT ? 127 : 126))
        }
        return .success(pid)
    }

    struct SpawnFailure: Error {
        var status: Int32
    }

    /// Exit code, or 128 + the signal, as a shell reports it.
    static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    // MARK: output

    /// A report written by `--json`, for `diff`: a regular file of at most
    /// 64 MiB (a report of every cache of a large machine is well under one).
    static func readReport(_ path: String) throws(MeasurementReader.ReadError) -> [UInt8] {
        func failure(_ call: String) -> MeasurementReader.ReadError {
            MeasurementReader.ReadError(description: "cannot \(call): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure("open") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw failure("stat") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw MeasurementReader.ReadError(description: "not a regular file") }
        let limit = 64 << 20
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("read") }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            guard bytes.count <= limit else { throw MeasurementReader.ReadError(description: "larger than 64 MiB: not a report") }
        }
    }

    /// Sleeps `seconds`, or until a signal measure must act on arrives.
    static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR && !Interruption.pending { request = remaining }
    }

    static func wallMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// An attribution session during the command (`--attribute`), on a
/// background queue, ended when the command exits. A session that cannot run
/// (no tracefs, not root) says why on stderr and the measurement goes on.
struct AttributionRun {
    private(set) var cache: String?
    let settings: AttributionSettings
    private var done: DispatchSemaphore?
    private let result = Found()

    /// The session's result, handed from its queue to the main thread.
    final class Found: Sendable {
        let attribution = Mutex<Attribution?>(nil)
    }

    init(cache: String?, settings: AttributionSettings) {
        self.cache = cache
        var settings = settings
        settings.durationSeconds = 3600  // the command's exit ends it
        self.settings = settings
    }

    mutating func startIfNamed() {
        if let cache { start(cache) }
    }

    /// `auto`: attributes the cache that grew most since `before`, once:
    /// of the unreclaimable caches that are not inode caches (the memory a
    /// module hangs off its inodes, as in the story), as the daemon attributes
    /// unreclaimable caches.
    mutating func startOnGrowthSince(_ before: Sample, latest: Sample, inodeCaches: InodeCacheSelector) {
        guard done == nil else { return }
        var grown: (name: String, bytes: Double)?
        for cache in latest.caches where cache.reclaimable != true && !inodeCaches.selects(cache) {
            let was = before.caches.first { $0.name == cache.name }?.footprintBytes ?? 0
            let growth = Double(cache.footprintBytes) - Double(was)
            if growth > (grown?.bytes ?? 0) { grown = (cache.name, growth) }
        }
        guard let grown else { return }
        cache = grown.name
        start(grown.name)
    }

    private mutating func start(_ cache: String) {
        let semaphore = DispatchSemaphore(value: 0)
        done = semaphore
        let settings = settings
        let result = self.result
        DispatchQueue.global().async {
            do {
                let outcome = try AttributionSession.run(cache: cache, settings: settings, say: { printError($0) },
                                                         cancelled: { Measure.commandExited.load(ordering: .relaxed) })
                result.attribution.withLock { $0 = outcome.attribution }
                if let failure = outcome.cleanupFailure { printError("--attribute \(cache): \(failure)") }
            } catch {
                printError("--attribute \(cache): \(error)")
            }
            semaphore.signal()
        }
    }

    /// Waits for the session (it ends when the command has exited) and returns what it found.
    func finish() -> [Attribution] {
        guard let done else { return [] }
        done.wait()
        return result.attribution.withLock { $0 }.map { [$0] } ?? []
    }
}

/// SIGINT and SIGTERM during `measure`. Before the command starts, they end
/// measure at once; while it runs, they are passed on to it, and count as
/// dealt with when it exits rather than dies of one (a command may catch
/// SIGINT and finish: measure then reports as usual, as a shell waits for
/// such a command); after it, they end settling. A signal not dealt with
/// ends measure by that same signal once the report is out, the convention
/// that lets a calling shell or CI runner see the interruption.
enum Interruption {
    /// The command while it runs (0 before and after), for the handler.
    nonisolated(unsafe) static var child: pid_t = 0
    /// Signals received, and the last one.
    static let received = Atomic<Int32>(0)
    static let lastSignal = Atomic<Int32>(0)
    /// Signals the command received and exited after, by its own choice.
    nonisolated(unsafe) static var dealtWith: Int32 = 0

    /// A signal arrived that no command dealt with.
    static var pending: Bool { received.load(ordering: .relaxed) > dealtWith }

    static func catchSignals() {
        // An ignored SIGCHLD, inherited from whatever started us, would have
        // the kernel reap the command itself and lose its exit status.
        signal(SIGCHLD, SIG_DFL)
        var handled = sigset_t()
        sigemptyset(&handled)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                Interruption.lastSignal.store(number, ordering: .relaxed)
                Interruption.received.add(1, ordering: .relaxed)
                if Interruption.child > 0 { kill(Interruption.child, number) }
            }
            sigaddset(&handled, signalNumber)
        }
        // Unblocked too: a mask inherited from whatever started us would swallow them.
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    }

    /// From now on signals go to `pid`; one that arrived as it started goes now.
    static func commandStarted(_ pid: pid_t) {
        child = pid
        if pending { kill(pid, lastSignal.load(ordering: .relaxed)) }
    }

    /// The command is gone; what it received and survived was dealt with.
    static func commandEnded(diedOfSignal: Bool) {
        child = 0
        if !diedOfSignal { dealtWith = received.load(ordering: .relaxed) }
    }

    /// Ends the process by the last signal, as if it had not been caught.
    static func end() -> Never {
        let number = lastSignal.load(ordering: .relaxed)
        signal(number, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        raise(number)
        exit(128 + number)
    }
}
