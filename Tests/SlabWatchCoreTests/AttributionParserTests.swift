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

    static func accumulate(_ text: String, cache: String = "shmem_inode_cache", largeAllocations: Bool = false) -> TraceAccumulator {
        var accumulator = TraceAccumulator(cache: cache, largeAllocations: largeAllocations)
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

    /// A large allocation's two kmalloc events, as this kernel prints them
    /// (two lines of trace-large-pipes-6.18.txt, verbatim): the same pointer
    /// from the same thread with the same size, first from inside the
    /// allocator, then for its caller. One allocation, at the caller.
    static let inner = "         python3-31425   [000] .....  9972.119313: kmalloc: call_site=__kmalloc_noprof+0x4b5/0x6b0 ptr=000000007899fe1d bytes_req=10240 bytes_alloc=16384 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_NOWARN node=-1 accounted=true"
    static let outer = "         python3-31425   [000] .....  9972.119321: kmalloc: call_site=pipe_resize_ring+0x30/0x1b0 ptr=000000007899fe1d bytes_req=10240 bytes_alloc=16384 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_NOWARN node=-1 accounted=true"

    @Test func aLargeAllocationsTwoEventsAreOneAllocationAtTheCaller() throws {
        let large = Self.accumulate([Self.inner, Self.outer].joined(separator: "\n"), cache: Attribution.outsideCaches, largeAllocations: true)
        let result = large.result(windowSeconds: 1, dropped: 0, stopReason: .duration, endedMilliseconds: 0)
        #expect(result.callSites.map(\.symbol) == ["pipe_resize_ring+0x30"], "\(result.callSites)")
        let site = try #require(result.callSites.first)
        #expect(site.allocations == 1 && site.frees == 0 && site.netCount == 1 && site.netBytes == 16_384)
        #expect(large.liveObjects == 1 && result.events == 2 && result.malformedLines == 0)
        #expect(result.sentence == "Allocated mostly by pipe_resize_ring+0x30 (100 % of net bytes).")
        // Counted as two (a free missed in between), the inner site would show every allocation freed, and twice the allocations.
        let cache = Self.accumulate([Self.inner, Self.outer].joined(separator: "\n"), cache: "kmalloc-16k")
            .result(windowSeconds: 1, dropped: 0, stopReason: .duration, endedMilliseconds: 0)
        #expect(cache.callSites.map(\.allocations) == [1, 1] && cache.callSites.map(\.frees) == [0, 1], "\(cache.callSites)")
    }

    /// Only the same thread and the same size make a second event: the same
    /// pointer from another thread, or of another size, was freed where the
    /// session did not see it, and is a new allocation.
    @Test(arguments: [
        (outer.replacingOccurrences(of: "python3-31425", with: "python3-31426"), "another thread"),
        (outer.replacingOccurrences(of: "bytes_alloc=16384", with: "bytes_alloc=32768"), "another size"),
    ])
    func anotherThreadOrSizeIsAnotherAllocation(second: String, why: String) {
        let result = Self.accumulate([Self.inner, second].joined(separator: "\n"), cache: Attribution.outsideCaches, largeAllocations: true)
            .result(windowSeconds: 1, dropped: 0, stopReason: .duration, endedMilliseconds: 0)
        #expect(result.callSites.reduce(0) { $0 + $1.allocations } == 2, "\(why): \(result.callSites)")
        #expect(result.callSites.first { $0.function == "__kmalloc_noprof+0x4b5" }?.frees == 1, "\(why)")
    }

    /// The whole capture: three pipes at 1 MiB made and closed. Three
    /// allocations at pipe_resize_ring, each with its own stack (trimmed to
    /// the call site), each freed by free_pipe_info: net 0; the frees of
    /// objects allocated before the capture are ignored.
    @Test func realCaptureOfPipesResizedAndClosed() throws {
        let text = try Self.capture("trace-large-pipes-6.18.txt")
        let result = Self.accumulate(text, cache: Attribution.outsideCaches, largeAllocations: true)
            .result(windowSeconds: 1, dropped: 0, stopReason: .duration, endedMilliseconds: 0)
        #expect(result.callSites.count == 1 && result.malformedLines == 0, "\(result.callSites)")
        let site = try #require(result.callSites.first)
        #expect(site.symbol == "pipe_resize_ring+0x30" && site.allocations == 3 && site.frees == 3 && site.netBytes == 0)
        let stack = try #require(site.stacks.first)
        #expect(site.stacks.count == 1 && stack.allocations == 3)
        #expect(stack.frames == ["pipe_resize_ring+0x30", "pipe_fcntl+0xe1", "do_fcntl+0x373", "__x64_sys_fcntl+0x8c", "do_syscall_64+0x71",
                                 "entry_SYSCALL_64_after_hwframe+0x76"])
        // Held (the capture without its frees): 3 × 16 KiB, all at the caller.
        let held = text.split(separator: "\n").filter { !$0.contains(": kfree: ") }.joined(separator: "\n")
        let kept = Self.accumulate(held, cache: Attribution.outsideCaches, largeAllocations: true)
            .result(windowSeconds: 1, dropped: 0, stopReason: .duration, endedMilliseconds: 0)
        #expect(kept.callSites.map(\.symbol) == ["pipe_resize_ring+0x30"] && kept.callSites.first?.netBytes == 3 * 16_384)
        #expect(kept.callSites.first?.stacks.first?.net == 3)
    }

    @Test(arguments: [
        ("         python3-31425   [000] .....  9972.119313: kmalloc: x", "31425"),
        ("  Web Content-2-77 [001] d..1. 1.0: kfree: x", "77"),
        ("          <idle>-0       [001] ..s1. 1.000006: kfree: x", "0"),
        ("python3-x [000] 1.0: kmalloc: x", nil),
        ("garbage", nil),
    ] as [(String, String?)])
    func threadOfAnEventLine(line: String, thread: String?) {
        #expect(TraceAccumulator.thread(Substring(line)).map(String.init) == thread)
    }
}
