/// One kernel kmem cache as reported by one line of /proc/slabinfo (or by its
/// /sys/kernel/slab directory), with the memory it holds derived once.
///
/// Counts are the kernel's, unconverted. `footprintBytes` is the cache's
/// footprint: `slabs × pagesPerSlab × pageSize`, the memory it really holds;
/// `activeBytes` is `activeObjects × objectSize`; `wasteBytes` is the difference.
public struct SlabCache: Sendable, Equatable {
    /// The cache name; a second line with the same name gets `#2`, a third `#3`, ….
    public var name: String
    public var activeObjects: UInt64
    public var objects: UInt64
    public var objectSize: UInt64
    public var objectsPerSlab: UInt64
    public var pagesPerSlab: UInt64
    public var activeSlabs: UInt64
    public var slabs: UInt64
    /// Footprint in bytes (saturates at `UInt64.max` rather than wrapping).
    public var footprintBytes: UInt64
    /// Whether the cache is accounted in SReclaimable; nil when sysfs did not say.
    public var reclaimable: Bool?
    /// Other cache names the kernel merged into this one (from sysfs), sorted.
    public var aliases: [String]
    /// Who named the cache: /proc/slabinfo (the kernel's own name), a sysfs
    /// directory, or — for a merged cache read from sysfs, which does not say
    /// which alias the kernel uses — its alphabetically first alias; or no
    /// cache at all but a series derived from the sample (`DerivedSeries`).
    public var nameSource = NameSource.slabinfo

    public enum NameSource: String, Sendable {
        case slabinfo
        case sysfs
        case sysfsFirstAlias = "sysfs-first-alias"
        case derived
    }

    public init(
        name: String, activeObjects: UInt64, objects: UInt64, objectSize: UInt64,
        objectsPerSlab: UInt64, pagesPerSlab: UInt64, activeSlabs: UInt64, slabs: UInt64,
        pageSize: UInt64, reclaimable: Bool? = nil, aliases: [String] = []
    ) {
        self.name = name
        self.activeObjects = activeObjects
        self.objects = objects
        self.objectSize = objectSize
        self.objectsPerSlab = objectsPerSlab
        self.pagesPerSlab = pagesPerSlab
        self.activeSlabs = activeSlabs
        self.slabs = slabs
        self.footprintBytes = saturatingProduct(saturatingProduct(slabs, pagesPerSlab), pageSize)
        self.reclaimable = reclaimable
        self.aliases = aliases
    }

    /// Whether this is no kernel cache but a series derived from the sample
    /// (`DerivedSeries`): the ring, the detector and findings take it for a
    /// cache; `/metrics`' cache families and the snapshot's `caches` leave it out.
    public var isDerived: Bool { nameSource == .derived }

    /// Bytes held by live objects: `activeObjects × objectSize`.
    public var activeBytes: UInt64 { saturatingProduct(activeObjects, objectSize) }

    /// Footprint not used by live objects (slab overhead, free objects, per-cpu slack).
    /// Zero when the kernel's counters are momentarily inconsistent.
    public var wasteBytes: UInt64 {
        footprintBytes >= activeBytes ? footprintBytes - activeBytes : 0
    }
}

@inlinable func saturatingProduct(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? .max : product
}
