import Foundation
import Synchronization
import Testing
import TestSupport
@testable import SlabWatch
import SlabWatchCore

/// ProcReader on recorded trees: this machine's capture (with sysfs symlinks),
/// other kernels' captures, and broken trees made by the test.
struct ProcReaderTests {
    @Test func localCaptureHasReclaimabilityAndAliasesFromSysfs() throws {
        let sample = ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096).sample(timestampMilliseconds: 0)
        for source in Source.allCases { #expect(sample.status(of: source).up, "\(source)") }
        let dentry = try #require(sample.caches.first { $0.name == "dentry" })
        #expect(dentry.reclaimable == true)
        let kmalloc = try #require(sample.caches.first { $0.name == "kmalloc-32" })
        #expect(kmalloc.reclaimable == false)
        // lsm_file_cache is the slabinfo name of the merged :0000024 directory.
        let merged = try #require(sample.caches.first { $0.name == "lsm_file_cache" })
        #expect(merged.aliases.contains("fsnotify_mark_connector"))
        #expect(merged.reclaimable == false)
    }

    /// While the cache set is unchanged, later samples take each cache's
    /// reclaimability and aliases by its position from the last index read:
    /// the same as the first sample got by name.
    @Test func laterSamplesOfTheSameCachesKeepTheirReclaimabilityAndAliases() {
        let reader = ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096)
        let first = reader.sample(timestampMilliseconds: 0)
        for t in 1...2 {
            let later = reader.sample(timestampMilliseconds: Int64(t))
            #expect(later.caches.map(\.name) == first.caches.map(\.name))
            #expect(later.caches.map(\.reclaimable) == first.caches.map(\.reclaimable))
            #expect(later.caches.map(\.aliases) == first.caches.map(\.aliases))
        }
        #expect(first.caches.contains { !$0.aliases.isEmpty } && first.caches.contains { $0.reclaimable == true })
    }

    @Test func otherKernelWithoutSysfsStillServesEverythingElse() throws {
        let root = TestPaths.captures.appendingPathComponent("coreos-sosreport-4.18.0-80.11.2.el8_0.x86_64")
        let reader = ProcReader(paths: KernelPaths(procfs: root.appendingPathComponent("proc").path, sysfs: root.appendingPathComponent("sys").path), pageSize: 4096)
        let sample = reader.sample(timestampMilliseconds: 0)
        #expect(sample.caches.count == 142)
        #expect(sample.status(of: .sysfsSlab).up == false)
        #expect(sample.status(of: .sysfsSlab).error?.contains("No such file or directory") == true)
        #expect(sample.caches.allSatisfy { $0.reclaimable == nil })
        #expect(sample.meminfo?.totalBytes != nil && sample.inodes != nil)
    }

    @Test func withoutSlabinfoTheSysfsCountsAreUsed() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.copyItem(at: TestPaths.localCapture.appendingPathComponent("sys"), to: dir.url.appendingPathComponent("sys"))
        try dir.write("proc/meminfo", "MemTotal: 1 kB\n")
        let sample = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
            .sample(timestampMilliseconds: 0)
        #expect(sample.status(of: .slabinfo).up == false)
        #expect(sample.status(of: .sysfsSlab).up)
        #expect(sample.caches.count == 235)
        let fromSlabinfo = ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096).sample(timestampMilliseconds: 0)
        let kmalloc = try #require(sample.caches.first { $0.name == "kmalloc-32" })
        let same = try #require(fromSlabinfo.caches.first { $0.name == "kmalloc-32" })
        #expect(kmalloc.objectSize == same.objectSize && kmalloc.pagesPerSlab == same.pagesPerSlab)
        // Every cache: the same object size (slab_size is slabinfo's objsize) and so the same waste.
        for cache in fromSlabinfo.caches {
            guard let other = sample.caches.first(where: { $0.name == cache.name }) else { continue }
            #expect(other.objectSize == cache.objectSize, "\(cache.name): \(other.objectSize) vs \(cache.objectSize)")
        }
        #expect(fromSlabinfo.caches.allSatisfy { $0.nameSource == .slabinfo })
        #expect(kmalloc.objectsPerSlab == same.objectsPerSlab)
        #expect(kmalloc.reclaimable == false)
        // A merged directory shows under its first alias, with the rest as aliases.
        let merged = try #require(sample.caches.first { $0.aliases.contains("lsm_file_cache") })
        #expect(merged.name == "fsnotify_mark_connector")
        #expect(merged.nameSource == .sysfsFirstAlias)
        #expect(sample.caches.first { $0.name == "dentry" }?.nameSource == .sysfs)
        #expect(!sample.caches.contains { $0.name.hasPrefix(":") })
    }

    /// A module may name its cache anything; through sysfs (no /proc/slabinfo)
    /// one named like a derived series must not become that series: its
    /// spaces read as `_`, and the pipeline's `(outside caches, …)` stays the
    /// one derived from the counters.
    @Test func aSysfsCacheNamedLikeADerivedSeriesKeepsItsOwnName() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.copyItem(at: TestPaths.localCapture.appendingPathComponent("sys"), to: dir.url.appendingPathComponent("sys"))
        let slab = dir.url.appendingPathComponent("sys/kernel/slab")
        try FileManager.default.copyItem(at: slab.appendingPathComponent("dentry"),
                                         to: slab.appendingPathComponent("(outside caches, unreclaimable)"))
        try FileManager.default.copyItem(at: slab.appendingPathComponent("dentry"), to: slab.appendingPathComponent("tab\tname"))
        try dir.write("proc/meminfo", try String(contentsOf: TestPaths.localCapture.appendingPathComponent("proc/meminfo"), encoding: .utf8))
        let sample = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
            .sample(timestampMilliseconds: 0)
        #expect(sample.caches.contains { $0.name == "(outside_caches,_unreclaimable)" && $0.nameSource == .sysfs })
        #expect(sample.caches.contains { $0.name == "tab_name" })
        let recorded = Pipeline.recorded(sample).caches.filter { $0.name == Attribution.outsideCaches }
        #expect(recorded.count == 1 && recorded.first?.nameSource == .derived, "\(recorded)")
    }

    @Test(arguments: [
        ("proc/slabinfo", "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\nbroken line\n\u{FF}\u{FE}\n", Source.slabinfo, true, 2),
        ("proc/slabinfo", "", Source.slabinfo, false, 0),
        ("proc/slabinfo", "\u{00}\u{01}garbage", Source.slabinfo, false, 0),
        ("proc/sys/fs/inode-nr", "12 x\n", Source.inodeNr, false, 1),
        ("proc/sys/fs/dentry-state", "", Source.dentryState, false, 1),
        ("proc/meminfo", "\u{FF}\n", Source.meminfo, false, 1),
    ])
    func brokenFileMarksOnlyItsSourceAndCountsBadLines(file: String, text: String, source: Source, up: Bool, malformed: Int) throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        try dir.write("proc/meminfo", "MemTotal: 1 kB\n")
        try dir.write("proc/sys/fs/inode-nr", "1 0\n")
        try dir.write("proc/sys/fs/dentry-state", "1 0 45 0 0 0\n")
        try dir.write("proc/sys/fs/file-nr", "1 0 10\n")
        try dir.write(file, text)
        let sample = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
            .sample(timestampMilliseconds: 0)
        let status = sample.status(of: source)
        #expect(status.up == up)
        #expect(status.malformedLines == malformed)
        if !up { #expect(status.error != nil) }
        for other in [Source.meminfo, .inodeNr, .dentryState, .fileNr] where other != source {
            #expect(sample.status(of: other).up, "\(other)")
        }
    }

    /// A reader refills the arrays of the sample it read two reads back
    /// (its caches and meminfo fields) once nothing else holds them, so a
    /// steady tick allocates none; a sample someone still holds (a request
    /// serving it) is never written, however the files change: it stays
    /// what a reader of its own read then.
    @Test func theSampleTwoReadsBackIsRefilledUnlessItIsHeld() throws {
        let dir = try TemporaryDirectory()
        let slabinfo = { (objects: Int) in
            "slabinfo - version: 2.1\ndentry \(objects) \(objects) 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n"
                + "kmalloc-64 \(objects * 2) \(objects * 2) 64 64 1 : tunables 0 0 0 : slabdata 1 1 0\n"
        }
        let write = { (objects: Int) in
            try dir.write("proc/slabinfo", slabinfo(objects))
            try dir.write("proc/meminfo", "MemTotal: \(objects) kB\nSlab: \(objects * 4) kB\n")
        }
        let paths = KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys"))
        let storage = { (sample: Sample) in
            (sample.caches.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) },
             sample.meminfo?.fields.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) })
        }
        let reader = ProcReader(paths: paths, pageSize: 4096)
        try write(1)
        var first: Sample? = reader.sample(timestampMilliseconds: 0)
        let firstStorage = storage(first!)
        _ = reader.sample(timestampMilliseconds: 1)
        first = nil
        let held = reader.sample(timestampMilliseconds: 2)
        let heldStorage = storage(held)
        #expect(heldStorage == firstStorage)
        let asRead = ProcReader(paths: paths, pageSize: 4096).sample(timestampMilliseconds: 2)
        for objects in 2...4 {
            try write(objects)
            let next = reader.sample(timestampMilliseconds: Int64(objects + 1))
            #expect(storage(next).0 != heldStorage.0 && storage(next).1 != heldStorage.1)
            #expect(next.caches.first?.activeObjects == UInt64(objects) && next.meminfo?.totalBytes == UInt64(objects) * 1024)
        }
        #expect(held.caches == asRead.caches && held.meminfo == asRead.meminfo && held.sources == asRead.sources)
    }

    @Test func sysfsIsReadAgainOnlyWhenTheCacheSetChanges() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        try dir.write("sys/kernel/slab/dentry/reclaim_account", "1\n")
        let reader = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
        #expect(reader.sample(timestampMilliseconds: 0).caches.first?.reclaimable == true)
        try dir.write("sys/kernel/slab/dentry/reclaim_account", "0\n")
        #expect(reader.sample(timestampMilliseconds: 1).caches.first?.reclaimable == true)  // same caches: not re-read
        try dir.write("proc/slabinfo", "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\nnew_module_cache 1 1 64 64 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        #expect(reader.sample(timestampMilliseconds: 2).caches.first?.reclaimable == false)  // a cache appeared: re-read
    }
}

/// The whole /metrics body for this machine's capture, byte for byte, with
/// every cache (`slab.export: all`): the golden holds every family's lines for
/// each of a real machine's 235 caches (their names, escaping, reclaimability),
/// which the bounded default would cut to the 20 largest. Which caches the
/// default lists is `CacheSelectionTests`' and the bounded end-to-end test's.
/// Run with UPDATE_GOLDEN=1 to rewrite the golden file after an intended change.
struct GoldenMetricsTests {
    static let golden = TestPaths.fixtures.appendingPathComponent("golden/local-6.18.metrics")

    static func render() -> [UInt8] {
        // As the daemon publishes it: recorded, the derived series joined.
        let sample = Pipeline.recorded(ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096).sample(timestampMilliseconds: 1_795_611_213_889))
        var statistics = SamplerStatistics()
        statistics.samplesTotal = 1
        statistics.lastDurationSeconds = 0.0125
        var filter = CacheFilter.all
        return MetricsRenderer.render(.init(sample: sample, exportedCaches: filter.exported(sample.caches),
                                            version: "golden", own: SelfStatistics(sampler: statistics)))
    }

    @Test func metricsMatchGoldenFile() throws {
        let rendered = Self.render()
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.golden.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(rendered).write(to: Self.golden)
        }
        let expected = try Data(contentsOf: Self.golden)
        #expect(Data(rendered) == expected, "golden differs; rerun with UPDATE_GOLDEN=1 if intended, then review the diff")
    }

    @Test func goldenFileIsPromtoolClean() throws {
        let promtool = try #require(["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                    "promtool is not installed (Debian package prometheus)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(try Data(contentsOf: Self.golden))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(report)")
        #expect(report.isEmpty, "\(report)")
    }
}

/// Sources replaced by things that are not regular files: each is down with
/// a clear error at once (none blocks), the others are still read.
struct SourceFaultTests {
    @Test(arguments: ["fifo", "directory", "symlink loop", "character device", "missing"])
    func sourceThatIsNotARegularFileIsDownNotStuck(_ kind: String) throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        try dir.write("proc/sys/fs/inode-nr", "1 0\n")
        let meminfo = dir.path("proc/meminfo")
        switch kind {
        case "fifo": #expect(mkfifo(meminfo, 0o600) == 0)
        case "directory": try FileManager.default.createDirectory(atPath: meminfo, withIntermediateDirectories: true)
        case "symlink loop":
            #expect(symlink(dir.path("proc/loop"), meminfo) == 0)
            #expect(symlink(meminfo, dir.path("proc/loop")) == 0)
        case "character device": #expect(symlink("/dev/zero", meminfo) == 0)
        default: break
        }
        let reader = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
        let sample = reader.sample(timestampMilliseconds: 0)
        let status = sample.status(of: .meminfo)
        #expect(!status.up)
        let expected = ["fifo": "not a regular file", "directory": "not a regular file", "symlink loop": "Too many levels",
                        "character device": "not a regular file", "missing": "No such file"][kind]!
        #expect(status.error?.contains(expected) == true, "\(status.error ?? "nil")")
        #expect(sample.status(of: .slabinfo).up && sample.caches.count == 1)
        // Sane again: the next sample reads it.
        unlink(meminfo)
        try? FileManager.default.removeItem(atPath: meminfo)
        try dir.write("proc/meminfo", "MemTotal: 1 kB\n")
        #expect(reader.sample(timestampMilliseconds: 1).status(of: .meminfo).up)
    }
}

extension SourceFaultTests {
    @Test func slabinfoOfWhichNoLineParsesIsDown() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", "slabinfo - version: 2.1\nnot a cache line\nnor this one\n")
        try dir.write("proc/meminfo", "MemTotal: 1 kB\n")
        let sample = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
            .sample(timestampMilliseconds: 0)
        let status = sample.status(of: .slabinfo)
        #expect(!status.up)
        #expect(status.error?.contains("no cache line could be parsed (2 malformed)") == true, "\(status.error ?? "nil")")
        #expect(status.malformedLines == 2)
    }

    /// A transient sysfs failure (out of descriptors, say) must not leave
    /// reclaimability unknown until the cache set happens to change.
    @Test func sysfsThatFailedOnceIsReadAgainWithBackoff() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        let reader = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
        #expect(!reader.sample(timestampMilliseconds: 0).status(of: .sysfsSlab).up)  // no sysfs yet
        try dir.write("sys/kernel/slab/dentry/reclaim_account", "1\n")
        var recovered: Int?
        for tick in 1...10 where recovered == nil {
            let sample = reader.sample(timestampMilliseconds: Int64(tick))
            if sample.status(of: .sysfsSlab).up && sample.caches.first?.reclaimable == true { recovered = tick }
        }
        #expect(recovered != nil && recovered! <= 3, "\(String(describing: recovered))")
    }
}

/// /proc/zoneinfo gives the vmstat error: read at the first sample and every
/// `zoneinfoEvery` after, carried between; without it the sample is whole.
struct ZoneinfoReadTests {
    static func zoneinfo(threshold: Int) -> String {
        "Node 0, zone   Normal\n  pagesets\n    cpu: 0\n  vm stats threshold: \(threshold)\n    cpu: 1\n  vm stats threshold: \(threshold)\n"
    }

    @Test func readAtTheFirstSampleAndEveryZoneinfoEveryAfter() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/zoneinfo", Self.zoneinfo(threshold: 28))
        let reader = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
        var sample = reader.sample(timestampMilliseconds: 0)
        #expect(sample.vmstat?.errorBytes == 229_376 && sample.status(of: .zoneinfo).up)
        try dir.write("proc/zoneinfo", Self.zoneinfo(threshold: 125))
        for tick in 1..<ProcReader.zoneinfoEvery {
            sample = reader.sample(timestampMilliseconds: Int64(tick))
            #expect(sample.vmstat?.threshold == 28 && sample.status(of: .zoneinfo).up)
        }
        #expect(reader.sample(timestampMilliseconds: 60).vmstat?.threshold == 125)
    }

    @Test func withoutZoneinfoTheSourceIsDownAndTheRestIsRead() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/meminfo", "MemTotal: 1 kB\nSUnreclaim: 8 kB\n")
        let sample = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096)
            .sample(timestampMilliseconds: 0)
        #expect(sample.vmstat == nil && !sample.status(of: .zoneinfo).up && sample.status(of: .zoneinfo).error != nil)
        #expect(sample.meminfo?.slabUnreclaimableBytes == 8192 && !Source.zoneinfo.requiredForReplay)
    }
}

/// What one sample may hold is bounded: a hostile procfs cannot grow the daemon without end.
struct SampleLimitTests {
    static func slabinfo(caches: Int) -> String {
        var text = "slabinfo - version: 2.1\n"
        for i in 0..<caches { text += "cache\(i) 1 1 32 128 1 : tunables 0 0 0 : slabdata \(i + 1) \(i + 1) 0\n" }
        return text
    }

    @Test func moreCachesThanTheLimitKeepsTheLargest() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", Self.slabinfo(caches: 100))
        let reader = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096,
                                limits: .init(maxCaches: 30))
        let sample = reader.sample(timestampMilliseconds: 0)
        #expect(sample.caches.count == 30 && sample.cachesOverLimit == 70)
        #expect(sample.caches.map(\.name) == (70..<100).map { "cache\($0)" })  // the largest, in the kernel's order
        // The sums behind the memory outside the caches still count all 100 (no sysfs: reclaimability unknown).
        #expect(sample.cacheTotals == CacheTotals(reclaimableBytes: 0, unreclaimableBytes: 0, unknownBytes: 5050 * 4096, caches: 100))
        #expect(sample.status(of: .slabinfo).up)
    }

    /// A reader of a slabinfo whose caches, `name` and their number, hold
    /// `slabs` one-page slabs each, keeping `maxCaches`.
    static func reader(_ dir: TemporaryDirectory, name: String, slabs: [Int], maxCaches: Int) throws -> ProcReader {
        var text = "slabinfo - version: 2.1\n"
        for (i, count) in slabs.enumerated() {
            text += "\(name)\(i) 1 1 32 128 1 : tunables 0 0 0 : slabdata \(count) \(count) 0\n"
        }
        try dir.write("proc/slabinfo", text)
        return ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096,
                          limits: .init(maxCaches: maxCaches))
    }

    /// Of caches as large as the smallest kept, the first in the kernel's
    /// order are kept; the caches are cut in the array they were read into.
    @Test func theLimitKeepsTheFirstOfEqualCachesInPlace() throws {
        let dir = try TemporaryDirectory()
        let reader = try Self.reader(dir, name: "cache", slabs: [5, 3, 5, 3, 3, 1, 3], maxCaches: 4)
        for _ in 0..<2 {  // the second sample refills the first one's storage
            let sample = reader.sample(timestampMilliseconds: 0)
            #expect(sample.caches.map(\.name) == ["cache0", "cache1", "cache2", "cache3"] && sample.cachesOverLimit == 3)
            #expect(sample.caches.capacity >= 7, "cut in place, not copied into an array of four")
        }
    }

    /// A cut sample's names are reused by the next parse, as an uncut
    /// one's are: the next sample's names are the same strings, not new ones.
    @Test func aCutSamplesNamesAreReusedByTheNextParse() throws {
        let dir = try TemporaryDirectory()
        let reader = try Self.reader(dir, name: "a-long-cache-name-", slabs: [1, 5, 2, 6, 3, 7, 4], maxCaches: 3)
        let first = reader.sample(timestampMilliseconds: 0), second = reader.sample(timestampMilliseconds: 1)
        #expect(first.caches.map(\.name) == ["a-long-cache-name-1", "a-long-cache-name-3", "a-long-cache-name-5"])
        #expect(second.caches.map(\.name) == first.caches.map(\.name))
        func storage(_ name: String) -> UnsafePointer<UInt8>? { name.utf8.withContiguousStorageIfAvailable { $0.baseAddress } ?? nil }
        #expect(zip(first.caches, second.caches).allSatisfy { storage($0.name) != nil && storage($0.name) == storage($1.name) },
                "the same strings")
    }

    @Test func sourceLargerThanTheLimitIsDownWithTheReason() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/slabinfo", Self.slabinfo(caches: 3000))  // ~200 KB
        try dir.write("proc/meminfo", "MemTotal: 1 kB\n")
        let reader = ProcReader(paths: KernelPaths(procfs: dir.path("proc"), sysfs: dir.path("sys")), pageSize: 4096,
                                limits: .init(maxSourceBytes: 64 * 1024))
        let sample = reader.sample(timestampMilliseconds: 0)
        #expect(!sample.status(of: .slabinfo).up)
        #expect(sample.status(of: .slabinfo).error?.contains("larger than 65536 bytes (sampler.max-source-bytes)") == true,
                "\(sample.status(of: .slabinfo).error ?? "nil")")
        #expect(sample.status(of: .meminfo).up)  // the others are still read
        try dir.write("proc/slabinfo", Self.slabinfo(caches: 10))
        #expect(reader.sample(timestampMilliseconds: 1).caches.count == 10)  // and it recovers
    }
}

/// The wall clock stepped back and forward: sample times never run backwards.
struct SampleClockTests {
    @Test func stepsBackAreBridgedByTheMonotonicClockAndForwardStepsAreGaps() {
        var clock = SampleClock()
        let second: UInt64 = 1_000_000_000
        var stamps: [Int64] = []
        var wall: Int64 = 1_795_600_000_000
        for tick in 0..<20 {
            if tick == 5 { wall -= 3_600_000 }  // stepped back an hour
            if tick == 15 { wall += 7_200_000 }  // and forward two
            stamps.append(clock.timestamp(wallMilliseconds: wall, monotonicNanoseconds: UInt64(tick) * 5 * second))
            wall += 5000
        }
        #expect(zip(stamps, stamps.dropFirst()).allSatisfy { $0 < $1 })
        #expect(stamps[5] - stamps[4] == 5000)  // the step back is bridged at the monotonic pace
        #expect(stamps[15] - stamps[14] > 3_000_000)  // the step forward shows as a gap
        // Same second twice (a coarse or frozen wall clock): still strictly increasing.
        var frozen = SampleClock()
        #expect(frozen.timestamp(wallMilliseconds: 10, monotonicNanoseconds: 0) < frozen.timestamp(wallMilliseconds: 10, monotonicNanoseconds: 0))
    }
}
