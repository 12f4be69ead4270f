import Glibc
public import SlabWatchCore

/// How long and how much one attribution session may trace, and how.
public struct AttributionSettings: Sendable, Equatable {
    /// Which way a session counts: the best the machine allows, or one forced.
    public enum Source: String, Sendable, CaseIterable {
        /// BPF where it can run, else a hist trigger, else the tracefs stream.
        case auto
        /// The BPF program only; a session fails where it cannot run.
        case bpf
        /// tracefs, with a hist trigger where the kernel has them.
        case hist
        /// The tracefs event stream (net bytes, and events lost at high rates).
        case trace
    }

    /// Run sessions from the daemon (needs root or the drop-in's privileges).
    public var enabled = false
    public var durationSeconds = 10.0
    public var maxEvents = 200_000
    /// Ring buffer per CPU of the private instance.
    public var bufferKiBPerCPU = 4096
    /// At most one session per cache in this long.
    public var cooldownSeconds = 3600.0
    /// `attribution.source`: the path a session takes.
    public var source = Source.auto
    /// Objects a BPF session follows to their free at most: its live-object
    /// map, 16 bytes of buckets per entry when the session starts and about
    /// 96 bytes per object followed (docs/attribution.md, "The BPF session").
    public var maxLiveObjects = 1 << 20
    /// The BTF a BPF session needs (a test points it at a missing file).
    public var btfPath = BPFSession.kernelBTF

    public init() {}
}

/// One bounded attribution session for one cache. The BPF path where the
/// kernel and the privileges allow it (see `BPFSession`); else a tracefs
/// session: a private instance with the cache's kmem events filtered in the
/// kernel, stack traces on, read from `trace_pipe` until the duration or the
/// event limit (or a hist trigger read once), then removed.
public enum AttributionSession: Sendable {
    /// Stack traces per allocation event per session.
    static let stackLimit = 5000

    /// The kernel's events and filters that catch `cache`'s allocations and frees.
    struct Plan: Equatable {
        var filters: [(event: String, filter: String?)]

        static func == (a: Plan, b: Plan) -> Bool {
            a.filters.map { "\($0.event)|\($0.filter ?? "")" } == b.filters.map { "\($0.event)|\($0.filter ?? "")" }
        }
    }

    /// kmem_cache_alloc/free by name; for a kmalloc cache also kmalloc by the
    /// slot size and its gfp class, and kfree, which names no cache (so it is
    /// not filtered, and a busy machine reaches the event limit sooner). A
    /// large session: kmalloc above the largest cache, whatever its gfp class
    /// (all of it is in SUnreclaim), and kfree.
    static func plan(target: AttributionTarget, gfpBits: [String: Int]) -> Plan {
        let cache: String
        switch target {
        case .cache(let name): cache = name
        case .large(let largest): return Plan(filters: [("kmem/kmalloc", "bytes_alloc > \(largest)"), ("kmem/kfree", nil)])
        }
        let quoted = cache.filter { $0 != "\"" && $0 != "\\" }
        var filters: [(String, String?)] = [("kmem/kmem_cache_alloc", "name == \"\(quoted)\""), ("kmem/kmem_cache_free", "name == \"\(quoted)\"")]
        if let kmalloc = KmallocCache(name: cache) {
            let account = 1 << (gfpBits["__GFP_ACCOUNT"] ?? 22), reclaimable = 1 << (gfpBits["__GFP_RECLAIMABLE"] ?? 4)
            let dma = 1 << (gfpBits["__GFP_DMA"] ?? 0)
            let classBits: String
            switch kmalloc.kind {
            case .accounted: classBits = "(gfp_flags & 0x\(String(account, radix: 16)))"
            case .reclaimable: classBits = "(gfp_flags & 0x\(String(reclaimable, radix: 16)))"
            case .dma: classBits = "(gfp_flags & 0x\(String(dma, radix: 16)))"
            case .normal: classBits = "!(gfp_flags & 0x\(String(account | reclaimable | dma, radix: 16)))"
            case .random: classBits = "!(gfp_flags & 0x\(String(account | reclaimable | dma, radix: 16)))"
            }
            filters.append(("kmem/kmalloc", "bytes_alloc == \(kmalloc.size) && \(classBits)"))
            filters.append(("kmem/kfree", nil))
        }
        return Plan(filters: filters)
    }

    /// What a session found, and what it could not undo in the kernel.
    public struct Outcome: Sendable {
        public var attribution: Attribution
        /// Why a tracefs instance of the session could not be removed (or
        /// its events turned off), in one line; nil when everything was.
        /// Never silent: the CLI exits non-zero, the daemon logs an error.
        public var cleanupFailure: String?

        public init(attribution: Attribution, cleanupFailure: String? = nil) {
            self.attribution = attribution
            self.cleanupFailure = cleanupFailure
        }
    }

    /// Runs a session by the best path `settings.source` allows: BPF, else a
    /// hist trigger, else the tracefs stream (saying in the result's
    /// `fallback` why the better paths did not run). A forced source that
    /// cannot run throws (`unavailable`, or `permission`). `cancelled` is
    /// polled while it runs (SIGINT, daemon stop), and first asked once the
    /// session counts, whatever its path: a caller that must not start its
    /// workload before then (measure) waits for that first call. `stream` (or `source:
    /// trace`) asks for the event stream, whose net bytes need the frees a
    /// hist trigger cannot match. `Attribution.outsideCaches` as `cache` is a
    /// large-allocation session (see `AttributionTarget`): the daemon's
    /// scheduler runs one for a finding on that series as for a cache's.
    public static func run(cache: String, settings: AttributionSettings, say: (String) -> Void,
                           cancelled: () -> Bool = { false }, stream: Bool = false) throws(Tracefs.Failure) -> Outcome {
        try run(target: AttributionTarget(slab: cache), settings: settings, say: say, cancelled: cancelled, stream: stream)
    }

    /// `run(cache:…)` for a target already resolved.
    public static func run(target: AttributionTarget, settings: AttributionSettings, say: (String) -> Void,
                           cancelled: () -> Bool = { false }, stream: Bool = false) throws(Tracefs.Failure) -> Outcome {
        let stream = settings.source == .trace || (settings.source == .auto && stream)
        var fallback: [String] = []
        var outcome: Outcome
        if settings.source == .bpf || (settings.source == .auto && !stream) {
            do {
                outcome = Outcome(attribution: try BPFSession.run(target: target, settings: settings, say: say, cancelled: cancelled))
                outcome.attribution.largerThanBytes = target.largerThanBytes
                return outcome
            } catch {
                if settings.source == .bpf { throw error }
                fallback.append("bpf unavailable: \(error)")
            }
        }
        let tracefs = try Tracefs.acquire()
        let stale = tracefs.removeStaleInstances()
        if !stale.removed.isEmpty { say("removed tracefs instances left by slabwatch processes that are gone: \(stale.removed.joined(separator: ", "))") }
        for failure in stale.failures { say(failure) }
        let noHist = histUnusable(for: target, kernelHasHistTriggers: tracefs.hasHistTriggers)
        let hist = !stream && noHist == nil
        if !stream, let noHist {
            if settings.source == .hist { throw .unavailable("--source hist: \(noHist)") }
            fallback.append("hist unavailable: \(noHist)")
        }
        outcome = try traced(target: target, in: tracefs, settings: settings, cancelled: cancelled, hist: hist)
        outcome.attribution.largerThanBytes = target.largerThanBytes
        if !fallback.isEmpty, settings.source == .auto {
            outcome.attribution.fallback = (fallback + ["traced with \(hist ? "a tracefs hist trigger" : "tracefs")"]).joined(separator: "; ")
        }
        return outcome
    }

    static let noHistTriggers = "this kernel has no hist triggers (CONFIG_HIST_TRIGGERS)"
    static let largeAllocationsInHist = "a hist trigger counts each of a large allocation's two kmalloc events and matches no pointer"

    /// Why a hist trigger cannot serve `target` here; nil when it can.
    static func histUnusable(for target: AttributionTarget, kernelHasHistTriggers: Bool) -> String? {
        if target.largerThanBytes != nil { return largeAllocationsInHist }
        return kernelHasHistTriggers ? nil : noHistTriggers
    }

    /// A session in a private instance of `tracefs`, removed however the session ends.
    static func traced(target: AttributionTarget, in tracefs: Tracefs, settings: AttributionSettings,
                       cancelled: () -> Bool, hist: Bool) throws(Tracefs.Failure) -> Outcome {
        let instance = try TraceInstance.create(in: tracefs)
        let result: Result<Attribution, Tracefs.Failure>
        do {
            try instance.write("tracing_on", "0")
            try instance.write("buffer_size_kb", "\(settings.bufferKiBPerCPU)")
            try instance.write("options/sym-offset", "1")
            let plan = plan(target: target, gfpBits: gfpBits(instance))
            result = .success(hist ? try Self.hist(cache: target.name, plan: plan, instance: instance, settings: settings, cancelled: cancelled)
                                   : try streamed(target: target, plan: plan, instance: instance, settings: settings, cancelled: cancelled))
        } catch {
            result = .failure(error)
        }
        let cleanupFailure = instance.remove()
        switch result {
        case .success(let attribution): return Outcome(attribution: attribution, cleanupFailure: cleanupFailure)
        case .failure(let error): throw cleanupFailure.map(error.adding) ?? error
        }
    }

    /// The event stream: allocations and frees read from `trace_pipe` until
    /// the duration or the event limit.
    static func streamed(target: AttributionTarget, plan: Plan, instance: TraceInstance, settings: AttributionSettings,
                         cancelled: () -> Bool) throws(Tracefs.Failure) -> Attribution {
        for (event, filter) in plan.filters {
            if let filter { try instance.write("events/\(event)/filter", filter) }
            // Stacks for allocations only (a trigger, not options/stacktrace:
            // an unfiltered kfree with a stack each would flood the buffer),
            // and only for the first `stackLimit` of them: a stack is fourteen
            // lines the kernel formats and we parse, and a few thousand show
            // the common paths as well as a million would.
            if event.hasSuffix("alloc") || event.hasSuffix("kmalloc") {
                let trigger = "stacktrace:\(Self.stackLimit)"
                try instance.write("events/\(event)/trigger", filter.map { "\(trigger) if \($0)" } ?? trigger)
            }
            try instance.write("events/\(event)/enable", "1")
        }
        let fd = instance.open("trace_pipe", flags: O_NONBLOCK)
        guard fd >= 0 else { throw .failed("cannot read \(instance.path)/trace_pipe: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let started = Clock.monotonicNanoseconds()
        try instance.write("tracing_on", "1")
        var reader = TracePipeReader(fd: fd, accumulator: TraceAccumulator(cache: target.name, largeAllocations: target.largerThanBytes != nil))
        let stop = reader.read(until: started + UInt64(settings.durationSeconds * 1e9), maxEvents: settings.maxEvents, cancelled: cancelled)
        try? instance.write("tracing_on", "0")
        reader.drain(maxEvents: settings.maxEvents, until: Clock.monotonicNanoseconds() + 1_000_000_000)
        let window = Double(Clock.monotonicNanoseconds() - started) / 1e9
        return reader.accumulator.result(windowSeconds: window, dropped: instance.lostEvents(), stopReason: stop,
                                         endedMilliseconds: Clock.wallMilliseconds())
    }

    /// The hist path: a trigger per allocation event keyed on the call site,
    /// summing bytes; read once at the end. Nothing is streamed, so nothing
    /// is lost but what the table has no room for (`Dropped:`).
    static func hist(cache: String, plan: Plan, instance: TraceInstance, settings: AttributionSettings,
                     cancelled: () -> Bool) throws(Tracefs.Failure) -> Attribution {
        let allocations = plan.filters.filter { $0.event.hasSuffix("alloc") || $0.event.hasSuffix("kmalloc") }
        for (event, filter) in allocations {
            let trigger = "hist:keys=call_site.sym-offset:vals=bytes_alloc:sort=bytes_alloc.descending:size=4096"
            try instance.write("events/\(event)/trigger", filter.map { "\(trigger) if \($0)" } ?? trigger)
            try instance.write("events/\(event)/enable", "1")
        }
        let started = Clock.monotonicNanoseconds()
        try instance.write("tracing_on", "1")
        while !cancelled(), Double(Clock.monotonicNanoseconds() - started) / 1e9 < settings.durationSeconds { usleep(100_000) }
        try? instance.write("tracing_on", "0")
        let window = Double(Clock.monotonicNanoseconds() - started) / 1e9
        var rows: [KernelAllocationTables.HistRow] = [], dropped: UInt64 = 0, malformed = 0
        for (event, _) in allocations {
            let table = KernelAllocationTables.parseHist(Substring(instance.read("events/\(event)/hist") ?? ""))
            rows += table.rows
            dropped += table.dropped
            malformed += table.malformedLines
        }
        var result = KernelAllocationTables.attribution(cache: cache, hist: .init(rows: rows, dropped: dropped, malformedLines: malformed),
                                                        windowSeconds: window)
        result.stopReason = cancelled() ? .interrupted : .duration
        result.endedMilliseconds = Clock.wallMilliseconds()
        return result
    }

    /// Two reads of /proc/allocinfo `seconds` apart: the call sites whose
    /// bytes grew, with no tracing at all (CONFIG_MEM_ALLOC_PROFILING).
    public static func allocInfo(cache: String, procfs: String, seconds: Double,
                                 cancelled: () -> Bool = { false }) throws(Tracefs.Failure) -> Attribution {
        let before = try readAllocInfo(procfs: procfs)
        let started = Clock.monotonicNanoseconds()
        while !cancelled(), Double(Clock.monotonicNanoseconds() - started) / 1e9 < seconds { usleep(100_000) }
        var result = KernelAllocationTables.attribution(cache: cache, from: before, to: try readAllocInfo(procfs: procfs),
                                                        windowSeconds: Double(Clock.monotonicNanoseconds() - started) / 1e9)
        result.stopReason = cancelled() ? .interrupted : .duration
        result.endedMilliseconds = Clock.wallMilliseconds()
        return result
    }

    /// True when `procfs` has an allocinfo this process can read.
    public static func hasAllocInfo(procfs: String) -> Bool {
        faccessat(AT_FDCWD, "\(procfs)/allocinfo", R_OK, AT_EACCESS) == 0
    }

    static func readAllocInfo(procfs: String) throws(Tracefs.Failure) -> [KernelAllocationTables.AllocInfoRow] {
        let path = "\(procfs)/allocinfo"
        let bytes: ArraySlice<UInt8>
        do { bytes = try FileReader(initialCapacity: 256 << 10, maximumSize: 64 << 20).read(path) } catch {
            if error.errno == EACCES || error.errno == EPERM { throw .permission("cannot read \(path): \(error)") }
            if error.errno == ENOENT {
                throw .unavailable("no \(path): this kernel is built without CONFIG_MEM_ALLOC_PROFILING (Linux 6.10 and later have it)")
            }
            throw .failed("\(error)")
        }
        guard let parsed = KernelAllocationTables.parseAllocInfo(Substring(String(decoding: bytes, as: UTF8.self))) else {
            throw .failed("\(path) does not start with 'allocinfo - version:'")
        }
        return parsed.rows
    }

    /// `__GFP_*` bit numbers from the kmalloc event's own print format, so the
    /// filter stays right on kernels that renumber them.
    static func gfpBits(_ instance: TraceInstance) -> [String: Int] {
        gfpBits(kmallocFormat: instance.read("events/kmem/kmalloc/format") ?? "")
    }

    static func gfpBits(kmallocFormat format: String) -> [String: Int] {
        var bits: [String: Int] = [:]
        for name in ["__GFP_ACCOUNT", "__GFP_RECLAIMABLE", "__GFP_DMA"] {
            // …<< (22))), "__GFP_ACCOUNT"}
            guard let range = format.firstRange(of: "))), \"\(name)\"") else { continue }
            let before = format[..<range.lowerBound]
            guard let open = before.lastIndex(of: "(") else { continue }
            if let bit = Int(before[before.index(after: open)...]) { bits[name] = bit }
        }
        return bits
    }
}

/// Reads `trace_pipe` in chunks, hands whole lines to the accumulator.
struct TracePipeReader {
    let fd: Int32
    var accumulator: TraceAccumulator
    private var pending: [UInt8] = []
    private var buffer = [UInt8](repeating: 0, count: 256 << 10)
    private var lines = 0

    init(fd: Int32, accumulator: TraceAccumulator) {
        self.fd = fd
        self.accumulator = accumulator
    }

    mutating func read(until deadline: UInt64, maxEvents: Int, cancelled: () -> Bool) -> Attribution.StopReason {
        while true {
            if cancelled() { return .interrupted }
            if accumulator.events >= UInt64(maxEvents) { return .maxEvents }
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return .duration }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let wait = Int32(min(100, (deadline - now) / 1_000_000 + 1))
            guard poll(&poller, 1, wait) > 0 else { continue }
            _ = chunk()
        }
    }

    /// What is still buffered after tracing stopped, within the event limit
    /// and a second (a backlog on a busy machine is not worth waiting for).
    mutating func drain(maxEvents: Int, until deadline: UInt64) {
        while accumulator.events < UInt64(maxEvents), Clock.monotonicNanoseconds() < deadline, chunk() > 0 {}
        if !pending.isEmpty { accumulator.take(Substring(String(decoding: pending, as: UTF8.self))); pending = [] }
    }

    private mutating func chunk() -> Int {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        pending += buffer[0..<n]
        guard let lastNewline = pending.lastIndex(of: 0x0A) else { return n }
        let text = String(decoding: pending[...lastNewline], as: UTF8.self)
        pending.removeSubrange(...lastNewline)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) { accumulator.take(line) }
        return n
    }
}
