/// Thresholds and timings of the growth detector. Defaults are chosen so an
/// idle or ordinarily busy machine produces no findings (README explains each).
public struct DetectorSettings: Sendable, Equatable {
    /// A fit must explain at least this share of the footprint's variance.
    public var minRSquared = 0.9
    /// The footprint must grow by at least this much over the window.
    public var minGrowthBytes: Double = 64 * 1024 * 1024
    /// A file driver (inodes, dentries, open files) must move by at least this much.
    public var minDriverChange: Double = 10_000
    /// A file driver's slope must be at least this many bytes per unit.
    public var minBytesPerUnit: Double = 16
    /// Consecutive evaluations a cache must pass before a finding opens.
    public var openAfterEvaluations = 3
    /// A finding resolves once its footprint has not exceeded its peak for this long.
    public var resolveAfterSeconds: Double = 600
    /// After its driver fell, a cache that has not fallen along its line for this long is leak-like.
    public var leakGraceSeconds: Double = 300
    /// Critical when the cache holds this share of MemTotal …
    public var criticalMemoryShare = 0.10
    /// … or would consume MemAvailable within this many seconds at its current rate.
    public var criticalExhaustionSeconds: Double = 6 * 3600
    /// Whether reclaimable caches (dentry, inode caches) are reported at all (severity info).
    public var reportReclaimable = true
    /// The global trend projects when SUnreclaim reaches this share of MemTotal.
    public var trendLimitShare = 0.5
    /// Window lengths evaluated, in seconds; short ones read the fine tier, long ones the coarse.
    public var windowsSeconds: [Double] = [300, 900, 3600, 3 * 3600, 12 * 3600]
    /// Points kept as a finding's evidence (evenly spread over the window).
    public var evidencePoints = 60
    /// A window needs at least this many samples to be fitted.
    public var minPoints = 8

    public init() {}
}
