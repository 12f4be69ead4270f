/// What one run of a workload cost the kernel's slab caches (`slabwatch
/// measure`): for every cache whose footprint moved beyond noise, its
/// footprint before, at peak and after settling, the cost per unit of its
/// best driver over the run, and what the run left behind; the same for
/// unreclaimable slab as a whole; and how the drivers moved.
///
/// Pure: made from samples by `report(samples:…)`, read back from its JSON
/// by `MeasurementReader`. The fits are the detector's own
/// (`GrowthDetector.fitsOverWindow`): the same drivers, thresholds and rules
/// for choosing among them, over one window, the run.
public struct Measurement: Sendable, Equatable {
    /// The command that ran, how it ended and for how long.
    public struct Command: Sendable, Equatable {
        public var arguments: [String]
        /// Its exit code, or 128 + the signal that ended it.
        public var exitStatus: Int32
        public var wallSeconds: Double

        public init(arguments: [String], exitStatus: Int32, wallSeconds: Double) {
            self.arguments = arguments
            self.exitStatus = exitStatus
            self.wallSeconds = wallSeconds
        }
    }

    /// Bytes held before the command, the most held from its start to the
    /// end of settling, and what was held after settling.
    public struct Footprints: Sendable, Equatable {
        public var beforeBytes: UInt64
        public var peakBytes: UInt64
        public var afterBytes: UInt64

        public init(beforeBytes: UInt64, peakBytes: UInt64, afterBytes: UInt64) {
            self.beforeBytes = beforeBytes
            self.peakBytes = peakBytes
            self.afterBytes = afterBytes
        }

        /// What the run left behind: after settling − before (negative when it freed memory).
        public var keptBytes: Double { Double(afterBytes) - Double(beforeBytes) }
        /// The largest move either way, peak or after, from before.
        var movedBytes: Double { max(Double(peakBytes) - Double(beforeBytes), abs(keptBytes)) }
    }

    /// The cost per unit of one driver: the fit's slope over the run, with
    /// the plain ratio before → peak as a cross-check.
    public struct Cost: Sendable, Equatable {
        public var driver: GrowthDriver
        /// For `inodes`: the inode cache whose object count was the x; nil for the global count.
        public var inodeCache: String?
        public var bytesPerUnit: Double
        public var rSquared: Double
        /// The driver's last − first over the run.
        public var driverChange: Double
        /// (footprint at its peak during the run − before) / (the driver there − before);
        /// nil when the driver did not move.
        public var peakBytesPerUnit: Double?

        public init(driver: GrowthDriver, inodeCache: String?, bytesPerUnit: Double, rSquared: Double,
                    driverChange: Double, peakBytesPerUnit: Double?) {
            self.driver = driver
            self.inodeCache = inodeCache
            self.bytesPerUnit = bytesPerUnit
            self.rSquared = rSquared
            self.driverChange = driverChange
            self.peakBytesPerUnit = peakBytesPerUnit
        }

        public var filesystem: String? { inodeCache.flatMap(InodeCacheSelector.filesystem(of:)) }
    }

    /// One cache that moved beyond noise.
    public struct CacheReport: Sendable, Equatable {
        public var slab: String
        public var reclaimable: Bool?
        public var footprints: Footprints
        /// The best driver's cost; nil when no driver's fit passed (`notJudged` says why).
        public var cost: Cost?
        public var notJudged: String?
        /// Every driver's fit over the run, flagged or not (budgets per unit read them).
        public var fits: [Finding.DriverFit]

        public init(slab: String, reclaimable: Bool?, footprints: Footprints, cost: Cost?, notJudged: String?,
                    fits: [Finding.DriverFit]) {
            self.slab = slab
            self.reclaimable = reclaimable
            self.footprints = footprints
            self.cost = cost
            self.notJudged = notJudged
            self.fits = fits
        }
    }

    /// A cache that moved less than its noise floor: no fit is made of it,
    /// so its cost is not measured, only bounded (`Budget.judge`).
    public struct QuietCache: Sendable, Equatable {
        public var slab: String
        /// The least move that would have counted: `--noise`, or 16 of its slabs when that is more.
        public var noiseFloorBytes: UInt64
        /// After settling − before, as for a moved cache.
        public var keptBytes: Double

        public init(slab: String, noiseFloorBytes: UInt64, keptBytes: Double) {
            self.slab = slab
            self.noiseFloorBytes = noiseFloorBytes
            self.keptBytes = keptBytes
        }
    }

    /// How one driver moved: before the command, its highest, after settling.
    public struct DriverMovement: Sendable, Equatable {
        public var driver: GrowthDriver
        public var inodeCache: String?
        public var before: Double
        public var peak: Double
        public var after: Double

        public init(driver: GrowthDriver, inodeCache: String?, before: Double, peak: Double, after: Double) {
            self.driver = driver
            self.inodeCache = inodeCache
            self.before = before
            self.peak = peak
            self.after = after
        }
    }

    public var command: Command
    /// The mean time between samples, as taken.
    public var intervalSeconds: Double
    public var settleSeconds: Double
    /// Samples taken in all: baseline, run and settling.
    public var samples: Int
    /// Samples of the run's window (the last before the command to the first after it), which the fits cover.
    public var runSamples: Int
    /// A cache counts as moved when its footprint moved by at least this much.
    public var noiseBytes: UInt64
    public var drivers: [DriverMovement]
    /// Moved caches, largest move first.
    public var caches: [CacheReport]
    /// Unreclaimable slab (meminfo SUnreclaim) as a whole, as one more "cache".
    public var slabUnreclaimable: CacheReport?
    /// Every other cache seen, in the kernel's order.
    public var quietCaches: [QuietCache]

    public init(command: Command, intervalSeconds: Double, settleSeconds: Double, samples: Int, runSamples: Int,
                noiseBytes: UInt64, drivers: [DriverMovement], caches: [CacheReport], slabUnreclaimable: CacheReport?,
                quietCaches: [QuietCache] = []) {
        self.command = command
        self.intervalSeconds = intervalSeconds
        self.settleSeconds = settleSeconds
        self.samples = samples
        self.runSamples = runSamples
        self.noiseBytes = noiseBytes
        self.drivers = drivers
        self.caches = caches
        self.slabUnreclaimable = slabUnreclaimable
        self.quietCaches = quietCaches
    }

    /// What the moved caches hold above their level before the command,
    /// summed over those that hold more (a cache the run shrank does not
    /// offset one it grew).
    public var keptBytes: Double { caches.reduce(0) { $0 + max(0, $1.footprints.keptBytes) } }
    /// What the caches that moved less than their noise floor hold above
    /// their level before, summed as `keptBytes` is: unrelated activity, or
    /// the run's own, no one can tell.
    public var quietKeptBytes: Double { quietCaches.reduce(0) { $0 + max(0, $1.keptBytes) } }
    /// The part of `keptBytes` in caches the kernel cannot reclaim.
    public var keptUnreclaimableBytes: Double {
        caches.filter { $0.reclaimable == false }.reduce(0) { $0 + max(0, $1.footprints.keptBytes) }
    }
}

/// The rules `slabwatch measure` reports by, besides the detector's fit rules.
public struct MeasurementSettings: Sendable, Equatable {
    /// The detector's thresholds for a fit that passes, made for a run of
    /// seconds rather than a daemon's hours: each driver's minimum change is
    /// a tenth of the daemon's (a file driver must move by 1,000, so a
    /// workload of a few thousand files is judged; sockets 100, threads 20,
    /// memory cgroups 10), five samples make a window, and any positive
    /// cost counts. No driver counts as rising like time: that rule is for a
    /// daemon's hours, where a count climbing steadily on its own can match a
    /// cache that wandered up; in a run the command moves its counts, and a
    /// paced workload's inode count is a straight line in time, so the rule
    /// set aside a perfect fit whenever time fitted as well (the total of
    /// unreclaimable slab, 1,300 B an inode at R² 0.9999, "not judged").
    public var detector: DetectorSettings = {
        var settings = DetectorSettings()
        settings.timeLikeRSquared = .infinity
        settings.minDriverChange /= 10
        settings.minSocketChange /= 10
        settings.minTaskChange /= 10
        settings.minCgroupChange /= 10
        settings.minBytesPerUnit = 1
        settings.minPoints = 5
        return settings
    }()
    /// A cache moved when its footprint moved (at peak or after settling) by
    /// at least this many bytes …
    public var noiseBytes: UInt64 = 1 << 20
    /// … and by at least this many of its slabs (per-CPU partial slabs come and go).
    public var noiseSlabs: UInt64 = 16

    public init() {}

    /// The rules for a run on a machine whose daemon runs by `daemon`: its
    /// inode-cache selector (`detector.inode-caches`, the one detector key a
    /// run follows), with the run's own thresholds above.
    public init(daemon: DetectorSettings) {
        detector.inodeCaches = daemon.inodeCaches
    }
}

extension Measurement {
    /// The report of one run. `samples` are in time order: the baseline,
    /// then the run, then settling; `samples[started]` is the last one taken
    /// before the command started and `samples[ended]` the first after it
    /// exited (`started < ended`), so the run's window is `started...ended`.
    /// Before is `samples[started]`, after the last sample; nil when the
    /// indices do not fit the samples. `taken` is how many samples were
    /// taken in all (`MeasurementSamples` keeps fewer); `samples.count` when nil.
    public static func report(samples: [Sample], started: Int, ended: Int, command: Command, intervalSeconds: Double,
                              settleSeconds: Double, settings: MeasurementSettings = .init(), taken: Int? = nil) -> Measurement? {
        guard started >= 0, started < ended, ended < samples.count else { return nil }
        var run = Run(samples: samples, started: started, ended: ended, settings: settings)
        let moved = run.history.order.compactMap { run.report($0) }
        let reported = Set(moved.map(\.slab))
        let quiet = run.history.order.filter { !reported.contains($0) }.compactMap { run.quiet($0) }
        let caches = moved.sorted { a, b in
            a.footprints.movedBytes != b.footprints.movedBytes ? a.footprints.movedBytes > b.footprints.movedBytes : a.slab < b.slab
        }
        return Measurement(command: command, intervalSeconds: intervalSeconds, settleSeconds: settleSeconds,
                           samples: taken ?? samples.count, runSamples: run.window.count, noiseBytes: settings.noiseBytes,
                           drivers: movements(window: run.window, before: run.before, since: run.since, history: run.history),
                           caches: caches, slabUnreclaimable: run.slabUnreclaimableReport(), quietCaches: quiet)
    }

    /// One run's samples as the fits read them: the run's window (from the
    /// last sample before the command to the first after it) recorded by a
    /// pipeline of its own, and every cache's history since the start.
    private struct Run {
        let before: Sample
        let after: Sample
        let since: ArraySlice<Sample>
        let history: CacheHistories
        var pipeline: Pipeline
        let window: FittedWindow
        let settings: MeasurementSettings

        init(samples: [Sample], started: Int, ended: Int, settings: MeasurementSettings) {
            before = samples[started]
            after = samples[samples.count - 1]
            since = samples[started...]
            history = CacheHistories(since, windowCount: ended - started + 1)
            pipeline = Pipeline(settings: .init(
                detector: settings.detector,
                ring: .init(fineCapacity: ended - started + 1, coarseCapacity: 1, coarseEvery: Int.max)))
            for sample in samples[started...ended] { pipeline.record(sample) }
            window = pipeline.recordWindow()
            self.settings = settings
        }

        /// The cache's report, nil when it did not move beyond noise.
        mutating func report(_ name: String) -> CacheReport? {
            guard let seen = history.caches[name] else { return nil }
            let footprints = footprints(seen)
            guard footprints.movedBytes >= Double(noiseFloor(seen.first)) else { return nil }
            var values = [Double](repeating: 0, count: window.count)
            let present = pipeline.ring.series(named: name)
                .map { window.tier.copyFootprints(series: $0, start: 0, count: window.count, into: &values) } ?? false
            var report = judged(slab: name, reclaimable: (seen.last ?? seen.first).reclaimable, footprints: footprints,
                                values: present ? values : [], peakIndex: seen.windowPeak?.index,
                                window: window, pipeline: &pipeline, settings: settings)
            if !present { report.notJudged = "the cache was not there for the whole run (created or destroyed during it)" }
            return report
        }

        /// A cache that did not move beyond noise, with how far it could have moved unseen.
        func quiet(_ name: String) -> QuietCache? {
            guard let seen = history.caches[name] else { return nil }
            return QuietCache(slab: name, noiseFloorBytes: noiseFloor(seen.first), keptBytes: footprints(seen).keptBytes)
        }

        func footprints(_ seen: CacheHistories.History) -> Footprints {
            Footprints(beforeBytes: seen.wasBefore ? seen.first.footprintBytes : 0, peakBytes: seen.peakBytes, afterBytes: seen.last?.footprintBytes ?? 0)
        }

        /// A cache moved when its footprint moved by `--noise`, and by 16 of its slabs.
        func noiseFloor(_ cache: SlabCache) -> UInt64 {
            let slabBytes = cache.footprintBytes / max(1, cache.slabs)
            let (slabsBytes, overflow) = settings.noiseSlabs.multipliedReportingOverflow(by: slabBytes)
            return max(settings.noiseBytes, overflow ? .max : slabsBytes)
        }

        /// SUnreclaim as one more cache; nil when meminfo did not say.
        mutating func slabUnreclaimableReport() -> CacheReport? {
            guard let first = before.meminfo?.slabUnreclaimableBytes, let last = after.meminfo?.slabUnreclaimableBytes else { return nil }
            let peak = since.compactMap { $0.meminfo?.slabUnreclaimableBytes }.max() ?? first
            return judged(slab: "slab_unreclaimable", reclaimable: false,
                          footprints: Footprints(beforeBytes: first, peakBytes: peak, afterBytes: last),
                          values: window.memory(.slabUnreclaimableBytes) ?? [],
                          peakIndex: peakIndex(since.prefix(window.count)) { $0.meminfo?.slabUnreclaimableBytes.map(Double.init) },
                          window: window, pipeline: &pipeline, settings: settings, isCache: false)
        }
    }

    /// Every cache seen from the last sample before the command on, each
    /// folded over the samples once: what the report reads of it. (A table
    /// of caches per sample held twice what the samples did.)
    struct CacheHistories {
        struct History {
            /// As first seen: in "before", or when it appeared.
            var first: SlabCache
            var wasBefore: Bool
            /// As in the last sample; nil when it was gone by then.
            var last: SlabCache?
            var peakBytes: UInt64
            /// Where within the run's window its footprint first reached its
            /// highest there, for the before → peak ratio.
            var windowPeak: (index: Int, bytes: UInt64)?
            /// Its object count first, highest and last: an inode cache is a driver.
            var firstObjects: UInt64
            var peakObjects: UInt64
            var lastObjects: UInt64
        }

        var caches: [String: History] = [:]
        /// Names in the order they were first seen: before's, then those that appeared.
        var order: [String] = []

        init(_ since: ArraySlice<Sample>, windowCount: Int) {
            let lastOffset = since.count - 1
            for (offset, sample) in since.enumerated() {
                for cache in sample.caches {
                    let bytes = cache.footprintBytes
                    guard var history = caches[cache.name] else {
                        order.append(cache.name)
                        caches[cache.name] = History(
                            first: cache, wasBefore: offset == 0, last: offset == lastOffset ? cache : nil,
                            peakBytes: bytes, windowPeak: offset < windowCount ? (offset, bytes) : nil,
                            firstObjects: cache.activeObjects, peakObjects: cache.activeObjects, lastObjects: cache.activeObjects)
                        continue
                    }
                    history.peakBytes = max(history.peakBytes, bytes)
                    if offset < windowCount, bytes > history.windowPeak?.bytes ?? 0 || history.windowPeak == nil {
                        history.windowPeak = (offset, bytes)
                    }
                    history.peakObjects = max(history.peakObjects, cache.activeObjects)
                    history.lastObjects = cache.activeObjects
                    if offset == lastOffset { history.last = cache }
                    caches[cache.name] = history
                }
            }
        }
    }

    /// One moved cache (or total, `isCache` false) with the cost of its best driver, or why it has none.
    private static func judged(slab: String, reclaimable: Bool?, footprints: Footprints, values: [Double], peakIndex: Int?,
                               window: FittedWindow, pipeline: inout Pipeline, settings: MeasurementSettings,
                               isCache: Bool = true) -> CacheReport {
        let (fits, best) = pipeline.fits(values, of: isCache ? slab : nil, over: window)
        var cost: Cost?
        if let best, window.count >= settings.detector.minPoints {
            var ratio: Double?
            if let peakIndex, peakIndex < values.count {
                let moved = window.driverValue(best.driver, inodeCache: best.inodeCache, at: peakIndex)
                    - window.driverValue(best.driver, inodeCache: best.inodeCache, at: 0)
                if moved != 0 { ratio = (values[peakIndex] - values[0]) / moved }
            }
            cost = Cost(driver: best.driver, inodeCache: best.inodeCache, bytesPerUnit: best.bytesPerUnit,
                        rSquared: best.rSquared, driverChange: best.driverChange, peakBytesPerUnit: ratio)
        }
        return CacheReport(slab: slab, reclaimable: reclaimable, footprints: footprints, cost: cost,
                           notJudged: cost == nil ? whyNotJudged(fits, window: window, settings: settings.detector) : nil,
                           fits: fits)
    }

    /// Why no fit passed: too few samples, no driver that moved enough, or a noisy fit.
    static func whyNotJudged(_ fits: [Finding.DriverFit], window: FittedWindow, settings: DetectorSettings) -> String {
        if window.count < settings.minPoints {
            return "the run has \(window.count) samples, the fit needs \(settings.minPoints) (a longer workload or a shorter --interval)"
        }
        let files = window.drivers.filter { $0.driver != .time }
        guard files.contains(where: { $0.range >= settings.minimumChange(for: $0.driver) }) else {
            let most = files.map(\.range).max() ?? 0
            return "no driver moved by \(Human.grouped(settings.minDriverChange)) (the most was \(Human.grouped(most)))"
        }
        let best = fits.filter { $0.driver != .time }.map(\.rSquared).max() ?? 0
        if best < settings.minRSquared {
            return "noisy fit: the best R² is \(Human.decimal(best, 3)), below \(Human.decimal(settings.minRSquared, 2))"
        }
        return "no driver's cost reached \(Human.decimal(settings.minBytesPerUnit, 0)) B per unit"
    }

    /// Where within the run the series peaked (index into the window), for the before → peak ratio.
    private static func peakIndex<Run: Collection>(_ run: Run, _ value: (Run.Element) -> Double?) -> Int? {
        var best: (index: Int, value: Double)?
        for (offset, element) in run.enumerated() {
            guard let v = value(element) else { continue }
            if best == nil || v > best!.value { best = (offset, v) }
        }
        return best?.index
    }

    /// The file drivers and every moved inode cache: before, highest since, after settling.
    private static func movements(window: FittedWindow, before: Sample, since: ArraySlice<Sample>,
                                  history: CacheHistories) -> [DriverMovement]
    {
        var movements: [DriverMovement] = []
        for driver in GrowthDriver.allCases where driver != .time {
            let values = since.compactMap { driver.value(in: $0) }
            guard let first = driver.value(in: before), let last = values.last else { continue }
            movements.append(DriverMovement(driver: driver, inodeCache: nil, before: first, peak: values.max() ?? first, after: last))
        }
        for column in window.drivers where column.inodeCache != nil {
            let name = column.inodeCache!
            guard let seen = history.caches[name] else { continue }
            movements.append(DriverMovement(driver: .inodes, inodeCache: name, before: Double(seen.firstObjects),
                                            peak: Double(seen.peakObjects), after: Double(seen.lastObjects)))
        }
        return movements
    }
}
