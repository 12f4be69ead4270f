public import SlabWatchCore

/// Where slabwatch reads the kernel from. Both roots are configurable, like
/// node_exporter's `--path.procfs`/`--path.sysfs`, which is also how tests and
/// recordings replay other machines.
public struct KernelPaths: Sendable, Equatable {
    public var procfs: String { didSet { files = .init(procfs: procfs, sysfs: sysfs) } }
    public var sysfs: String { didSet { files = .init(procfs: procfs, sysfs: sysfs) } }
    /// Where the cgroup file systems are mounted (the node's /sys/fs/cgroup
    /// mounted into a pod); empty: the memory hierarchy is found from mountinfo.
    public var cgroupfs: String
    /// The files' paths, joined once: a path built per read is a heap string every tick.
    private var files: Files

    public init(procfs: String = "/proc", sysfs: String = "/sys", cgroupfs: String = "") {
        self.procfs = procfs
        self.sysfs = sysfs
        self.cgroupfs = cgroupfs
        files = .init(procfs: procfs, sysfs: sysfs)
    }

    /// The files read under `procfs`, relative to it: what a recording copies.
    public static let procFiles = [Files.slabinfo, Files.meminfo, Files.inodeNr, Files.dentryState, Files.fileNr, Files.zoneinfo,
                                    Files.loadavg, Files.sockstat, Files.cgroups]
    /// The files of `procFiles` a kernel may lack, whose sources replay does
    /// not need (`Source.requiredForReplay`): a recording leaves them out.
    public static let optionalProcFiles: Set<String> = [Files.zoneinfo, Files.loadavg, Files.sockstat, Files.cgroups]

    var slabinfo: String { files.slabinfo }
    var meminfo: String { files.meminfo }
    var inodeNr: String { files.inodeNr }
    var dentryState: String { files.dentryState }
    var fileNr: String { files.fileNr }
    var zoneinfo: String { files.zoneinfo }
    var loadavg: String { files.loadavg }
    var sockstat: String { files.sockstat }
    var cgroups: String { files.cgroups }
    var slabDirectory: String { files.slabDirectory }

    private struct Files: Sendable, Equatable {
        let slabinfo, meminfo, inodeNr, dentryState, fileNr, zoneinfo, loadavg, sockstat, cgroups, slabDirectory: String

        static let slabinfo = "slabinfo"
        static let meminfo = "meminfo"
        static let inodeNr = "sys/fs/inode-nr"
        static let dentryState = "sys/fs/dentry-state"
        static let fileNr = "sys/fs/file-nr"
        static let zoneinfo = "zoneinfo"
        static let loadavg = "loadavg"
        static let sockstat = "net/sockstat"
        static let cgroups = "cgroups"

        init(procfs: String, sysfs: String) {
            slabinfo = procfs + "/" + Self.slabinfo
            meminfo = procfs + "/" + Self.meminfo
            inodeNr = procfs + "/" + Self.inodeNr
            dentryState = procfs + "/" + Self.dentryState
            fileNr = procfs + "/" + Self.fileNr
            zoneinfo = procfs + "/" + Self.zoneinfo
            loadavg = procfs + "/" + Self.loadavg
            sockstat = procfs + "/" + Self.sockstat
            cgroups = procfs + "/" + Self.cgroups
            slabDirectory = sysfs + "/kernel/slab"
        }
    }
}

/// The only place that opens kernel files: reads every source, hands the bytes
/// to the core parsers and assembles one `Sample`. A source that fails is marked
/// down with the reason; the others still make the sample. Never throws.
///
/// /sys/kernel/slab (reclaimability, aliases) costs milliseconds for ~400
/// entries, so it is re-read only when the set of cache names changes.
/// Not thread-safe: owned by the sampler.
public final class ProcReader {
    /// Bounds on what one sample may hold, so a hostile or broken procfs
    /// cannot make the daemon's memory grow without end.
    public struct Limits: Sendable, Equatable {
        /// Caches kept per sample; beyond it the smallest footprints are left out.
        public var maxCaches = 2048
        /// Source files larger than this are refused (the source is down).
        public var maxSourceBytes = defaultMaxSourceBytes
        /// Memory cgroups whose kernel memory is kept per sample, the largest;
        /// the rest are summed (see `CgroupMemory`). 512: every container
        /// (and pod sandbox) of a node at the kubelet's 110 pods with three
        /// containers each, and 60 services.
        public var maxCgroups = 512
        /// A real /proc/slabinfo is tens of kilobytes; a few thousand caches with
        /// SLAB statistics stay under a megabyte.
        public static let defaultMaxSourceBytes = 4 << 20

        public init(maxCaches: Int = 2048, maxSourceBytes: Int = defaultMaxSourceBytes) {
            self.maxCaches = maxCaches
            self.maxSourceBytes = maxSourceBytes
        }
    }

    public let paths: KernelPaths
    public let pageSize: UInt64
    public let limits: Limits
    private let files: FileReader
    /// /proc/meminfo has a reader of its own: it is read while `files` still
    /// holds /proc/slabinfo's bytes (see `SlabCounters`).
    private let meminfoFiles: FileReader
    /// The procfs files read every sample, each through a descriptor kept open.
    private let kept: KeptFiles
    private var sysfsIndex: SysfsSlabIndex?
    private var indexedNames: [String] = []
    /// What `sysfsIndex` gave each cache of `indexedNames`, by position: while
    /// the names are those, a sample takes them from here, not by hashing each name.
    private var indexedAnnotations: [(reclaimable: Bool?, aliases: [String])] = []
    private var fallbackSamplesSinceIndex = 0
    private var previous: Sample?
    /// The sample before `previous`, whose arrays the next sample refills in
    /// place: by then the sampler, the pipeline and the published state have
    /// moved on from it, so a steady tick allocates none. Whoever still holds
    /// it (a request being served) keeps it intact: the refill then makes new
    /// arrays, copy on write.
    private var recycled: Sample?
    /// The recycled meminfo fields, for the sample's read of /proc/meminfo.
    private var spareMeminfoFields: [Meminfo.Field] = []
    /// The fields of the extra /proc/meminfo read before /proc/slabinfo
    /// (`slabCounters`), kept for the next sample: that read is used and
    /// dropped within the sample, so its array is reused, not reallocated.
    private var counterFields: [Meminfo.Field] = []
    /// After a failed or partial sysfs read: samples until the next try, doubling
    /// up to `longestSysfsBackoff`, so a transient error (out of descriptors)
    /// does not leave reclaimability unknown for ever.
    private var sysfsRetry = SysfsRetry()
    static let longestSysfsBackoff = 64
    /// /proc/zoneinfo grows with CPUs × zones (about 200 KB at 256 CPUs) and
    /// its thresholds change only with memory hotplug, CPUs or pressure: it
    /// is read at the first sample and every this many after.
    static let zoneinfoEvery = 60
    private var zoneinfo: (accuracy: VmstatAccuracy?, status: SourceStatus, age: Int)?
    /// Kernel memory per memory cgroup is read at the first sample and every
    /// this many after: the walk and reads of 1,000 cgroups cost 2.5 ms on
    /// cgroup v1 here, ten times a whole sample's reading of the rest.
    static let cgroupsEvery = 12
    private var cgroups: (reader: CgroupMemoryReader?, reading: CgroupMemory?, age: Int)?
    /// The memory hierarchy's directories at its last walk, when that walk
    /// saw the whole hierarchy (`readMemoryCgroups`), kept between walks.
    private var liveMemoryCgroups: UInt64?
    /// The caches' footprints, while more than `limits.maxCaches` are cut
    /// to the largest (`keepLargestCaches`): kept from one sample to the next.
    private var footprints: [UInt64] = []
    /// The last sample's names as the file listed them, before that cut:
    /// the next parse reuses each name at its position (the cut sample's
    /// names are at other positions, and each was made anew, 5,000 strings
    /// a sample at 5,000 caches). Empty while no cut is made.
    private var uncutNames: [String] = []

    public init(paths: KernelPaths, pageSize: UInt64, limits: Limits = .init()) {
        self.paths = paths
        self.pageSize = pageSize
        self.limits = limits
        files = FileReader(maximumSize: limits.maxSourceBytes)
        meminfoFiles = FileReader(initialCapacity: 8 << 10, maximumSize: limits.maxSourceBytes)
        kept = KeptFiles(paths)
    }

    /// The descriptors kept open, by path (for tests).
    var keptDescriptors: [String: Int32] {
        let files = [kept.slabinfo, kept.meminfo, kept.inodeNr, kept.dentryState, kept.fileNr, kept.zoneinfo, kept.loadavg,
                     kept.sockstat, kept.cgroups]
        return Dictionary(files.filter { $0.descriptor >= 0 }.map { ($0.path, $0.descriptor) }) { first, _ in first }
    }

    /// The files of every sample, as `KeptFile`s: opened at the first
    /// sample and kept while they are procfs files.
    private struct KeptFiles {
        let slabinfo, meminfo, inodeNr, dentryState, fileNr, zoneinfo, loadavg, sockstat, cgroups: KeptFile

        init(_ paths: KernelPaths) {
            slabinfo = KeptFile(paths.slabinfo)
            meminfo = KeptFile(paths.meminfo)
            inodeNr = KeptFile(paths.inodeNr)
            dentryState = KeptFile(paths.dentryState)
            fileNr = KeptFile(paths.fileNr)
            zoneinfo = KeptFile(paths.zoneinfo)
            loadavg = KeptFile(paths.loadavg)
            sockstat = KeptFile(paths.sockstat)
            cgroups = KeptFile(paths.cgroups)
        }
    }

    public func sample(timestampMilliseconds: Int64) -> Sample {
        var sample = Sample(timestampMilliseconds: timestampMilliseconds)
        recycle(into: &sample)
        sample.sources.reserveCapacity(Source.count)
        var before = slabCounters()
        readCaches(into: &sample)
        sample.cacheTotals = CacheTotals(sample.caches)  // before the cut: a cache left out is no memory outside the caches
        sample.cacheTotals?.counters = SlabCounters(meanOf: before, sample.meminfo)
        if let fields = before?.fields {
            before = nil  // the fields' only holder is then `counterFields`, which the next read refills in place
            counterFields = fields
        }
        keepLargestCaches(&sample)
        sample.inodes = readCounter(.inodeNr, kept.inodeNr, into: &sample, FSCountersParser.inodeNr)
        sample.dentries = readCounter(.dentryState, kept.dentryState, into: &sample, FSCountersParser.dentryState)
        sample.fileHandles = readCounter(.fileNr, kept.fileNr, into: &sample, FSCountersParser.fileNr)
        readZoneinfo(into: &sample)
        sample.tasks = readObjects(.loadavg, kept.loadavg, into: &sample, KernelObjectParser.loadavg)
        sample.sockets = readObjects(.sockstat, kept.sockstat, into: &sample, KernelObjectParser.sockstat)
        let memoryCgroups = readObjects(.cgroups, kept.cgroups, into: &sample, KernelObjectParser.memoryCgroups)
        let walked = readCgroups(into: &sample)
        readMemoryCgroups(total: memoryCgroups, walked: walked, into: &sample)
        recycled = previous
        previous = sample
        return sample
    }

    /// Hands the recycled sample's arrays, emptied, to `sample` (its caches
    /// and sources) and to `spareMeminfoFields`, each taken out of the
    /// recycled sample first, so that nothing here holds a second reference.
    private func recycle(into sample: inout Sample) {
        guard var old = recycled else { return }
        recycled = nil
        sample.caches = old.caches
        old.caches = []
        sample.caches.removeAll(keepingCapacity: true)
        sample.sources = old.sources
        old.sources = [:]
        sample.sources.removeAll(keepingCapacity: true)
        spareMeminfoFields = old.meminfo?.fields ?? []
        old.meminfo = nil
    }

    // MARK: slab caches

    /// Keeps at most `limits.maxCaches` caches, the largest footprints, in the
    /// kernel's order (of those as large as the smallest kept, the first);
    /// a growing cache is large, so the detector loses nothing it needs. In
    /// place: the smallest footprint kept is selected from a reused array,
    /// and the caches kept move down over those dropped. (Sorting every
    /// cache's index into a set and a new array cost 12 % of a sample's CPU
    /// at 5,000 caches, and an array of the kept caches each sample.)
    private func keepLargestCaches(_ sample: inout Sample) {
        let limit = max(0, limits.maxCaches)
        uncutNames.removeAll(keepingCapacity: true)
        guard sample.caches.count > limit else { return }
        uncutNames.append(contentsOf: sample.caches.lazy.map(\.name))
        footprints.removeAll(keepingCapacity: true)
        footprints.append(contentsOf: sample.caches.lazy.map(\.footprintBytes))
        let smallest = limit > 0 ? LargestValues.kthLargest(&footprints, limit) : .max
        var equalsToKeep = limit - footprints.reduce(0) { $0 + ($1 > smallest ? 1 : 0) }
        var kept = 0
        for index in sample.caches.indices {
            let bytes = sample.caches[index].footprintBytes
            guard bytes > smallest || (bytes == smallest && equalsToKeep > 0) else { continue }
            if bytes == smallest { equalsToKeep -= 1 }
            sample.caches.swapAt(kept, index)
            kept += 1
        }
        sample.cachesOverLimit = sample.caches.count - kept
        sample.caches.removeLast(sample.caches.count - kept)
    }

    private func readCaches(into sample: inout Sample) {
        do {
            let bytes = try files.read(kept.slabinfo)
            readMeminfo(into: &sample)  // right after the caches' counts, before their parse: see SlabCounters
            let storage = sample.caches
            sample.caches = []
            let parsed = uncutNames.isEmpty
                ? try SlabInfoParser.parse(bytes, pageSize: pageSize, previous: previous?.caches ?? [], reusing: consume storage)
                : try SlabInfoParser.parse(bytes, pageSize: pageSize, previousNames: uncutNames, reusing: consume storage)
            guard !parsed.caches.isEmpty else {
                // Every kernel has caches: a file none of whose lines parse is garbage, not an empty kernel.
                sample.sources[.slabinfo] = SourceStatus(
                    up: false, error: "\(paths.slabinfo): no cache line could be parsed (\(parsed.malformedLines) malformed)",
                    malformedLines: parsed.malformedLines)
                readCachesFromSysfs(into: &sample)
                readMeminfo(into: &sample)  // again, after the counts sysfs gave
                return
            }
            sample.caches = parsed.caches
            sample.sources[.slabinfo] = SourceStatus(
                up: true, error: parsed.malformedLines > 0 ? "\(parsed.malformedLines) malformed lines skipped" : nil,
                malformedLines: parsed.malformedLines)
            annotateFromSysfs(&sample)
        } catch let error as FileError {
            sample.sources[.slabinfo] = SourceStatus(up: false, error: error.description)
            readCachesFromSysfs(into: &sample)
            readMeminfo(into: &sample)
        } catch {
            sample.sources[.slabinfo] = SourceStatus(up: false, error: "\(paths.slabinfo): \(error)")
            readCachesFromSysfs(into: &sample)
            readMeminfo(into: &sample)
        }
    }

    private func annotateFromSysfs(_ sample: inout Sample) {
        if sysfsIndex == nil || !namesMatchIndex(sample.caches) || sysfsRetry.isDue() {
            refreshSysfsIndex(&sample)
            sysfsIndex?.annotate(&sample.caches)
            indexedNames = sample.caches.map(\.name)
            indexedAnnotations = sample.caches.map { ($0.reclaimable, $0.aliases) }
        } else {
            sample.sources[.sysfsSlab] = previous?.sources[.sysfsSlab]
            for index in sample.caches.indices {
                sample.caches[index].reclaimable = indexedAnnotations[index].reclaimable
                sample.caches[index].aliases = indexedAnnotations[index].aliases
            }
        }
    }

    private func namesMatchIndex(_ caches: [SlabCache]) -> Bool {
        caches.count == indexedNames.count
            && zip(caches, indexedNames).allSatisfy { $0.name == $1 }
    }

    private func refreshSysfsIndex(_ sample: inout Sample) {
        indexedNames = []  // annotations by position are the old index's
        do {
            let listing = try files.listDirectory(paths.slabDirectory)
            var reclaimable: [String: Bool] = [:]
            var unreadable = 0
            for entry in listing where entry.linkTarget == nil {
                do {
                    let bytes = try files.read("\(paths.slabDirectory)/\(entry.name)/reclaim_account")
                    reclaimable[entry.name] = SysfsSlabIndex.parseFlag(bytes)
                } catch { unreadable += 1 }
            }
            sysfsIndex = SysfsSlabIndex(
                entries: listing.map { .init(name: $0.name, target: $0.linkTarget) }, reclaimable: reclaimable)
            sample.sources[.sysfsSlab] = SourceStatus(
                up: true, error: unreadable > 0 ? "reclaim_account unreadable for \(unreadable) caches" : nil)
            if unreadable > 0 { sysfsRetry.failed() } else { sysfsRetry.succeeded() }
        } catch {
            sysfsIndex = SysfsSlabIndex()
            sample.sources[.sysfsSlab] = SourceStatus(up: false, error: error.description)
            sysfsRetry.failed()
        }
    }

    /// Without /proc/slabinfo (mode 0400), SLUB's per-cache sysfs files give the
    /// same counts. The index is refreshed every 60 such samples, since there is
    /// no cheap name list to compare.
    private func readCachesFromSysfs(into sample: inout Sample) {
        if sysfsIndex == nil || fallbackSamplesSinceIndex >= 60 {
            refreshSysfsIndex(&sample)
            fallbackSamplesSinceIndex = 0
        } else {
            sample.sources[.sysfsSlab] = previous?.sources[.sysfsSlab]
        }
        fallbackSamplesSinceIndex += 1
        guard let index = sysfsIndex, sample.status(of: .sysfsSlab).up else { return }
        var unreadable = 0
        for directory in index.directories {
            if let cache = readSysfsCache(directory, index) { sample.caches.append(cache) } else { unreadable += 1 }
        }
        if unreadable > 0 { fallbackSamplesSinceIndex = 60 }
        if sample.caches.isEmpty {
            sample.sources[.sysfsSlab] = SourceStatus(up: false, error: "no readable cache counts under \(paths.slabDirectory)")
            sysfsRetry.failed()  // or it would stay down once /proc/slabinfo is back
        }
    }

    private func readSysfsCache(_ directory: String, _ index: SysfsSlabIndex) -> SlabCache? {
        func count(_ file: String) -> UInt64? {
            (try? files.read("\(paths.slabDirectory)/\(directory)/\(file)")).flatMap(SysfsSlabIndex.parseCount)
        }
        // slabinfo's objsize is the slot (s->size), which sysfs calls slab_size;
        // sysfs's object_size is the object alone, so waste would differ by source.
        guard let active = count("objects"), let total = count("total_objects"),
              let size = count("slab_size") ?? count("object_size"), let perSlab = count("objs_per_slab"),
              let order = count("order"), order < 32, let slabs = count("slabs")
        else { return nil }
        let name = index.displayName(ofDirectory: directory)
        var cache = SlabCache(
            name: name, activeObjects: active, objects: total, objectSize: size,
            objectsPerSlab: perSlab, pagesPerSlab: 1 << order, activeSlabs: slabs, slabs: slabs,
            pageSize: pageSize, reclaimable: index.reclaimable[directory], aliases: index.aliases(of: name))
        cache.nameSource = SysfsSlabIndex.isMergedDirectoryName(directory) ? .sysfsFirstAlias : .sysfs
        return cache
    }

    // MARK: memory and VFS counters

    /// Reads /proc/meminfo into the sample: once per sample, right after
    /// the caches were read (by `readCaches`, on each of its paths).
    private func readMeminfo(into sample: inout Sample) {
        do {
            let storage = spareMeminfoFields
            spareMeminfoFields = []
            let parsed = MeminfoParser.parse(try meminfoFiles.read(kept.meminfo), previous: previous?.meminfo, reusing: consume storage)
            sample.meminfo = parsed.meminfo
            let empty = parsed.meminfo.fields.isEmpty
            sample.sources[.meminfo] = SourceStatus(
                up: !empty,
                error: empty ? "no fields found" : parsed.malformedLines > 0 ? "\(parsed.malformedLines) malformed lines skipped" : nil,
                malformedLines: parsed.malformedLines)
        } catch {
            sample.sources[.meminfo] = SourceStatus(up: false, error: error.description)
        }
    }

    /// /proc/meminfo's slab counters now, for `SlabCounters`; nil when unreadable
    /// (the sample's own read says why).
    private func slabCounters() -> Meminfo? {
        guard let bytes = try? meminfoFiles.read(kept.meminfo) else { return nil }
        var storage: [Meminfo.Field] = []
        swap(&storage, &counterFields)
        return MeminfoParser.parse(bytes, previous: previous?.meminfo, reusing: storage).meminfo
    }

    /// Sets `sample.vmstat`, from the last read of /proc/zoneinfo while it is
    /// younger than `zoneinfoEvery` samples.
    private func readZoneinfo(into sample: inout Sample) {
        if let last = zoneinfo, last.age < Self.zoneinfoEvery {
            zoneinfo?.age += 1
        } else {
            do {
                let accuracy = ZoneinfoParser.accuracy(try files.read(kept.zoneinfo), pageSize: pageSize)
                zoneinfo = (accuracy, accuracy == nil ? SourceStatus(up: false, error: "no vm stats threshold found") : SourceStatus(up: true), 1)
            } catch {
                zoneinfo = (nil, SourceStatus(up: false, error: error.description), 1)
            }
        }
        sample.vmstat = zoneinfo?.accuracy
        sample.sources[.zoneinfo] = zoneinfo?.status
    }

    /// Sets `sample.cgroupMemory` from the last walk while it is younger than
    /// `cgroupsEvery` samples; where no memory cgroup hierarchy is visible,
    /// looks for one again at that pace (nil meanwhile).
    @discardableResult
    private func readCgroups(into sample: inout Sample) -> Bool {
        var walked = false
        if let last = cgroups, last.age < Self.cgroupsEvery {
            cgroups?.age += 1
        } else {
            let reader = cgroups?.reader ?? CgroupMemoryReader.locate(procfs: paths.procfs, sysfs: paths.sysfs, cgroupfs: paths.cgroupfs,
                                                                                     limit: limits.maxCgroups)
            var reading = reader?.read()
            reading?.readAtMilliseconds = sample.timestampMilliseconds
            cgroups = (reader, reading, 1)
            walked = true
        }
        sample.cgroupMemory = cgroups?.reading
        return walked
    }

    /// Sets `sample.memoryCgroups`: every memory cgroup from /proc/cgroups
    /// (`total`, read each sample), the live ones from the walk that
    /// `readCgroups` makes every `cgroupsEvery` samples, and the dying ones
    /// each sample: on v1 `total` less the live count of the last walk (the
    /// directories change at the pace pods do; a walk's staircase made the
    /// dying count fit worse than the total it is part of, on the live
    /// kernel), on v2 the root's cgroup.stat. Live and dying are left out
    /// where they would be a guess: a walk that did not see the whole
    /// hierarchy (a pod's cgroup namespace, a bound subdirectory, the walk's
    /// bound).
    private func readMemoryCgroups(total: UInt64?, walked: Bool, into sample: inout Sample) {
        guard let total else { return }
        let reader = cgroups?.reader
        if walked { liveMemoryCgroups = reader?.lastWalk.flatMap { $0.whole ? UInt64($0.directories) : nil } }
        var counts = MemoryCgroupCounts(total: total, live: liveMemoryCgroups, version: reader?.version == .v2 ? .v2 : .v1)
        if let reader, let live = liveMemoryCgroups {
            switch reader.version {
            case .v1: counts.dying = total > live ? total - live : 0
            case .v2: counts.dying = (try? files.read(reader.root + "/cgroup.stat", readSize: FileReader.sysctlReadSize))
                .flatMap(KernelObjectParser.cgroupStat)?.dyingMemoryCgroups
            }
        }
        sample.memoryCgroups = counts
    }

    /// Reads a small file of counts whose parser answers nil for what is not one.
    private func readObjects<Value>(_ source: Source, _ file: KeptFile, into sample: inout Sample,
                                    _ parse: (ArraySlice<UInt8>) -> Value?) -> Value? {
        do {
            guard let value = parse(try files.read(file, readSize: FileReader.sysctlReadSize)) else {
                sample.sources[source] = SourceStatus(up: false, error: "\(file.path): not in the expected format", malformedLines: 1)
                return nil
            }
            sample.sources[source] = SourceStatus(up: true)
            return value
        } catch {
            sample.sources[source] = SourceStatus(up: false, error: error.description)
            return nil
        }
    }

    private func readCounter<Value>(
        _ source: Source, _ file: KeptFile, into sample: inout Sample,
        _ parse: (ArraySlice<UInt8>) throws(FSCountersParser.Failure) -> Value
    ) -> Value? {
        do {
            let value = try parse(try files.read(file, readSize: FileReader.sysctlReadSize))
            sample.sources[source] = SourceStatus(up: true)
            return value
        } catch let error as FileError {
            sample.sources[source] = SourceStatus(up: false, error: error.description)
        } catch {
            sample.sources[source] = SourceStatus(up: false, error: "\(file.path): \(error)", malformedLines: 1)
        }
        return nil
    }
}

/// When to read /sys/kernel/slab again after it failed: the next sample, then
/// after 2, 4, … up to `ProcReader.longestSysfsBackoff` samples; never while it works.
struct SysfsRetry {
    private var backoff = 0
    private var samplesUntilRetry = Int.max

    /// Counts one sample; true when this one should re-read sysfs.
    mutating func isDue() -> Bool {
        guard samplesUntilRetry != .max else { return false }
        samplesUntilRetry -= 1
        return samplesUntilRetry <= 0
    }

    mutating func failed() {
        backoff = min(max(1, backoff * 2), ProcReader.longestSysfsBackoff)
        samplesUntilRetry = backoff
    }

    mutating func succeeded() {
        backoff = 0
        samplesUntilRetry = .max
    }
}

/// One owner at a time: its buffers are reused by every read.
@available(*, unavailable)
extension ProcReader: Sendable {}
