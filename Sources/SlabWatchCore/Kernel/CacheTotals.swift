/// The footprints of every kernel cache of a sample, summed by whether the
/// kernel accounts it in `SReclaimable` or `SUnreclaim`: what the slab lines
/// of /proc/meminfo would be if no memory lay outside the caches.
///
/// Summed over every cache the kernel listed, before `sampler.max-caches`
/// leaves the smallest out (a cache left out must not read as memory outside
/// the caches). Derived series are not caches and are never summed.
public struct CacheTotals: Sendable, Equatable {
    /// Σ footprints of the caches accounted in `SReclaimable`.
    public var reclaimableBytes: UInt64
    /// Σ footprints of the caches accounted in `SUnreclaim`.
    public var unreclaimableBytes: UInt64
    /// Σ footprints of the caches whose reclaimability sysfs did not say.
    public var unknownBytes: UInt64
    /// How many caches were summed.
    public var caches: Int
    /// The kernel's slab counters as the caches were read; nil where no
    /// reader took them (a recording, a snapshot): `Sample.meminfo`'s stand in.
    public var counters: SlabCounters?

    public init(reclaimableBytes: UInt64, unreclaimableBytes: UInt64, unknownBytes: UInt64, caches: Int) {
        self.reclaimableBytes = reclaimableBytes
        self.unreclaimableBytes = unreclaimableBytes
        self.unknownBytes = unknownBytes
        self.caches = caches
    }

    /// The totals of `caches`, derived series left out.
    public init(_ caches: [SlabCache]) {
        self.init(reclaimableBytes: 0, unreclaimableBytes: 0, unknownBytes: 0, caches: 0)
        for cache in caches where !cache.isDerived {
            switch cache.reclaimable {
            case true?: reclaimableBytes = reclaimableBytes.addingSaturating(cache.footprintBytes)
            case false?: unreclaimableBytes = unreclaimableBytes.addingSaturating(cache.footprintBytes)
            case nil: unknownBytes = unknownBytes.addingSaturating(cache.footprintBytes)
            }
            self.caches += 1
        }
    }
}

/// How far /proc/meminfo's `SReclaimable` and `SUnreclaim` may lag the truth.
///
/// Both are vmstat node counters: each CPU keeps up to its `vm stats
/// threshold` pages of change to a counter before folding them into the
/// global value (mm/vmstat.c; `/proc/zoneinfo` prints the threshold per zone
/// and CPU, and node counters use the largest of the node's zones). So either
/// may be off by up to threshold × CPUs pages, either way. A difference of
/// two such counters, or of one and an exact sum, inherits that error.
public struct VmstatAccuracy: Sendable, Equatable {
    /// The largest `vm stats threshold`, in pages.
    public var threshold: UInt64
    /// CPUs that keep per-CPU deltas.
    public var cpus: UInt64
    public var pageSize: UInt64

    /// The kernel's largest threshold (`calculate_normal_threshold` caps it at 125).
    public static let largestThreshold: UInt64 = 125

    public init(threshold: UInt64, cpus: UInt64, pageSize: UInt64) {
        self.threshold = threshold
        self.cpus = cpus
        self.pageSize = pageSize
    }

    /// The most a slab counter of /proc/meminfo may be off: threshold × CPUs × page size.
    public var errorBytes: UInt64 { saturatingProduct(saturatingProduct(threshold, cpus), pageSize) }
}

extension UInt64 {
    @inlinable func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}

/// `SReclaimable` and `SUnreclaim` at the moment the caches were read: the
/// mean of /proc/meminfo read right before and right after them. Under
/// churn the caches move while /proc/slabinfo is read and parsed; with one
/// read of the counters after it the memory outside the caches wandered by
/// ±0.9 MB a sample here (2,000 tmpfs files with xattrs made and deleted in
/// a loop), with the mean of both sides by ±0.2 MB, the vmstat error.
public struct SlabCounters: Sendable, Equatable {
    public var reclaimableBytes: UInt64
    public var unreclaimableBytes: UInt64

    public init(reclaimableBytes: UInt64, unreclaimableBytes: UInt64) {
        self.reclaimableBytes = reclaimableBytes
        self.unreclaimableBytes = unreclaimableBytes
    }

    /// The mean of two readings; nil when either lacks a counter.
    public init?(meanOf before: Meminfo?, _ after: Meminfo?) {
        guard let r0 = before?.slabReclaimableBytes, let r1 = after?.slabReclaimableBytes,
              let u0 = before?.slabUnreclaimableBytes, let u1 = after?.slabUnreclaimableBytes
        else { return nil }
        self.init(reclaimableBytes: r0 / 2 + r1 / 2 + (r0 & r1 & 1), unreclaimableBytes: u0 / 2 + u1 / 2 + (u0 & u1 & 1))
    }
}
