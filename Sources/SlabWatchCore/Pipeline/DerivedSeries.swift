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

    /// - Precondition: `name` holds a space (see `name`).
    public init(name: String, reclaimable: Bool?, footprint: @escaping @Sendable (Sample) -> UInt64?) {
        precondition(name.contains(" "), "a derived series' name must hold a space, so no cache can take it")
        self.name = name
        self.reclaimable = reclaimable
        self.footprint = footprint
    }

    /// Every series derived from each sample, in the order they join it.
    public static let all: [DerivedSeries] = []

    /// The series in `sample` as a cache: its footprint, no objects.
    func cache(in sample: Sample) -> SlabCache? {
        guard let bytes = footprint(sample) else { return nil }
        var cache = SlabCache(name: name, activeObjects: 0, objects: 0, objectSize: 0, objectsPerSlab: 0, pagesPerSlab: 0,
                              activeSlabs: 0, slabs: 0, pageSize: 0, reclaimable: reclaimable)
        cache.footprintBytes = bytes
        cache.nameSource = .derived
        return cache
    }
}
