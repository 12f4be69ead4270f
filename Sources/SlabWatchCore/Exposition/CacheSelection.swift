/// Chooses the caches `/metrics` lists. The `slab.*` filters apply first
/// (`CacheFilter`); of the caches they admit, unless `bound.all`:
/// - every cache with a finding (open, or resolved and still remembered),
///   since the finding families name it and a dashboard joins its footprint;
/// - the `topByFootprint` largest, and the `topByGrowth` that grew most over
///   `ExportBound.growthWindowSeconds`;
/// - for an hour after it fell out of a top N, the cache that was in it
///   (`ExportBound.holdSeconds`).
///
/// It remembers when each cache was last in a top N, by the samples' times,
/// so it is asked once per published sample (the first render after a tick),
/// never per request. Not thread-safe: one owner.
public struct CacheSelection: Sendable {
    /// What one render lists.
    public struct Choice: Sendable, Equatable {
        /// The exported caches, sorted by name (the order `/metrics` needs).
        public var caches: [SlabCache]
        /// Caches the filters admitted that the bound left out.
        public var beyondTop: Int
    }

    public var filter: CacheFilter
    public var bound: ExportBound
    private var byFootprint = TopRanking()
    private var byGrowth = TopRanking()

    public init(filter: CacheFilter, bound: ExportBound = .init()) {
        self.filter = filter
        self.bound = bound
    }

    /// The caches to list for `sample`; `findings` are the report's,
    /// `growth` the baseline growth is measured from (none: no growth ranking).
    public mutating func choose(_ sample: Sample, findings: [Finding] = [], growth: FootprintBaseline? = nil) -> Choice {
        let admitted = filter.exported(sample.caches)
        guard !bound.all else { return Choice(caches: admitted, beyondTop: 0) }
        let now = sample.timestampMilliseconds
        let names = Set(admitted.map(\.name))
        var chosen = Set(findings.map(\.slab))
        chosen.formUnion(byFootprint.members(top: Self.largest(admitted, bound.topByFootprint), size: bound.topByFootprint,
                                             admitted: names, now: now))
        chosen.formUnion(byGrowth.members(top: Self.fastestGrowing(admitted, bound.topByGrowth, from: growth, at: now),
                                          size: bound.topByGrowth, admitted: names, now: now))
        let caches = admitted.filter { chosen.contains($0.name) }
        return Choice(caches: caches, beyondTop: admitted.count - caches.count)
    }

    /// The `count` largest footprints, largest first (ties by name, so the
    /// same sample ranks the same).
    private static func largest(_ caches: [SlabCache], _ count: Int) -> [String] {
        guard count > 0 else { return [] }
        let ranked = caches.sorted { ($0.footprintBytes, $1.name) > ($1.footprintBytes, $0.name) }
        return ranked.prefix(count).map(\.name)
    }

    /// The `count` caches that grew most since `baseline`, by at least
    /// `ExportBound.minimumGrowthBytes`.
    private static func fastestGrowing(_ caches: [SlabCache], _ count: Int, from baseline: FootprintBaseline?, at now: Int64) -> [String] {
        guard count > 0, let baseline else { return [] }
        let growing = caches.compactMap { cache -> (name: String, bytes: Int64)? in
            guard let bytes = baseline.growthBytes(of: cache, at: now, windowSeconds: ExportBound.growthWindowSeconds),
                  bytes >= ExportBound.minimumGrowthBytes else { return nil }
            return (cache.name, bytes)
        }
        let ranked = growing.sorted { ($0.bytes, $1.name) > ($1.bytes, $0.name) }
        return ranked.prefix(count).map(\.name)
    }
}

/// One top N, and when each cache was last in it: the hysteresis that keeps
/// a cache near rank N from flapping.
struct TopRanking: Sendable {
    private var lastInTop: [String: Int64] = [:]

    /// `top` (the caches in the top N now), and up to `size` caches still
    /// `admitted` that were in it less than `ExportBound.holdSeconds` before
    /// `now`, the most recently ranked first.
    mutating func members(top: [String], size: Int, admitted: Set<String>, now: Int64) -> [String] {
        for name in top { lastInTop[name] = now }
        let hold = saturatingMilliseconds(ExportBound.holdSeconds)
        lastInTop = lastInTop.filter { elapsedMilliseconds(now, since: $0.value) < hold }
        let inTop = Set(top)
        let held = lastInTop.filter { !inTop.contains($0.key) && admitted.contains($0.key) }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return top + held.prefix(size).map(\.key)
    }
}
