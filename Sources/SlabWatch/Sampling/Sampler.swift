import Dispatch
import LinearRegex
public import Logging
public import SlabWatchCore
import Synchronization

/// Takes a sample every interval on its own serial queue: read → parse →
/// pipeline step (record in the ring, detect) → publish one immutable state,
/// whose bodies are rendered later, on the first request for them (see
/// `PublishedState`). The ring is shared with readers through `history`;
/// each tick goes to `output` (the daemon's alerts, checkpoints, readiness).
///
/// The ticker and the tick share one serial queue, so a tick that overruns the
/// interval delays the next instead of queueing more; the ticks that did not
/// happen are counted in `samplesSkipped`. Scheduling uses the monotonic clock,
/// timestamps the wall clock. Thread-safe: every entry point hops onto the queue.
public final class Sampler: @unchecked Sendable {  // every mutable field is used only on `queue`, which each entry point hops onto
    public struct Settings: Sendable, Equatable {
        public var paths: KernelPaths
        public var intervalSeconds: Double
        public var include: String?
        public var exclude: String?
        public var minimumFootprintBytes: UInt64
        /// How many of the caches the filters admit `/metrics` lists.
        public var bound: ExportBound
        public var detector: DetectorSettings
        public var limits: ProcReader.Limits

        public init(paths: KernelPaths = .init(), intervalSeconds: Double = 5, include: String? = nil,
                    exclude: String? = nil, minimumFootprintBytes: UInt64 = 0, bound: ExportBound = .init(),
                    detector: DetectorSettings = .init(), limits: ProcReader.Limits = .init()) {
            self.paths = paths
            self.limits = limits
            self.detector = detector
            self.intervalSeconds = intervalSeconds
            self.include = include
            self.exclude = exclude
            self.minimumFootprintBytes = minimumFootprintBytes
            self.bound = bound
        }

        /// Compiles the cache filter. - Throws: `LinearRegex.SyntaxError`.
        func makeFilter() throws(LinearRegex.SyntaxError) -> CacheFilter {
            try CacheFilter(include: include, exclude: exclude, minimumFootprintBytes: minimumFootprintBytes)
        }

        /// The pipeline these settings sample into: their detector, and `ring`
        /// with room for `sampler.max-caches` (`Pipeline.Settings.ring`).
        public func pipeline(ring: SampleRing.Configuration) -> Pipeline.Settings {
            Pipeline.Settings(detector: detector, ring: Pipeline.Settings.ring(ring, maxCaches: limits.maxCaches), maxCgroups: limits.maxCgroups)
        }
    }

    private let queue = DispatchQueue(label: "slabwatch.sampler")
    private let store: StateStore
    /// The pipeline's ring as of the last record, for every reader of history.
    public let history: HistoryReader
    private let output: any SamplerOutput
    private let own: any SelfStatisticsSource
    private let ticker: any Ticker
    private let time: any TimeSource
    private let logger: Logger
    private var settings: Settings
    private var reader: ProcReader
    private let selection: SharedCacheSelection
    /// Footprints an hour back for the growth ranking, rebuilt when the
    /// coarse tier moves (`FootprintBaseline`), not every tick.
    private var growthBaseline: FootprintBaseline?
    /// The baseline before `growthBaseline`, refilled at the next move.
    private var spareGrowthBaseline: FootprintBaseline?
    private var pipeline: Pipeline
    private var statistics = SamplerStatistics()
    private var ticking = false
    private var lastTickNanoseconds: UInt64?
    private var clock = SampleClock()
    /// The last /metrics body's size, so the next render reserves enough at once.
    private let metricsSizeHint = SizeHint()

    /// Samples into a pipeline of `settings.pipeline(ring:)`: each tick's state
    /// into `store`, the ring into `history`, the step and the state to
    /// `output`; `/metrics` reads slabwatch's own figures from `statistics`
    /// (without a daemon: the sampler's and the process's).
    /// - Throws: `LinearRegex.SyntaxError` for a bad include/exclude regex.
    public convenience init(settings: Settings, ring: SampleRing.Configuration, store: StateStore,
                            history: HistoryReader = HistoryReader(), output: any SamplerOutput = NoSamplerOutput(),
                            statistics: (any SelfStatisticsSource)? = nil, logger: Logger) throws {
        try self.init(settings: settings, ring: ring, store: store, history: history, output: output,
                      statistics: statistics ?? ProcessOnlyStatistics(), logger: logger, ticker: ThreadTicker(), time: SystemTime())
    }

    /// The same, ticked by `ticker` and timed by `time` (a test's own).
    init(settings: Settings, ring: SampleRing.Configuration, store: StateStore, history: HistoryReader, output: any SamplerOutput,
         statistics: any SelfStatisticsSource, logger: Logger, ticker: any Ticker, time: any TimeSource) throws {
        self.settings = settings
        self.store = store
        self.history = history
        self.output = output
        self.own = statistics
        self.ticker = ticker
        self.time = time
        self.logger = logger
        self.selection = SharedCacheSelection(CacheSelection(filter: try settings.makeFilter(), bound: settings.bound))
        self.reader = ProcReader(paths: settings.paths, pageSize: Host.pageSize, limits: settings.limits)
        self.pipeline = Pipeline(settings: settings.pipeline(ring: ring))
    }

    /// Samples immediately, then every interval.
    public func start() {
        queue.sync { schedule() }
    }

    /// Stops the ticks and waits up to `timeout` seconds for a running tick to
    /// finish. A tick stuck in the kernel (a hung procfs read) is abandoned so
    /// shutdown stays prompt; the ticks stop once it returns. Returns false
    /// when it was abandoned.
    @discardableResult
    public func stop(timeout: Double = 0.5) -> Bool {
        let done = DispatchSemaphore(value: 0)
        queue.async { [self] in
            ticker.cancel()
            ticking = false
            done.signal()
        }
        return done.wait(timeout: .now() + timeout) == .success
    }

    /// Continues from a saved state (before `start`), as `Pipeline.restore`
    /// does: from an earlier boot, open findings resolve (`reboot`) and no
    /// window reaches back before now. Returns what was restored, for the log.
    public func restore(_ saved: SavedState, sameBoot: Bool) -> Pipeline.Restored {
        queue.sync {
            clock.continueAfter(saved.metadata.lastSampleMilliseconds, monotonicNanoseconds: time.monotonicNanoseconds())
            let rebootSeenAt = sameBoot ? nil : clock.now(time)
            return history.replace { shared in
                shared = nil
                let restored = pipeline.restore(saved, rebootSeenAt: rebootSeenAt)
                shared = pipeline.ring
                return restored
            }
        }
    }

    /// Attaches a tracing session's result to its cache's open finding (on
    /// the sampler's queue, between ticks); the `attributed` event goes to
    /// `output.transitions`. The next tick publishes it.
    public func attach(_ attribution: Attribution) {
        queue.async { [self] in
            guard let event = pipeline.attach(attribution, now: clock.now(time)) else { return }
            output.transitions([event])
        }
    }

    /// The last tick's step with the ring and findings as they are now (a
    /// clean stop's checkpoint); nil before the first tick, and when a tick
    /// is still stuck after `timeout` seconds (the state it would give is
    /// then being changed).
    public func finalState(timeout: Double = 0.5) -> Pipeline.Step? {
        let latest = Mutex<Pipeline.Step?>(nil)
        let done = DispatchSemaphore(value: 0)
        queue.async { [self] in
            latest.withLock { $0 = pipeline.latest }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return latest.withLock { $0 }
    }

    /// Takes one sample now, synchronously (for `slabwatch snapshot` and tests).
    @discardableResult
    public func sampleOnce() -> PublishedState {
        queue.sync { tick() }
    }

    /// Applies new settings; the ring and its history are kept.
    /// - Throws: `LinearRegex.SyntaxError`; the old settings then stay.
    public func apply(_ new: Settings) throws {
        let newFilter = try new.makeFilter()
        queue.sync {
            let intervalChanged = new.intervalSeconds != settings.intervalSeconds
            if new.paths != settings.paths || new.limits != settings.limits {
                reader = ProcReader(paths: new.paths, pageSize: Host.pageSize, limits: new.limits)
            }
            settings = new
            selection.apply(filter: newFilter, bound: new.bound)
            history.replace { shared in
                shared = nil
                pipeline.apply(new.detector)
                shared = pipeline.ring
            }
            if intervalChanged && ticking { schedule() }
        }
    }

    private func schedule() {
        ticking = true
        lastTickNanoseconds = nil
        ticker.start(every: settings.intervalSeconds, on: queue) { [unowned self] in
            output.published(tick())
        }
    }

    @discardableResult
    private func tick() -> PublishedState {
        let started = time.monotonicNanoseconds()
        countSkippedTicks(now: started)
        let read = reader.sample(timestampMilliseconds: clock.now(time))
        // The lock covers the record only: the detector runs outside it, so a
        // history request never waits for it.
        let recorded = history.replace { shared in
            shared = nil  // the pipeline's ring is then the only one, and the append writes in place
            let recorded = pipeline.record(read)
            shared = pipeline.ring
            return recorded
        }
        let step = pipeline.evaluate(latest: recorded)
        refreshGrowthBaseline()
        logRingEvictions(UInt64(step.evictedSeries))
        output.evaluated(step)
        statistics.samplesTotal += 1
        for (source, status) in step.sample.sources where status.malformedLines > 0 {
            statistics.parseErrors[source, default: 0] += UInt64(status.malformedLines)
        }
        statistics.lastDurationSeconds = Double(time.monotonicNanoseconds() - started) / 1e9
        let state = store.publish(
            sample: step.sample, report: step.report, publishedAtNanoseconds: time.monotonicNanoseconds(),
            intervalSeconds: settings.intervalSeconds,
            exposition: .init(selection: selection, growth: growthBaseline, version: Host.version, sampler: statistics, own: own,
                              sizeHint: metricsSizeHint))
        logDownSources(step.sample)
        logCacheLimit(step.sample)
        logCgroupfs(step.sample)
        return state
    }

    /// Reads the footprints an hour back when the coarse tier has moved since
    /// the last read, and only while something ranks by growth.
    private func refreshGrowthBaseline() {
        guard !settings.bound.all, settings.bound.topByGrowth > 0 else {
            growthBaseline = nil
            return
        }
        if growthBaseline?.isCurrent(for: pipeline.ring) == true { return }
        // Refills the baseline of two moves back (the last one is still in the published state).
        var next = spareGrowthBaseline
        spareGrowthBaseline = growthBaseline
        growthBaseline = nil
        if next?.refill(ring: pipeline.ring, windowSeconds: ExportBound.growthWindowSeconds) == true {
            growthBaseline = next
        } else {
            growthBaseline = FootprintBaseline(ring: pipeline.ring, windowSeconds: ExportBound.growthWindowSeconds)
        }
    }

    /// A tick that arrives more than one interval after the last means the
    /// ticks in between never ran (the previous one overran, or the host stalled).
    private func countSkippedTicks(now: UInt64) {
        defer { lastTickNanoseconds = now }
        guard let last = lastTickNanoseconds, ticking else { return }
        let intervals = Double(now - last) / (settings.intervalSeconds * 1e9)
        if intervals >= 2 { statistics.samplesSkipped += UInt64(intervals) - 1 }
    }

    private var downSources: Set<Source> = []
    private var overLimit = false
    private var cgroupfsEmpty = false
    private var evicting = false
    private var ticksWithoutEviction = 0

    /// Says once when cache names churn beyond the ring's bound (histories are
    /// being dropped), and once when a hundred ticks have passed without it.
    private func logRingEvictions(_ total: UInt64) {
        let evictedNow = total > statistics.seriesEvicted
        statistics.seriesEvicted = total
        ticksWithoutEviction = evictedNow ? 0 : ticksWithoutEviction + 1
        if evictedNow && !evicting {
            evicting = true
            logger.warning("cache names churn beyond the ring's bound; the histories of caches seen longest ago are dropped",
                           metadata: ["max_series": "\(pipeline.settings.ring.maxSeries)"])
        } else if evicting && ticksWithoutEviction >= 100 {
            evicting = false
            logger.info("cache name churn back within the ring's bound")
        }
    }

    /// Says once when the kernel lists more caches than `sampler.max-caches`, and once when that ends.
    private func logCacheLimit(_ sample: Sample) {
        if sample.cachesOverLimit > 0 && !overLimit {
            logger.warning("more caches than sampler.max-caches; the smallest are left out", metadata: [
                "caches": "\(sample.caches.count { !$0.isDerived } + sample.cachesOverLimit)", "max_caches": "\(settings.limits.maxCaches)"])
        } else if sample.cachesOverLimit == 0 && overLimit {
            logger.info("cache count back under sampler.max-caches")
        }
        overLimit = sample.cachesOverLimit > 0
    }

    /// Says once when `path.cgroupfs` holds no memory cgroup hierarchy (the
    /// node's tree not mounted where the manifest says), and once when it does.
    private func logCgroupfs(_ sample: Sample) {
        let path = settings.paths.cgroupfs
        let empty = !path.isEmpty && sample.cgroupMemory == nil
        if empty && !cgroupfsEmpty {
            logger.warning("no memory cgroup hierarchy under path.cgroupfs (neither cgroup v2 with the memory controller nor v1's memory/); kernel memory per cgroup is not read",
                           metadata: ["path": "\(path)"])
        } else if !empty && cgroupfsEmpty {
            logger.info("memory cgroups found under path.cgroupfs", metadata: ["path": "\(path)"])
        }
        cgroupfsEmpty = empty
    }

    /// Logs when a source goes down or comes back, not on every tick.
    private func logDownSources(_ sample: Sample) {
        for source in Source.allCases {
            let status = sample.status(of: source)
            if !status.up && !downSources.contains(source) {
                downSources.insert(source)
                logger.warning("source down", metadata: ["source": "\(source.rawValue)", "error": "\(status.error ?? "")"])
            } else if status.up && downSources.contains(source) {
                downSources.remove(source)
                logger.info("source up again", metadata: ["source": "\(source.rawValue)"])
            }
        }
    }
}
