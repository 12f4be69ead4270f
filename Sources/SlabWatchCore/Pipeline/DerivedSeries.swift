/// A series the ring and the detector take for a cache though no line of
/// /proc/slabinfo holds it: a figure derived from a sample (the slab memory
/// no cache accounts for, `Percpu`, …). `Pipeline.recorded` joins each to
/// every sample as a cache named `name` (`SlabCache.NameSource.derived`), so
/// the ring keeps it, the detector fits it and findings, alerts, state and
/// replay carry it like any cache; exposition tells it by its name source.
public struct DerivedSeries: Sendable {
    /// A name the kernel cannot give a cache: slabinfo names hold no
    /// whitespace, so this one must.
    public let name: String
    /// Whether its memory is reclaimable (SReclaimable), as a cache's is.
    public let reclaimable: Bool?
    /// Its footprint in bytes in a sample; nil when the sample cannot say
    /// (a source down): the series is then absent from that sample.
    public let footprint: @Sendable (Sample) -> UInt64?
    /// What it is, as the subject of a finding's sentence in place of a
    /// cache's name ("Unreclaimable memory the kernel holds outside every
    /// slab cache (…)"): a derived series is no cache, and its sentence must
    /// not read as one.
    public let subject: String
    /// What to do next about a finding on it, a sentence of its own (the
    /// attribution that names its callers, or that none can).
    public let nextStep: String

    /// - Precondition: `name` holds a space (see `name`).
    public init(name: String, reclaimable: Bool?, subject: String, nextStep: String,
                footprint: @escaping @Sendable (Sample) -> UInt64?) {
        precondition(name.contains(" "), "a derived series' name must hold a space, so no cache can take it")
        self.name = name
        self.reclaimable = reclaimable
        self.subject = subject
        self.nextStep = nextStep
        self.footprint = footprint
    }

    /// The series of that name; nil for a cache's name.
    public static func named(_ name: String) -> DerivedSeries? {
        all.first { $0.name == name }
    }

    /// Every series derived from each sample, in the order they join it.
    public static let all: [DerivedSeries] = [outsideUnreclaimable, outsideReclaimable, percpu]

    /// Unreclaimable slab no cache accounts for: `SUnreclaim` − Σ footprints
    /// of the unreclaimable caches, at least 0. SLUB serves a kmalloc above
    /// its largest cache (kmalloc-8k with 4 KiB pages) from the page
    /// allocator and counts it in `SUnreclaim`, but no line of /proc/slabinfo
    /// shows it (a pipe resized to 1 MiB holds 16 KiB of it). Its name is the
    /// one a large-allocation attribution session goes by, so a finding on it
    /// names what to attribute. Off by up to `Sample.vmstat`'s `errorBytes`;
    /// `SUnreclaim` is the one read around the caches (`CacheTotals.counters`)
    /// where the reader took it.
    public static let outsideUnreclaimable = DerivedSeries(
        name: Attribution.outsideCaches, reclaimable: false,
        subject: "Unreclaimable memory the kernel holds outside every slab cache (allocations above the largest kmalloc cache, served by the page allocator)",
        nextStep: "Its call sites can be named: slabwatch attribute '\(Attribution.outsideCaches)' traces the kmallocs above the largest kmalloc cache and their frees."
    ) { sample in
        outside(sample.cacheTotals?.counters?.unreclaimableBytes ?? sample.meminfo?.slabUnreclaimableBytes, of: sample) {
            $0.unreclaimableBytes
        }
    }

    /// Reclaimable slab no cache accounts for: `SReclaimable` − Σ footprints
    /// of the reclaimable caches, at least 0; the kernel has no reclaimable
    /// allocation outside a cache, so it stays within the vmstat error of 0
    /// unless the caches are misread.
    public static let outsideReclaimable = DerivedSeries(
        name: "(outside caches, reclaimable)", reclaimable: true,
        subject: "Reclaimable slab memory no slab cache accounts for (SReclaimable less every reclaimable cache's footprint)",
        nextStep: "The kernel makes no reclaimable slab allocation outside a cache, so this is the caches misread: compare /proc/slabinfo with SReclaimable in /proc/meminfo."
    ) { sample in
        outside(sample.cacheTotals?.counters?.reclaimableBytes ?? sample.meminfo?.slabReclaimableBytes, of: sample) {
            $0.reclaimableBytes
        }
    }

    /// The per-CPU allocator (`Percpu` of /proc/meminfo): no slab, but where
    /// dying memory cgroups pin their per-CPU counters. In neither slab
    /// counter, so its reclaimability is nil; that also keeps the attribution
    /// scheduler (which starts sessions for unreclaimable findings) from a
    /// session no tracepoint serves yet.
    public static let percpu = DerivedSeries(
        name: "(percpu allocator)", reclaimable: nil,
        subject: "Memory of the per-CPU allocator (Percpu in /proc/meminfo, per-CPU allocations, no slab cache)",
        nextStep: "No tracepoint attribution names who allocates it; dying memory cgroups pin per-CPU memory (compare /proc/cgroups), and the allocator returns it lazily, so it can stay after they are released."
    ) { sample in
        sample.meminfo?.percpuBytes
    }

    /// `counter` − the caches' sum, at least 0. Nil when either side is
    /// missing (a source down: no cache read, or meminfo without the
    /// counter), or when caches of unknown reclaimability hold more than the
    /// counter's own error: either side could be theirs.
    static func outside(_ counter: UInt64?, of sample: Sample, summed: (CacheTotals) -> UInt64) -> UInt64? {
        let totals = sample.cacheTotals ?? CacheTotals(sample.caches)
        guard let counter, totals.caches > 0, totals.unknownBytes <= sample.vmstat?.errorBytes ?? 0 else { return nil }
        let caches = summed(totals)
        return counter > caches ? counter - caches : 0
    }

    /// The series in `sample` as a cache: its footprint, no objects.
    func cache(in sample: Sample) -> SlabCache? {
        footprint(sample).map(cache(footprint:))
    }

    /// The series as a cache of `bytes`, no objects.
    func cache(footprint bytes: UInt64) -> SlabCache {
        var cache = SlabCache(name: name, activeObjects: 0, objects: 0, objectSize: 0, objectsPerSlab: 0, pagesPerSlab: 0,
                              activeSlabs: 0, slabs: 0, pageSize: 0, reclaimable: reclaimable)
        cache.footprintBytes = bytes
        cache.nameSource = .derived
        return cache
    }
}
