import Testing
import TestSupport
@testable import SlabWatchCore

/// Who is charged for a finding (`ChargeRanking`): synthetic cgroups whose
/// kernel memory rises with the cache, beside it, or not at all.
struct ChargeRankingTests {
    static let readings = 30
    /// A footprint rising 1 MB a reading, with a little noise.
    static var footprint: [Double?] {
        var noise: UInt64 = 11
        return (0..<readings).map { 100e6 + Double($0) * 1e6 + 2e4 * nextNoise(&noise) }
    }
    static func series(_ name: String, _ value: (Int) -> Double) -> ChargeRanking.Series {
        .init(cgroup: name, bytes: (0..<readings).map { Optional(value($0)) })
    }

    /// Two cgroups rising in lockstep with the cache share it: both are named.
    @Test func twoCgroupsRisingInLockstepAreBothNamed() throws {
        let charged = try #require(ChargeRanking.byKernelMemory(
            footprint: Self.footprint,
            cgroups: [Self.series("/a.service") { 5e6 + Double($0) * 6e5 }, Self.series("/b.service") { 9e6 + Double($0) * 4e5 },
                      Self.series("/idle.service") { _ in 7e6 }],
            other: Array(repeating: 1e6, count: Self.readings), version: .v1, windowSeconds: 1800))
        #expect(charged.source == .memcgKmem)
        #expect(charged.entries.map(\.cgroup) == ["/a.service", "/b.service"])
        #expect(abs(charged.entries[0].share - 0.6) < 0.02 && abs(charged.entries[1].share - 0.4) < 0.02)
        #expect(abs(charged.entries[0].riseBytes - 29 * 6e5) < 1 && charged.entries[0].rSquared! > 0.99)
        #expect(charged.otherShare < 0.02)
    }

    /// One cgroup rising with the cache, one whose kernel memory came and
    /// went (files made and deleted in waves) and ended higher: the first
    /// holds at least 80 % though the second rose as far.
    @Test func aCgroupRisingInStepOutranksOneThatWentUpAndDown() throws {
        let steady = Self.series("/system.slice/xattr.service") { 5e6 + Double($0) * 1e6 }
        let waves = Self.series("/system.slice/churn.service") { i in 5e6 + Double(i % 6) * 6e6 + (i == Self.readings - 1 ? 29e6 : 0) }
        let charged = try #require(ChargeRanking.byKernelMemory(footprint: Self.footprint, cgroups: [waves, steady],
                                                                 other: [], version: .v1, windowSeconds: 1800))
        #expect(charged.top?.cgroup == "/system.slice/xattr.service")
        #expect(try #require(charged.top).share >= 0.8)
        #expect(charged.sentence(slab: "kmalloc-cg-512").contains("/system.slice/xattr.service"))
        #expect(charged.sentence(slab: "kmalloc-cg-512").contains("cgroup v1 counts a cgroup's kernel memory as one number"))
    }

    /// A cgroup that fell, and one that did not move, are never named; with
    /// nobody rising the ranking says so rather than naming anyone.
    @Test func nobodyRisingNamesNobody() throws {
        let charged = try #require(ChargeRanking.byKernelMemory(
            footprint: Self.footprint, cgroups: [Self.series("/falls") { 50e6 - Double($0) * 1e6 }, Self.series("/flat") { _ in 5e6 }],
            other: [], version: .v2, windowSeconds: 600))
        #expect(charged.entries.isEmpty && charged.source == .memcgKernel)
        #expect(charged.sentence(slab: "dentry").hasPrefix("No memory cgroup's kernel memory rose with it"))
        #expect(ChargeRanking.byKernelMemory(footprint: [1e6], cgroups: [], other: [], version: .v1, windowSeconds: 0) == nil)
    }

    /// At most three are named, each with at least 5 %; "other" (the cgroups
    /// beyond the kept ones) is never named, only counted in the others' share.
    @Test func atMostThreeAreNamedAndOtherNever() throws {
        let rising = (1...5).map { n in Self.series("/s\(n).service") { Double($0) * 1e5 * Double(n) } }
            + [Self.series("/tiny.service") { Double($0) * 1e3 }]
        let charged = try #require(ChargeRanking.byKernelMemory(
            footprint: Self.footprint, cgroups: rising, other: (0..<Self.readings).map { Double($0) * 2e6 }, version: .v1, windowSeconds: 60))
        #expect(charged.entries.map(\.cgroup) == ["/s5.service", "/s4.service", "/s3.service"])
        #expect(charged.entries.allSatisfy { $0.share >= ChargeRanking.minShare })
        #expect(abs(charged.otherShare + charged.entries.reduce(0) { $0 + $1.share } - 1) < 1e-9 && charged.otherShare > 0.5)
    }

    /// Plain, reclaimable and DMA kmalloc caches are not charged to any
    /// cgroup; `kmalloc-cg-*` and named caches are.
    @Test func cachesNotAccountedAreSaidSo() {
        for name in ["kmalloc-512", "kmalloc-rcl-64", "dma-kmalloc-256", "kmalloc-rnd-03-32"] { #expect(!ChargeRanking.isAccounted(name), "\(name)") }
        for name in ["kmalloc-cg-512", "dentry", "shmem_inode_cache", "(outside caches, unreclaimable)"] { #expect(ChargeRanking.isAccounted(name), "\(name)") }
        #expect(ChargeRanking.notAccounted(windowSeconds: 60).sentence(slab: "kmalloc-512")
            == "kmalloc-512 is not charged to memory cgroups (its allocations are not accounted): attribution names who allocates it.")
    }

    /// A BPF attribution's net bytes per memory cgroup rank first and say so.
    @Test func bpfAttributionWinsAndSaysSo() throws {
        let attribution = AttributionCountsTests.attribution()
        let charged = try #require(ChargeRanking.byAttribution(attribution))
        #expect(charged.source == .bpf && !charged.entries.isEmpty)
        let expected = attribution.callSites.flatMap { $0.processes ?? [] }.filter { $0.netBytes > 0 && ($0.memoryCgroup ?? $0.cgroup) != nil }
        let total = expected.reduce(0.0) { $0 + Double($1.netBytes) }
        for entry in charged.entries {
            let bytes = expected.filter { ($0.memoryCgroup ?? $0.cgroup) == entry.cgroup }.reduce(0.0) { $0 + Double($1.netBytes) }
            #expect(abs(entry.share - bytes / total) < 1e-9 && entry.riseBytes == bytes && entry.rSquared == nil)
        }
        #expect(charged.sentence(slab: attribution.cache).hasPrefix("By BPF attribution ("))
    }

    /// Through the pipeline: kmalloc-cg-512 rises with tmpfs inodes while one
    /// cgroup's kernel memory rises with it and another's comes and goes;
    /// the open finding, and the event that opened or escalated it once
    /// ranked, names the first. Its sentence and journal fields say so.
    @Test func theFindingNamesTheCgroupThatRoseWithIt() throws {
        let (pipeline, events) = Self.story(cache: "kmalloc-cg-512").run()
        let finding = try #require(pipeline.latest?.report.findings.first { $0.slab == "kmalloc-cg-512" && $0.state == .open })
        let charged = try #require(finding.charged)
        #expect(charged.source == .memcgKmem && charged.basis == .kernel && charged.top?.cgroup == Self.xattr && (charged.top?.share ?? 0) >= 0.8)
        #expect(finding.message.contains("Kernel memory charged to \(Self.xattr) rose"))
        #expect(events.contains { $0.finding.charged?.top?.cgroup == Self.xattr })
        let fields = Dictionary(AlertPolicy.alert(.init(kind: .opened, finding: finding, timestampMilliseconds: 0)).fields.map { ($0.name, $0.value) },
                                uniquingKeysWith: { _, _ in "duplicate" })
        #expect(fields["SLABWATCH_CGROUP"] == Self.xattr && fields["SLABWATCH_UNIT"] == "xattr.service")
        #expect(fields["SLABWATCH_CGROUP_SOURCE"] == "memcg-kmem" && Double(fields["SLABWATCH_CGROUP_SHARE"] ?? "") ?? 0 >= 0.8)
        // Kept in the detector's memory, so a restart keeps it.
        #expect(pipeline.latest?.memory.openFindings.first { $0.slab == "kmalloc-cg-512" }?.charged == charged)
    }

    /// A BPF attribution attached to the finding ranks first: the attached
    /// event and the finding name the memory cgroup its net bytes were
    /// charged to, though xattr.service's kernel memory rose with the cache.
    @Test func anAttachedBPFAttributionRanksFirst() throws {
        var (pipeline, _) = Self.story(cache: "kmalloc-cg-512").run()
        let now = try #require(pipeline.latest).sample.timestampMilliseconds
        let owner = Attribution.AllocatingProcess(pid: 7, comm: "setfattr", cgroup: "/", cgroupID: 1, allocations: 900, netCount: 900,
                                                  netBytes: 460_800, memoryCgroup: "/system.slice/attr.service", memoryCgroupID: 42)
        let site = Attribution.CallSite(function: "simple_xattr_alloc+0x2a", module: nil, allocations: 900, frees: 0, netCount: 900,
                                        netBytes: 460_800, share: 1, stacks: [], processes: [owner])
        let attribution = Attribution(cache: "kmalloc-cg-512", source: .bpf, callSites: [site], events: 900, dropped: 0, windowSeconds: 10,
                                      stopReason: .duration, malformedLines: 0, endedMilliseconds: now)
        let attached = pipeline.attach(attribution, now: now)
        let event = try #require(attached)
        #expect(event.finding.charged?.source == .bpf && event.finding.charged?.top?.cgroup == "/system.slice/attr.service")
        #expect(pipeline.latest?.memory.openFindings.first { $0.slab == "kmalloc-cg-512" }?.charged == event.finding.charged)
        #expect(event.finding.message.contains("By BPF attribution (10 s), its net bytes were charged to /system.slice/attr.service 100 %."))
    }

    /// The same story on a plain kmalloc cache: not accounted, nobody named.
    @Test func aPlainKmallocFindingSaysItIsNotCharged() throws {
        let (pipeline, _) = Self.story(cache: "kmalloc-512").run()
        let finding = try #require(pipeline.latest?.report.findings.first { $0.slab == "kmalloc-512" && $0.state == .open })
        #expect(finding.charged?.source == .notAccounted && finding.charged?.entries.isEmpty == true)
        #expect(finding.message.contains("kmalloc-512 is not charged to memory cgroups"))
    }

    /// Under the finding on the page: a hostile cgroup name is markup-escaped
    /// and holds no control; nothing is shown for a finding nobody is charged for.
    @Test func thePageTableEscapesHostileNames() {
        let path = "/system.slice/<script>\"x\u{1b}[31m\u{9b}2J.service"
        let table = WebPage.chargedTable(ChargedCgroups(source: .memcgKmem, windowSeconds: 60,
                                                        entries: [.init(cgroup: path, riseBytes: 1e7, share: 0.9, rSquared: 0.97)], otherShare: 0.1))
        #expect(table.hasPrefix("<table class=\"charged\">") && table.contains("&lt;script&gt;") && !table.contains("<script>"))
        #expect(!table.unicodeScalars.contains { HostileText.isControl($0) && $0 != "\n" } && table.contains("90 %") && table.contains("others"))
        #expect(WebPage.chargedTable(ChargeRanking.notAccounted(windowSeconds: 60)).isEmpty && WebPage.chargedTable(nil).isEmpty)
        #expect(table.contains("<caption>Charged to (kernel memory rising with it, "))
        // v2's slab of the cache's kind: the caption says which figure ranked.
        let slab = WebPage.chargedTable(ChargedCgroups(source: .memcgSlabUnreclaimable, windowSeconds: 60,
                                                       entries: [.init(cgroup: "/a.service", riseBytes: 1e7, share: 1, rSquared: 0.99)], otherShare: 0))
        #expect(slab.contains("<caption>Charged to (unreclaimable slab rising with it, "), "\(slab)")
    }

    static let xattr = "/system.slice/xattr.service"

    /// `cache` rises 512 B per inode over 20 minutes; every 12th sample a
    /// cgroup reading: xattr.service rising 1.5 KB per inode, churn.service
    /// making and deleting files in waves, idle.service flat.
    static func story(cache: String) -> Scenario {
        var s = Scenario()
        var inodes = 40_000.0
        var reading: CgroupMemory?
        for index in 0..<300 {
            if index >= 24 { inodes += 2000 }
            s.add(inodes: inodes + s.jitter(50), caches: [(cache, 50e6 + 512 * (inodes - 40_000) + s.jitter(2e5), false)] + s.background())
            if index % 12 == 0 {
                let churn = 20e6 + Double((index / 12) % 4) * 8e6
                reading = .largest([.init(path: xattr, kernelBytes: UInt64(10e6 + 1500 * (inodes - 40_000))),
                                    .init(path: "/system.slice/churn.service", kernelBytes: UInt64(churn)),
                                    .init(path: "/system.slice/idle.service", kernelBytes: 3_000_000)], limit: 50, version: .v1)
                reading?.readAtMilliseconds = s.samples[index].timestampMilliseconds
            }
            s.samples[index].cgroupMemory = reading
        }
        return s
    }
}
