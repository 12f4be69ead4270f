import Testing
import TestSupport
@testable import SlabWatchCore

/// A machine with several filesystems, for the detector on a busy day: each
/// filesystem's inodes live in its own inode cache, the global inode count is
/// their sum (plus a wobbling rest), every inode has a dentry, and culprit
/// caches attach a fixed number of bytes to each inode of one filesystem.
/// Around them: ordinary caches that wobble, and a generic cache whose level
/// wanders by tens of MiB on its own. One sample every `interval` seconds.
///
/// What the generator puts in is what a test asserts: a culprit's
/// `bytesPerInode` is exactly the cost per inode of its filesystem.
struct BusyMachine {
    /// A filesystem: its inode cache's name, object size and slab layout.
    struct Filesystem: Hashable {
        var cache: String
        var objectSize: UInt64
        var objectsPerSlab: UInt64
        var pagesPerSlab: UInt64
        var reclaimable: Bool

        static let ext4 = Filesystem(cache: "ext4_inode_cache", objectSize: 1128, objectsPerSlab: 29, pagesPerSlab: 8, reclaimable: true)
        static let tmpfs = Filesystem(cache: "shmem_inode_cache", objectSize: 752, objectsPerSlab: 21, pagesPerSlab: 4, reclaimable: false)
        static let mystor = Filesystem(cache: "mystor_inode_cache", objectSize: 1024, objectsPerSlab: 32, pagesPerSlab: 8, reclaimable: true)

        /// Footprint of the inode cache per inode: slab pages over objects per slab.
        var footprintPerInode: Double { Double(pagesPerSlab * 4096) / Double(objectsPerSlab) }
    }

    /// A cache that holds `bytesPerInode` for every inode of `filesystem` (above `base`)
    /// but others' (`others`); when it `leaks`, for every inode it ever had.
    struct Culprit {
        var cache: String
        var filesystem: Filesystem
        var bytesPerInode: Double
        var base: Double = 100e6
        var leaks = false
        /// Its memory lies outside every cache (allocations above kmalloc-8k,
        /// from the page allocator): in `SUnreclaim`, on no slabinfo line.
        var outsideCaches = false
    }

    var interval = 5.0
    var filesystems: [Filesystem] = [.ext4, .tmpfs, .mystor]
    var culprits: [Culprit] = []
    var inodes: [Filesystem: Double] = [.ext4: 60_000, .tmpfs: 2_000, .mystor: 0]
    /// Inodes another workload keeps on a filesystem (its own files on the
    /// same tmpfs): counted by the filesystem's inode cache and the global
    /// count like any other, carrying none of a culprit's memory.
    var others: [Filesystem: Double] = [:]
    /// The most inodes each leaking culprit's filesystem held, by cache.
    var leaked: [String: Double] = [:]
    /// Negative dentries (`nr_negative`): lookups of names that do not exist,
    /// each a 192-byte dentry with no inode. Nil (a kernel before 4.19) in
    /// the stories that do not look any up, so their noise stays as it was.
    var negativeDentries: Double?
    /// Inodes of no inode cache the machine names (pipes, sockets, …).
    var otherInodes = 20_000.0
    /// Counts beyond files, by driver: sockets (every namespace's; each also
    /// an inode, a dentry and an open file, as a real socket is), threads,
    /// live memory cgroups (`.memoryCgroups`) and dying ones. A count left
    /// out is not in the story: its source reads as absent and no noise is
    /// drawn for it, so the other stories keep theirs.
    var counts: [GrowthDriver: Double] = [:]
    /// Caches whose footprint is `base + bytesPerUnit × ` one of `counts`
    /// (`.memoryCgroups`: every memory cgroup, live or dying).
    var objectCaches: [ObjectCache] = []

    struct ObjectCache {
        var cache: String
        var unit: GrowthDriver
        var bytesPerUnit: Double
        var base = 50e6
        /// How far its footprint wobbles each sample, either way.
        var wobble = 1e6
    }

    /// The cache with one object per unit of a count, as the kernel lays it
    /// out here (slabinfo of this machine): `sock_inode_cache` 832-byte
    /// objects, 19 to 4 pages (862 B a socket); `task_struct` 5,952, 5 to 8
    /// pages (6,554 B a thread); `mem_cgroup` 2,240, 14 to 8 pages (2,341 B).
    static let ownCaches: [GrowthDriver: (name: String, size: UInt64, perSlab: UInt64, pages: UInt64)] = [
        .sockets: ("sock_inode_cache", 832, 19, 4), .tasks: ("task_struct", 5952, 5, 8), .memoryCgroups: ("mem_cgroup", 2240, 14, 8),
    ]
    var wandering = 300e6
    var samples: [Sample] = []
    var noise: UInt64 = 23
    /// How far meminfo's slab counters stray from the caches' sums, each
    /// sample, either way: the per-CPU vmstat deltas not yet folded
    /// (`VmstatAccuracy.errorBytes`; 0 for exact counters).
    var vmstatErrorBytes = 0.0
    var memTotal: UInt64 = 64 << 30
    var memAvailable: UInt64 = 48 << 30
    /// Short-lived inode caches present at once (a module that makes one per
    /// mount, a hostile one): each holds a few inodes and lives
    /// `churnLifetime` samples, and a name comes back once `churnNames` others
    /// were made (with 200 at once, 13 samples later: never in step with the
    /// ring's coarse copies, every 12th sample). /proc/slabinfo lists the
    /// newest caches first, so they come before the filesystems'.
    var churningInodeCaches = 0
    var churnLifetime = 4
    var churnNames = 650

    mutating func jitter(_ amplitude: Double) -> Double { amplitude * nextNoise(&noise) }

    /// Moves each named filesystem's inode count (and the other workload's
    /// on it) linearly to its target over `seconds`, one sample per interval
    /// (a hold when both are empty), and the negative dentries to theirs.
    mutating func run(_ seconds: Double, to targets: [Filesystem: Double] = [:], others otherTargets: [Filesystem: Double] = [:],
                      negativeDentries negativeTarget: Double? = nil, counts countTargets: [GrowthDriver: Double] = [:]) {
        let steps = max(1, Int((seconds / interval).rounded()))
        let (from, othersFrom, negativeFrom, countsFrom) = (inodes, others, negativeDentries ?? 0, counts)
        for step in 1...steps {
            let done = Double(step) / Double(steps)
            for (driver, target) in countTargets { counts[driver] = (countsFrom[driver] ?? 0) + (target - (countsFrom[driver] ?? 0)) * done }
            if let negativeTarget { negativeDentries = negativeFrom + (negativeTarget - negativeFrom) * done }
            for (fs, target) in targets { inodes[fs] = (from[fs] ?? 0) + (target - (from[fs] ?? 0)) * done }
            for (fs, target) in otherTargets { others[fs] = (othersFrom[fs] ?? 0) + (target - (othersFrom[fs] ?? 0)) * done }
            addSample()
        }
    }

    /// The inode count of `fs` now, the other workload's included.
    func count(_ fs: Filesystem) -> Double { (inodes[fs] ?? 0) + (others[fs] ?? 0) }

    private mutating func addSample() {
        let t = Int64(Double(samples.count) * interval * 1000) + 1_700_000_000_000
        var caches = churningCaches()
        let churned = caches.reduce(0.0) { $0 + Double($1.activeObjects) }
        for fs in filesystems {
            let objects = UInt64(max(0, count(fs)).rounded())
            let slabs = (objects + fs.objectsPerSlab - 1) / fs.objectsPerSlab
            caches.append(SlabCache(name: fs.cache, activeObjects: objects, objects: slabs * fs.objectsPerSlab,
                                    objectSize: fs.objectSize, objectsPerSlab: fs.objectsPerSlab,
                                    pagesPerSlab: fs.pagesPerSlab, activeSlabs: slabs, slabs: slabs, pageSize: 4096,
                                    reclaimable: fs.reclaimable))
        }
        let sockets = counts[.sockets].map { ($0 + jitter(20)).rounded() }
        let total = filesystems.reduce(otherInodes + churned + (sockets ?? 0)) { $0 + count($1) } + jitter(300)
        let negative = (negativeDentries ?? 0).rounded()
        let dentries = 1.1 * total + jitter(2000) + negative
        caches.append(Self.cache("dentry", bytes: 192 * dentries + 20e6 + jitter(1e6), reclaimable: true))
        var outsideCaches = 0.0
        for culprit in culprits {
            var own = inodes[culprit.filesystem] ?? 0
            if culprit.leaks {
                own = max(own, leaked[culprit.cache] ?? 0)
                leaked[culprit.cache] = own
            }
            let bytes = culprit.base + culprit.bytesPerInode * own + jitter(1e6)
            if culprit.outsideCaches { outsideCaches += bytes } else { caches.append(Self.cache(culprit.cache, bytes: bytes, reclaimable: false)) }
        }
        let objects = objectCounts(sockets: sockets)
        for (driver, own) in Self.ownCaches.sorted(by: { $0.key < $1.key }) {
            guard let count = objects[driver] else { continue }
            let objects = UInt64(max(0, count)), slabs = (objects + own.perSlab - 1) / own.perSlab
            caches.append(SlabCache(name: own.name, activeObjects: objects, objects: slabs * own.perSlab, objectSize: own.size,
                                    objectsPerSlab: own.perSlab, pagesPerSlab: own.pages, activeSlabs: slabs, slabs: slabs,
                                    pageSize: 4096, reclaimable: false))
        }
        for culprit in objectCaches {
            let count = objects[culprit.unit] ?? 0
            caches.append(Self.cache(culprit.cache, bytes: culprit.base + culprit.bytesPerUnit * count + jitter(culprit.wobble), reclaimable: false))
        }
        wandering += jitter(3e6)  // a random walk: tens of MiB over an hour, for no reason
        caches.append(Self.cache("kmalloc-256", bytes: wandering, reclaimable: false))
        for i in 0..<16 { caches.append(Self.cache("cache\(i)", bytes: 50e6 + jitter(2e6), reclaimable: i % 2 == 0)) }
        // The lag is drawn only when there is one, so stories without it keep their noise.
        let lag = vmstatErrorBytes > 0 ? (jitter(vmstatErrorBytes), jitter(vmstatErrorBytes)) : (0, 0)
        var sample = Sample(
            timestampMilliseconds: t, caches: caches,
            meminfo: .slabTotals(of: caches, memTotal: memTotal, memAvailable: memAvailable,
                                 unreclaimableBeside: outsideCaches + lag.0, reclaimableBeside: lag.1),
            inodes: InodeCounts(inodes: UInt64(max(0, total)), freeInodes: 0),
            dentries: DentryCounts(dentries: UInt64(max(0, dentries)), unusedDentries: 0,
                                   negativeDentries: negativeDentries.map { _ in UInt64(negative) }),
            fileHandles: FileHandleCounts(allocated: UInt64(2000 + jitter(50) + (sockets ?? 0)), maximum: 1 << 20))
        if let sockets = objects[.sockets] { sample.sockets = SocketCounts(used: UInt64(max(0, sockets / 10))) }  // this namespace's few
        if let threads = objects[.tasks] { sample.tasks = TaskCounts(threads: UInt64(max(0, threads)), runnable: 3) }
        if let all = objects[.memoryCgroups] {
            let dying = objects[.dyingMemoryCgroups]
            sample.memoryCgroups = MemoryCgroupCounts(total: UInt64(max(0, all)), live: UInt64(max(0, all - (dying ?? 0))),
                                                      dying: dying.map { UInt64(max(0, $0)) }, version: .v1)
        }
        samples.append(sample)
    }

    /// This sample's counts, jittered as a live machine's are: sockets as
    /// given, threads ± 10, every memory cgroup (live + dying), the dying.
    private mutating func objectCounts(sockets: Double?) -> [GrowthDriver: Double] {
        var objects: [GrowthDriver: Double] = [:]
        objects[.sockets] = sockets
        if let threads = counts[.tasks] { objects[.tasks] = (threads + jitter(10)).rounded() }
        if let live = counts[.memoryCgroups] {
            let dying = counts[.dyingMemoryCgroups].map { $0.rounded() }
            objects[.dyingMemoryCgroups] = dying
            objects[.memoryCgroups] = (live + jitter(3)).rounded() + (dying ?? 0)
        }
        return objects
    }

    /// The churning inode caches of the next sample: cache `k` lives from
    /// sample `k × churnLifetime / churningInodeCaches` for `churnLifetime`
    /// samples, so a share of the names changes every sample.
    private func churningCaches() -> [SlabCache] {
        guard churningInodeCaches > 0 else { return [] }
        let step = samples.count
        let perSample = max(1, churningInodeCaches / churnLifetime)
        let newest = (step + 1) * perSample - 1
        return (max(0, newest - churningInodeCaches + 1)...newest).reversed().map { k in
            let objects = UInt64(1 + k % 40)
            return SlabCache(name: "bad\(k % churnNames)_inode_cache", activeObjects: objects, objects: objects, objectSize: 1024,
                             objectsPerSlab: 32, pagesPerSlab: 8, activeSlabs: 1, slabs: 1, pageSize: 4096, reclaimable: true)
        }
    }

    /// A kmalloc-like cache of 32-byte objects holding `bytes`.
    static func cache(_ name: String, bytes: Double, reclaimable: Bool?) -> SlabCache {
        let slabs = UInt64(max(0, bytes) / 4096)
        return SlabCache(name: name, activeObjects: slabs * 128, objects: slabs * 128, objectSize: 32, objectsPerSlab: 128,
                         pagesPerSlab: 1, activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: reclaimable)
    }

    /// Every sample through one pipeline: the report after each sample (by
    /// time) and every event in order.
    func replay(_ settings: DetectorSettings = .init()) -> (reports: [Int64: GrowthDetector.Report], events: [GrowthDetector.Event]) {
        replay(settings, restartingAfter: .min) { _ in }
    }

    func replay<Failure: Error>(_ settings: DetectorSettings = .init(), restartingAfter restartTime: Int64,
                                restart: (inout Pipeline) throws(Failure) -> Void) throws(Failure)
        -> (reports: [Int64: GrowthDetector.Report], events: [GrowthDetector.Event])
    {
        // After the sample at `restartTime`, `restart` may replace the pipeline, as a restart of the daemon does.
        var pipeline = Pipeline(settings: .init(detector: settings))
        var reports: [Int64: GrowthDetector.Report] = [:]
        var events: [GrowthDetector.Event] = []
        for sample in samples {
            let report = pipeline.step(sample).report
            reports[sample.timestampMilliseconds] = report
            events += report.events
            if sample.timestampMilliseconds == restartTime { try restart(&pipeline) }
        }
        return (reports, events)
    }

    /// A restart through the state file: the last step written, read back,
    /// and taken up by a new pipeline as the daemon takes it up.
    static func restartFromState(_ pipeline: inout Pipeline) throws {
        let latest = try #require(pipeline.latest)
        let saved = SavedState(latest, pageSize: 4096, bootID: "busy-machine", procfs: "/proc", version: "test",
                               alerts: AlertPolicy().memory)
        var restarted = Pipeline(settings: pipeline.settings)
        _ = restarted.restore(try SavedState.parse(saved.serialized()), rebootSeenAt: nil)
        pipeline = restarted
    }

    /// The time of the newest sample so far.
    var now: Int64 { samples.last?.timestampMilliseconds ?? 0 }
}
