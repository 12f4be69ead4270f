import Glibc
import SlabWatchCore

/// What one attribution session traces: one slab cache's allocations, or the
/// kmallocs too large for any cache. The second is how memory outside every
/// cache gets its call sites: SLUB serves a kmalloc above its largest kmalloc
/// cache (8 KiB with 4 KiB pages) from the page allocator and counts it in
/// `SUnreclaim`, but no line of /proc/slabinfo shows it.
public enum AttributionTarget: Sendable, Equatable {
    /// A cache by name (`kmalloc-N` and its kin also by size and gfp class).
    case cache(String)
    /// Every kmalloc of more than `largestKmallocBytes`, the largest kmalloc
    /// cache's size, whatever its gfp class; their frees by pointer.
    case large(largestKmallocBytes: Int)

    /// `slab` as a session's target: `Attribution.outsideCaches` is a large
    /// session, bounded by the largest kmalloc cache of the running kernel
    /// (the one the session traces), read from `sysfs`/kernel/slab or else
    /// `procfs`/slabinfo; any other name is a cache. Throws `unavailable`
    /// when the kernel lists no kmalloc cache.
    public init(slab: String, sysfs: String = "/sys", procfs: String = "/proc") throws(Tracefs.Failure) {
        guard slab == Attribution.outsideCaches else { self = .cache(slab); return }
        let names = Self.cacheNames(sysfs: sysfs, procfs: procfs)
        guard let largest = KmallocCache.largestSize(in: names) else {
            throw .unavailable("cannot tell which allocations are outside every cache: no kmalloc cache is listed in \(sysfs)/kernel/slab or \(procfs)/slabinfo")
        }
        self = .large(largestKmallocBytes: largest)
    }

    /// The name the session's result goes by: the cache, or `Attribution.outsideCaches`.
    public var name: String {
        switch self {
        case .cache(let name): name
        case .large: Attribution.outsideCaches
        }
    }

    /// A large session's bound (`Attribution.largerThanBytes`); nil for a cache.
    public var largerThanBytes: UInt64? {
        if case .large(let bytes) = self { UInt64(bytes) } else { nil }
    }

    /// The caches the kernel lists: SLUB's /sys/kernel/slab (every cache and
    /// alias, no file read), else the first column of /proc/slabinfo.
    static func cacheNames(sysfs: String, procfs: String) -> [String] {
        var names: [String] = []
        if let directory = opendir("\(sysfs)/kernel/slab") {
            while let entry = readdir(directory) {
                names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
            }
            closedir(directory)
        }
        if KmallocCache.largestSize(in: names) == nil, let slabinfo = BPFSession.readText("\(procfs)/slabinfo") {
            names += slabinfo.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        }
        return names
    }
}

extension KmallocCache {
    /// The largest size class among `names` (`kmalloc-8k`, and the `-cg-`,
    /// `-rcl-`, `dma-` and `-rnd-NN-` copies of it): what SLUB's kmalloc
    /// serves from a cache (`KMALLOC_MAX_CACHE_SIZE`, two pages); above it,
    /// from the page allocator. nil when no name is a kmalloc cache's.
    static func largestSize(in names: some Sequence<String>) -> Int? {
        names.compactMap { KmallocCache(name: $0)?.size }.max()
    }
}
