/// A cache the detector flagged: its footprint rose linearly with a driver.
///
/// A finding describes **memory**, not a moment of growth: it stays open while
/// that memory is held (a plateau is not a recovery), reports the fit that
/// describes its rise, and is classified whenever the driver falls, however
/// late. With `inodes` as driver it may name the inode cache (the filesystem)
/// whose object count drives it. `FindingLifecycle.swift` holds the rules that move it.
public struct Finding: Sendable, Equatable, Codable {
    public enum Classification: String, Sendable, Codable {
        /// The driver fell and the cache fell along the same line: memory
        /// attached to cached objects, not a leak.
        case tracksEviction = "tracks-eviction"
        /// The driver fell and the cache did not.
        case leakLike = "leak-like"
        /// The driver has only risen so far.
        case undetermined
    }

    public enum State: String, Sendable, Codable { case open, resolved }

    /// Where the memory stands now; a phase change is not an alert.
    public enum Phase: String, Sendable, CaseIterable, Codable {
        /// The footprint rose past its last level within `detector.hold-after`.
        case rising
        /// Neither rising nor falling: the memory is held.
        case holding
        /// The footprint fell below its last level within `detector.hold-after`.
        case falling
    }

    /// Why a finding resolved.
    public enum Resolution: String, Sendable, Codable {
        /// The footprint came back by `detector.resolve-share` of its gain and stayed there.
        case memoryReturned = "memory-returned"
        /// The cache is no longer in the kernel (module unloaded, cache destroyed).
        case cacheGone = "cache-gone"
        /// A reclaimable cache stopped growing: the kernel gives that memory back under pressure.
        case stoppedGrowing = "stopped-growing"
        /// The machine rebooted while slabwatch was stopped: the memory the finding described is gone.
        case reboot
    }

    /// `info` for reclaimable caches, `warning` when opened, `critical` when the
    /// cache holds a large share of memory or would exhaust it soon.
    public enum Severity: String, Sendable, Comparable, CaseIterable, Codable {
        case info, warning, critical
        public static func < (a: Severity, b: Severity) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// A driver's fit over the finding's window.
    public struct DriverFit: Sendable, Equatable, Codable {
        public var driver: GrowthDriver
        /// For `inodes`: the inode cache whose object count was the x; nil for the global count.
        public var inodeCache: String?
        public var bytesPerUnit: Double
        public var rSquared: Double
        public var driverChange: Double
        /// Whether this driver alone passed every threshold.
        public var flagged: Bool
    }

    /// One point of the evidence, for plotting footprint against the driver.
    public struct EvidencePoint: Sendable, Equatable, Codable {
        /// `rise`: a point of the fitted window; `fall`: a sample after the driver fell.
        public enum Segment: String, Sendable, Codable { case rise, fall }

        public var timestampMilliseconds: Int64
        public var driver: Double
        public var footprintBytes: UInt64
        public var segment: Segment
    }

    /// The fit a finding reports: while its driver rose, the cleanest fit of a
    /// window that covers the cache's growth (see `GrowthDetector.describingRise`).
    public struct RiseFit: Sendable, Equatable, Codable {
        public var bytesPerUnit: Double
        public var rSquared: Double
        public var windowSeconds: Double
        /// Footprint change over the window (last − first), bytes.
        public var growthBytes: Double
        /// Driver change over the window (last − first), in its unit.
        public var driverChange: Double
        /// Every driver fitted over the same window, sorted by driver.
        public var fits: [DriverFit]
        /// The window's points, at most `detector`'s evidence count.
        var points: [EvidencePoint]
        /// The lowest footprint and driver in the window: the level before the rise.
        var footprintFloor: UInt64
        var driverFloor: Double
        /// The driver's highest value in the window, when, and the footprint then.
        var driverPeak: Double
        var driverPeakAt: Int64
        var footprintAtDriverPeak: UInt64

        /// Average growth rate over the window; has the sign of `growthBytes`.
        public var bytesPerSecond: Double { windowSeconds > 0 ? growthBytes / windowSeconds : 0 }
    }

    public var slab: String
    public var driver: GrowthDriver
    /// The inode cache whose objects drive the finding (`driver` is then
    /// `inodes`); nil when the global inode count (or another driver) does.
    public var inodeCache: String?
    public internal(set) var fit: RiseFit
    public var reclaimable: Bool?
    public var classification: Classification = .undetermined
    public var state: State = .open
    public var severity: Severity = .warning
    public var phase: Phase = .rising
    /// Why it resolved; nil while open.
    public var resolution: Resolution?
    public var firstSeenMilliseconds: Int64
    /// The newest sample that evaluated the finding (its resolution, once resolved).
    public var lastSeenMilliseconds: Int64
    /// The newest sample at which the footprint rose past its last level.
    public var lastRiseMilliseconds: Int64
    /// Who allocates the cache's memory, once a tracing session has said
    /// (`attribution.enabled`); nil until then.
    public var attribution: Attribution?
    /// Whose memory it is: the memory cgroups charged for the rise
    /// (`ChargeRanking`); nil until ranked, or where no memory cgroup hierarchy is read.
    public var charged: ChargedCgroups?
    /// The footprint's level before the rise.
    public internal(set) var footprintFloor: UInt64
    /// The highest footprint seen.
    public internal(set) var footprintPeak: UInt64
    /// The footprint at the newest sample.
    public internal(set) var footprintBytes: UInt64

    // Lifecycle bookkeeping: lives in the finding, not the ring, so an
    // eviction hours after the rise still classifies.
    var driverFloor: Double
    var driverPeak: Double
    var driverPeakAt: Int64
    var footprintAtDriverPeak: UInt64
    var driverFellAt: Int64?
    var fallTrail: EvidenceTrail
    /// Once the driver fell: the value it must fall to for a cache that
    /// stays to be evidence of a leak (`leakEvidenceShare`), and when it did;
    /// the leak grace counts from then.
    var leakEvidenceBelow: Double?
    var leakEvidenceAt: Int64?
    var phaseLevel: UInt64
    var lastFallMilliseconds: Int64 = .min
    var backSince: Int64?
    /// Total evidence points shown (rise plus fall).
    var evidenceLimit: Int
    /// The largest footprint gain of any passing window of this finding's
    /// driver: a fit covers the rise when its gain comes close to it.
    var largestRiseGain: Double?
    /// The footprint's rate over the shortest window, at the latest evaluation.
    public internal(set) var recentBytesPerSecond: Double?
    /// When the rise began: the start of the earliest window whose fit the
    /// finding kept (nil in a state written before it was kept).
    var riseBeganMilliseconds: Int64?
    /// Since when the assessed severity has been below the finding's.
    var calmerSince: Int64?
    /// For the global inode count: inode caches whose changes since the
    /// finding opened are left out of its driver (their filesystems' inodes
    /// do not carry this cache's memory), and their total count then.
    var discountedInodeCaches: [String]?
    var discountReference: Double?

    /// The stored properties are the state file's format. Six were renamed
    /// after the rise fit's floor/peak; their raw values are the **old** names,
    /// so checkpoints written before and after read the same (see
    /// `FindingCodingTests`). Every stored property must be listed here.
    enum CodingKeys: String, CodingKey {
        case slab, driver, inodeCache, fit, reclaimable, classification, state, severity, phase, resolution
        case firstSeenMilliseconds, lastSeenMilliseconds, lastRiseMilliseconds, attribution, charged
        case footprintFloor = "baselineBytes"
        case footprintPeak = "peakBytes"
        case footprintBytes
        case driverFloor = "driverBaseline"
        case driverPeak = "peakDriver"
        case driverPeakAt = "peakDriverAt"
        case footprintAtDriverPeak = "footprintAtPeakDriver"
        case driverFellAt, fallTrail, leakEvidenceBelow, leakEvidenceAt, phaseLevel, lastFallMilliseconds, backSince
        case evidenceLimit, largestRiseGain, recentBytesPerSecond, riseBeganMilliseconds, calmerSince
        case discountedInodeCaches, discountReference
    }

    /// The filesystem whose inodes drive the finding, where `inodeCache`'s name says.
    public var filesystem: String? { inodeCache.flatMap(InodeCacheSelector.filesystem(of:)) }

    public var bytesPerUnit: Double { fit.bytesPerUnit }
    public var rSquared: Double { fit.rSquared }
    public var windowSeconds: Double { fit.windowSeconds }
    public var growthBytes: Double { fit.growthBytes }
    public var driverChange: Double { fit.driverChange }
    public var bytesPerSecond: Double { fit.bytesPerSecond }
    public var fits: [DriverFit] { fit.fits }

    /// What the cache holds above its level before the rise.
    public var heldBytes: UInt64 { footprintBytes > footprintFloor ? footprintBytes - footprintFloor : 0 }
    /// What it gained from its level before the rise to its peak.
    public var gainedBytes: UInt64 { footprintPeak > footprintFloor ? footprintPeak - footprintFloor : 0 }

    /// The other drivers that also passed every threshold.
    public var otherDrivers: [DriverFit] {
        fits.filter { ($0.driver != driver || $0.inodeCache != inodeCache) && $0.flagged }
    }

    /// The rise's points, then (once the driver fell) the fall's, at most
    /// `detector`'s evidence count in all.
    public var evidence: [EvidencePoint] {
        let fall = fallTrail.all
        return EvidenceTrail.spread(fit.points, to: max(2, evidenceLimit - fall.count)) + fall
    }
}

/// Points sampled while a driver falls, bounded however long that lasts: when
/// full, every other point is dropped and the stride doubles.
struct EvidenceTrail: Sendable, Equatable, Codable {
    private(set) var points: [Finding.EvidencePoint] = []
    private(set) var latest: Finding.EvidencePoint?
    private var stride = 1
    private var pending = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(2, capacity) }

    /// The kept points and the newest one.
    var all: [Finding.EvidencePoint] {
        guard let latest, latest != points.last else { return points }
        return points + [latest]
    }

    mutating func append(_ point: Finding.EvidencePoint) {
        latest = point
        pending += 1
        guard pending >= stride else { return }
        pending = 0
        points.append(point)
        // One slot stays free for `latest`.
        if points.count >= capacity {
            points = points.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            stride *= 2
        }
    }

    mutating func removeAll() { self = EvidenceTrail(capacity: capacity) }

    /// At most `limit` of `points`, evenly spread, first and last kept.
    static func spread<T>(_ points: [T], to limit: Int) -> [T] {
        guard points.count > limit, limit >= 2 else { return points }
        return (0..<limit).map { points[$0 * (points.count - 1) / (limit - 1)] }
    }
}
