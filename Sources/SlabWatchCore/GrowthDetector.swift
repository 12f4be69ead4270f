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

    public mutating func evaluate(_ ring: SampleRing, latest: Sample) -> Report {
        let now = latest.timestampMilliseconds
        let windows = WindowSet(ring: ring, now: now, settings: settings)
        var candidates: [String: Candidate] = [:]
        for cache in latest.caches where settings.reportReclaimable || cache.reclaimable != true {
            guard let series = ring.series(named: cache.name) else { continue }
            // A resolved finding's window is spent: a new one must fit samples after it.
            let notBefore = open[cache.name] == nil ? resolvedAt[cache.name] ?? .min : .min
            if let candidate = bestCandidate(series: series, windows: windows, notBefore: notBefore) {
                candidates[cache.name] = candidate
            }
        }
        var events: [Event] = []
        advanceLifecycles(candidates, latest: latest, events: &events)
        let findings = open.values.sorted { a, b in
            if a.severity != b.severity { return a.severity > b.severity }
            return a.heldBytes != b.heldBytes ? a.heldBytes > b.heldBytes : a.slab < b.slab
        } + resolved.reversed()
        return Report(findings: findings, events: events,
                      trend: SlabTrend.fit(windows.windows.last { $0.time(0) >= historyStart }, latest: latest,
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

    /// The longest window in which some driver passes every threshold, with the
    /// best-fitting driver there. Time only wins over a file driver that fits
    /// clearly worse: "per inode" explains more than "per second".
    private mutating func bestCandidate(series: Int, windows: WindowSet, notBefore: Int64) -> Candidate? {
        for window in windows.windows.reversed() where window.time(0) > notBefore && window.time(0) >= historyStart {
            // Most caches do not grow: two reads settle it before any copying.
            guard let first = window.footprint(series: series, at: 0),
                  let last = window.footprint(series: series, at: window.count - 1),
                  Double(last) - Double(first) >= settings.minGrowthBytes
            else { continue }
            guard scratch.load(series: series, from: window) else { continue }
            guard scratch.maximum - scratch.minimum >= settings.minGrowthBytes else { continue }
            let growth = scratch.values[scratch.count - 1] - scratch.values[0]
            guard growth >= settings.minGrowthBytes else { continue }
            let fits = fitDrivers(window)
            let flagged = fits.filter(\.flagged)
            guard !flagged.isEmpty else { continue }
            // Near-ties (inodes and dentries usually rise together) go to the
            // driver listed first: inodes, then dentries, then open files.
            let fileFits = flagged.filter { $0.driver != .time }
            let bestR2 = fileFits.map(\.rSquared).max() ?? 0
            let files = fileFits.sorted { $0.driver < $1.driver }.first { $0.rSquared >= bestR2 - settings.nearTieRSquared }
            let time = flagged.first { $0.driver == .time }
            var best = files ?? time!
            if let time, let files, time.rSquared > files.rSquared + settings.timeMustFitBetterBy { best = time }
            return Candidate(window: window, fits: fits, best: best, growthBytes: growth, series: series)
        }
        return nil
    }

    private func fitDrivers(_ window: FittedWindow) -> [Finding.DriverFit] {
        let values = scratch.values
        let n = window.count
        var meanY = 0.0
        for i in 0..<n { meanY += values[i] }
        meanY /= Double(n)
        var fits: [Finding.DriverFit] = []
        for column in window.drivers {
            var sxy = 0.0, syy = 0.0
            for i in 0..<n {
                let dy = values[i] - meanY
                sxy += column.centred[i] * dy
                syy += dy * dy
            }
            guard let fit = LinearFit.make(sxx: column.sxx, sxy: sxy, syy: syy, meanX: column.mean, meanY: meanY, count: n)
            else { continue }
            let isTime = column.driver == .time
            let flagged = fit.rSquared >= settings.minRSquared
                && (isTime ? fit.slope > 0 && window.seconds >= settings.timeMinWindowSeconds && hasSteadyDrift(n)
                           : fit.slope >= settings.minBytesPerUnit && column.range >= settings.minDriverChange)
            fits.append(.init(driver: column.driver, bytesPerUnit: fit.slope, rSquared: fit.rSquared,
                              driverChange: column.change, flagged: flagged))
        }
        return fits
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
    private mutating func advanceLifecycles(_ candidates: [String: Candidate], latest: Sample, events: inout [Event]) {
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
                advance(&finding, cache: cache, candidate: candidates[name], latest: latest, events: &events)
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
            guard streak >= settings.openAfterEvaluations, let cache = cachesByName[name], let candidate = candidates[name]
            else { continue }
            var finding = Finding(slab: name, driver: candidate.best.driver, fit: riseFit(candidate, candidate.best),
                                  cache: cache, now: now, settings: settings)
            finding.follow(cache, driverValue: finding.driver.value(in: latest), now: now, settings: settings)
            finding.severity = finding.assessedSeverity(latest.meminfo, settings: settings)
            open[name] = finding
            events.append(Event(kind: .opened, finding: finding, timestampMilliseconds: now))
        }
    }

    /// One open finding's step: follow the memory, keep a stronger fit,
    /// escalate, reclassify, resolve.
    private func advance(_ finding: inout Finding, cache: SlabCache, candidate: Candidate?, latest: Sample, events: inout [Event]) {
        let now = latest.timestampMilliseconds
        let classification = finding.classification
        finding.follow(cache, driverValue: finding.driver.value(in: latest), now: now, settings: settings)
        if let candidate, let fit = candidate.fits.first(where: { $0.driver == finding.driver && $0.flagged }),
           finding.isWeaker(than: fit.driverChange, rSquared: fit.rSquared, settings: settings) {
            finding.keep(riseFit(candidate, fit))
        }
        let severity = finding.assessedSeverity(latest.meminfo, settings: settings)
        if severity > finding.severity {
            finding.severity = severity
            events.append(Event(kind: .escalated, finding: finding, timestampMilliseconds: now))
        }
        if finding.classification != classification {
            events.append(Event(kind: .reclassified, finding: finding, timestampMilliseconds: now))
        }
        if let reason = finding.dueResolution(now: now, settings: settings) { finding.resolve(reason, now: now) }
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

    /// The fit of `driver` over the candidate's window, with its points and
    /// the levels the lifecycle needs (floor, driver peak).
    private func riseFit(_ c: Candidate, _ fit: Finding.DriverFit) -> Finding.RiseFit {
        let w = c.window
        var footprintFloor = UInt64.max, driverFloor = Double.infinity
        var peakIndex = 0, driverPeak = -Double.infinity
        for i in 0..<w.count {
            let driver = w.driverValue(fit.driver, at: i)
            footprintFloor = min(footprintFloor, w.footprint(series: c.series, at: i) ?? .max)
            driverFloor = min(driverFloor, driver)
            if driver >= driverPeak { driverPeak = driver; peakIndex = i }
        }
        let indices = EvidenceTrail.spread(Array(0..<w.count), to: settings.evidencePoints)
        let points = indices.map { i in
            Finding.EvidencePoint(timestampMilliseconds: w.time(i), driver: w.driverValue(fit.driver, at: i),
                                  footprintBytes: w.footprint(series: c.series, at: i) ?? 0, segment: .rise)
        }
        return Finding.RiseFit(
            bytesPerUnit: fit.bytesPerUnit, rSquared: fit.rSquared, windowSeconds: w.seconds,
            growthBytes: c.growthBytes, driverChange: fit.driverChange, fits: c.fits, points: points,
            footprintFloor: footprintFloor, driverFloor: driverFloor, driverPeak: driverPeak,
            driverPeakAt: w.time(peakIndex), footprintAtDriverPeak: w.footprint(series: c.series, at: peakIndex) ?? 0)
    }
}

/// Footprints of one series over one window, in a buffer reused across caches.
private struct Scratch: Sendable {
    var values: [Double] = []
    var count = 0
    var minimum = 0.0
    var maximum = 0.0

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
