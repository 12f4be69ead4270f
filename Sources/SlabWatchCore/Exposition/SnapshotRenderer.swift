/// Renders one sample as the `/snapshot` JSON document (every key is in `SnapshotSchema`).
///
/// Keys come in a fixed order and caches are sorted by footprint (largest
/// first, then by name), so the same sample renders to the same bytes.
/// A value the kernel did not report is `null`, never a made-up zero.
public enum SnapshotRenderer: Sendable {
    public static func render(_ sample: Sample, intervalSeconds: Double, report: GrowthDetector.Report = .init()) -> [UInt8] {
        var json = JSONWriter(reservingCapacity: 128 + sample.caches.count * 320)
        json.beginObject()
        json.key("timestamp"); json.string(RFC3339.format(unixMilliseconds: sample.timestampMilliseconds))
        json.key("interval_seconds"); json.number(intervalSeconds)
        json.key("memory"); renderMemory(sample, &json)
        json.key("fs"); renderFS(sample, &json)
        json.key("kernel_objects"); renderKernelObjects(sample, &json)
        json.key("caches"); renderCaches(sample.caches, &json)
        json.key("sources"); renderSources(sample, &json)
        json.key("cgroups"); renderCgroups(sample.cgroupMemory, &json)
        json.key("findings"); renderFindings(Self.snapshotFindings(report.findings), &json)
        json.key("trend"); renderTrend(report.trend, &json)
        json.endObject()
        json.newline()
        return json.bytes
    }

    private static func renderMemory(_ sample: Sample, _ json: inout JSONWriter) {
        json.beginObject()
        for (key, field) in SnapshotSchema.memory { json.key(key); json.number(sample.meminfo?[field]) }
        for (key, name) in SnapshotSchema.outsideCaches {
            json.key(key); json.number(sample.caches.last { $0.isDerived && $0.name == name }?.footprintBytes)
        }
        json.key("vmstat_error_bytes"); json.number(sample.vmstat?.errorBytes)
        json.endObject()
    }

    private static func renderFS(_ sample: Sample, _ json: inout JSONWriter) {
        json.beginObject()
        json.key("inodes"); json.number(sample.inodes?.inodes)
        json.key("free_inodes"); json.number(sample.inodes?.freeInodes)
        json.key("dentries"); json.number(sample.dentries?.dentries)
        json.key("unused_dentries"); json.number(sample.dentries?.unusedDentries)
        json.key("negative_dentries"); json.number(sample.dentries?.negativeDentries)
        json.key("open_files"); json.number(sample.fileHandles?.allocated)
        json.key("max_files"); json.number(sample.fileHandles?.maximum)
        json.endObject()
    }

    private static func renderKernelObjects(_ sample: Sample, _ json: inout JSONWriter) {
        json.beginObject()
        json.key("threads"); json.number(sample.tasks?.threads)
        json.key("sockets"); json.number(SampleRing.Counter.sockets.value(in: sample))
        json.key("namespace_sockets"); json.number(sample.sockets?.used)
        json.key("memory_cgroups"); json.number(sample.memoryCgroups?.total)
        json.key("live_memory_cgroups"); json.number(sample.memoryCgroups?.live)
        json.key("dying_memory_cgroups"); json.number(sample.memoryCgroups?.dying)
        json.endObject()
    }

    private static func renderCaches(_ caches: [SlabCache], _ json: inout JSONWriter) {
        let ordered = caches.filter { !$0.isDerived }.sorted {
            $0.footprintBytes != $1.footprintBytes ? $0.footprintBytes > $1.footprintBytes : $0.name < $1.name
        }
        json.beginArray()
        for cache in ordered {
            json.beginObject()
            json.key("name"); json.string(cache.name)
            json.key("active_objects"); json.number(cache.activeObjects)
            json.key("objects"); json.number(cache.objects)
            json.key("object_size_bytes"); json.number(cache.objectSize)
            json.key("objects_per_slab"); json.number(cache.objectsPerSlab)
            json.key("pages_per_slab"); json.number(cache.pagesPerSlab)
            json.key("slabs"); json.number(cache.slabs)
            json.key("footprint_bytes"); json.number(cache.footprintBytes)
            json.key("waste_bytes"); json.number(cache.wasteBytes)
            json.key("reclaimable"); json.bool(cache.reclaimable)
            json.key("aliases"); json.beginArray()
            for alias in cache.aliases { json.string(alias) }
            json.endArray()
            json.key("name_source"); json.string(cache.nameSource.rawValue)
            json.endObject()
        }
        json.endArray()
    }

    /// Resolved findings shown in a snapshot (the detector remembers more, for
    /// replay); keeps the body rendered every tick small.
    static let resolvedInSnapshot = 32

    static func snapshotFindings(_ findings: [Finding]) -> [Finding] {
        let open = findings.filter { $0.state == .open }
        return open + findings.filter { $0.state == .resolved }.prefix(resolvedInSnapshot)
    }

    /// A JSON array of findings in the snapshot schema (also `slabwatch replay --json`).
    public static func renderFindings(_ findings: [Finding]) -> [UInt8] {
        var json = JSONWriter(reservingCapacity: 1024 + findings.count * 4096)
        renderFindings(findings, &json)
        json.newline()
        return json.bytes
    }

    static func renderFindings(_ findings: [Finding], _ json: inout JSONWriter) {
        json.beginArray()
        for f in findings {
            json.beginObject()
            json.key("slab"); json.string(f.slab)
            json.key("driver"); json.string(f.driver.rawValue)
            json.key("inode_cache"); json.string(f.inodeCache)
            json.key("filesystem"); json.string(f.filesystem)
            json.key("bytes_per_unit"); json.number(f.bytesPerUnit)
            json.key("r_squared"); json.number(f.rSquared)
            json.key("window_seconds"); json.number(f.windowSeconds)
            json.key("growth_bytes"); json.number(f.growthBytes)
            json.key("driver_change"); json.number(f.driverChange)
            json.key("bytes_per_second"); json.number(f.bytesPerSecond)
            json.key("reclaimable"); json.bool(f.reclaimable)
            json.key("classification"); json.string(f.classification.rawValue)
            json.key("state"); json.string(f.state.rawValue)
            json.key("resolution"); json.string(f.resolution?.rawValue)
            json.key("severity"); json.string(f.severity.rawValue)
            json.key("phase"); json.string(f.phase.rawValue)
            json.key("floor_bytes"); json.number(f.footprintFloor)
            json.key("peak_bytes"); json.number(f.footprintPeak)
            json.key("held_bytes"); json.number(f.heldBytes)
            json.key("first_seen"); json.string(RFC3339.format(unixMilliseconds: f.firstSeenMilliseconds))
            json.key("last_rise"); json.string(RFC3339.format(unixMilliseconds: f.lastRiseMilliseconds))
            json.key("last_seen"); json.string(RFC3339.format(unixMilliseconds: f.lastSeenMilliseconds))
            json.key("other_drivers"); json.beginArray()
            for other in f.otherDrivers { json.driverFit(other, includingFlagged: false) }
            json.endArray()
            json.key("message"); json.string(f.message)
            json.key("attribution")
            if let attribution = f.attribution { AttributionRenderer.write(attribution, &json) } else { json.string(nil) }
            json.key("charged"); renderCharged(f.charged, &json)
            json.key("evidence"); json.beginArray()
            for point in f.evidence {
                json.beginObject()
                json.key("timestamp"); json.string(RFC3339.format(unixMilliseconds: point.timestampMilliseconds))
                json.key("driver"); json.number(point.driver)
                json.key("footprint_bytes"); json.number(point.footprintBytes)
                json.key("segment"); json.string(point.segment.rawValue)
                json.endObject()
            }
            json.endArray()
            json.endObject()
        }
        json.endArray()
    }

    /// Who is charged for a finding (`ChargedCgroups`); `null` until ranked.
    private static func renderCharged(_ charged: ChargedCgroups?, _ json: inout JSONWriter) {
        guard let charged else { json.string(nil); return }
        json.beginObject()
        json.key("source"); json.string(charged.source.rawValue)
        json.key("basis"); json.string(charged.basis?.rawValue)
        json.key("window_seconds"); json.number(charged.windowSeconds)
        json.key("cgroups"); json.beginArray()
        for entry in charged.entries {
            json.beginObject()
            json.key("cgroup"); json.string(entry.cgroup)
            renderOwner(entry.cgroup, &json)
            json.key("rise_bytes"); json.number(entry.riseBytes)
            json.key("share"); json.number(entry.share)
            json.key("r_squared"); json.number(entry.rSquared)
            json.endObject()
        }
        json.endArray()
        json.key("other_share"); json.number(charged.otherShare)
        json.endObject()
    }

    /// Whom a cgroup belongs to, as attribution's processes say it (`CgroupOwner`),
    /// and the name a person reads: the owner's, else the path.
    private static func renderOwner(_ path: String, _ json: inout JSONWriter) {
        let owner = CgroupOwner.of(path)
        json.key("name"); json.string(owner?.phrase ?? path)
        json.key("owner"); AttributionRenderer.ownerObject(owner, &json)
    }

    /// The memory cgroups of the last walk: the exported ones with their
    /// owners and kernel memory, the rest summed; `null` where none is read.
    private static func renderCgroups(_ cgroups: CgroupMemory?, _ json: inout JSONWriter) {
        guard let cgroups else { json.string(nil); return }
        json.beginObject()
        json.key("version"); json.string(cgroups.version.rawValue)
        json.key("read_at"); json.string(cgroups.readAtMilliseconds.map { RFC3339.format(unixMilliseconds: $0) })
        json.key("exported"); json.beginArray()
        for entry in cgroups.entries {
            json.beginObject()
            json.key("cgroup"); json.string(entry.path)
            renderOwner(entry.path, &json)
            json.key("kernel_bytes"); json.number(entry.kernelBytes)
            json.key("slab_reclaimable_bytes"); json.number(entry.slabReclaimableBytes)
            json.key("slab_unreclaimable_bytes"); json.number(entry.slabUnreclaimableBytes)
            json.endObject()
        }
        json.endArray()
        json.key("others"); json.number(UInt64(cgroups.others))
        json.key("other_kernel_bytes"); json.number(cgroups.otherKernelBytes)
        json.key("unreadable"); json.number(UInt64(cgroups.unreadable))
        json.key("truncated"); json.bool(cgroups.truncated)
        json.endObject()
    }

    private static func renderTrend(_ trend: SlabTrend?, _ json: inout JSONWriter) {
        guard let trend else { json.string(nil); return }
        json.beginObject()
        json.key("window_seconds"); json.number(trend.windowSeconds)
        json.key("fits"); json.beginArray()
        for fit in trend.fits {
            json.beginObject()
            json.key("memory"); json.string(fit.memory.rawValue)
            json.key("driver"); json.string(fit.driver.rawValue)
            json.key("bytes_per_unit"); json.number(fit.bytesPerUnit)
            json.key("r_squared"); json.number(fit.rSquared)
            json.endObject()
        }
        json.endArray()
        json.key("limit_share"); json.number(trend.limitShare)
        json.key("limit_bytes"); json.number(trend.limitBytes)
        json.key("seconds_to_limit"); json.number(trend.secondsToLimit)
        json.endObject()
    }

    private static func renderSources(_ sample: Sample, _ json: inout JSONWriter) {
        json.beginObject()
        for source in Source.allCases.sorted() {
            let status = sample.status(of: source)
            json.key(source.rawValue); json.beginObject()
            json.key("up"); json.bool(status.up)
            json.key("error"); json.string(status.error)
            json.key("malformed_lines"); json.number(UInt64(status.malformedLines))
            json.endObject()
        }
        json.endObject()
    }
}
