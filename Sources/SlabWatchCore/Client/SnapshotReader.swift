/// Reads a `/snapshot` document back into a sample and findings: what
/// `slabwatch top --url` shows of a running daemon. The inverse of
/// `SnapshotRenderer` for what the screen needs; a finding carries its
/// figures, phase and classification, not its lifecycle bookkeeping.
public enum SnapshotReader: Sendable {
    public struct Snapshot: Sendable {
        public var sample: Sample
        public var findings: [Finding]
        public var intervalSeconds: Double
    }

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> Snapshot {
        let root: JSONValue
        do { root = try JSONValue.parse(bytes) } catch { throw Failure(description: error.description) }
        guard let time = root["timestamp"]?.string.flatMap(RFC3339.parse), let cacheList = root["caches"]?.array else {
            throw Failure(description: "not a slabwatch snapshot (no timestamp or caches)")
        }
        var caches: [SlabCache] = []
        for value in cacheList {
            guard let cache = cache(value) else { throw Failure(description: "a cache without its name or counts") }
            caches.append(cache)
        }
        var sample = Sample(timestampMilliseconds: time, caches: caches)
        sample.meminfo = meminfo(root["memory"])
        sample.caches += derived(root["memory"], meminfo: sample.meminfo)
        let fs = root["fs"]
        if let inodes = fs?["inodes"]?.unsigned { sample.inodes = InodeCounts(inodes: inodes, freeInodes: fs?["free_inodes"]?.unsigned ?? 0) }
        if let dentries = fs?["dentries"]?.unsigned {
            sample.dentries = DentryCounts(dentries: dentries, unusedDentries: fs?["unused_dentries"]?.unsigned ?? 0,
                                           negativeDentries: fs?["negative_dentries"]?.unsigned)
        }
        if let open = fs?["open_files"]?.unsigned { sample.fileHandles = FileHandleCounts(allocated: open, maximum: fs?["max_files"]?.unsigned ?? 0) }
        let findings = (root["findings"]?.array ?? []).compactMap { finding($0, caches: sample.caches, now: time) }
        return Snapshot(sample: sample, findings: findings, intervalSeconds: root["interval_seconds"]?.number ?? 5)
    }

    static func cache(_ v: JSONValue) -> SlabCache? {
        guard let name = v["name"]?.string, let objects = v["objects"]?.unsigned, let slabs = v["slabs"]?.unsigned,
              let footprint = v["footprint_bytes"]?.unsigned else { return nil }
        var cache = SlabCache(
            name: name, activeObjects: v["active_objects"]?.unsigned ?? objects, objects: objects,
            objectSize: v["object_size_bytes"]?.unsigned ?? 0, objectsPerSlab: v["objects_per_slab"]?.unsigned ?? 0,
            pagesPerSlab: v["pages_per_slab"]?.unsigned ?? 0, activeSlabs: slabs, slabs: slabs, pageSize: 0,
            reclaimable: v["reclaimable"]?.bool, aliases: v["aliases"]?.array?.compactMap(\.string) ?? [])
        cache.footprintBytes = footprint  // the daemon's own figure, whatever its page size
        return cache
    }

    /// The series the daemon derived from its counters, as it published them
    /// under `memory` (it computed them with every cache, before its cache
    /// limit, and the counters read around them): rows of their own in top,
    /// where a finding on one shows.
    static func derived(_ v: JSONValue?, meminfo: Meminfo?) -> [SlabCache] {
        var caches = SnapshotSchema.outsideCaches.compactMap { key, name in
            v?[key]?.unsigned.flatMap { bytes in DerivedSeries.named(name)?.cache(footprint: bytes) }
        }
        if let percpu = meminfo?.percpuBytes { caches.append(DerivedSeries.percpu.cache(footprint: percpu)) }
        return caches
    }

    static func meminfo(_ v: JSONValue?) -> Meminfo? {
        guard let v else { return nil }
        let fields = SnapshotSchema.memory.compactMap { key, kernel in
            v[key]?.unsigned.map { Meminfo.Field(name: kernel, value: $0, isBytes: true) }
        }
        return fields.isEmpty ? nil : Meminfo(fields: fields)
    }

    /// A finding's footprint before its rise: `floor_bytes`, or `baseline_bytes`
    /// from a daemon of 0.1.0, which called it so (CHANGES.md); the old key is
    /// read for one release, so `top --url` works across an upgrade.
    static func floorBytes(_ v: JSONValue) -> UInt64? {
        v["floor_bytes"]?.unsigned ?? v["baseline_bytes"]?.unsigned
    }

    /// Who is charged for a finding (`findings[].charged`); nil for `null`,
    /// an older daemon's finding without it, or an unknown source.
    static func charged(_ v: JSONValue) -> ChargedCgroups? {
        guard let source = v["source"]?.string.flatMap(ChargedCgroups.Source.init(rawValue:)) else { return nil }
        let entries = (v["cgroups"]?.array ?? []).compactMap { e -> ChargedCgroups.Entry? in
            guard let cgroup = e["cgroup"]?.string, let share = e["share"]?.number else { return nil }
            return .init(cgroup: cgroup, riseBytes: e["rise_bytes"]?.number ?? 0, share: share, rSquared: e["r_squared"]?.number)
        }
        return ChargedCgroups(source: source, windowSeconds: v["window_seconds"]?.number ?? 0, entries: entries,
                              otherShare: v["other_share"]?.number ?? 0)
    }

    static func finding(_ v: JSONValue, caches: [SlabCache], now: Int64) -> Finding? {
        guard let slab = v["slab"]?.string, let driver = v["driver"]?.string.flatMap(GrowthDriver.init(rawValue:)),
              let perUnit = v["bytes_per_unit"]?.number, let rSquared = v["r_squared"]?.number else { return nil }
        let footprint = caches.first { $0.name == slab }?.footprintBytes ?? v["peak_bytes"]?.unsigned ?? 0
        let fit = Finding.RiseFit(
            bytesPerUnit: perUnit, rSquared: rSquared, windowSeconds: v["window_seconds"]?.number ?? 0,
            growthBytes: v["growth_bytes"]?.number ?? 0, driverChange: v["driver_change"]?.number ?? 0, fits: [], points: [],
            footprintFloor: floorBytes(v) ?? 0, driverFloor: 0, driverPeak: 0, driverPeakAt: now,
            footprintAtDriverPeak: v["peak_bytes"]?.unsigned ?? footprint)
        let cache = SlabCache(name: slab, activeObjects: 0, objects: 0, objectSize: 0, objectsPerSlab: 0, pagesPerSlab: 0,
                              activeSlabs: 0, slabs: 0, pageSize: 0, reclaimable: v["reclaimable"]?.bool)
        var finding = Finding(slab: slab, driver: driver, fit: fit, cache: cache, now: now, settings: .init())
        finding.inodeCache = v["inode_cache"]?.string
        finding.footprintBytes = footprint
        finding.phase = v["phase"]?.string.flatMap(Finding.Phase.init(rawValue:)) ?? .rising
        finding.classification = v["classification"]?.string.flatMap(Finding.Classification.init(rawValue:)) ?? .undetermined
        finding.state = v["state"]?.string.flatMap(Finding.State.init(rawValue:)) ?? .open
        finding.severity = v["severity"]?.string.flatMap(Finding.Severity.init(rawValue:)) ?? .warning
        finding.firstSeenMilliseconds = v["first_seen"]?.string.flatMap(RFC3339.parse) ?? now
        finding.charged = v["charged"].flatMap(charged)
        return finding
    }
}
