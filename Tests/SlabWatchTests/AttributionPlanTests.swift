import Testing
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
        let named = AttributionSession.plan(cache: "shmem_inode_cache", gfpBits: [:])
        #expect(named.filters.map(\.event) == ["kmem/kmem_cache_alloc", "kmem/kmem_cache_free"])
        #expect(named.filters.allSatisfy { $0.filter == "name == \"shmem_inode_cache\"" })
        // A quote in a name cannot end the filter's string early.
        #expect(AttributionSession.plan(cache: "a\"b", gfpBits: [:]).filters[0].filter == "name == \"ab\"")
        let kmalloc = AttributionSession.plan(cache: "kmalloc-cg-64", gfpBits: ["__GFP_ACCOUNT": 22, "__GFP_RECLAIMABLE": 4, "__GFP_DMA": 0])
        #expect(kmalloc.filters.map(\.event) == ["kmem/kmem_cache_alloc", "kmem/kmem_cache_free", "kmem/kmalloc", "kmem/kfree"])
        #expect(kmalloc.filters[2].filter == "bytes_alloc == 64 && (gfp_flags & 0x400000)")
        #expect(kmalloc.filters[3].filter == nil)  // kfree names no cache
        let plain = AttributionSession.plan(cache: "kmalloc-32", gfpBits: ["__GFP_ACCOUNT": 21, "__GFP_RECLAIMABLE": 4, "__GFP_DMA": 0])
        #expect(plain.filters[2].filter == "bytes_alloc == 32 && !(gfp_flags & 0x200011)")  // bits as this kernel numbers them
    }
}
