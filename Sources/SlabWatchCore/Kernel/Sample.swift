/// A file (or file family) slabwatch samples. The raw value is the
/// `source` label in `slabwatch_source_up` and the key in the snapshot.
public enum Source: String, CaseIterable, Sendable, Comparable {
    case slabinfo
    /// /sys/kernel/slab: reclaimability and aliases, and the cache counts
    /// themselves when /proc/slabinfo cannot be read.
    case sysfsSlab = "sysfs_slab"
    case meminfo
    case inodeNr = "inode_nr"
    case dentryState = "dentry_state"
    case fileNr = "file_nr"
    /// /proc/zoneinfo: the vmstat threshold behind `Sample.vmstat`, re-read
    /// every `ProcReader.zoneinfoEvery` samples (it grows with CPUs × zones).
    case zoneinfo
    /// /proc/loadavg: the threads that exist (kernel-wide).
    case loadavg
    /// /proc/net/sockstat: sockets of the daemon's network namespace.
    case sockstat
    /// /proc/cgroups' memory row (memory cgroups, live or dying), and on
    /// cgroup v2 the root's cgroup.stat (the dying ones).
    case cgroups

    public static func < (a: Source, b: Source) -> Bool { a.rawValue < b.rawValue }

    /// How many sources there are (`allCases` builds an array on every call).
    public static let count = allCases.count

    /// Whether `replay` skips a recorded sample without it: /sys may be left
    /// out of a recording made by hand (its first sample's is kept), and a
    /// source added later must say false here, or no older recording replays.
    public var requiredForReplay: Bool {
        switch self {
        case .slabinfo, .meminfo, .inodeNr, .dentryState, .fileNr: true
        case .sysfsSlab, .zoneinfo, .loadavg, .sockstat, .cgroups: false
        }
    }
}

/// Whether one source could be read and parsed in one sample.
public struct SourceStatus: Sendable, Equatable {
    public var up: Bool
    /// Why the source is down, or what was wrong with part of it; nil when all is well.
    public var error: String?
    /// Lines skipped because they could not be parsed (the source stays up).
    public var malformedLines: Int

    public init(up: Bool, error: String? = nil, malformedLines: Int = 0) {
        self.up = up
        self.error = error
        self.malformedLines = malformedLines
    }

    public static let notSampled = SourceStatus(up: false, error: "not sampled yet")
}

/// Everything one sampler tick read, as plain values. A source that failed
/// leaves its field nil (or `caches` empty) and says why in `sources`.
public struct Sample: Sendable, Equatable {
    /// Wall-clock time of the sample, milliseconds since the Unix epoch.
    public var timestampMilliseconds: Int64
    /// Caches in the kernel's order.
    public var caches: [SlabCache]
    public var meminfo: Meminfo?
    public var inodes: InodeCounts?
    public var dentries: DentryCounts?
    public var fileHandles: FileHandleCounts?
    /// Status of every source that was sampled.
    public var sources: [Source: SourceStatus]
    /// Caches left out because the kernel listed more than the sampler keeps
    /// (`sampler.max-caches`; the smallest footprints go first).
    public var cachesOverLimit = 0
    /// Every cache's footprint summed by reclaimability, taken before
    /// `sampler.max-caches` cut any; nil until a reader or `Pipeline.recorded`
    /// (from `caches`) sets it.
    public var cacheTotals: CacheTotals?
    /// How far the slab counters of `meminfo` may lag the truth; nil when
    /// unknown (/proc/zoneinfo not read).
    public var vmstat: VmstatAccuracy?
    /// Kernel memory of the largest memory cgroups; nil where no memory
    /// cgroup hierarchy is visible (read every `ProcReader.cgroupsEvery` samples).
    public var cgroupMemory: CgroupMemory?
    /// Threads (/proc/loadavg); nil when unread.
    public var tasks: TaskCounts?
    /// Sockets of this network namespace (/proc/net/sockstat); nil when unread.
    public var sockets: SocketCounts?
    /// Memory cgroups, live and dying; nil where the kernel has no memory controller.
    public var memoryCgroups: MemoryCgroupCounts?

    public init(
        timestampMilliseconds: Int64, caches: [SlabCache] = [], meminfo: Meminfo? = nil,
        inodes: InodeCounts? = nil, dentries: DentryCounts? = nil,
        fileHandles: FileHandleCounts? = nil, sources: [Source: SourceStatus] = [:]
    ) {
        self.timestampMilliseconds = timestampMilliseconds
        self.caches = caches
        self.meminfo = meminfo
        self.inodes = inodes
        self.dentries = dentries
        self.fileHandles = fileHandles
        self.sources = sources
    }

    public func status(of source: Source) -> SourceStatus {
        sources[source] ?? .notSampled
    }
}
