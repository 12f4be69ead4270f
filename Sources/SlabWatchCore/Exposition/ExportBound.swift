/// How many caches `/metrics` lists by default (`slab.export`,
/// `slab.top-by-footprint`, `slab.top-by-growth`): a fleet pays per series, and
/// a node's 200-odd caches times nine families are most of them, while the
/// caches anyone looks at are the large ones, the growing ones and the ones
/// with a finding. `CacheSelection` applies it.
public struct ExportBound: Sendable, Equatable {
    /// Every cache the `slab.*` filters admit, unbounded (`slab.export: all`).
    public var all: Bool
    /// The largest caches by footprint exported.
    public var topByFootprint: Int
    /// The caches that grew most over `growthWindowSeconds` exported.
    public var topByGrowth: Int

    public init(all: Bool = false, topByFootprint: Int = 20, topByGrowth: Int = 10) {
        self.all = all
        self.topByFootprint = max(0, topByFootprint)
        self.topByGrowth = max(0, topByGrowth)
    }

    /// No bound: what `/metrics` listed before the bound existed.
    public static let unbounded = ExportBound(all: true)

    /// Growth is ranked over the last hour: long enough that a cache rising
    /// with files for minutes shows, short enough to be the coarse tier's
    /// recent past at any ring size; five minutes would rank the dentry and
    /// buffer caches' breathing and churn the top every scrape.
    public static let growthWindowSeconds: Double = 3600

    /// A cache that falls out of a top N stays exported until it has been out
    /// for an hour, so a cache hovering around rank N keeps one unbroken
    /// series instead of going stale and coming back every scrape (gaps on a
    /// dashboard, new chunks in the TSDB). At most N held caches per ranking,
    /// the most recently ranked first, so the bound holds at 2N.
    public static let holdSeconds: Double = 3600

    /// Growth below this over the window does not rank: among caches that
    /// hardly move, the order is noise, and ranking it would rotate small
    /// caches through the top every hour for nothing.
    public static let minimumGrowthBytes: Int64 = 1 << 20
}
