import Glibc
import SlabWatch
import SlabWatchCore

/// `slabwatch attribute CACHE`: one bounded session (BPF, else tracefs),
/// printed as a table or JSON. Exit codes: 1 the session's tracefs instance
/// could not be removed (after the result is printed), 2 unknown cache or bad
/// flag, 4 no way to trace (no tracefs; a forced `--source` that cannot run
/// here), 5 not permitted (tracefs needs root; BPF needs CAP_BPF and CAP_PERFMON).
struct AttributeCommand: Subcommand {
    static let json = CommandSpec.Flag("json", "print the result as JSON")
    static let stream = CommandSpec.Flag("stream", "stream events even where the kernel has hist triggers (net bytes need the frees)")
    static let allocInfo = CommandSpec.Flag(
        "allocinfo", "rank call sites by /proc/allocinfo growth over the duration instead of tracing (kernels with CONFIG_MEM_ALLOC_PROFILING)")
    static let spec = CommandSpec(
        name: "attribute",
        summary: "Trace who allocates a cache: call sites ranked by net bytes, with their stacks, processes and cgroups (root; see docs/attribution.md).",
        options: [AttributionSettings.duration, AttributionSettings.maxEvents, AttributionSettings.source, ConfigurationSource.option],
        flags: [json, stream, allocInfo], arguments: [.init("cache", "the slab cache, e.g. kmalloc-32 or shmem_inode_cache; '(outside caches, unreclaimable)': every kmalloc too large for any cache")],
        keySections: [.attribution, .path, .log])

    nonisolated(unsafe) static var interrupted: sig_atomic_t = 0

    let cache: String
    let settings: AttributionSettings
    let paths: KernelPaths
    let line: ParsedCommand

    init(_ line: ParsedCommand) throws(UsageError) {
        let configuration = try ConfigurationSource(line).loadForCommand()
        cache = line.arguments[0]
        settings = try AttributionSettings(line, over: configuration.attribution)
        if Self.stream.isSet(in: line), let source = try AttributionSettings.source.value(in: line), source != .trace && source != .auto {
            throw UsageError("--stream is --source trace: it cannot go with --source \(source.rawValue)")
        }
        paths = configuration.sampler.paths
        self.line = line
    }

    func run() -> Int32 {
        guard cache == Attribution.outsideCaches || Self.cacheExists(cache, paths: paths) else {
            return failed(.badConfiguration, "no slab cache named '\(cache)' (see /sys/kernel/slab or slabwatch top)")
        }
        // Ctrl-C ends the session early; it still reports and cleans up.
        // Unblocked too: a mask inherited from whatever started us would swallow them.
        var handled = sigset_t()
        sigemptyset(&handled)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber) { _ in AttributeCommand.interrupted = 1 }
            sigaddset(&handled, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        let outcome: AttributionSession.Outcome
        do {
            if Self.allocInfo.isSet(in: line) {
                outcome = .init(attribution: try AttributionSession.allocInfo(cache: cache, procfs: paths.procfs,
                                                                              seconds: settings.durationSeconds, cancelled: { Self.interrupted != 0 }))
            } else {
                outcome = try AttributionSession.run(target: AttributionTarget(slab: cache, sysfs: paths.sysfs, procfs: paths.procfs),
                                                     settings: settings, say: { printError($0) },
                                                     cancelled: { Self.interrupted != 0 }, stream: Self.stream.isSet(in: line))
            }
        } catch {
            switch error {
            case .unavailable(let why): return failed(.tracingUnavailable, why)
            case .permission(let why): return failed(.notPermitted, why)
            case .failed(let why): return failed(.runtimeFailure, why)
            }
        }
        if Self.json.isSet(in: line) {
            writeOut(AttributionRenderer.json(outcome.attribution))
        } else {
            print(AttributionRenderer.text(outcome.attribution), terminator: "")
        }
        // What the session found stands; what it left in the kernel fails the command.
        if let failure = outcome.cleanupFailure { return failed(.runtimeFailure, failure) }
        return ExitStatus.success.rawValue
    }

    /// SLUB lists every cache (and every alias) in /sys/kernel/slab; SLAB
    /// kernels only in /proc/slabinfo, read here as the sampler reads it:
    /// bounded, and a FIFO or device in its place refused rather than waited
    /// on. When neither lists any cache, the question has no answer: one
    /// line saying why, and exit 1.
    static func cacheExists(_ name: String, paths: KernelPaths) -> Bool {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return false }
        if faccessat(AT_FDCWD, "\(paths.sysfs)/kernel/slab/\(name)", F_OK, AT_EACCESS) == 0 { return true }
        let reader = ProcReader(paths: paths, pageSize: Host.pageSize, limits: .init(maxCaches: .max))
        let sample = reader.sample(timestampMilliseconds: 0)
        if sample.caches.contains(where: { $0.name == name || $0.aliases.contains(name) }) { return true }
        guard !sample.caches.isEmpty else {
            let why = sample.status(of: .slabinfo).error ?? "no slab caches listed"
            fail(.runtimeFailure, "cannot tell whether '\(name)' is a slab cache: \(why)")
        }
        return false
    }
}
