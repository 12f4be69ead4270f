import Foundation
import Testing
@testable import SlabWatchCore

struct SlabInfoParserTests {
    static let header = "slabinfo - version: 2.1\n# name <active_objs> …\n"

    static func parse(_ text: String, pageSize: UInt64 = 4096) throws -> SlabInfoParser.Result {
        try SlabInfoParser.parse(ArraySlice(text: text), pageSize: pageSize)
    }

    // Every real capture parses completely: no line is lost, none is malformed.
    @Test(arguments: [
        ("chromeos-syslogs-6.6.119-x86_64", "2.1", 171),
        ("coreos-sosreport-4.18.0-80.11.2.el8_0.x86_64", "2.1", 142),
        ("d2000-2.6.16-arm720t-slab", "2.1", 126),
        ("innofirmware-4.4.0-xilinx-armv7-slab", "2.1", 84),
        ("lkml-2.4.15-pre1-smp-slab-v1.1", "1.1 (SMP)", 60),
        ("lkml-2.4.19-pre9-ac3-slab-v1.1-statistics", "1.1 (statistics)", 59),
        ("lkml-2.6.12-rc6-mm1-x86_64-slab-v2.1-statistics", "2.1 (statistics)", 134),
        ("lkml-2.6.5-x86_64-slab-v2.0-statistics", "2.0 (statistics)", 107),
        ("local-6.18-firecracker", "2.1", 235),
        ("pcp-qa-meminfo-root-001", "2.1", 136),
        ("pcp-qa-meminfo-root-007", "2.1", 292),
        ("prometheus-procfs-fixtures-5.8-era", "2.1", 300),
    ])
    func realCaptureParsesEveryLine(folder: String, version: String, caches: Int) throws {
        let result = try SlabInfoParser.parse(Fixtures.capture(folder, "proc/slabinfo"), pageSize: 4096)
        #expect(result.version == version)
        #expect(result.caches.count == caches)
        #expect(result.malformedLines == 0)
        #expect(Set(result.caches.map(\.name)).count == caches)
        for cache in result.caches {
            #expect(cache.activeObjects <= cache.objects || cache.objects == 0, "\(cache.name)")
            #expect(cache.footprintBytes == cache.slabs * cache.pagesPerSlab * 4096, "\(cache.name)")
        }
    }

    @Test func version10HasNoObjectSizeAndIsRefused() throws {
        #expect(throws: SlabInfoParser.Failure.unsupportedVersion("1.0")) {
            try SlabInfoParser.parse(Fixtures.capture("lkml-2.2.19-6.2.7-slab-v1.0", "proc/slabinfo"), pageSize: 4096)
        }
    }

    @Test func slab20TakesTunablesByPositionAndSlabdataCounts() throws {
        let result = try SlabInfoParser.parse(
            Fixtures.capture("lkml-2.6.5-x86_64-slab-v2.0-statistics", "proc/slabinfo"), pageSize: 4096)
        let cache = try #require(result.caches.first { $0.name == "nfs_write_data" })
        #expect(cache.activeObjects == 36 && cache.objects == 40 && cache.objectSize == 816)
        #expect(cache.objectsPerSlab == 5 && cache.pagesPerSlab == 1)
        #expect(cache.activeSlabs == 8 && cache.slabs == 8)
        #expect(cache.footprintBytes == 8 * 4096)
        #expect(cache.wasteBytes == 8 * 4096 - 36 * 816)
    }

    @Test func tabsInsideLinesAreWhitespace() throws {
        let result = try SlabInfoParser.parse(
            Fixtures.capture("lkml-2.6.12-rc6-mm1-x86_64-slab-v2.1-statistics", "proc/slabinfo"), pageSize: 4096)
        let cache = try #require(result.caches.first { $0.name == "fib6_nodes" })
        #expect(cache.activeObjects == 5 && cache.objects == 54 && cache.objectSize == 72 && cache.slabs == 1)
    }

    @Test func version11NamesWithSpacesAndSlabColumns() throws {
        let result = try SlabInfoParser.parse(
            Fixtures.capture("lkml-2.4.15-pre1-smp-slab-v1.1", "proc/slabinfo"), pageSize: 4096)
        let cache = try #require(result.caches.first { $0.name == "file lock cache" })
        #expect(cache.activeObjects == 91 && cache.objects == 504 && cache.objectSize == 92)
        #expect(cache.activeSlabs == 12 && cache.slabs == 12 && cache.pagesPerSlab == 1)
        #expect(cache.objectsPerSlab == 42)
    }

    @Test func overflowingColumnsWithoutPadding() throws {
        let result = try SlabInfoParser.parse(
            Fixtures.capture("innofirmware-4.4.0-xilinx-armv7-slab", "proc/slabinfo"), pageSize: 4096)
        let cache = try #require(result.caches.first { $0.name == "kmalloc-4194304" })
        #expect(cache.objectSize == 4_194_304 && cache.objectsPerSlab == 1 && cache.pagesPerSlab == 1024)
    }

    @Test(arguments: ["size-4096(DMA)", "biovec-(256)", "page->ptl", "iwl_cmd_pool:0000:04:00.0", "L2TP/IPv6"])
    func oddCharactersInNames(name: String) throws {
        let line = "\(name)  1 2 64 64 1 : tunables 0 0 0 : slabdata 1 1 0\n"
        let result = try Self.parse(Self.header + line)
        #expect(result.caches.map(\.name) == [name])
    }

    @Test func footprintOfThisMachineMatchesMeminfoSlab() throws {
        let slab = try SlabInfoParser.parse(
            Fixtures.bytes(Fixtures.local.appendingPathComponent("proc/slabinfo")), pageSize: 4096)
        let meminfo = MeminfoParser.parse(try Fixtures.bytes(Fixtures.local.appendingPathComponent("proc/meminfo")))
        let total = Double(slab.caches.reduce(0) { $0 + $1.footprintBytes })
        let reported = Double(try #require(meminfo.meminfo.slabBytes))
        // Per-cpu partial slabs and in-flight frees make them differ a little.
        #expect(abs(total - reported) / reported < 0.15)
    }

    // MARK: malformed input loses the bad line and nothing else

    @Test(arguments: [
        ("truncated line", "kmalloc-32  10 20 32 128 1 : tunables 0 0"),
        ("missing columns", "kmalloc-32  10 20 32 : tunables 0 0 0 : slabdata 1 1 0"),
        ("letters in a count", "kmalloc-32  1O 20 32 128 1 : tunables 0 0 0 : slabdata 1 1 0"),
        ("beyond UInt64", "kmalloc-32  99999999999999999999 20 32 128 1 : tunables 0 0 0 : slabdata 1 1 0"),
        ("no name", "10 20 32 128 1 : tunables 0 0 0 : slabdata 1 1 0"),
        ("binary garbage", "\u{01}\u{FF}\u{00}garbage\u{7F}"),
        ("negative", "kmalloc-32  -1 20 32 128 1 : tunables 0 0 0 : slabdata 1 1 0"),
    ])
    func malformedLineIsSkippedAndCounted(_ label: String, line: String) throws {
        let good = "dentry 100 120 192 21 1 : tunables 0 0 0 : slabdata 6 6 0\n"
        let result = try Self.parse(Self.header + good + line + "\n" + good.replacingOccurrences(of: "dentry", with: "inode_cache"))
        #expect(result.caches.map(\.name) == ["dentry", "inode_cache"], "\(label)")
        #expect(result.malformedLines == 1, "\(label)")
    }

    @Test func extraColumnsAreIgnored() throws {
        let line = "dentry 100 120 192 21 1 : tunables 0 0 0 : slabdata 6 6 0 : futurestat 1 2 3 : more 4\n"
        let result = try Self.parse(Self.header + line)
        #expect(result.caches.first?.slabs == 6)
        #expect(result.malformedLines == 0)
    }

    @Test func numbersBeyondDoublePrecisionStayExact() throws {
        let big: UInt64 = (1 << 53) + 1
        let line = "huge \(big) \(big) 1 1 1 : tunables 0 0 0 : slabdata 1 1 0\n"
        let cache = try #require(try Self.parse(Self.header + line).caches.first)
        #expect(cache.activeObjects == big && cache.objects == big)
    }

    @Test func footprintSaturatesInsteadOfWrapping() throws {
        let line = "huge 1 1 1 1 \(UInt64.max / 2) : tunables 0 0 0 : slabdata 1 4 0\n"
        let cache = try #require(try Self.parse(Self.header + line).caches.first)
        #expect(cache.footprintBytes == .max)
    }

    @Test(arguments: [
        ("", SlabInfoParser.Failure.empty),
        ("\u{00}\u{01}\u{02}binary", .missingVersionLine),
        ("# name only\n", .missingVersionLine),
        ("slabinfo - version: 3.0\n", .unsupportedVersion("3.0")),
    ])
    func unusableFileThrows(text: String, failure: SlabInfoParser.Failure) {
        #expect(throws: failure) { try Self.parse(text) }
    }

    @Test func headerOnlyIsAnEmptyCacheList() throws {
        let result = try Self.parse(Self.header)
        #expect(result.caches.isEmpty && result.malformedLines == 0)
    }

    @Test func duplicateNamesAreKeptAndDisambiguated() throws {
        let text = Self.header
            + "size-40 10 20 40 100 1 : tunables 0 0 0 : slabdata 1 1 0\n"
            + "size-40 30 40 40 100 1 : tunables 0 0 0 : slabdata 2 2 0\n"
            + "size-40#2 1 1 40 100 1 : tunables 0 0 0 : slabdata 1 1 0\n"
            + "size-40 50 60 40 100 1 : tunables 0 0 0 : slabdata 3 3 0\n"
        let caches = try Self.parse(text).caches
        #expect(caches.map(\.name) == ["size-40", "size-40#3", "size-40#2", "size-40#4"])
        #expect(caches.map(\.slabs) == [1, 2, 1, 3])
    }

    /// 32,000 lines with one name (a hostile or broken source) parse with
    /// every line kept and numbered. The time this takes is measured in
    /// docs/development.md (it was quadratic: 54.7 s a sample at this size).
    @Test func manyDuplicatesOfOneNameAreNumberedInOrder() throws {
        let line = "dup 1 1 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n"
        let text = Self.header + String(repeating: line, count: 32_000) + "dup#7 1 1 32 128 1 : tunables 0 0 0 : slabdata 9 9 0\n"
        let caches = try Self.parse(text).caches
        #expect(caches.count == 32_001)
        #expect(Set(caches.map(\.name)).count == 32_001)
        #expect(caches[0].name == "dup" && caches[1].name == "dup#2" && caches[5].name == "dup#6")
        #expect(caches[6].name == "dup#8", "dup#7 is a real cache's name: skipped")
        #expect(caches[31_999].name == "dup#32001")
        #expect(caches[32_000].name == "dup#7" && caches[32_000].slabs == 9)
    }

    /// Only the header is a comment: a cache named `#2` is a cache.
    @Test func aCacheNamedLikeACommentIsKept() throws {
        let text = Self.header + "#2 128 128 32 128 1 : tunables 0 0 0 : slabdata 3 3 0\n"
            + "# a stray comment line\n"
        let result = try Self.parse(text)
        #expect(result.caches.map(\.name) == ["#2"])
        #expect(result.caches.first?.slabs == 3)
        #expect(result.malformedLines == 0)
    }

    @Test func previousNamesAreReusedWhenUnchanged() throws {
        let text = Self.header + "a_cache_with_a_long_name 1 1 8 1 1 : tunables 0 0 0 : slabdata 1 1 0\n"
        let first = try Self.parse(text)
        let second = try SlabInfoParser.parse(ArraySlice(text: text), pageSize: 4096, previous: first.caches)
        #expect(second == first)
    }
}
