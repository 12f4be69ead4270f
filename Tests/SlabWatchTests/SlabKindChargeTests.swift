import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// On cgroup v2 a finding is charged by the cgroups' slab of the cache's own
/// kind (`memory.stat` `slab_unreclaimable` or `slab_reclaimable`), not by all
/// their kernel memory: a pod whose page tables and stacks grow in step with
/// the cache, more than the pod whose slab does, is not blamed for it.
///
/// The readings are v2 `memory.stat` trees (`CgroupTrees`) written anew at
/// each cgroup reading and read by the daemon's reader: a fixture, because
/// this machine's memory controller is on cgroup v1.
struct SlabKindChargeTests {
    static let slabPod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podaaaa.slice"
    static let otherPod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podbbbb.slice"
    static let idle = "/system.slice/idle.service"

    /// An unreclaimable cache: pod A's unreclaimable slab rises with it; pod
    /// B's kernel memory that is no slab (page tables, stacks) rises twice as
    /// much in step. A is named, by its unreclaimable slab; B is not.
    @Test func anUnreclaimableCacheIsChargedByUnreclaimableSlab() throws {
        let finding = try Self.finding(cache: "kmalloc-cg-512", reclaimable: false) { rise in
            [(Self.slabPod, .init(slabReclaimable: 2_000_000, slabUnreclaimable: 5_000_000 + rise)),
             (Self.otherPod, .init(slabReclaimable: 2_000_000, slabUnreclaimable: 5_000_000, notSlab: 8_000_000 + 2 * rise))]
        }
        let charged = try #require(finding.charged)
        #expect(charged.source == .memcgSlabUnreclaimable && charged.basis == .slabUnreclaimable)
        #expect(charged.entries.map(\.cgroup) == [Self.slabPod] && (charged.top?.share ?? 0) > 0.95, "\(charged)")
        #expect(finding.message.contains("Unreclaimable slab charged to \(Self.slabPod)"), "\(finding.message)")
        #expect(finding.message.contains("of the rise in unreclaimable slab of the cgroups rising with it"))
        let fields = AlertPolicy.chargedFields(charged)
        #expect(fields.contains { $0.name == "SLABWATCH_CGROUP_SOURCE" && $0.value == "memcg-slab-unreclaimable" })
        // /metrics: the one cgroup named, with its share, and no series for the pod not named.
        let metrics = String(decoding: MetricsRenderer.render(.init(sample: Sample(timestampMilliseconds: 0), exportedCaches: [], version: "t",
                                                                    report: .init(findings: [finding]), own: SelfStatistics())), as: UTF8.self)
        let shares = metrics.split(separator: "\n").filter { $0.hasPrefix("slabwatch_finding_charged_share{") }
        #expect(shares.count == 1 && shares[0].hasPrefix("slabwatch_finding_charged_share{cgroup=\"\(Self.slabPod)\","), "\(shares)")
        #expect(shares.first?.contains("slab=\"kmalloc-cg-512\",source=\"memcg-slab-unreclaimable\"") == true, "\(shares)")
        #expect(Double(shares.first?.split(separator: " ").last ?? "") == charged.top?.share)
        // /snapshot: the source and the figure ranked by.
        let snapshot = try #require(try JSONSerialization.jsonObject(with: Data(SnapshotRenderer.renderFindings([finding]))) as? [[String: Any]])
        let rendered = try #require(snapshot.first?["charged"] as? [String: Any])
        #expect(rendered["source"] as? String == "memcg-slab-unreclaimable" && rendered["basis"] as? String == "slab_unreclaimable", "\(rendered)")
    }

    /// The mirror: a reclaimable cache, pod A's reclaimable slab rising with
    /// it and pod B's unreclaimable slab rising twice as much in step. A is
    /// named by its reclaimable slab; B's slab of the other kind is not counted.
    @Test func aReclaimableCacheIsChargedByReclaimableSlab() throws {
        let finding = try Self.finding(cache: "ext4_inode_cache", reclaimable: true) { rise in
            [(Self.slabPod, .init(slabReclaimable: 2_000_000 + rise, slabUnreclaimable: 5_000_000)),
             (Self.otherPod, .init(slabReclaimable: 2_000_000, slabUnreclaimable: 5_000_000 + 2 * rise))]
        }
        let charged = try #require(finding.charged)
        #expect(charged.source == .memcgSlabReclaimable && charged.basis == .slabReclaimable)
        #expect(charged.entries.map(\.cgroup) == [Self.slabPod] && (charged.top?.share ?? 0) > 0.95, "\(charged)")
        #expect(finding.message.contains("Reclaimable slab charged to \(Self.slabPod)"), "\(finding.message)")
    }

    /// v2 readings that tell no slab (as a history restored from a state file
    /// written before slab was kept holds none): kernel memory ranks, and the
    /// sentence says it is all of a cgroup's kernel memory.
    @Test func v2ReadingsWithoutSlabRankByKernelMemory() throws {
        var s = Scenario()
        var inodes = 40_000.0
        var reading: CgroupMemory?
        for index in 0..<300 {
            if index >= 24 { inodes += 2000 }
            let rise = 512 * (inodes - 40_000)
            s.add(inodes: inodes + s.jitter(50), caches: [("kmalloc-cg-512", 50e6 + rise + s.jitter(2e5), false)] + s.background())
            if index % 12 == 0 {
                reading = .largest([.init(path: Self.slabPod, kernelBytes: UInt64(9e6 + rise)), .init(path: Self.idle, kernelBytes: 2_000_000)],
                                   limit: 50, version: .v2)
                reading?.readAtMilliseconds = s.samples[index].timestampMilliseconds
            }
            s.samples[index].cgroupMemory = reading
        }
        let finding = try #require(s.run().pipeline.latest?.report.findings.first { $0.slab == "kmalloc-cg-512" && $0.state == .open })
        let charged = try #require(finding.charged)
        #expect(charged.source == .memcgKernel && charged.basis == .kernel && charged.top?.cgroup == Self.slabPod, "\(charged)")
        #expect(finding.message.contains("this is all of a cgroup's kernel memory, not split by cache"))
    }

    /// The per-CPU allocator (no slab) and a cache of unknown reclaimability
    /// rank by kernel memory; the memory outside every cache is counted in
    /// the charged cgroup's slab (a large kmalloc is unreclaimable slab).
    @Test func thePerCPUAllocatorAndAnUnknownCacheRankByKernelMemory() {
        #expect(ChargeRanking.slabKind(slab: "(outside caches, unreclaimable)", reclaimable: false) == .unreclaimable)
        #expect(ChargeRanking.slabKind(slab: "(percpu allocator)", reclaimable: nil) == nil)
        #expect(ChargeRanking.slabKind(slab: "mystery_cache", reclaimable: nil) == nil)
        #expect(ChargeRanking.slabKind(slab: "dentry", reclaimable: true) == .reclaimable)
        #expect(ChargeRanking.slabKind(slab: "kmalloc-cg-64", reclaimable: false) == .unreclaimable)
    }

    /// `cache` rises 512 B per inode over 20 minutes; at every 12th sample a
    /// v2 tree is written with `pods(rise)` (rise: the cache's bytes above
    /// its floor, at that sample) and an idle service, and read. Returns the
    /// open finding on `cache`.
    static func finding(cache: String, reclaimable: Bool,
                        pods: (_ rise: UInt64) -> [(String, CgroupTrees.Charge)]) throws -> Finding {
        let dir = try TemporaryDirectory()
        let root = dir.path("cgroup")
        var s = Scenario()
        var inodes = 40_000.0
        var reading: CgroupMemory?
        for index in 0..<300 {
            if index >= 24 { inodes += 2000 }
            let rise = 512 * (inodes - 40_000)
            s.add(inodes: inodes + s.jitter(50), caches: [(cache, 50e6 + rise + s.jitter(2e5), reclaimable)] + s.background())
            if index % 12 == 0 {
                try CgroupTrees.node(at: root, charges: pods(UInt64(rise))
                    + [(Self.idle, .init(slabReclaimable: 1_000_000, slabUnreclaimable: 1_000_000))])
                reading = CgroupMemoryReader(root: root, version: .v2, limit: 50).read()
                reading?.readAtMilliseconds = s.samples[index].timestampMilliseconds
            }
            s.samples[index].cgroupMemory = reading
        }
        let (pipeline, _) = s.run()
        return try #require(pipeline.latest?.report.findings.first { $0.slab == cache && $0.state == .open })
    }
}
