/// Ranks the memory cgroups charged for a finding's rise (`ChargedCgroups`).
///
/// In order:
/// 1. a cache whose allocations are not accounted (the plain, reclaimable,
///    DMA and random kmalloc families: accounted kmallocs go to `kmalloc-cg-*`):
///    said so, no ranking — a cgroup's kernel memory rising beside it would be
///    a coincidence, and the allocating process's cgroup is not charged;
/// 2. a BPF attribution of the finding: its owners' net bytes summed per memory cgroup;
/// 3. the kept cgroups over the finding's rise window, by the figure that
///    holds the cache's kind of memory: on cgroup v2, for a cache of known
///    reclaimability (and the memory outside the caches, which the kernel
///    counts as slab), their slab of that kind (`slab_reclaimable` or
///    `slab_unreclaimable`), so a pod whose page tables or stacks grew beside
///    the cache is not blamed for it; else (v1, the per-CPU allocator,
///    unknown reclaimability) their kernel memory. Each is
///    weighed by its rise ΔK and by r, the correlation of that figure
///    with the footprint over the same readings, w = max(0, ΔK) × max(0, r)².
///    Two cgroups may both rise over a window; only one whose memory rose in
///    step with the cache's is named, and two in lockstep are both named,
///    which is the truth a per-cgroup total can tell.
public enum ChargeRanking: Sendable {
    /// Cgroups named at most; the rest is "others".
    public static let named = 3
    /// The smallest share named.
    public static let minShare = 0.05

    /// Whether the kernel charges `slab`'s allocations to memory cgroups at
    /// all: false for the kmalloc families that are not accounted; true for
    /// any other cache (most are `SLAB_ACCOUNT` or serve accounted allocations).
    public static func isAccounted(_ slab: String) -> Bool {
        guard let kmalloc = KmallocCache(name: slab) else { return true }
        return kmalloc.kind == .accounted
    }

    /// The BPF attribution's net bytes per memory cgroup (the process's
    /// cgroup where the memory one is unknown); nil when it names none.
    public static func byAttribution(_ attribution: Attribution) -> ChargedCgroups? {
        guard attribution.source == .bpf else { return nil }
        var netBytes: [String: Double] = [:]
        for site in attribution.callSites {
            for process in site.processes ?? [] where process.netBytes > 0 {
                guard let cgroup = process.memoryCgroup ?? process.cgroup else { continue }
                netBytes[cgroup, default: 0] += Double(process.netBytes)
            }
        }
        let weights = netBytes.map { (cgroup: $0.key, rise: $0.value, weight: $0.value, rSquared: Double?.none) }
        return ranked(weights, otherWeight: 0, source: .bpf, windowSeconds: attribution.windowSeconds)
    }

    /// One cgroup's figure ranked by (kernel memory, or v2 slab of one kind)
    /// at the readings of the window (nil where not read).
    public struct Series: Sendable {
        public var cgroup: String
        public var bytes: [Double?]

        public init(cgroup: String, bytes: [Double?]) {
            self.cgroup = cgroup
            self.bytes = bytes
        }
    }

    /// Ranks `cgroups` by rise × r² against `footprint` (the cache's bytes at
    /// the same readings); `other` is everyone beyond the kept cgroups, never
    /// named, counted in the others' share. Nil with fewer than two readings.
    public static func byKernelMemory(footprint: [Double?], cgroups: [Series], other: [Double?], version: CgroupMemory.Version,
                                      windowSeconds: Double) -> ChargedCgroups? {
        byFigure(footprint: footprint, cgroups: cgroups, other: other, source: version == .v1 ? .memcgKmem : .memcgKernel,
                 windowSeconds: windowSeconds)
    }

    /// Ranks `cgroups` by their v2 slab of `kind` (the cache's own kind), as
    /// `byKernelMemory` does by kernel memory. Nil with fewer than two readings.
    public static func bySlab(_ kind: CgroupHistory.SlabKind, footprint: [Double?], cgroups: [Series], other: [Double?],
                              windowSeconds: Double) -> ChargedCgroups? {
        byFigure(footprint: footprint, cgroups: cgroups, other: other,
                 source: kind == .reclaimable ? .memcgSlabReclaimable : .memcgSlabUnreclaimable, windowSeconds: windowSeconds)
    }

    private static func byFigure(footprint: [Double?], cgroups: [Series], other: [Double?], source: ChargedCgroups.Source,
                                 windowSeconds: Double) -> ChargedCgroups? {
        guard footprint.compactMap({ $0 }).count >= 2 else { return nil }
        let weighed = cgroups.compactMap { series -> (cgroup: String, rise: Double, weight: Double, rSquared: Double?)? in
            guard let (rise, weight, r) = weigh(series.bytes, against: footprint) else { return nil }
            return (series.cgroup, rise, weight, r * r)
        }
        let otherWeight = weigh(other, against: footprint)?.weight ?? 0
        return ranked(weighed, otherWeight: otherWeight, source: source, windowSeconds: windowSeconds)
    }

    /// A cache not accounted: said so, nothing ranked.
    public static func notAccounted(windowSeconds: Double) -> ChargedCgroups {
        ChargedCgroups(source: .notAccounted, windowSeconds: windowSeconds, entries: [], otherShare: 0)
    }

    /// Rise (last − first read), weight and correlation of `values` with
    /// `footprint` over the readings where both are known; nil with fewer than two.
    static func weigh(_ values: [Double?], against footprint: [Double?]) -> (rise: Double, weight: Double, r: Double)? {
        var pairs: [(value: Double, footprint: Double)] = []
        for (value, bytes) in zip(values, footprint) {
            if let value, let bytes { pairs.append((value, bytes)) }
        }
        guard pairs.count >= 2, let first = pairs.first, let last = pairs.last else { return nil }
        let rise = last.value - first.value
        let r = correlation(pairs)
        return (rise, max(0, rise) * max(0, r) * max(0, r), r)
    }

    /// Pearson's r; 0 when either side does not move.
    static func correlation(_ pairs: [(value: Double, footprint: Double)]) -> Double {
        let n = Double(pairs.count)
        let meanX = pairs.reduce(0) { $0 + $1.0 } / n, meanY = pairs.reduce(0) { $0 + $1.1 } / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (x, y) in pairs {
            sxy += (x - meanX) * (y - meanY)
            sxx += (x - meanX) * (x - meanX)
            syy += (y - meanY) * (y - meanY)
        }
        guard sxx > 0, syy > 0 else { return 0 }
        return min(1, max(-1, sxy / (sxx * syy).squareRoot()))
    }

    /// Shares of the total weight; up to `named` with at least `minShare`, largest first.
    private static func ranked(_ weighed: [(cgroup: String, rise: Double, weight: Double, rSquared: Double?)], otherWeight: Double,
                               source: ChargedCgroups.Source, windowSeconds: Double) -> ChargedCgroups {
        let total = weighed.reduce(otherWeight) { $0 + $1.weight }
        guard total > 0 else { return ChargedCgroups(source: source, windowSeconds: windowSeconds, entries: [], otherShare: 0) }
        let entries = weighed.filter { $0.weight / total >= minShare }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.cgroup < $1.cgroup }
            .prefix(named)
            .map { ChargedCgroups.Entry(cgroup: $0.cgroup, riseBytes: $0.rise, share: $0.weight / total, rSquared: $0.rSquared) }
        return ChargedCgroups(source: source, windowSeconds: windowSeconds, entries: entries,
                              otherShare: max(0, 1 - entries.reduce(0) { $0 + $1.share }))
    }
}

// MARK: a finding

extension ChargeRanking {
    /// Who is charged for `finding` as of `now`: `notAccounted` for a cache
    /// not accounted (where memory cgroups are read); its BPF attribution's
    /// cgroups when it has them;
    /// else the kept cgroups over the finding's rise (from `riseBeganMilliseconds`,
    /// with the reading just before it as the baseline) against the footprint
    /// the ring holds at each reading, by the slab of the cache's kind where
    /// the history holds it for at least two of those readings (`slabKind`),
    /// else by kernel memory. Nil when there is nothing to rank by.
    public static func charged(for finding: Finding, ring: SampleRing, history: CgroupHistory, now: Int64) -> ChargedCgroups? {
        let begin = finding.riseBeganMilliseconds ?? (finding.lastSeenMilliseconds - Int64(finding.windowSeconds * 1000))
        let windowSeconds = max(0, Double(now) - Double(begin)) / 1000
        // Not accounted: the allocating process's cgroup is not charged, whatever BPF saw.
        // Said only where memory cgroups are read at all.
        guard isAccounted(finding.slab) else { return history.version == nil ? nil : notAccounted(windowSeconds: windowSeconds) }
        if let attribution = finding.attribution, let charged = byAttribution(attribution), !charged.entries.isEmpty { return charged }
        guard let version = history.version, let first = history.firstPosition(coveringFrom: begin),
              let series = ring.series(named: finding.slab)
        else { return nil }
        let positions = Array(first..<history.count)
        let footprint = positions.map { ring.footprint(series: series, atOrBefore: history.time(at: $0)).map { Double($0) } }
        let readSeconds = max(0, Double(history.time(at: history.count - 1)) - Double(history.time(at: first))) / 1000
        func cgroups(_ figure: (_ column: Int, _ position: Int) -> UInt64?) -> [Series] {
            history.cgroupNames.enumerated().compactMap { column, name in
                name.map { Series(cgroup: $0, bytes: positions.map { figure(column, $0).map { Double($0) } }) }
            }
        }
        // Slab read at fewer than two of the readings (a history restored
        // from a file written before slab was kept): kernel memory, as before.
        if let kind = slabKind(slab: finding.slab, reclaimable: finding.reclaimable), positions.filter({ history.hasSlab(at: $0) }).count >= 2 {
            return bySlab(kind, footprint: footprint, cgroups: cgroups { history.slabBytes(kind, column: $0, at: $1) },
                          other: positions.map { history.otherSlabBytes(kind, at: $0).map { Double($0) } }, windowSeconds: readSeconds)
        }
        return byKernelMemory(footprint: footprint, cgroups: cgroups { history.kernelBytes(column: $0, at: $1) },
                              other: positions.map { history.otherKernelBytes(at: $0).map { Double($0) } }, version: version,
                              windowSeconds: readSeconds)
    }

    /// The part of v2's slab that holds `slab`'s memory: a reclaimable
    /// cache's is `slab_reclaimable`, an unreclaimable one's
    /// `slab_unreclaimable`, and so is the memory outside every cache (SLUB
    /// counts a kmalloc above its largest cache as unreclaimable slab, in the
    /// cgroup it charges, as in SUnreclaim). Nil for a cache of unknown
    /// reclaimability and for the per-CPU allocator, whose memory is no slab
    /// (memory.stat's `percpu`): those are ranked by kernel memory.
    static func slabKind(slab: String, reclaimable: Bool?) -> CgroupHistory.SlabKind? {
        guard slab != DerivedSeries.percpu.name, let reclaimable else { return nil }
        return reclaimable ? .reclaimable : .unreclaimable
    }
}

extension SampleRing {
    /// `series`' footprint in the newest sample at or before `time`, from the
    /// fine tier, else the coarse one; nil when neither reaches back that far.
    func footprint(series: Int, atOrBefore time: Int64) -> UInt64? {
        for tier in [fine, coarse] where tier.count > 0 && tier.time(at: 0) <= time {
            var (low, high) = (0, tier.count)
            while low < high {
                let middle = (low + high) / 2
                if tier.time(at: middle) <= time { low = middle + 1 } else { high = middle }
            }
            return tier.footprint(series: series, at: low - 1)
        }
        return nil
    }
}
