import Glibc
import SlabWatch
import SlabWatchCore

/// `slabwatch attribute CACHE`: one bounded session (BPF, else tracefs),
/// printed as a table or JSON. Exit codes: 1 the session's tracefs instance
/// could not be removed (after the result is printed), 2 unknown cache or bad
/// flag, 4 no way to trace (no tracefs; a forced `--source` that cannot run
/// here), 5 not permitted (tracefs needs root; BPF needs CAP_BPF and CAP_PERFMON).
enum Attribute {
    nonisolated(unsafe) static var interrupted: sig_atomic_t = 0

    static func run(_ command: ParsedCommand, configuration: Configuration) -> Never {
        let cache = command.arguments[0]
        var settings = configuration.attribution
        if let text = command.options["duration"] {
            guard let seconds = Units.seconds(text), seconds >= 0.1, seconds <= 600 else {
                SlabWatchCommand.fail(.badConfiguration, "--duration: '\(text)' is not a duration from 100ms to 10m")
            }
            settings.durationSeconds = seconds
        }
        if let text = command.options["max-events"] {
            guard let count = Int(text), count > 0 else { SlabWatchCommand.fail(.badConfiguration, "--max-events: '\(text)' is not a positive number") }
            settings.maxEvents = count
        }
        if let text = command.options["source"] {
            guard let source = AttributionSettings.Source(rawValue: text) else {
                SlabWatchCommand.fail(.badConfiguration, "--source: '\(text)' is not one of \(AttributionSettings.Source.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.source = source
            if command.flags.contains("stream") && source != .trace && source != .auto {
                SlabWatchCommand.fail(.badConfiguration, "--stream is --source trace: it cannot go with --source \(text)")
            }
        }
        let paths = configuration.sampler.paths
        guard cache == Attribution.outsideCaches || cacheExists(cache, sysfs: paths.sysfs, procfs: paths.procfs) else {
            SlabWatchCommand.fail(.badConfiguration, "no slab cache named '\(cache)' (see /sys/kernel/slab or slabwatch top)")
        }
        // Ctrl-C ends the session early; it still reports and cleans up.
        // Unblocked too: a mask inherited from whatever started us would swallow them.
        var handled = sigset_t()
        sigemptyset(&handled)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber) { _ in Attribute.interrupted = 1 }
            sigaddset(&handled, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        let outcome: AttributionSession.Outcome
        do {
            if command.flags.contains("allocinfo") {
                outcome = .init(attribution: try AttributionSession.allocInfo(cache: cache, procfs: configuration.sampler.paths.procfs,
                                                                              seconds: settings.durationSeconds, cancelled: { interrupted != 0 }))
            } else {
                outcome = try AttributionSession.run(target: AttributionTarget(slab: cache, sysfs: paths.sysfs, procfs: paths.procfs),
                                                     settings: settings, say: { printError($0) },
                                                     cancelled: { interrupted != 0 }, stream: command.flags.contains("stream"))
            }
        } catch {
            switch error {
            case .unavailable(let why): SlabWatchCommand.fail(.tracingUnavailable, why)
            case .permission(let why): SlabWatchCommand.fail(.notPermitted, why)
            case .failed(let why): SlabWatchCommand.fail(.runtimeFailure, why)
            }
        }
        if command.flags.contains("json") {
            let bytes = AttributionRenderer.json(outcome.attribution)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        } else {
            print(AttributionRenderer.text(outcome.attribution), terminator: "")
        }
        // What the session found stands; what it left in the kernel fails the command.
        if let failure = outcome.cleanupFailure { SlabWatchCommand.fail(.runtimeFailure, failure) }
        exit(ExitStatus.success.rawValue)
    }

    /// SLUB lists every cache (and every alias) in /sys/kernel/slab; SLAB
    /// kernels only in /proc/slabinfo, read here as the sampler reads it:
    /// bounded, and a FIFO or device in its place refused rather than waited
    /// on. When neither lists any cache, the question has no answer: one
    /// line saying why, and exit 1.
    static func cacheExists(_ name: String, sysfs: String, procfs: String) -> Bool {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return false }
        if faccessat(AT_FDCWD, "\(sysfs)/kernel/slab/\(name)", F_OK, AT_EACCESS) == 0 { return true }
        let reader = ProcReader(paths: KernelPaths(procfs: procfs, sysfs: sysfs), pageSize: Host.pageSize, limits: .init(maxCaches: .max))
        let sample = reader.sample(timestampMilliseconds: 0)
        if sample.caches.contains(where: { $0.name == name || $0.aliases.contains(name) }) { return true }
        guard !sample.caches.isEmpty else {
            let why = sample.status(of: .slabinfo).error ?? "no slab caches listed"
            SlabWatchCommand.fail(.runtimeFailure, "cannot tell whether '\(name)' is a slab cache: \(why)")
        }
        return false
    }
}
