/// Finds caches whose footprint rises linearly with a driver, and follows each
/// finding through its life: opened, escalated, reclassified, resolved.
///
/// Pure: samples in (the ring and the latest sample), findings out; the time
/// is the latest sample's timestamp, so a recording replays to the same answer.
/// Not thread-safe: owned by the sampler (or the replay loop).
public struct GrowthDetector: Sendable {
    public var settings: DetectorSettings
    private var streaks: [String: Int] = [:]
    private var open: [String: Finding] = [:]
    private var resolved: [Finding] = []
    /// When each cache's last finding resolved, while a window could still reach back to it.
    private var resolvedAt: [String: Int64] = [:]
    /// Windows must start at or after this time: samples before it describe
    /// memory of an earlier boot (see `forgetBoot`).
    private var historyStart: Int64 = .min
    private var scratch = Scratch()
    /// Resolved findings remembered (all of them in `replay --json`): a cache's
    /// next finding fits only samples after its last one resolved.
    static let resolvedKept = 256

    public init(settings: DetectorSettings = .init()) {
        self.settings = settings
    }

    /// Everything the detector knows besides its settings, kept across a
    /// restart: open findings with the levels their lifecycle needs, the
    /// remembered resolved ones, streaks towards opening.
    public struct Memory: Sendable, Equatable, Codable {
        fileprivate var streaks: [String: Int]
        fileprivate var open: [String: Finding]
        fileprivate var resolved: [Finding]
        fileprivate var resolvedAt: [String: Int64]
        fileprivate var historyStart: Int64

        /// Findings open when this was taken.
        public var openFindings: [Finding] { open.keys.sorted().map { open[$0]! } }
    }

    public var memory: Memory {
        get { Memory(streaks: streaks, open: open, resolved: resolved, resolvedAt: resolvedAt, historyStart: historyStart) }
        set {
            streaks = newValue.streaks
            open = newValue.open
            resolved = newValue.resolved
            resolvedAt = newValue.resolvedAt
            historyStart = newValue.historyStart
        }
    }

    /// The machine rebooted since this memory was taken: open findings
    /// described memory that is gone, so they resolve (`reboot`) as of `now`,
    /// and no window may reach back before `now`. Resolved ones are kept.
    public mutating func forgetBoot(now: Int64) {
        for name in open.keys.sorted() {
            var finding = open[name]!
            finding.resolve(.reboot, now: now)
            resolved.append(finding)
            resolvedAt[name] = now
        }
        if resolved.count > Self.resolvedKept { resolved.removeFirst(resolved.count - Self.resolvedKept) }
        open = [:]
        streaks = [:]
        historyStart = now
    }

    /// What one evaluation found.
    public struct Report: Sendable, Equatable {
        /// Open findings (most severe, then largest growth first), then resolved ones (newest first).
        public var findings: [Finding]
        /// Transitions this evaluation caused, for alerting.
        public var events: [Event]
        public var trend: SlabTrend?

        public init(findings: [Finding] = [], events: [Event] = [], trend: SlabTrend? = nil) {
            self.findings = findings
            self.events = events
            self.trend = trend
        }

        public var openCounts: [Finding.Severity: Int] {
            var counts: [Finding.Severity: Int] = [:]
            for finding in findings where finding.state == .open { counts[finding.severity, default: 0] += 1 }
            return counts
        }
    }

    public struct Event: Sendable, Equatable {
        public enum Kind: String, Sendable { case opened, escalated, reclassified, resolved, attributed }
        public var kind: Kind
        /// The finding as the transition left it.
        public var finding: Finding
        /// The sample at which the transition happened.
        public var timestampMilliseconds: Int64

        public init(kind: Kind, finding: Finding, timestampMilliseconds: Int64) {
            self.kind = kind
            self.finding = finding
            self.timestampMilliseconds = timestampMilliseconds
        }
    }

    /// Gives the open finding of `attribution.cache` its attribution; the
    /// event says so (for the journal). Nil when that finding is gone.
    public mutating func attach(_ attribution: Attribution, now: Int64) -> Event? {
        guard var finding = open[attribution.cache] else { return nil }
        finding.attribution = attribution
        open[attribution.cache] = finding
        return Event(kind: .attributed, finding: finding, timestampMilliseconds: now)
    }

    /// Keeps who is charged for the open finding of `slab` (`Pipeline`'s annotate stage).
    mutating func charge(_ slab: String, _ charged: ChargedCgroups) {
        open[slab]?.charged = charged
    }

    public mutating func evaluate(_ ring: SampleRing, latest: Sample) -> Report {
        let now = latest.timestampMilliseconds
        var windows = WindowSet(ring: ring, now: now, settings: settings)
        var candidates: [String: [Candidate]] = [:]
        var recentRates: [String: Double] = [:]
        // `latest` is the sample the ring appended last, so a cache's series is
        // found by its position, and a name is hashed only where a finding
        // is open or was resolved: hashing every name each tick was nearly half the detector's time.
        for (position, cache) in latest.caches.enumerated() where settings.reportReclaimable || cache.reclaimable != true {
            guard let series = ring.series(ofCacheAt: position, named: cache.name) else { continue }
            // A resolved finding's window is spent: a new one must fit samples after it.
            // `index(forKey:)`: a finding is large, and `open[name] == nil` copied it out to compare.
            let isOpen = !open.isEmpty && open.index(forKey: cache.name) != nil
            let notBefore = isOpen || resolvedAt.isEmpty ? .min : resolvedAt[cache.name] ?? .min
            let minGrowth = settings.minGrowthBytes(for: cache, vmstat: latest.vmstat)
            let passing = passingWindows(series: series, cache: cache.name, minGrowth: minGrowth, ring: ring, windows: &windows,
                                         notBefore: notBefore)
            if !passing.isEmpty { candidates[cache.name] = passing }
            if isOpen, let rate = recentRate(series: series, windows: windows) { recentRates[cache.name] = rate }
        }
        var events: [Event] = []
        advanceLifecycles(candidates, recentRates: recentRates, ring: ring, latest: latest, events: &events)
        let findings = open.values.sorted { a, b in
            if a.severity != b.severity { return a.severity > b.severity }
            return a.heldBytes != b.heldBytes ? a.heldBytes > b.heldBytes : a.slab < b.slab
        } + resolved.reversed()
        return Report(findings: findings, events: events,
                      trend: SlabTrend.fit(windows.windows.lastIndex { $0.time(0) >= historyStart }.map { windows.withDrivers($0) },
                                           latest: latest,
                                           limitShare: settings.trendLimitShare))
    }

    // MARK: fitting

    struct Candidate {
        var window: FittedWindow
        var fits: [Finding.DriverFit]
        var best: Finding.DriverFit
        var growthBytes: Double
        var series: Int
    }

    /// Every window, longest first, in which some driver passes every
    /// threshold (the footprint's growth `minGrowth`, which a derived series
    /// raises above its counters' error), each with its best-fitting driver there.
    private mutating func passingWindows(series: Int, cache: String, minGrowth: Double, ring: SampleRing, windows: inout WindowSet,
                                         notBefore: Int64) -> [Candidate] {
        var passing: [Candidate] = []
        for index in windows.windows.indices.reversed() {
            // Most caches do not grow: two reads settle it before any copying.
            guard windows.quickTest(index, series: series, grows: minGrowth, after: notBefore, from: historyStart),
                  scratch.load(series: series, from: windows.windows[index]),
                  scratch.maximum - scratch.minimum >= minGrowth
            else { continue }
            let growth = scratch.values[scratch.count - 1] - scratch.values[0]
            guard growth >= minGrowth else { continue }
            let isInodeCache = ring.isInodeCache(named: cache)
            let window = isInodeCache ? windows.withDrivers(index) : windows.withInodeCaches(index)
            let fits = fitDrivers(window, isInodeCache: isInodeCache, cache: cache)
            guard let best = bestDriver(fits, cache: cache) else { continue }
            passing.append(Candidate(window: window, fits: fits, best: best, growthBytes: growth, series: series))
        }
        return passing
    }

    /// The fits of `values` (a cache's footprints, or a slab total) over all
    /// of `window`, by the rules a finding's window is fitted with, but
    /// without the growth threshold: every driver's fit, and the best one
    /// (`bestDriver`), nil when no driver passes. For `slabwatch measure`,
    /// whose window is one run of a workload.
    mutating func fitsOverWindow(_ values: [Double], window: FittedWindow, cache: String?, isInodeCache: Bool)
        -> (fits: [Finding.DriverFit], best: Finding.DriverFit?)
    {
        guard values.count == window.count, scratch.load(values: values) else { return ([], nil) }
        let fits = fitDrivers(window, isInodeCache: isInodeCache, cache: cache)
        return (fits.sorted(by: Self.fitOrder), bestDriver(fits, cache: cache))
    }

    /// The driver that explains a window's growth best. File drivers within
    /// `nearTieRSquared` of the best tie, won by the driver listed first
    /// (inodes, dentries, open files: inodes and dentries usually rise
    /// together), and within one driver by the part of its count that says
    /// why (`tieRank`): "per inode of shmem_inode_cache" says which
    /// filesystem pays, "per negative dentry" that someone looks up missing
    /// names, where "dentry grows per dentry" says nothing. A driver that
    /// counts `cache`'s own objects (dentries, for `dentry`) always fits it
    /// best and explains nothing: it leaves the contest to a part of it that
    /// passes and says why (`countsItselfOut`). Time only wins over a file
    /// driver that fits clearly worse.
    private func bestDriver(_ fits: [Finding.DriverFit], cache: String?) -> Finding.DriverFit? {
        let flagged = fits.filter(\.flagged)
        let dentriesChange = fits.first { $0.driver == .dentries }?.driverChange
        let fileFits = countsItselfOut(flagged.filter { $0.driver != .time }, cache: cache, dentriesChange: dentriesChange)
        let bestR2 = fileFits.map(\.rSquared).max() ?? 0
        let files = fileFits.filter { $0.rSquared >= bestR2 - settings.nearTieRSquared }.min { a, b in
            if a.driver.whole != b.driver.whole { return a.driver.whole.tiePreference < b.driver.whole.tiePreference }
            let (rankA, rankB) = (tieRank(a, dentriesChange: dentriesChange), tieRank(b, dentriesChange: dentriesChange))
            if rankA != rankB { return rankA < rankB }
            return a.rSquared > b.rSquared
        }
        let time = flagged.first { $0.driver == .time }
        guard let best = files ?? time else { return nil }
        if let time, let files, time.rSquared > files.rSquared + settings.timeMustFitBetterBy { return time }
        return best
    }

    /// `fits` without the one that counts `cache`'s own objects (`dentry`
    /// against dentries) when a part of that count passes and says why
    /// (negative dentries that account for `negativeDentriesTieShare` of the
    /// dentries' change): on a live machine any other dentry coming or going
    /// lowers the part's R² below the tautology's by more than a near tie,
    /// and the finding would say "per dentry" again. Without such a part the
    /// fits stay as they are, the tautology among them.
    private func countsItselfOut(_ fits: [Finding.DriverFit], cache: String?, dentriesChange: Double?) -> [Finding.DriverFit] {
        guard let cache, fits.contains(where: { part in
            part.driver.whole != part.driver && part.driver.whole.countsObjects(of: cache)
                && tieRank(part, dentriesChange: dentriesChange) == 0
        }) else { return fits }
        return fits.filter { !$0.driver.countsObjects(of: cache) }
    }

    /// Where a fit stands in a near tie with the rest of its driver's count:
    /// a part that says why (an inode cache's inodes; negative dentries that
    /// account for `negativeDentriesTieShare` of the dentries' change) before
    /// the whole count, and negative dentries that account for less after it.
    private func tieRank(_ fit: Finding.DriverFit, dentriesChange: Double?) -> Int {
        if fit.inodeCache != nil { return 0 }
        guard fit.driver == .negativeDentries else { return 1 }
        guard let dentriesChange else { return 0 }
        return fit.driverChange >= settings.negativeDentriesTieShare * dentriesChange ? 0 : 2
    }

    /// Of the passing fits, the one that describes the cache's rise: among
    /// those whose window covers the growth (its gain within `riseCoverShare`
    /// of `largestGain`), the highest R²; ties go to the longer window (the
    /// options come longest first). Nil when none covers.
    private func describingRise<Option>(_ options: [Option], largestGain: Double,
                                        gain: (Option) -> Double, rSquared: (Option) -> Double) -> Option? {
        let covering = options.filter { covers(gain($0), largestGain) }
        return covering.max { rSquared($0) < rSquared($1) }  // `max` keeps the first (longest) of equals
    }

    func covers(_ gain: Double, _ largestGain: Double) -> Bool {
        gain >= (1 - settings.riseCoverShare) * largestGain
    }

    /// The footprint's rate over the shortest window (bytes per second), for
    /// judging exhaustion by how fast the cache grows now, not on average.
    private func recentRate(series: Int, windows: WindowSet) -> Double? {
        guard let window = windows.windows.first, window.seconds > 0,
              let first = window.footprint(series: series, at: 0),
              let last = window.footprint(series: series, at: window.count - 1)
        else { return nil }
        return (Double(last) - Double(first)) / window.seconds
    }

    /// Fits the cache against every driver of the window. An inode cache is
    /// fitted against the global counters only: its objects are its own
    /// filesystem's inodes, so against itself it would explain nothing, and
    /// against another filesystem's inodes it could only agree by accident.
    ///
    /// The footprints are centred once, not once per driver: each driver then
    /// costs one pass of multiply-adds, which keeps a fifth driver (negative
    /// dentries) within a few per cent of what four cost at 5,000 growing caches.
    ///
    /// A driver that counts `cache`'s own objects and never fits it
    /// (`GrowthDriver.neverFitsItsOwnCache`: `task_struct` against threads) is
    /// fitted but never flagged, so the finding's sentence can still say how
    /// far that count rose.
    private mutating func fitDrivers(_ window: FittedWindow, isInodeCache: Bool, cache: String?) -> [Finding.DriverFit] {
        let n = window.count
        let (meanY, syy) = scratch.centre()
        let dy = scratch.centred
        var fits: [Finding.DriverFit] = []
        var timeLike: [Int] = []
        lazy var drifts = hasSteadyDrift(n)  // one pass, shared by time and the time-like drivers
        for column in window.drivers where !(isInodeCache && column.inodeCache != nil) {
            var sxy = 0.0
            for i in 0..<n { sxy += column.centred[i] * dy[i] }
            guard let fit = LinearFit.make(sxx: column.sxx, sxy: sxy, syy: syy, meanX: column.mean, meanY: meanY, count: n)
            else { continue }
            let isTime = column.driver == .time
            let flagged = fit.rSquared >= settings.minRSquared
                && (isTime ? fit.slope > 0 && window.seconds >= settings.timeMinWindowSeconds && drifts
                           : fit.slope >= settings.minBytesPerUnit && column.range >= settings.minimumChange(for: column.driver)
                             && !(column.driver.neverFitsItsOwnCache && column.driver.countsObjects(of: cache)))
            if flagged && column.followsTime { timeLike.append(fits.count) }
            fits.append(.init(driver: column.driver, inodeCache: column.inodeCache, bytesPerUnit: fit.slope,
                              rSquared: fit.rSquared, driverChange: column.change, flagged: flagged))
        }
        if !timeLike.isEmpty && !drifts { judgeTimeLike(&fits, timeLike) }
        return fits
    }

    /// A driver that rose like time (`DetectorSettings.timeLikeRSquared`) is
    /// no better evidence than time: a wandering cache fits it as well as it
    /// fits the clock. Called when the footprint does not drift steadily
    /// (time's own test, which would have kept the flag): the fit keeps it
    /// only when the driver explains what time cannot, leaving at most
    /// `timeLikeUnexplainedShare` of the variance time leaves (a socket
    /// count's ups and downs that the cache follows).
    private func judgeTimeLike(_ fits: inout [Finding.DriverFit], _ indices: [Int]) {
        let timeUnexplained = 1 - (fits.first { $0.driver == .time }?.rSquared ?? 0)
        for index in indices where 1 - fits[index].rSquared > settings.timeLikeUnexplainedShare * timeUnexplained {
            fits[index].flagged = false
        }
    }

    /// A random walk fits time with a high R² surprisingly often. A real trend
    /// shows in the increments: their mean is many standard errors above zero
    /// (`timeMinDriftT`), while a driftless walk's increments average out.
    private func hasSteadyDrift(_ n: Int) -> Bool {
        guard n >= 3 else { return false }
        let values = scratch.values
        var sum = 0.0
        for i in 1..<n { sum += values[i] - values[i - 1] }
        let mean = sum / Double(n - 1)
        var squares = 0.0
        for i in 1..<n {
            let d = values[i] - values[i - 1] - mean
            squares += d * d
        }
        let sd = (squares / Double(max(1, n - 2))).squareRoot()
        guard sd > 0 else { return mean > 0 }
        return mean / (sd / Double(n - 1).squareRoot()) >= settings.timeMinDriftT
    }

    // MARK: lifecycle

    /// One evaluation's step for every open finding, then the new ones.
    /// Caches are visited in name order so a replay emits events in one order.
    private mutating func advanceLifecycles(_ candidates: [String: [Candidate]], recentRates: [String: Double],
                                            ring: SampleRing, latest: Sample, events: inout [Event]) {
        let now = latest.timestampMilliseconds
        guard !candidates.isEmpty || !open.isEmpty || !streaks.isEmpty else { return }
        // No cache at all means the cache sources are down, not that every cache vanished.
        guard !latest.caches.isEmpty else { return }
        var cachesByName: [String: SlabCache] = [:]
        cachesByName.reserveCapacity(latest.caches.count)
        for cache in latest.caches { cachesByName[cache.name] = cache }
        for name in streaks.keys where candidates[name] == nil { streaks[name] = nil }
        for name in open.keys.sorted() {
            guard var finding = open.removeValue(forKey: name) else { continue }
            if let cache = cachesByName[name] {
                finding.recentBytesPerSecond = recentRates[name]
                advance(&finding, cache: cache, candidates: candidates[name] ?? [], caches: cachesByName,
                        latest: latest, events: &events)
            } else {
                finding.resolve(.cacheGone, now: now)
            }
            if finding.state == .resolved {
                retire(finding, now: now, events: &events)
            } else {
                open[name] = finding
            }
        }
        for name in candidates.keys.sorted() where open[name] == nil {
            let streak = (streaks[name] ?? 0) + 1
            streaks[name] = streak
            guard streak >= settings.openAfterEvaluations, let cache = cachesByName[name], let passing = candidates[name],
                  let candidate = describingRise(passing, largestGain: passing.map(\.growthBytes).max() ?? 0,
                                                 gain: \.growthBytes, rSquared: \.best.rSquared)
            else { continue }
            var finding = Finding(slab: name, driver: candidate.best.driver, fit: riseFit(candidate, candidate.best),
                                  cache: cache, now: now, settings: settings)
            finding.inodeCache = candidate.best.inodeCache
            if finding.driver == .inodes && finding.inodeCache == nil {
                finding.discountInodeCaches(unrelatedInodeCaches(of: name, fits: candidate.fits, ring: ring), caches: cachesByName)
            }
            finding.largestRiseGain = candidate.growthBytes
            finding.follow(cache, driverValue: finding.driverValue(in: latest, caches: cachesByName), now: now, settings: settings)
            finding.severity = finding.assessedSeverity(latest.meminfo, now: now, settings: settings)
            open[name] = finding
            events.append(Event(kind: .opened, finding: finding, timestampMilliseconds: now))
        }
    }

    /// One open finding's step: follow the memory, keep the fit that
    /// describes the rise, escalate (or calm down), reclassify, resolve.
    private func advance(_ finding: inout Finding, cache: SlabCache, candidates: [Candidate], caches: [String: SlabCache],
                         latest: Sample, events: inout [Event]) {
        let now = latest.timestampMilliseconds
        let classification = finding.classification
        finding.follow(cache, driverValue: finding.driverValue(in: latest, caches: caches), now: now, settings: settings)
        keepFitDescribingRise(&finding, candidates)
        let severity = finding.assessedSeverity(latest.meminfo, now: now, settings: settings)
        if severity > finding.severity {
            finding.severity = severity
            finding.calmerSince = nil
            events.append(Event(kind: .escalated, finding: finding, timestampMilliseconds: now))
        } else if severity < finding.severity {
            // Calms down quietly, once the lower severity has held for a while
            // (at once when the memory came back): no alert says "less bad".
            let since = finding.calmerSince ?? now
            finding.calmerSince = since
            let memoryBack = severity == .info && finding.reclaimable != true
            if memoryBack || Double(elapsedMilliseconds(now, since: since)) / 1000 >= settings.deescalateAfterSeconds {
                finding.severity = severity
                finding.calmerSince = nil
            }
        } else {
            finding.calmerSince = nil
        }
        if finding.classification != classification {
            events.append(Event(kind: .reclassified, finding: finding, timestampMilliseconds: now))
        }
        if let reason = finding.dueResolution(now: now, settings: settings) { finding.resolve(reason, now: now) }
    }

    /// While the driver rises, the finding reports the fit of its own driver
    /// that describes the rise (`describingRise`): a window that saw more of
    /// the growth replaces one that saw less; among windows that cover it,
    /// the cleaner fit stays. Frozen once the driver fell: windows holding the
    /// fall describe eviction, not growth.
    private func keepFitDescribingRise(_ finding: inout Finding, _ candidates: [Candidate]) {
        guard finding.driverFellAt == nil else { return }
        let options = candidates.compactMap { candidate in
            candidate.fits.first { $0.driver == finding.driver && $0.inodeCache == finding.inodeCache && $0.flagged }
                .map { (candidate, $0) }
        }
        let largest = max(finding.largestRiseGain ?? finding.growthBytes, options.map(\.0.growthBytes).max() ?? 0)
        finding.largestRiseGain = largest
        guard let (candidate, fit) = describingRise(options, largestGain: largest, gain: \.0.growthBytes, rSquared: \.1.rSquared)
        else { return }
        if !covers(finding.growthBytes, largest) || fit.rSquared > finding.rSquared {
            finding.keep(riseFit(candidate, fit))
        }
    }

    /// The inode caches a global-inodes finding's cache does not follow:
    /// every followed one but its own and those whose fit passed. Evicting
    /// their inodes is not a fall of this finding's driver.
    private func unrelatedInodeCaches(of cache: String, fits: [Finding.DriverFit], ring: SampleRing) -> [String] {
        let related = Set(fits.compactMap { $0.flagged ? $0.inodeCache : nil })
        return ring.inodeCacheNames.compactMap { $0 }.filter { $0 != cache && !related.contains($0) }
    }

    /// Moves a resolved finding to the remembered list. Its evidence is spent:
    /// no new finding of the cache may fit a window reaching back before now.
    private mutating func retire(_ finding: Finding, now: Int64, events: inout [Event]) {
        streaks[finding.slab] = nil
        resolvedAt[finding.slab] = now
        resolved.append(finding)
        if resolved.count > Self.resolvedKept { resolved.removeFirst(resolved.count - Self.resolvedKept) }
        let longest = Int64((settings.windowsSeconds.max() ?? 0) * 1000)
        resolvedAt = resolvedAt.filter { elapsedMilliseconds(now, since: $0.value) <= longest }
        events.append(Event(kind: .resolved, finding: finding, timestampMilliseconds: now))
    }

    /// Drivers in their listed order, the global count before inode caches by name.
    static func fitOrder(_ a: Finding.DriverFit, _ b: Finding.DriverFit) -> Bool {
        if a.driver != b.driver { return a.driver < b.driver }
        return (a.inodeCache ?? "") < (b.inodeCache ?? "")
    }

    /// The fit of `driver` over the candidate's window, with its points and
    /// the levels the lifecycle needs (floor, driver peak).
    private func riseFit(_ c: Candidate, _ fit: Finding.DriverFit) -> Finding.RiseFit {
        let w = c.window
        var footprintFloor = UInt64.max, driverFloor = Double.infinity
        var peakIndex = 0, driverPeak = -Double.infinity
        for i in 0..<w.count {
            let driver = w.driverValue(fit.driver, inodeCache: fit.inodeCache, at: i)
            footprintFloor = min(footprintFloor, w.footprint(series: c.series, at: i) ?? .max)
            driverFloor = min(driverFloor, driver)
            if driver >= driverPeak { driverPeak = driver; peakIndex = i }
        }
        let indices = EvidenceTrail.spread(Array(0..<w.count), to: settings.evidencePoints)
        let points = indices.map { i in
            Finding.EvidencePoint(timestampMilliseconds: w.time(i), driver: w.driverValue(fit.driver, inodeCache: fit.inodeCache, at: i),
                                  footprintBytes: w.footprint(series: c.series, at: i) ?? 0, segment: .rise)
        }
        return Finding.RiseFit(
            bytesPerUnit: fit.bytesPerUnit, rSquared: fit.rSquared, windowSeconds: w.seconds,
            growthBytes: c.growthBytes, driverChange: fit.driverChange, fits: c.fits.sorted(by: Self.fitOrder), points: points,
            footprintFloor: footprintFloor, driverFloor: driverFloor, driverPeak: driverPeak,
            driverPeakAt: w.time(peakIndex), footprintAtDriverPeak: w.footprint(series: c.series, at: peakIndex) ?? 0)
    }
}

/// Footprints of one series over one window, in a buffer reused across caches.
private struct Scratch: Sendable {
    var values: [Double] = []
    /// `values` less their mean (`centre`), shared by every driver's fit.
    var centred: [Double] = []
    var count = 0
    var minimum = 0.0
    var maximum = 0.0

    /// Centres the loaded values into `centred`: their mean, and the sum of
    /// their squared deviations (syy).
    mutating func centre() -> (mean: Double, syy: Double) {
        if centred.count < count { centred = Array(repeating: 0, count: count) }
        var mean = 0.0
        for i in 0..<count { mean += values[i] }
        mean /= Double(count)
        var syy = 0.0
        for i in 0..<count {
            let dy = values[i] - mean
            centred[i] = dy
            syy += dy * dy
        }
        return (mean, syy)
    }

    /// Loads values given directly (`fitsOverWindow`); false when empty.
    mutating func load(values given: [Double]) -> Bool {
        guard !given.isEmpty else { return false }
        values = given
        count = given.count
        minimum = given.min() ?? 0
        maximum = given.max() ?? 0
        return true
    }

    /// False when the cache is absent from any slot of the window.
    mutating func load(series: Int, from window: FittedWindow) -> Bool {
        if values.count < window.count { values = Array(repeating: 0, count: window.count) }
        count = 0
        guard window.tier.copyFootprints(series: series, start: window.start, count: window.count, into: &values)
        else { return false }
        count = window.count
        minimum = .infinity
        maximum = -.infinity
        for i in 0..<count {
            minimum = min(minimum, values[i])
            maximum = max(maximum, values[i])
        }
        return true
    }
}
