public import SlabWatchCore

/// Synthetic machines, for every test target: one sample every `interval`
/// seconds, built in memory and replayed through the real ring and detector.
public struct Scenario: Sendable {
    public var interval = 5.0
    public var memTotal: UInt64 = 256 << 30
    public var memAvailable: UInt64 = 200 << 30
    public var samples: [Sample] = []
    public var noise: UInt64 = 7

    public init() {}

    /// Adds one sample; `caches` maps name → (footprint bytes, reclaimable).
    public mutating func add(inodes: Double, dentries: Double? = nil, caches: [(String, Double, Bool)]) {
        let t = Int64(Double(samples.count) * interval * 1000) + 1_700_000_000_000
        let list = caches.map { name, bytes, reclaimable in
            SlabCache(name: name, activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                      pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(max(0, bytes) / 4096), pageSize: 4096,
                      reclaimable: reclaimable)
        }
        samples.append(Sample(
            timestampMilliseconds: t, caches: list,
            meminfo: .slabTotals(of: list, memTotal: memTotal, memAvailable: memAvailable),
            inodes: InodeCounts(inodes: UInt64(max(0, inodes)), freeInodes: 0),
            dentries: DentryCounts(dentries: UInt64(max(0, dentries ?? inodes * 1.2)), unusedDentries: 0),
            fileHandles: FileHandleCounts(allocated: UInt64(1000 + jitter(50)), maximum: 1 << 20)))
    }

    public mutating func jitter(_ amplitude: Double) -> Double { amplitude * nextNoise(&noise) }

    /// Ordinary caches that wobble but do not grow.
    public mutating func background() -> [(String, Double, Bool)] {
        (0..<20).map { ("cache\($0)", 50e6 + jitter(2e6), $0 % 2 == 0) }
    }

    /// Runs every sample through one pipeline, as the daemon does; returns
    /// the pipeline (its ring, its `latest` step) and every event in order.
    public func run(_ settings: DetectorSettings = .init()) -> (pipeline: Pipeline, events: [GrowthDetector.Event]) {
        var pipeline = Pipeline(settings: .init(detector: settings))
        var events: [GrowthDetector.Event] = []
        for sample in samples { events += pipeline.step(sample).report.events }
        return (pipeline, events)
    }

    /// Runs every sample through one pipeline; returns the last report and
    /// every event in order.
    public func replay(_ settings: DetectorSettings = .init()) -> (GrowthDetector.Report, [GrowthDetector.Event]) {
        let (pipeline, events) = run(settings)
        return (pipeline.latest?.report ?? .init(), events)
    }

    /// The seed story: kmalloc-32 rises 32 KiB per inode over 1 M inodes in
    /// 10 minutes; then inodes are evicted and it falls slowly; then quiet.
    public static func seed(cacheFalls: Bool = true) -> Scenario {
        var s = Scenario()
        let perInode = 32.0 * 1024
        var inodes = 40_000.0, kmalloc = 200e6
        for _ in 0..<24 { s.add(inodes: inodes + s.jitter(300), caches: [("kmalloc-32", kmalloc + s.jitter(1e6), false)] + s.background()) }
        for _ in 0..<120 {  // 10 minutes, 1 M inodes
            inodes += 1_000_000 / 120
            s.add(inodes: inodes + s.jitter(2000), dentries: inodes * 1.1 + s.jitter(60_000),
                  caches: [("kmalloc-32", kmalloc + perInode * (inodes - 40_000) + s.jitter(64e6), false)] + s.background())
        }
        let peak = kmalloc + perInode * (inodes - 40_000)
        inodes = 60_000  // echo 2 > drop_caches
        for step in 0..<240 {  // falls over 3 minutes, then stays
            let fallen = cacheFalls ? min(1, Double(step) / 36) : 0
            let value = peak - fallen * perInode * (1_040_000 - 60_000)
            s.add(inodes: inodes + s.jitter(300), caches: [("kmalloc-32", value + s.jitter(1e6), false)] + s.background())
        }
        return s
    }
}

extension Meminfo {
    /// MemTotal and MemAvailable as given, and Slab, SReclaimable and
    /// SUnreclaim as the sums of `caches`' footprints plus what the kernel
    /// counts beside them: the slab memory outside every cache and the
    /// counters' per-CPU lag (either sign; a counter never goes below 0).
    public static func slabTotals(of caches: [SlabCache], memTotal: UInt64, memAvailable: UInt64,
                                  unreclaimableBeside: Double = 0, reclaimableBeside: Double = 0) -> Meminfo {
        func sum(_ reclaimable: Bool, _ beside: Double) -> UInt64 {
            let caches = caches.filter { $0.reclaimable == reclaimable }.reduce(0) { $0 + $1.footprintBytes }
            return UInt64(max(0, Double(caches) + beside.rounded()))
        }
        let unreclaimable = sum(false, unreclaimableBeside)
        let reclaimable = sum(true, reclaimableBeside)
        return Meminfo(fields: [
            .init(name: "MemTotal", value: memTotal, isBytes: true),
            .init(name: "MemAvailable", value: memAvailable, isBytes: true),
            .init(name: "Slab", value: unreclaimable + reclaimable, isBytes: true),
            .init(name: "SReclaimable", value: reclaimable, isBytes: true),
            .init(name: "SUnreclaim", value: unreclaimable, isBytes: true),
        ])
    }
}

/// A small deterministic generator (no Foundation randomness), uniform in -1...1.
public func nextNoise(_ state: inout UInt64) -> Double {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return Double(state >> 11) / Double(1 << 53) * 2 - 1
}
