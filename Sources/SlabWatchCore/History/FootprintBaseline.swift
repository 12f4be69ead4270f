/// Each cache's footprint about a window ago, read once from the ring so that
/// a later `/metrics` render can rank caches by their growth without the ring
/// (the published state holds none: `/metrics` never waits for its lock).
///
/// Read from the coarse tier: its newest slot changes once every
/// `coarseEvery` samples (a minute at defaults), so the sampler rebuilds a
/// baseline only then (`isCurrent`), not every tick, and a growth figure is
/// off by at most that spacing. A value: a copy handed to a reader stays as it was.
public struct FootprintBaseline: Sendable, Equatable {
    /// When the footprints were taken (Unix milliseconds).
    public private(set) var timestampMilliseconds: Int64 = 0
    /// The coarse tier's newest sample when this was read: the ring has moved
    /// on once it differs.
    private(set) var newestCoarseMilliseconds: Int64 = 0
    private var footprints: [String: UInt64] = [:]

    /// The footprints of the oldest coarse sample at most `windowSeconds`
    /// before the coarse tier's newest; nil while the tier holds none.
    public init?(ring: SampleRing, windowSeconds: Double) {
        guard refill(ring: ring, windowSeconds: windowSeconds) else { return nil }
    }

    /// Reads the baseline again, into this one's storage: the sampler
    /// refills the baseline of two coarse moves back, which no published
    /// state holds any more, so a move costs no new dictionary (it was the
    /// last allocation a steady tick made). False, and unchanged, while the
    /// tier holds none.
    public mutating func refill(ring: SampleRing, windowSeconds: Double) -> Bool {
        let tier = ring.coarse
        guard tier.count > 0 else { return false }
        let newest = tier.time(at: tier.count - 1)
        var position = tier.count - 1
        while position > 0 && Double(elapsedMilliseconds(newest, since: tier.time(at: position - 1))) / 1000 <= windowSeconds {
            position -= 1
        }
        footprints.removeAll(keepingCapacity: true)
        footprints.reserveCapacity(ring.seriesNames.count)
        for (series, name) in ring.seriesNames.enumerated() {
            if let bytes = tier.footprint(series: series, at: position) { footprints[name] = bytes }
        }
        timestampMilliseconds = tier.time(at: position)
        newestCoarseMilliseconds = newest
        return true
    }

    /// How many footprints the storage holds without growing (tests: a refill keeps it).
    var capacity: Int { footprints.capacity }

    /// Whether `ring`'s coarse tier is as it was when this was read.
    public func isCurrent(for ring: SampleRing) -> Bool {
        ring.coarse.count > 0 && ring.coarse.time(at: ring.coarse.count - 1) == newestCoarseMilliseconds
    }

    /// How much `cache` grew (negative: shrank) from the baseline to a sample
    /// taken at `timestampMilliseconds`; nil when the cache was absent then,
    /// or when the two span less than `WindowCoverage` asks of `windowSeconds`.
    public func growthBytes(of cache: SlabCache, at timestampMilliseconds: Int64, windowSeconds: Double) -> Int64? {
        let span = Double(elapsedMilliseconds(timestampMilliseconds, since: self.timestampMilliseconds)) / 1000
        guard WindowCoverage.covers(spanSeconds: span, windowSeconds: windowSeconds), let then = footprints[cache.name] else { return nil }
        return Int64(clamping: cache.footprintBytes) - Int64(clamping: then)
    }
}
