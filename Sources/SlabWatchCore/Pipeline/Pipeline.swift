/// One machine's history and verdicts: the ring, the detector, their settings
/// and the one inode-cache selector. A sample reaches the ring and the
/// detector only through `step` (or its two halves, `record` and `evaluate`) —
/// in the daemon's sampler, `replay`, `measure`, `top` and every test
/// scenario — so a new source or driver plugs in here, once.
///
/// Pure: samples in, findings out; the time is the samples'. Not thread-safe:
/// one owner (the sampler's queue, a replay loop, a test).
public struct Pipeline: Sendable {
    /// What a pipeline runs by.
    public struct Settings: Sendable, Equatable {
        /// The detector's rules. Its `inodeCaches` is the one inode-cache
        /// selector: the ring follows it from here and from nowhere else.
        public var detector: DetectorSettings
        /// The ring's geometry, fixed for the pipeline's life (`ring.*` keys
        /// take effect at a restart; `apply` changes the detector's rules only).
        public var ring: SampleRing.Configuration
        /// Memory cgroups the reader exports (`sampler.max-cgroups`); the
        /// cgroup history keeps the largest of them, at most `CgroupHistory.maxColumns`.
        public var maxCgroups: Int

        public init(detector: DetectorSettings = .init(), ring: SampleRing.Configuration = .init(), maxCgroups: Int = 512) {
            self.detector = detector
            self.ring = ring
            self.maxCgroups = maxCgroups
        }

        /// `base` with room for every cache a sample keeps (`maxCaches`,
        /// `sampler.max-caches`) plus a quarter for churn; beyond that the
        /// cache seen longest ago gives way (`SampleRing.Configuration.maxSeries`).
        public static func ring(_ base: SampleRing.Configuration, maxCaches: Int) -> SampleRing.Configuration {
            var bounded = base
            bounded.maxSeries = maxCaches + maxCaches / 4
            return bounded
        }
    }

    /// What one step did, and what publishing and checkpointing it need.
    ///
    /// It holds the ring, copy on write: free while the pipeline is the only
    /// other holder, but a step kept past the next `record` makes that append
    /// copy the whole ring. Use it and let it go.
    public struct Step: Sendable {
        /// The sample as recorded (`Pipeline.recorded`: derived series included).
        public let sample: Sample
        /// The findings, the transitions of this step, the slab trend.
        public let report: GrowthDetector.Report
        /// The ring after the step.
        public let ring: SampleRing
        /// The detector's memory after the step.
        public let memory: GrowthDetector.Memory
        /// Kernel memory per memory cgroup after the step.
        public let cgroups: CgroupHistory

        /// Series dropped so far to make room for new cache names.
        public var evictedSeries: Int { ring.evictedSeries }
    }

    /// What `restore` took from a saved state.
    public struct Restored: Sendable, Equatable {
        /// Samples of the ring's fine tier restored; 0 when the ring was not.
        public var samples: Int
        public var openFindings: Int
        /// False when the saved ring's geometry differs from the pipeline's.
        public var ringKept: Bool
    }

    public private(set) var settings: Settings
    public private(set) var ring: SampleRing
    /// Kernel memory per memory cgroup, one reading every walk of the reader.
    public private(set) var cgroups: CgroupHistory
    private var detector: GrowthDetector
    /// The newest cgroup reading the open findings were ranked against.
    private var chargedAt: Int64?
    /// The last evaluated sample and its report (no ring: see `Step`).
    private var lastEvaluated: (sample: Sample, report: GrowthDetector.Report)?
    /// The caches array of the sample recorded before the last one, whose
    /// storage the next record refills: by then its step and published state
    /// are gone, unless a reader still holds them (copy on write keeps theirs).
    private var recycledCaches: [SlabCache] = []

    public init(settings: Settings = .init()) {
        self.settings = settings
        ring = SampleRing(configuration: settings.ring)
        ring.follow(settings.detector)
        cgroups = CgroupHistory(columns: min(settings.maxCgroups, CgroupHistory.maxColumns))
        detector = GrowthDetector(settings: settings.detector)
    }

    /// Records `sample` and evaluates the ring with it as the latest.
    public mutating func step(_ sample: Sample) -> Step {
        evaluate(latest: record(sample))
    }

    /// The first half of `step`: the sample, as recorded, into the ring.
    /// Only an owner that publishes the ring before the detector runs calls
    /// the halves apart (the sampler, so that pages never wait for the
    /// detector); `measure` records only. Returns the sample as recorded.
    @discardableResult
    public mutating func record(_ sample: Sample) -> Sample {
        let storage = recycledCaches
        recycledCaches = lastEvaluated?.sample.caches ?? []
        let recorded = Self.recorded(sample, adding: DerivedSeries.all, reusing: consume storage)
        ring.append(recorded)
        if let reading = sample.cgroupMemory {
            cgroups.append(reading, at: reading.readAtMilliseconds ?? sample.timestampMilliseconds)
        }
        return recorded
    }

    /// The second half of `step`: the detector over the ring, `sample` (what
    /// `record` returned) being the latest.
    public mutating func evaluate(latest sample: Sample) -> Step {
        var report = detector.evaluate(ring, latest: sample)
        annotate(&report, now: sample.timestampMilliseconds)
        lastEvaluated = (sample, report)
        return Step(sample: sample, report: report, ring: ring, memory: detector.memory, cgroups: cgroups)
    }

    /// The last step with the ring and the detector's memory as they are now
    /// (a restore or an attach since shows): what a final checkpoint saves.
    /// Nil before the first step.
    public var latest: Step? {
        lastEvaluated.map { Step(sample: $0.sample, report: $0.report, ring: ring, memory: detector.memory, cgroups: cgroups) }
    }

    /// Continues from a saved state. The ring is taken when its geometry is
    /// this pipeline's (`settings.ring`), and then follows this pipeline's
    /// selector (a different one starts the inode-cache columns afresh); the
    /// findings always. `rebootSeenAt` is nil when the state describes this
    /// boot; otherwise the machine rebooted since, and as of that time open
    /// findings resolve (`reboot`) and no window reaches back before it.
    public mutating func restore(_ saved: SavedState, rebootSeenAt: Int64?) -> Restored {
        let ringKept = saved.ring.configuration == settings.ring
        if ringKept {
            ring = saved.ring
            ring.follow(settings.detector)
        }
        detector.memory = saved.detector
        // Cgroups of another boot are gone; a history kept with other bounds is not this one's.
        if rebootSeenAt == nil, let history = saved.cgroups, history.columns == cgroups.columns, history.capacity == cgroups.capacity {
            cgroups = history
        }
        if let rebootSeenAt { detector.forgetBoot(now: rebootSeenAt) }
        return Restored(samples: ringKept ? ring.fine.count : 0, openFindings: detector.memory.openFindings.count,
                        ringKept: ringKept)
    }

    /// New rules for the detector (a reload). The ring keeps its history; a
    /// changed selector starts its inode-cache columns afresh, since a column
    /// means one cache for as long as the ring holds it.
    public mutating func apply(_ detector: DetectorSettings) {
        settings.detector = detector
        self.detector.settings = detector
        ring.follow(detector)
    }

    /// Gives the open finding of `attribution.cache` its attribution; the
    /// event says so. Nil when that finding is gone.
    public mutating func attach(_ attribution: Attribution, now: Int64) -> GrowthDetector.Event? {
        guard var event = detector.attach(attribution, now: now) else { return nil }
        if let charged = ChargeRanking.charged(for: event.finding, ring: ring, history: cgroups, now: now) {
            detector.charge(event.finding.slab, charged)
            event.finding.charged = charged
        }
        return event
    }

    /// The annotate stage: who is charged for each open finding
    /// (`ChargeRanking`), ranked again whenever a new cgroup reading came
    /// (every `ProcReader.cgroupsEvery` samples) and at once for a finding
    /// not ranked yet, so an opened event already carries it. The cost is
    /// bounded by the open findings, not by the cgroups.
    private mutating func annotate(_ report: inout GrowthDetector.Report, now: Int64) {
        let fresh = cgroups.newestTime != chargedAt
        chargedAt = cgroups.newestTime
        var ranked: [String: ChargedCgroups] = [:]
        for finding in report.findings where finding.state == .open && (fresh || finding.charged == nil) {
            guard let charged = ChargeRanking.charged(for: finding, ring: ring, history: cgroups, now: now) else { continue }
            detector.charge(finding.slab, charged)
            ranked[finding.slab] = charged
        }
        guard !ranked.isEmpty else { return }
        for index in report.findings.indices where report.findings[index].state == .open {
            if let charged = ranked[report.findings[index].slab] { report.findings[index].charged = charged }
        }
        for index in report.events.indices where report.events[index].finding.state == .open {
            if let charged = ranked[report.events[index].finding.slab] { report.events[index].finding.charged = charged }
        }
    }

    /// A sample as the ring records it: the derived series (`DerivedSeries.all`)
    /// joined as caches. The one place they join; `record` calls it, and so
    /// does whatever keeps samples for the pipeline to see later (`measure`).
    public static func recorded(_ sample: Sample) -> Sample {
        recorded(sample, adding: DerivedSeries.all)
    }

    /// - Parameter storage: an array whose storage the recorded caches
    ///   reuse (emptied first), so that a steady record allocates nothing.
    static func recorded(_ sample: Sample, adding derived: [DerivedSeries], reusing storage: consuming [SlabCache] = []) -> Sample {
        guard !derived.isEmpty else { return sample }
        var recorded = sample
        // A reader sums before its cache limit cuts; a sample made otherwise
        // (a scenario, an older recording) has every cache it had.
        if recorded.cacheTotals == nil { recorded.cacheTotals = CacheTotals(sample.caches) }
        let kernelCaches = recorded
        var caches = consume storage
        caches.removeAll(keepingCapacity: true)
        caches.reserveCapacity(sample.caches.count + derived.count)
        caches.append(contentsOf: sample.caches)
        for series in derived {
            if let cache = series.cache(in: kernelCaches) { caches.append(cache) }
        }
        recorded.caches = caches
        return recorded
    }
}

// MARK: measure

extension Pipeline {
    /// Everything recorded, as one window of the fine tier, with each inode
    /// cache whose count moved by `minDriverChange` as a driver of its own:
    /// `slabwatch measure`'s run.
    func recordWindow() -> FittedWindow {
        var window = FittedWindow(kind: .fine, tier: ring.fine, start: 0, settings: settings.detector)
        window.addInodeCaches(ring.inodeCacheNames, minDriverChange: settings.detector.minimumChange(for: .inodes))
        return window
    }

    /// The detector's fits of `values` over all of `window`, by the rules a
    /// finding's window is fitted with but without the growth threshold
    /// (`GrowthDetector.fitsOverWindow`). `cache` names the values' cache; an
    /// inode cache (`ring.isInodeCache`, with a column or waiting for one) is
    /// fitted against the global counters only, as the daemon fits it. Nil
    /// for a figure that is no cache (a slab total).
    mutating func fits(_ values: [Double], of cache: String?, over window: FittedWindow)
        -> (fits: [Finding.DriverFit], best: Finding.DriverFit?)
    {
        detector.fitsOverWindow(values, window: window, cache: cache, isInodeCache: cache.map(ring.isInodeCache(named:)) ?? false)
    }
}
