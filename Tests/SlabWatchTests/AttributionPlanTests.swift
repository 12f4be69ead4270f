import Foundation
import SlabWatchCore
import Testing
import TestSupport
@testable import SlabWatch

/// Which kernel events and filters a session asks for, per cache family.
struct AttributionPlanTests {
    @Test(arguments: [
        ("kmalloc-32", 32, KmallocCache.Kind.normal), ("kmalloc-1k", 1024, .normal), ("kmalloc-cg-64", 64, .accounted),
        ("kmalloc-rcl-128", 128, .reclaimable), ("dma-kmalloc-256", 256, .dma), ("kmalloc-rnd-05-32", 32, .random),
    ])
    func kmallocNamesAreRead(_ name: String, _ size: Int, _ kind: KmallocCache.Kind) {
        let cache = KmallocCache(name: name)
        #expect(cache?.size == size && cache?.kind == kind, "\(name)")
    }

    @Test func otherNamesAreNotKmalloc() {
        for name in ["dentry", "kmalloc-", "kmalloc-abc", "kmem_cache", "skbuff_head_cache"] { #expect(KmallocCache(name: name) == nil, "\(name)") }
    }

    @Test func planFiltersInTheKernel() {
        let named = AttributionSession.plan(target: .cache("shmem_inode_cache"), gfpBits: [:])
        #expect(named.filters.map(\.event) == ["kmem/kmem_cache_alloc", "kmem/kmem_cache_free"])
        #expect(named.filters.allSatisfy { $0.filter == "name == \"shmem_inode_cache\"" })
        // A quote in a name cannot end the filter's string early.
        #expect(AttributionSession.plan(target: .cache("a\"b"), gfpBits: [:]).filters[0].filter == "name == \"ab\"")
        let kmalloc = AttributionSession.plan(target: .cache("kmalloc-cg-64"), gfpBits: ["__GFP_ACCOUNT": 22, "__GFP_RECLAIMABLE": 4, "__GFP_DMA": 0])
        #expect(kmalloc.filters.map(\.event) == ["kmem/kmem_cache_alloc", "kmem/kmem_cache_free", "kmem/kmalloc", "kmem/kfree"])
        #expect(kmalloc.filters[2].filter == "bytes_alloc == 64 && (gfp_flags & 0x400000)")
        #expect(kmalloc.filters[3].filter == nil)  // kfree names no cache
        let plain = AttributionSession.plan(target: .cache("kmalloc-32"), gfpBits: ["__GFP_ACCOUNT": 21, "__GFP_RECLAIMABLE": 4, "__GFP_DMA": 0])
        #expect(plain.filters[2].filter == "bytes_alloc == 32 && !(gfp_flags & 0x200011)")  // bits as this kernel numbers them
    }

    /// A large session asks for every kmalloc above the largest cache (its
    /// gfp class does not matter: all of it is in SUnreclaim) and kfree.
    @Test func aLargeSessionsPlanIsKmallocAboveTheLargestCacheAndKfree() {
        let plan = AttributionSession.plan(target: .large(largestKmallocBytes: 8192), gfpBits: ["__GFP_ACCOUNT": 22])
        #expect(plan.filters.map(\.event) == ["kmem/kmalloc", "kmem/kfree"])
        #expect(plan.filters[0].filter == "bytes_alloc > 8192" && plan.filters[1].filter == nil)
    }

    /// A hist trigger counts events and matches no pointer: it would count
    /// each large allocation twice, so a large session never uses one.
    @Test func aLargeSessionNeverRunsAsAHistTrigger() {
        #expect(AttributionSession.histUnusable(for: .large(largestKmallocBytes: 8192), kernelHasHistTriggers: true)
                == AttributionSession.largeAllocationsInHist)
        #expect(AttributionSession.histUnusable(for: .cache("dentry"), kernelHasHistTriggers: true) == nil)
        #expect(AttributionSession.histUnusable(for: .cache("dentry"), kernelHasHistTriggers: false) == AttributionSession.noHistTriggers)
    }

    /// The largest kmalloc size class, whichever copies of it the kernel has.
    @Test(arguments: [
        (["kmalloc-8", "kmalloc-4k", "kmalloc-8k", "kmalloc-cg-8k", "kmalloc_buckets", "msg_msg-8k", "dentry"], 8192),
        (["kmalloc-rnd-07-8k", "kmalloc-rnd-15-4k", "kmalloc-cg-2k"], 8192),
        (["kmalloc-64k", "kmalloc-rcl-128k", "dma-kmalloc-128k"], 131_072),  // 64 KiB pages: two pages
        (["msg_msg-8k", "memdup_user-8k", "kmalloc_buckets", "dentry"], nil),
        ([], nil),
    ] as [([String], Int?)])
    func theLargestKmallocSizeClass(names: [String], largest: Int?) {
        #expect(KmallocCache.largestSize(in: names) == largest)
    }

    /// `(outside caches, unreclaimable)` is a large session bounded by the
    /// kernel's own largest kmalloc cache (sysfs, else slabinfo); every other
    /// name is a cache, and a kernel without kmalloc caches is said so.
    @Test func theReservedNameIsALargeSessionBoundedByTheKernelsCaches() throws {
        let root = try TemporaryDirectory()
        for name in ["kmalloc-8k", "kmalloc-cg-8k", "kmalloc-4k", "dentry"] {
            try FileManager.default.createDirectory(atPath: root.path("sys/kernel/slab/\(name)"), withIntermediateDirectories: true)
        }
        let sysfs = root.path("sys"), procfs = root.path("proc")
        #expect(try AttributionTarget(slab: Attribution.outsideCaches, sysfs: sysfs, procfs: procfs) == .large(largestKmallocBytes: 8192))
        #expect(try AttributionTarget(slab: "kmalloc-8k", sysfs: sysfs, procfs: procfs) == .cache("kmalloc-8k"))
        #expect(AttributionTarget.large(largestKmallocBytes: 8192).name == Attribution.outsideCaches)
        #expect(AttributionTarget.large(largestKmallocBytes: 8192).largerThanBytes == 8192 && AttributionTarget.cache("x").largerThanBytes == nil)
        // Without /sys/kernel/slab (a SLAB kernel, or sysfs not mounted): /proc/slabinfo.
        try root.write("proc/slabinfo", """
            slabinfo - version: 2.1
            # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
            kmalloc-16k           16     16  16384    2    8 : tunables    0    0    0 : slabdata      8      8      0
            kmalloc-8k            20     20   8192    4    8 : tunables    0    0    0 : slabdata      5      5      0

            """)
        #expect(try AttributionTarget(slab: Attribution.outsideCaches, sysfs: root.path("nosys"), procfs: procfs) == .large(largestKmallocBytes: 16384))
        #expect(throws: Tracefs.Failure.unavailable("cannot tell which allocations are outside every cache: no kmalloc cache is listed in "
                                                    + "\(root.path("nosys"))/kernel/slab or \(root.path("noproc"))/slabinfo")) {
            try AttributionTarget(slab: Attribution.outsideCaches, sysfs: root.path("nosys"), procfs: root.path("noproc"))
        }
    }
}
