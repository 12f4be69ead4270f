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
    private var scratch = Scratch()
    static let resolvedKept = 256

    public init(settings: DetectorSettings = .init()) {
        self.settings = settings
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
        public enum Kind: String, Sendable { case opened, escalated, reclassified, resolved }
        public var kind: Kind
        public var finding: Finding
    }

    public mutating func evaluate(_ ring: SampleRing, latest: Sample) -> Report {
        let now = latest.timestampMilliseconds
        let windows = WindowSet(ring: ring, now: now, settings: settings)
        var candidates: [String: Candidate] = [:]
        for cache in latest.caches where settings.reportReclaimable || cache.reclaimable != true {
            guard let series = ring.series(named: cache.name) else { continue }
            if let candidate = bestCandidate(series: series, windows: windows) {
                candidates[cache.name] = candidate
            }
        }
        var events: [Event] = []
        advanceLifecycles(candidates, latest: latest, events: &events)
        let findings = open.values.sorted { a, b in
            a.severity != b.severity ? a.severity > b.severity : a.growthBytes > b.growthBytes
        } + resolved.reversed()
        return Report(findings: findings, events: events,
                      trend: SlabTrend.fit(windows.longest, latest: latest, limitShare: settings.trendLimitShare))
    }

    // MARK: fitting

    struct Candidate {
        var window: FittedWindow
        var fits: [Finding.DriverFit]
        var best: Finding.DriverFit
        var growthBytes: Double
        var bytesPerSecond: Double
        var series: Int
    }

    /// The longest window in which some driver passes every threshold, with the
    /// best-fitting driver there. Time only wins over a file driver that fits
    /// clearly worse: "per inode" explains more than "per second".
    private mutating func bestCandidate(series: Int, windows: WindowSet) -> Candidate? {
        for window in windows.windows.reversed() {
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
            let files = fileFits.sorted { $0.driver < $1.driver }.first { $0.rSquared >= bestR2 - 0.005 }
            let time = flagged.first { $0.driver == .time }
            var best = files ?? time!
            if let time, let files, time.rSquared > files.rSquared + 0.02 { best = time }
            let perSecond = fits.first { $0.driver == .time }?.bytesPerUnit ?? 0
            return Candidate(window: window, fits: fits, best: best, growthBytes: growth,
                             bytesPerSecond: perSecond, series: series)
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
                && (isTime ? fit.slope > 0 && window.seconds >= 900 && hasSteadyDrift(n)
                           : fit.slope >= settings.minBytesPerUnit && column.range >= settings.minDriverChange)
            fits.append(.init(driver: column.driver, bytesPerUnit: fit.slope, rSquared: fit.rSquared,
                              driverChange: column.change, flagged: flagged))
        }
        return fits
    }

    /// A random walk fits time with a high R² surprisingly often. A real trend
    /// shows in the increments: their mean is many standard errors above zero
    /// (t ≥ 4), while a driftless walk's increments average out.
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
        return mean / (sd / Double(n - 1).squareRoot()) >= 4
    }

    // MARK: lifecycle

    private mutating func advanceLifecycles(_ candidates: [String: Candidate], latest: Sample, events: inout [Event]) {
        let now = latest.timestampMilliseconds
        guard !candidates.isEmpty || !open.isEmpty || !streaks.isEmpty else { return }
        var cachesByName: [String: SlabCache] = [:]
        cachesByName.reserveCapacity(latest.caches.count)
        for cache in latest.caches { cachesByName[cache.name] = cache }
        // Peaks and classification first, so a refit below already knows
        // whether the driver has fallen.
        var classificationBefore: [String: Finding.Classification] = [:]
        for (name, finding) in open {
            classificationBefore[name] = finding.classification
            guard let cache = cachesByName[name] else { continue }
            Self.track(&open[name]!, cache: cache, latest: latest, settings: settings)
        }
        for name in streaks.keys where candidates[name] == nil { streaks[name] = nil }
        for (name, candidate) in candidates {
            let streak = (streaks[name] ?? 0) + 1
            streaks[name] = streak
            if open[name] != nil {
                Self.update(&open[name]!, from: candidate, now: now, evidence: evidence(candidate))
            } else if streak >= settings.openAfterEvaluations, let cache = cachesByName[name] {
                var finding = makeFinding(name, candidate, cache: cache, now: now)
                finding.severity = severity(of: finding, cache: cache, latest: latest)
                open[name] = finding
                events.append(Event(kind: .opened, finding: finding))
            }
        }
        for name in Array(open.keys) {
            var finding = open[name]!
            guard let cache = cachesByName[name] else {
                resolve(&finding, now: now, events: &events)  // the cache is gone (module unloaded)
                continue
            }
            let severity = severity(of: finding, cache: cache, latest: latest)
            if severity > finding.severity {
                finding.severity = severity
                events.append(Event(kind: .escalated, finding: finding))
            }
            if let before = classificationBefore[name], finding.classification != before {
                events.append(Event(kind: .reclassified, finding: finding))
            }
            let stalled = Double(now - finding.peakFootprintAt) / 1000 >= settings.resolveAfterSeconds
            if candidates[name] == nil && stalled {
                resolve(&finding, now: now, events: &events)
            } else {
                open[name] = finding
            }
        }
    }

    private func makeFinding(_ name: String, _ c: Candidate, cache: SlabCache, now: Int64) -> Finding {
        let driverNow = c.window.driverValue(c.best.driver, at: c.window.count - 1)
        var finding = Finding(
            slab: name, driver: c.best.driver, bytesPerUnit: c.best.bytesPerUnit, rSquared: c.best.rSquared,
            windowSeconds: c.window.seconds, growthBytes: c.growthBytes, driverChange: c.best.driverChange,
            bytesPerSecond: c.bytesPerSecond, reclaimable: cache.reclaimable, classification: .undetermined,
            state: .open, severity: .warning, firstSeenMilliseconds: now, lastSeenMilliseconds: now,
            fits: c.fits, evidence: evidence(c))
        finding.peakFootprint = cache.memoryBytes
        finding.peakFootprintAt = now
        finding.peakDriver = driverNow
        finding.footprintAtPeakDriver = cache.memoryBytes
        finding.driverAtOpen = c.window.driverValue(c.best.driver, at: 0)
        return finding
    }

    /// Refits while the driver is still rising; once it has fallen, the fit of
    /// the rise is kept (windows holding the fall describe eviction, not growth).
    ///
    /// Static, like `track`: a method on `self` taking `&open[name]!` would make
    /// the compiler copy the whole detector (and so every finding) per call.
    private static func update(_ finding: inout Finding, from c: Candidate, now: Int64, evidence: [Finding.EvidencePoint]) {
        finding.lastSeenMilliseconds = now
        guard finding.driverFellAt == nil,
              let fit = c.fits.first(where: { $0.driver == finding.driver && $0.flagged })  // keeps its driver
        else { return }
        finding.bytesPerUnit = fit.bytesPerUnit
        finding.rSquared = fit.rSquared
        finding.driverChange = fit.driverChange
        finding.windowSeconds = c.window.seconds
        finding.growthBytes = c.growthBytes
        finding.bytesPerSecond = c.bytesPerSecond
        finding.fits = c.fits
        finding.evidence = evidence
    }

    /// Follows the peaks and decides the classification: when the driver has
    /// fallen clearly from its peak, did the cache fall along the fitted line?
    private static func track(_ finding: inout Finding, cache: SlabCache, latest: Sample, settings: DetectorSettings) {
        let now = latest.timestampMilliseconds
        finding.reclaimable = cache.reclaimable
        if cache.memoryBytes > finding.peakFootprint {
            finding.peakFootprint = cache.memoryBytes
            finding.peakFootprintAt = now
            finding.lastSeenMilliseconds = now
        }
        guard finding.driver != .time, let driver = Self.driverValue(finding.driver, latest) else { return }
        if driver > finding.peakDriver {
            finding.peakDriver = driver
            finding.footprintAtPeakDriver = cache.memoryBytes
            finding.driverFellAt = nil
        }
        let fall = finding.peakDriver - driver
        let rise = finding.peakDriver - finding.driverAtOpen
        guard fall >= max(settings.minDriverChange / 4, rise / 4) else { return }
        let fallAt = finding.driverFellAt ?? now
        finding.driverFellAt = fallAt
        let expected = finding.bytesPerUnit * fall
        let actual = Double(finding.footprintAtPeakDriver) - Double(cache.memoryBytes)
        if expected > 0 && actual >= expected / 2 {
            finding.classification = .tracksEviction
        } else if finding.classification == .undetermined && Double(now - fallAt) / 1000 >= settings.leakGraceSeconds {
            finding.classification = .leakLike
        }
    }

    private func severity(of finding: Finding, cache: SlabCache, latest: Sample) -> Finding.Severity {
        if cache.reclaimable == true { return .info }
        if let total = latest.meminfo?.totalBytes, total > 0,
           Double(cache.memoryBytes) >= settings.criticalMemoryShare * Double(total) {
            return .critical
        }
        if let available = latest.meminfo?.availableBytes, finding.bytesPerSecond > 0,
           Double(available) / finding.bytesPerSecond < settings.criticalExhaustionSeconds,
           finding.state == .open, finding.peakFootprintAt == latest.timestampMilliseconds {
            return .critical  // still growing, and at this rate memory runs out soon
        }
        return .warning
    }

    private mutating func resolve(_ finding: inout Finding, now: Int64, events: inout [Event]) {
        finding.state = .resolved
        finding.lastSeenMilliseconds = max(finding.lastSeenMilliseconds, finding.peakFootprintAt)
        open[finding.slab] = nil
        streaks[finding.slab] = nil
        resolved.append(finding)
        if resolved.count > Self.resolvedKept { resolved.removeFirst(resolved.count - Self.resolvedKept) }
        events.append(Event(kind: .resolved, finding: finding))
    }

    private func evidence(_ c: Candidate) -> [Finding.EvidencePoint] {
        let n = c.window.count
        let step = max(1, (n + settings.evidencePoints - 1) / max(1, settings.evidencePoints))
        var points: [Finding.EvidencePoint] = []
        var i = 0
        while i < n {
            points.append(.init(timestampMilliseconds: c.window.time(i), driver: c.window.driverValue(c.best.driver, at: i),
                                footprintBytes: c.window.footprint(series: c.series, at: i) ?? 0))
            i += i == n - 1 ? 1 : min(step, n - 1 - i)
        }
        return points
    }

    static func driverValue(_ driver: GrowthDriver, _ sample: Sample) -> Double? {
        switch driver {
        case .inodes: sample.inodes.map { Double($0.inodes) }
        case .dentries: sample.dentries.map { Double($0.dentries) }
        case .openFiles: sample.fileHandles.map { Double($0.allocated) }
        case .time: Double(sample.timestampMilliseconds) / 1000
        }
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
