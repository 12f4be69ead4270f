import CBPF
import Foundation
import Testing
import TestSupport
@testable import SlabWatch

/// The BPF session's in-kernel filter, and the program object it embeds.
struct BPFSessionTests {
    static let account: UInt32 = 1 << 22, reclaimable: UInt32 = 1 << 4, dma: UInt32 = 1

    /// kmalloc_type(): DMA first, then reclaimable, then accounted; a normal
    /// kmalloc has none of the three.
    @Test(arguments: [
        ("kmalloc-32", UInt32(32), dma | reclaimable | account, UInt32(0)),
        ("kmalloc-cg-512", 512, dma | reclaimable | account, account),
        ("kmalloc-rcl-1k", 1024, dma | reclaimable, reclaimable),
        ("dma-kmalloc-64", 64, dma, dma),
    ])
    func kmallocCachesFilterBySizeAndGfpClass(name: String, size: UInt32, mask: UInt32, value: UInt32) throws {
        let config = try BPFSession.filter(.cache(name))
        #expect(config.kmalloc_size == size && config.gfp_mask == mask && config.gfp_value == value)
        #expect(config.cache_name_length == UInt32(name.utf8.count))
    }

    @Test func namedCachesTakeNoKmallocEvents() throws {
        let config = try BPFSession.filter(.cache("shmem_inode_cache"))
        let name = withUnsafeBytes(of: config.cache_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(name == "shmem_inode_cache" && config.kmalloc_size == 0 && config.stack_limit == UInt32(AttributionSession.stackLimit))
        #expect(throws: Tracefs.Failure.self) { try BPFSession.filter(.cache(String(repeating: "x", count: 64))) }
    }

    /// A large session matches no cache: kmalloc above the largest one, any gfp class.
    @Test func aLargeSessionTakesEveryKmallocAboveTheLargestCache() throws {
        let config = try BPFSession.filter(.large(largestKmallocBytes: 8192))
        #expect(config.large_min == 8193 && config.kmalloc_size == 0 && config.gfp_mask == 0 && config.cache_name_length == 0)
        #expect(config.stack_limit == UInt32(AttributionSession.stackLimit))
        #expect(try BPFSession.filter(.cache("kmalloc-8k")).large_min == 0)
    }

    /// Before 6.1 the kmem tracepoints passed no `struct kmem_cache *`: the
    /// program would load and count nothing, so such a kernel is not offered it.
    @Test(arguments: [("6.18.0", true), ("6.1.0-18-amd64", true), ("10.0", true), ("6.0.19", false),
                      ("5.15.0-91-generic", false), ("4.19.0", false), ("6", false), ("", false), ("x.y", false)])
    func onlyKernelsWhoseTracepointsPassTheCacheRunIt(release: String, fits: Bool) {
        #expect(BPFSession.tracepointsFit(release: release) == fits)
    }

    /// The committed object is what scripts/bpf.sh builds from bpf/attribution.bpf.c,
    /// checked where the tools are and the kernel and clang are the ones it was built with.
    static let header = TestPaths.repositoryRoot.appendingPathComponent("Sources/CBPF/attribution_object.h")

    static var canRegenerate: Bool {
        guard access("/usr/sbin/bpftool", X_OK) == 0, access("/usr/include/bpf/bpf_helpers.h", R_OK) == 0,
              access("/sys/kernel/btf/vmlinux", R_OK) == 0,
              let text = try? String(contentsOf: header, encoding: .utf8) else { return false }
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return text.contains("// kernel: \(release)\n")
    }

    @Test(.enabled(if: canRegenerate)) func regeneratingTheObjectReproducesTheCommittedBytes() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-bpf-\(UUID().uuidString).h")
        defer { try? FileManager.default.removeItem(at: output) }
        let process = Process()
        process.executableURL = TestPaths.repositoryRoot.appendingPathComponent("scripts/bpf.sh")
        process.arguments = [output.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try Data(contentsOf: output) == Data(contentsOf: Self.header),
                "Sources/CBPF/attribution_object.h is stale: run scripts/bpf.sh and commit it")
    }
}
