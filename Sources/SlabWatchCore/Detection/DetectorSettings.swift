/// Thresholds and timings of the growth detector. Defaults are chosen so an
/// idle or ordinarily busy machine produces no findings. docs/detector.md
/// lists every one with its default and the sentence above it, generated from
/// this file: each stored property needs its `///` comment (DocsTests).
/// The first group are configuration keys (`detector.*`); the rules after
/// them are named here so they can be read and changed in one place.
public struct DetectorSettings: Sendable, Equatable {
    /// A fit must explain at least this share of the footprint's variance.
    public var minRSquared = 0.9
    /// The footprint must grow by at least this much over the window.
    public var minGrowthBytes: Double = 64 * 1024 * 1024
    /// A file driver (inodes, dentries, negative dentries, open files) must
    /// move by at least this much (a `find` moves tens of thousands); so must
    /// an inode cache's count to take the ring column of one that moved less
    /// (`SampleRing`'s "inode-cache columns").
    public var minDriverChange: Double = 10_000
    /// Sockets must move by at least this much: a busy server holds
    /// thousands; a leak of a thousand is already one.
    public var minSocketChange: Double = 1_000
    /// Threads must move by at least this much: a node runs a few thousand;
    /// two hundred more that stay is a thread leak's start.
    public var minTaskChange: Double = 200
    /// Memory cgroups (all, or dying) must move by at least this much: a node
    /// has hundreds; a hundred more dying is already unusual.
    public var minCgroupChange: Double = 100
    /// A file driver's slope must be at least this many bytes per unit.
    public var minBytesPerUnit: Double = 16
    /// Consecutive evaluations a cache must pass before a finding opens.
    public var openAfterEvaluations = 3
    /// How long the memory must stay back before a finding resolves (and, for
    /// reclaimable caches, how long without growth resolves one).
    public var resolveAfterSeconds: Double = 600
    /// The footprint has come back once it fell by this share of what it
    /// gained, from its peak towards its level before the rise; severity
    /// follows the memory still held, so such a finding is `info` until it
    /// resolves or holds more again.
    public var resolveShare = 0.75
    /// A finding is `holding` once its footprint has neither risen nor fallen for this long.
    public var holdAfterSeconds: Double = 120
    /// After its driver fell, a cache that has not fallen along its line for this long is leak-like.
    public var leakGraceSeconds: Double = 300
    /// Critical when the cache holds this share of MemTotal …
    public var criticalMemoryShare = 0.10
    /// … or would consume MemAvailable within this long at the rate it has
    /// held (see `exhaustionLookahead`).
    public var criticalExhaustionSeconds: Double = 6 * 3600
    /// Whether reclaimable caches (dentry, inode caches) are reported at all (severity info).
    public var reportReclaimable = true
    /// The global trend projects when SUnreclaim reaches this share of MemTotal.
    public var trendLimitShare = 0.5
    /// Window lengths evaluated; short ones read the fine tier, long ones the
    /// coarse (a window the ring does not cover at least half of is skipped).
    public var windowsSeconds: [Double] = [300, 900, 3600, 3 * 3600, 12 * 3600]
    /// Points kept as a finding's evidence: the rise's, plus the fall's once the driver falls.
    public var evidencePoints = 60
    /// A window needs at least this many samples to be fitted.
    public var minPoints = 8
    /// Which caches count one filesystem's inodes (`detector.inode-caches`
    /// and `detector.inode-caches-exclude`); their object counts are drivers.
    public var inodeCaches = InodeCacheSelector.standard

    // MARK: rules (not configuration keys)

    /// File drivers whose R² is within this of the best are a near-tie, won
    /// by the driver listed first (inodes, dentries, open files): inodes and
    /// dentries usually rise together, and "per inode" is the clearer story.
    /// Within a driver the part that says why wins: an inode cache over the
    /// global inode count, negative dentries over all dentries.
    public var nearTieRSquared = 0.005
    /// Negative dentries win a near tie with the dentries (of which they are
    /// a part), and take the place of `dentry`'s own count, only when they
    /// account for at least this share of the dentries' change in the window: a rise that is mostly positive
    /// dentries (a `find` beside a trickle of failed lookups, both steady) is
    /// not "per negative dentry", whose slope would then charge every
    /// dentry's bytes to a few.
    public var negativeDentriesTieShare = 0.5
    /// Time wins over a file driver only when it fits this much better:
    /// "per inode" explains more than "per second".
    public var timeMustFitBetterBy = 0.02
    /// Time is fitted only over windows at least this long: minutes of growth
    /// against the clock are a burst, not a trend.
    public var timeMinWindowSeconds: Double = 900
    /// A time trend's increments must average this many standard errors above
    /// zero; a driftless random walk fits time with a high R² surprisingly often.
    public var timeMinDriftT = 4.0
    /// A driver that rose this much like time over the window (R² of the
    /// driver against time) is no better evidence than time: a fit against
    /// it must show the same steady drift (`timeMinDriftT`) … Dying cgroups
    /// climbing at a steady pace for hours otherwise "explained" a cache
    /// that wandered up by chance (R² 0.92 over an hour, as time did).
    public var timeLikeRSquared = 0.9
    /// … unless the driver leaves at most this share of the variance time
    /// leaves unexplained: then it follows what the clock does not (a socket
    /// count's ups and downs, that the cache follows too).
    public var timeLikeUnexplainedShare = 0.5
    /// The driver has fallen once it is down by this share of its rise (and of
    /// `minDriverChange`): a quarter of the inodes evicted is an eviction.
    public var driverFallShare = 0.25
    /// The cache tracks eviction once it has fallen this share of what its
    /// line predicts for the driver's fall (for no more units than its rise
    /// accounts for: others' units that went carried none of its memory).
    public var followShare = 0.5
    /// A fall of the driver is evidence of a leak only once the driver is
    /// below the units the finding's rise accounts for by this share of them
    /// (and of `minDriverChange`): whoever else's units went, at least that
    /// many of its own must have gone too, since nothing else was left to.
    public var leakEvidenceShare = 0.25
    /// A window covers a finding's rise when its footprint gain is within
    /// this share of the largest gain any passing window of the finding saw;
    /// among covering windows the higher R² is reported. A window that saw
    /// more unrelated driver movement (a `find` beside the culprit) is no
    /// better evidence, and a short window at the end of a rise never covers it.
    public var riseCoverShare = 0.1
    /// A finding's severity comes down only after the lower one has held this
    /// long (a cache that shrank below the critical share; a rise that
    /// slowed), so it cannot flap; memory that came back calms it at once.
    public var deescalateAfterSeconds: Double = 300
    /// Exhaustion is projected at most this many times as far ahead as the
    /// finding has been rising, at the rate it held since the rise began (or
    /// its recent one, if lower): a rate seen for 20 s says nothing about the
    /// next 6 h (node_exporter's mixin warns when a disk's 6 h trend runs out
    /// within 24 h).
    public var exhaustionLookahead = 4.0
    /// Moves smaller than this share of a finding's gain (or of
    /// `minGrowthBytes`) are noise, not a change of phase.
    public var phaseBandShare = 0.05
    /// A derived series (memory outside the caches, Percpu) must grow by at
    /// least this many times the vmstat error (`vm stats threshold` × CPUs ×
    /// page size, from /proc/zoneinfo) as well as by `minGrowthBytes`: the
    /// kernel's counters it is derived from may lag the truth by that much
    /// (125 MiB on a 256-CPU node), in either direction.
    public var derivedVmstatErrors = 2.0

    public init() {}

    /// The growth a window of `cache` must show: `minGrowthBytes`, and for a
    /// derived series at least `derivedVmstatErrors` × the sample's vmstat
    /// error (none known: `minGrowthBytes`).
    public func minGrowthBytes(for cache: SlabCache, vmstat: VmstatAccuracy?) -> Double {
        guard cache.isDerived, let vmstat else { return minGrowthBytes }
        return max(minGrowthBytes, derivedVmstatErrors * Double(vmstat.errorBytes))
    }

    /// How far `driver` must move for a fit against it to pass, and for its
    /// fall to count (`FindingLifecycle`): a node makes tens of thousands of
    /// inodes but hundreds of cgroups, so each class of count has its own.
    /// Time has none (0).
    public func minimumChange(for driver: GrowthDriver) -> Double {
        switch driver {
        case .inodes, .dentries, .negativeDentries, .openFiles: minDriverChange
        case .sockets: minSocketChange
        case .tasks: minTaskChange
        case .memoryCgroups, .dyingMemoryCgroups: minCgroupChange
        case .time: 0
        }
    }
}
