import Foundation
import Testing
import TestSupport
@testable import SlabWatchCore

/// The text attribution reads: a real trace_pipe capture, hist tables and
/// /proc/allocinfo (see Tests/Fixtures/captures/attribution/SOURCE.md).
struct AttributionParserTests {
    static func capture(_ name: String) throws -> String {
        String(decoding: try Fixtures.bytes(RepositoryPaths.captures.appendingPathComponent("attribution/\(name)")), as: UTF8.self)
    }

    static func accumulate(_ text: String, cache: String = "shmem_inode_cache") -> TraceAccumulator {
        var accumulator = TraceAccumulator(cache: cache)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) { accumulator.take(line) }
        return accumulator
    }

    /// Six files created, two removed and the tmpfs unmounted: every inode
    /// allocated in the window was freed again (net 0), the root inode's free
    /// (allocated before) is ignored, and the stack starts at the call site.
    @Test func realCaptureMatchesFreesToAllocations() throws {
        let text = try Self.capture("trace-shmem-6.18.txt")
        let result = Self.accumulate(text).result(windowSeconds: 3, dropped: 0, stopReason: .duration, endedMilliseconds: 0)
        let site = try #require(result.callSites.first)
        #expect(result.callSites.count == 1)
        #expect(site.function == "shmem_alloc_inode+0x1d" && site.module == nil)
        #expect(site.allocations == 6 && site.frees == 6 && site.netCount == 0 && site.netBytes == 0)
        let stack = try #require(site.stacks.first)
        #expect(stack.frames.first == "shmem_alloc_inode+0x1d")
        #expect(stack.frames.contains("shmem_mknod+0x2b") && stack.allocations == 6)
        #expect(result.malformedLines == 0)
        #expect(result.sentence == nil)  // nothing net to name
    }

    /// Without the frees (a window that ended before the unmount) the same six
    /// allocations are net: 6 × 752 bytes, all one site, 100 %.
    @Test func allocationsNotFreedAreNet() throws {
        let text = try Self.capture("trace-shmem-6.18.txt").split(separator: "\n").filter { !$0.contains("kmem_cache_free") }.joined(separator: "\n")
        let result = Self.accumulate(text).result(windowSeconds: 3, dropped: 0, stopReason: .maxEvents, endedMilliseconds: 0)
        let site = try #require(result.callSites.first)
        #expect(site.netCount == 6 && site.netBytes == 6 * 752 && site.share == 1)
        #expect(site.stacks.first?.net == 6)
        #expect(result.sentence == "Allocated mostly by shmem_alloc_inode+0x1d (100 % of net bytes).")
    }

    @Test func modulesLostEventsTruncatedLinesAndInterleavedCPUs() {
        let text = """
                foo-1   [000] ..... 1.000001: kmalloc: call_site=foo_attach_inode+0x2a/0x60 [foo] ptr=000000001 bytes_req=30 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1 accounted=false
                bar-2   [001] ..... 1.000002: kmalloc: call_site=bar_open+0x10/0x80 ptr=000000002 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1 accounted=false
                foo-1   [000] ..... 1.000003: <stack trace>
             => trace_event_raw_event_kmalloc+0xe1/0x160
             => __kmalloc_noprof+0x2a/0x400
             => foo_attach_inode+0x2a/0x60 [foo]
             => foo_lookup+0x11/0x90 [foo]
            CPU:1 [LOST 42 EVENTS]
                bar-2   [001] ..... 1.000004: kmalloc: call_site=bar_open+0x10/0x80 ptr=000000003 bytes_req=32 bytes_al
                foo-1   [000] ..... 1.000005: kmalloc: call_site=foo_attach_inode+0x2a/0x60 [foo] ptr=000000004 bytes_req=30 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1 accounted=false
                 <idle>-0 [001] ..s1. 1.000006: kfree: call_site=bar_close+0x5/0x20 ptr=000000002
                 <idle>-0 [001] ..s1. 1.000007: kfree: call_site=x+0x5/0x20 ptr=0000000ff
                foo-1   [000] ..... 1.000008: kmalloc: call_site=foo_attach_inode+0x2a/0x60 [foo] ptr=000000009 bytes_req=30 bytes_alloc=32 gfp_flags=GFP_KERNEL node=-1 accounted=false
                foo-1   [000] ..... 1.000009: <stack trace>
             => kfree+0x20f/0x300
             => someone_elses_free+0x3f/0x90
            garbage
            """
        let accumulator = Self.accumulate(text, cache: "kmalloc-32")
        let result = accumulator.result(windowSeconds: 1, dropped: 3, stopReason: .duration, endedMilliseconds: 0)
        #expect(result.dropped == 45)
        #expect(result.malformedLines == 2)  // the truncated line and the garbage
        let foo = result.callSites[0]
        #expect(foo.symbol == "foo_attach_inode+0x2a [foo]" && foo.netBytes == 96 && foo.netCount == 3)
        // A stack that does not pass through the call site is not this allocation's.
        #expect(foo.stacks.count == 1 && foo.stacks[0].allocations == 1)
        // The stack read on CPU 0 after CPU 1's event still belongs to CPU 0's allocation.
        #expect(foo.stacks.first?.frames == ["foo_attach_inode+0x2a [foo]", "foo_lookup+0x11 [foo]"])
        let bar = result.callSites[1]
        #expect(bar.function == "bar_open+0x10" && bar.allocations == 1 && bar.frees == 1 && bar.netBytes == 0)
        #expect(foo.share == 1 && bar.share == 0)
    }

    @Test func histTableFromTheKernelDocumentation() throws {
        let table = KernelAllocationTables.parseHist(Substring(try Self.capture("hist-kmalloc-docs.txt")))
        #expect(table.rows.count == 5 && table.dropped == 0 && table.malformedLines == 0)
        #expect(table.rows[2] == .init(function: "hidraw_send_report", module: "hid", hits: 1, bytes: 7))
        let attribution = KernelAllocationTables.attribution(cache: "kmalloc-8", hist: table, windowSeconds: 10)
        #expect(attribution.source == .hist && attribution.callSites.first?.function == "syslog_print_all")
        let offsets = KernelAllocationTables.parseHist("{ call_site: [ffffffffc04e457f] btrfs_delete_delayed_dir_index+0xbf/0x1e0 [btrfs] } hitcount:     146914  bytes_alloc:   16454368\n{ call_site: [x] } hitcount: 1\nDropped: 7\n")
        #expect(offsets.rows == [.init(function: "btrfs_delete_delayed_dir_index+0xbf", module: "btrfs", hits: 146_914, bytes: 16_454_368)])
        #expect(offsets.malformedLines == 1 && offsets.dropped == 7)
    }

    @Test func allocInfoRowsAndGrowth() throws {
        let parsed = try #require(KernelAllocationTables.parseAllocInfo(Substring(try Self.capture("allocinfo-6.10.txt"))))
        #expect(parsed.rows.count == 11 && parsed.malformedLines == 0)
        #expect(parsed.rows[9] == .init(bytes: 16, calls: 1, location: "fs/xfs/xfs_mount.c:87", module: "xfs", function: "xfs_uuid_mount"))
        #expect(parsed.rows[7].module == nil && parsed.rows[7].function == "init_rapl_pmus")
        // Version 2.0's inaccurate marks, and a later read where one site grew.
        let later = try #require(KernelAllocationTables.parseAllocInfo("""
            allocinfo - version: 2.0
            #     <size>  <calls> <tag info>
                    1024*      64* fs/xfs/xfs_mount.c:87 [xfs] func:xfs_uuid_mount accurate:no
                     128        1 arch/x86/events/rapl.c:571 func:rapl_cpu_online
                  broken line
            """))
        #expect(later.malformedLines == 1)
        let attribution = KernelAllocationTables.attribution(cache: "kmalloc-16", from: parsed.rows, to: later.rows, windowSeconds: 60)
        #expect(attribution.callSites.count == 1)
        #expect(attribution.callSites[0].symbol == "xfs_uuid_mount (fs/xfs/xfs_mount.c:87) [xfs]")
        #expect(attribution.callSites[0].netBytes == 1008 && attribution.callSites[0].allocations == 63)
        #expect(KernelAllocationTables.parseAllocInfo("not allocinfo\n") == nil)
    }
}
