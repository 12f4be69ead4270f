/// The rules that move a finding, one step each, in the order the detector
/// applies them every evaluation (docs/detector.md has the same in prose):
///
/// 1. `follow`: footprint, peak and phase (rising ⇄ holding ⇄ falling); the
///    driver's peak, and once the driver has fallen, the classification
///    (undetermined → tracks-eviction | leak-like, however late; leak-like
///    only once the finding's own units must have gone).
/// 2. `keep`: the fit that describes the rise replaces the reported one, only
///    while the driver has not fallen (the detector chooses it).
/// 3. `assessedSeverity`: follows the memory still held; escalates at once,
///    calms down after a while (at once when the memory came back).
/// 4. `dueResolution`: the memory came back and stayed back; for reclaimable
///    caches also no growth for a while. (A vanished cache resolves in the
///    detector, which sees the whole sample.)
extension Finding {
    /// A new finding from the fit that opened it.
    init(slab: String, driver: GrowthDriver, fit: RiseFit, cache: SlabCache, now: Int64, settings: DetectorSettings) {
        self.slab = slab
        self.driver = driver
        self.fit = fit
        reclaimable = cache.reclaimable
        firstSeenMilliseconds = now
        lastSeenMilliseconds = now
        lastRiseMilliseconds = now
        footprintFloor = fit.footprintFloor
        footprintPeak = max(cache.footprintBytes, fit.footprintAtDriverPeak)
        footprintBytes = cache.footprintBytes
        driverFloor = fit.driverFloor
        driverPeak = fit.driverPeak
        driverPeakAt = fit.driverPeakAt
        footprintAtDriverPeak = fit.footprintAtDriverPeak
        fallTrail = EvidenceTrail(capacity: settings.evidencePoints / 3)
        phaseLevel = cache.footprintBytes
        evidenceLimit = settings.evidencePoints
        riseBeganMilliseconds = fit.points.first?.timestampMilliseconds ?? now
    }

    // MARK: the driver

    /// The finding's driver in `sample`: its inode cache's active objects,
    /// or the global counter — for the global inode count, less what the
    /// discounted inode caches gained or lost since the finding opened.
    /// Nil when the source is down or the inode cache is gone.
    func driverValue(in sample: Sample, caches: [String: SlabCache]) -> Double? {
        if let inodeCache { return caches[inodeCache].map { Double($0.activeObjects) } }
        guard let global = driver.value(in: sample) else { return nil }
        guard let discounted = discountedInodeCaches, let reference = discountReference else { return global }
        return global - (Self.total(discounted, caches) - reference)
    }

    /// Leaves `unrelated` inode caches' changes from now on out of a global-inodes driver.
    mutating func discountInodeCaches(_ unrelated: [String], caches: [String: SlabCache]) {
        guard !unrelated.isEmpty else { return }
        discountedInodeCaches = unrelated
        discountReference = Self.total(unrelated, caches)
    }

    private static func total(_ names: [String], _ caches: [String: SlabCache]) -> Double {
        names.reduce(0) { $0 + Double(caches[$1]?.activeObjects ?? 0) }
    }

    // MARK: follow the memory

    /// Takes one sample of the cache (and the driver's value, nil when its
    /// source is down): footprint, peak, phase, and the classification.
    mutating func follow(_ cache: SlabCache, driverValue: Double?, now: Int64, settings: DetectorSettings) {
        lastSeenMilliseconds = now
        reclaimable = cache.reclaimable
        footprintBytes = cache.footprintBytes
        footprintPeak = max(footprintPeak, cache.footprintBytes)
        followPhase(now: now, settings: settings)
        if hasComeBack(settings) { backSince = backSince ?? now } else { backSince = nil }
        if driver != .time, let driverValue { followDriver(driverValue, now: now, settings: settings) }
    }

    /// A dead band around the last level: moves smaller than the band are
    /// noise; a move past it sets a new level and the time of the move.
    private mutating func followPhase(now: Int64, settings: DetectorSettings) {
        let band = UInt64(settings.phaseBandShare * max(Double(gainedBytes), settings.minGrowthBytes))
        if footprintBytes > phaseLevel &+ band {
            phaseLevel = footprintBytes
            lastRiseMilliseconds = now
        } else if footprintBytes &+ band < phaseLevel {
            phaseLevel = footprintBytes
            lastFallMilliseconds = now
        }
        let quiet = Int64(settings.holdAfterSeconds * 1000)
        if elapsedMilliseconds(now, since: lastRiseMilliseconds) < quiet && lastRiseMilliseconds >= lastFallMilliseconds {
            phase = .rising
        } else if lastFallMilliseconds != .min && elapsedMilliseconds(now, since: lastFallMilliseconds) < quiet {
            phase = .falling
        } else {
            phase = .holding
        }
    }

    /// The footprint has fallen by `resolveShare` of its gain from the peak.
    func hasComeBack(_ settings: DetectorSettings) -> Bool {
        gainedBytes > 0 && Double(footprintPeak - min(footprintPeak, footprintBytes)) >= settings.resolveShare * Double(gainedBytes)
    }

    /// Follows the driver's peak; once it has fallen clearly from there, did
    /// the cache fall along the fitted line?
    ///
    /// The driver counts every unit of its kind, the finding's own and
    /// others' (files another workload makes on the same filesystem), so a
    /// fall says only that some units went. The cache falling with it is
    /// evidence enough; the cache staying is evidence of a leak only when the
    /// finding's own units must have gone (`leakEvidenceShare`): otherwise the
    /// finding stays `undetermined`, and says what would decide it.
    private mutating func followDriver(_ value: Double, now: Int64, settings: DetectorSettings) {
        if value > driverPeak {
            driverPeak = value
            driverPeakAt = now
            footprintAtDriverPeak = footprintBytes
            driverFellAt = nil
            leakEvidenceBelow = nil
            leakEvidenceAt = nil
            fallTrail.removeAll()
        }
        let rise = driverPeak - driverFloor
        let fall = driverPeak - value
        guard fall >= settings.driverFallShare * max(settings.minimumChange(for: driver), rise) else { return }
        if driverFellAt == nil {
            driverFellAt = now
            fallTrail.append(.init(timestampMilliseconds: driverPeakAt, driver: driverPeak,
                                   footprintBytes: footprintAtDriverPeak, segment: .fall))
        }
        fallTrail.append(.init(timestampMilliseconds: now, driver: value, footprintBytes: footprintBytes, segment: .fall))
        let own = ownUnitsAtPeak
        let predicted = bytesPerUnit * min(fall, own)
        let fallen = Double(footprintAtDriverPeak) - Double(footprintBytes)
        let evidenceBelow = own - settings.leakEvidenceShare * max(settings.minimumChange(for: driver), own)
        leakEvidenceBelow = evidenceBelow
        if predicted > 0 && fallen >= settings.followShare * predicted {
            classification = .tracksEviction
        } else if classification == .undetermined {
            // Units that went stay gone: the evidence holds even if others' units come back.
            if value <= evidenceBelow { leakEvidenceAt = leakEvidenceAt ?? now }
            if let since = leakEvidenceAt, Double(elapsedMilliseconds(now, since: since)) / 1000 >= settings.leakGraceSeconds {
                classification = .leakLike
            }
        }
    }

    /// The units the finding's rise accounts for at the driver's peak: what
    /// the cache gained by then over the bytes each unit costs.
    var ownUnitsAtPeak: Double {
        guard bytesPerUnit > 0, footprintAtDriverPeak > footprintFloor else { return 0 }
        return Double(footprintAtDriverPeak - footprintFloor) / bytesPerUnit
    }

    // MARK: the fit

    /// Keeps `stronger` as the finding's fit; the level before the rise, and
    /// when it began, only go back.
    mutating func keep(_ stronger: RiseFit) {
        fit = stronger
        footprintFloor = min(footprintFloor, stronger.footprintFloor)
        driverFloor = min(driverFloor, stronger.driverFloor)
        if let start = stronger.points.first?.timestampMilliseconds {
            riseBeganMilliseconds = min(riseBeganMilliseconds ?? start, start)
        }
    }

    // MARK: severity and resolution

    /// `info` for reclaimable caches, and for a finding whose memory came
    /// back (severity follows the memory still held); `critical` for a large
    /// share of MemTotal, or while rising at a rate held long enough to use up
    /// MemAvailable soon (`exhaustionLookahead`); else `warning`.
    func assessedSeverity(_ meminfo: Meminfo?, now: Int64, settings: DetectorSettings) -> Severity {
        if reclaimable == true || isBack(settings) { return .info }
        if let total = meminfo?.totalBytes, total > 0,
           Double(footprintBytes) >= settings.criticalMemoryShare * Double(total) {
            return .critical
        }
        if phase == .rising, let available = meminfo?.availableBytes,
           let seconds = secondsToExhaustion(Double(available), now: now, settings: settings),
           seconds < settings.criticalExhaustionSeconds {
            return .critical
        }
        return .warning
    }

    /// Its memory has come back (`resolveShare` of its gain); once `info` for
    /// that, it stays so until it holds more again by the phase band, so a
    /// footprint wobbling at the line does not flap.
    private func isBack(_ settings: DetectorSettings) -> Bool {
        if hasComeBack(settings) { return true }
        guard severity == .info, gainedBytes > 0 else { return false }
        let fallen = Double(footprintPeak - min(footprintPeak, footprintBytes))
        return fallen >= (settings.resolveShare - settings.phaseBandShare) * Double(gainedBytes)
    }

    /// When the footprint would consume `available` bytes: at the rate it held
    /// since the rise began, or the recent one if lower (a cache that slowed
    /// down is no longer about to exhaust memory); nil beyond
    /// `exhaustionLookahead` times as long as it has been rising, or when not rising.
    func secondsToExhaustion(_ available: Double, now: Int64, settings: DetectorSettings) -> Double? {
        let began = riseBeganMilliseconds ?? fit.points.first?.timestampMilliseconds ?? firstSeenMilliseconds
        let rising = Double(elapsedMilliseconds(now, since: began)) / 1000
        guard rising > 0, heldBytes > 0 else { return nil }
        let rate = min(Double(heldBytes) / rising, recentBytesPerSecond ?? .infinity)
        guard rate > 0 else { return nil }
        let seconds = available / rate
        return seconds <= settings.exhaustionLookahead * rising ? seconds : nil
    }

    /// Why the finding should resolve now, if it should. Held memory never
    /// resolves an unreclaimable (or unknown) finding: only its return does.
    func dueResolution(now: Int64, settings: DetectorSettings) -> Resolution? {
        let after = settings.resolveAfterSeconds
        if let backSince, Double(elapsedMilliseconds(now, since: backSince)) / 1000 >= after { return .memoryReturned }
        if reclaimable == true && Double(elapsedMilliseconds(now, since: lastRiseMilliseconds)) / 1000 >= after { return .stoppedGrowing }
        return nil
    }

    mutating func resolve(_ reason: Resolution, now: Int64) {
        state = .resolved
        resolution = reason
        lastSeenMilliseconds = now
    }
}
