import Testing
import TestSupport
@testable import SlabWatchCore

/// The series the pipeline derives from each sample: slab memory outside
/// every cache (unreclaimable and reclaimable) and the per-CPU allocator.
struct DerivedSeriesTests {
    /// A sample of three caches, one of each reclaimability, and a meminfo
    /// whose slab counters hold `unreclaimableBeside` / `reclaimableBeside`
    /// more than the caches do.
    static func sample(unreclaimableBeside: Double, reclaimableBeside: Double = 0, unknown: Double = 0,
                       percpu: UInt64? = 2_400_000) -> Sample {
        var caches = [BusyMachine.cache("kmalloc-1k", bytes: 40e6, reclaimable: false),
                      BusyMachine.cache("dentry", bytes: 90e6, reclaimable: true)]
        if unknown > 0 { caches.append(BusyMachine.cache("mystery", bytes: unknown, reclaimable: nil)) }
        var meminfo = Meminfo.slabTotals(of: caches, memTotal: 1 << 34, memAvailable: 1 << 33,
                                         unreclaimableBeside: unreclaimableBeside, reclaimableBeside: reclaimableBeside)
        if let percpu { meminfo.fields.append(.init(name: "Percpu", value: percpu, isBytes: true)) }
        return Sample(timestampMilliseconds: 1_700_000_000_000, caches: caches, meminfo: meminfo)
    }

    static func footprint(of series: DerivedSeries, in sample: Sample) -> UInt64? {
        Pipeline.recorded(sample).caches.first { $0.name == series.name }?.footprintBytes
    }

    /// The unreclaimable series goes by the name a large-allocation session
    /// takes, so a finding on it says what to attribute.
    @Test func theUnreclaimableSeriesIsTheOneAttributionNames() {
        #expect(DerivedSeries.outsideUnreclaimable.name == Attribution.outsideCaches)
        #expect(DerivedSeries.all.map(\.name) == ["(outside caches, unreclaimable)", "(outside caches, reclaimable)", "(percpu allocator)"])
        #expect(DerivedSeries.all.map(\.reclaimable) == [false, true, nil])
    }

    /// SUnreclaim − Σ unreclaimable caches, SReclaimable − Σ reclaimable
    /// caches (this machine at rest: 6,897,664 B and 0), and Percpu as meminfo says.
    @Test func eachSeriesIsItsCounterLessItsCaches() throws {
        let recorded = Pipeline.recorded(Self.sample(unreclaimableBeside: 6_897_664))
        let derived = recorded.caches.filter(\.isDerived)
        #expect(derived.map(\.name) == DerivedSeries.all.map(\.name))
        #expect(derived.map(\.footprintBytes) == [6_897_664, 0, 2_400_000])
        #expect(derived.allSatisfy { $0.nameSource == .derived && $0.objects == 0 })
        #expect(recorded.cacheTotals == CacheTotals(reclaimableBytes: 90e6.pages, unreclaimableBytes: 40e6.pages, unknownBytes: 0, caches: 2))
    }

    /// Where the reader took the counters on both sides of the caches'
    /// read, their mean is the counter, not meminfo's one reading after it
    /// (caches moved meanwhile); a recording, which has no such pair, keeps meminfo's.
    @Test func theCountersReadAroundTheCachesAreTheCounter() throws {
        var sample = Self.sample(unreclaimableBeside: 6_000_000, reclaimableBeside: 0)
        let after = try #require(sample.meminfo)
        var before = after
        for index in before.fields.indices where before.fields[index].name == "SUnreclaim" { before.fields[index].value -= 2_000_000 }
        var totals = CacheTotals(sample.caches)
        totals.counters = SlabCounters(meanOf: before, after)
        #expect(totals.counters?.unreclaimableBytes == after.slabUnreclaimableBytes! - 1_000_000)
        #expect(totals.counters?.reclaimableBytes == after.slabReclaimableBytes)
        #expect(Self.footprint(of: .outsideUnreclaimable, in: sample) == 6_000_000)
        sample.cacheTotals = totals
        #expect(Self.footprint(of: .outsideUnreclaimable, in: sample) == 5_000_000)
        #expect(SlabCounters(meanOf: nil, after) == nil)
    }

    /// The counters lag the caches by up to the vmstat error either way: a
    /// counter below its caches' sum is 0 outside them, never a wrapped figure.
    @Test func aCounterBelowItsCachesIsZeroOutside() {
        let sample = Self.sample(unreclaimableBeside: -229_376, reclaimableBeside: -98_304)
        #expect(Self.footprint(of: .outsideUnreclaimable, in: sample) == 0)
        #expect(Self.footprint(of: .outsideReclaimable, in: sample) == 0)
    }

    /// Without a side of the difference the series is absent, not the whole
    /// counter (slabinfo down) or a guess (meminfo down, Percpu unknown).
    @Test func aMissingSourceLeavesTheSeriesOut() {
        var noCaches = Self.sample(unreclaimableBeside: 7e6)
        noCaches.caches = []
        #expect(Self.footprint(of: .outsideUnreclaimable, in: noCaches) == nil)
        #expect(Self.footprint(of: .outsideReclaimable, in: noCaches) == nil)
        var noMeminfo = Self.sample(unreclaimableBeside: 7e6)
        noMeminfo.meminfo = nil
        #expect(Pipeline.recorded(noMeminfo).caches.filter(\.isDerived).isEmpty)
        #expect(Self.footprint(of: .percpu, in: Self.sample(unreclaimableBeside: 0, percpu: nil)) == nil)
    }

    /// Caches whose reclaimability sysfs did not give could be on either
    /// side: within the counters' own error they are noise; beyond it, the
    /// outside series are absent from that sample.
    @Test func cachesOfUnknownReclaimabilityBeyondTheErrorLeaveItOut() {
        var within = Self.sample(unreclaimableBeside: 7e6, unknown: 200_000)
        within.vmstat = VmstatAccuracy(threshold: 28, cpus: 2, pageSize: 4096)
        #expect(within.vmstat?.errorBytes == 229_376)
        #expect(Self.footprint(of: .outsideUnreclaimable, in: within) == 7_000_000)
        var beyond = within
        beyond.caches[2] = BusyMachine.cache("mystery", bytes: 300_000, reclaimable: nil)
        #expect(Self.footprint(of: .outsideUnreclaimable, in: beyond) == nil)
        #expect(Self.footprint(of: .percpu, in: beyond) == 2_400_000)
        var unknownError = within
        unknownError.vmstat = nil
        #expect(Self.footprint(of: .outsideUnreclaimable, in: unknownError) == nil)
    }

    /// A reader sums every cache before `sampler.max-caches` cuts the
    /// smallest; a cache cut must not read as memory outside the caches.
    @Test func theSumIsTakenBeforeTheCacheLimit() {
        var sample = Self.sample(unreclaimableBeside: 7e6)
        sample.cacheTotals = CacheTotals(sample.caches)
        sample.caches.removeFirst()  // kmalloc-1k, over the limit
        sample.cachesOverLimit = 1
        #expect(Self.footprint(of: .outsideUnreclaimable, in: sample) == 7_000_000)
    }

    /// Derived series are no caches: never summed into the totals, never in
    /// `/metrics`' cache families or the snapshot's caches.
    @Test func derivedSeriesStayOutOfTheCaches() throws {
        let recorded = Pipeline.recorded(Self.sample(unreclaimableBeside: 7e6))
        #expect(CacheTotals(recorded.caches) == recorded.cacheTotals)
        var filter = CacheFilter.all
        #expect(filter.exported(recorded.caches).map(\.name) == ["dentry", "kmalloc-1k"])
        let snapshot = String(decoding: SnapshotRenderer.render(recorded, intervalSeconds: 5), as: UTF8.self)
        #expect(!snapshot.contains("outside caches") && snapshot.contains("kmalloc-1k"))
    }
}

/// What `/metrics` and `/snapshot` say of the outside series: their value
/// as recorded, and nothing (no line, `null`) when a source is down.
struct OutsideCachesExpositionTests {
    static func metrics(_ sample: Sample) -> [Substring] {
        let text = String(decoding: MetricsRenderer.render(.init(sample: sample, exportedCaches: [], version: "t")), as: UTF8.self)
        return text.split(separator: "\n").filter { $0.hasPrefix("slabwatch_memory_outside_caches_bytes") || $0.hasPrefix("slabwatch_memory_percpu_bytes") }
    }

    static func memory(_ sample: Sample) throws -> JSONValue? {
        try JSONValue.parse(SnapshotRenderer.render(sample, intervalSeconds: 5))["memory"]
    }

    @Test func bothShowTheRecordedSeries() throws {
        let recorded = Pipeline.recorded(DerivedSeriesTests.sample(unreclaimableBeside: 6_897_664, reclaimableBeside: 4096))
        #expect(Self.metrics(recorded) == [#"slabwatch_memory_outside_caches_bytes{memory="reclaimable"} 4096"#,
                                           #"slabwatch_memory_outside_caches_bytes{memory="unreclaimable"} 6897664"#,
                                           "slabwatch_memory_percpu_bytes 2400000"])
        let memory = try #require(try Self.memory(recorded))
        #expect(memory["outside_caches_unreclaimable_bytes"]?.unsigned == 6_897_664)
        #expect(memory["outside_caches_reclaimable_bytes"]?.unsigned == 4096)
        #expect(memory["percpu_bytes"]?.unsigned == 2_400_000)
    }

    @Test func aSeriesTheSampleLacksIsAbsentNotZero() throws {
        var noCaches = DerivedSeriesTests.sample(unreclaimableBeside: 7e6)
        noCaches.caches = []
        let recorded = Pipeline.recorded(noCaches)
        #expect(Self.metrics(recorded) == ["slabwatch_memory_percpu_bytes 2400000"])
        let memory = try #require(try Self.memory(recorded))
        #expect(memory["outside_caches_unreclaimable_bytes"] == .null && memory["outside_caches_reclaimable_bytes"] == .null)
    }
}

/// The outside series on a busy machine: a module hangs 16 KiB outside every
/// cache on each inode of one tmpfs, while a find walks ext4, a cache wanders
/// by tens of MiB and meminfo's counters lag by this machine's vmstat error
/// (28 pages × 2 CPUs). The detector fits the outside series like a cache.
struct OutsideCachesStoryTests {
    static let vmstatError = Double(VmstatAccuracy(threshold: 28, cpus: 2, pageSize: 4096).errorBytes)

    static func story(culprit: Bool) -> BusyMachine {
        var machine = BusyMachine()
        machine.vmstatErrorBytes = vmstatError
        if culprit {
            machine.culprits = [.init(cache: "large kmalloc", filesystem: .tmpfs, bytesPerInode: 16_384, base: 6.9e6, outsideCaches: true)]
        }
        machine.run(300)
        machine.run(300, to: [.tmpfs: 10_000])
        machine.run(120, to: [.ext4: 200_000])  // a find beside it …
        machine.run(60, to: [.ext4: 60_000])    // … evicted
        machine.run(300, to: [.tmpfs: 20_000])
        machine.run(300)
        return machine
    }

    @Test func aModulesMemoryOutsideEveryCacheIsFoundPerInodeOfItsFilesystem() throws {
        let report = try #require(Self.story(culprit: true).replay().reports.values.max { $0.findings.count < $1.findings.count })
        let finding = try #require(report.findings.first { $0.slab == Attribution.outsideCaches },
                                   "findings: \(report.findings.map(\.slab))")
        #expect(finding.inodeCache == "shmem_inode_cache", "\(finding.message)")
        #expect(abs(finding.bytesPerUnit - 16_384) / 16_384 < 0.05, "\(finding.bytesPerUnit)")
        #expect(finding.reclaimable == false)
        // The find's own ext4_inode_cache finding is real; no other derived series moved.
        let others = report.findings.filter { $0.slab.contains(" ") && $0.slab != Attribution.outsideCaches }
        #expect(others.isEmpty, "\(others.map(\.message))")
    }

    /// The sentence, the journal alert and /snapshot say what the memory is
    /// (outside every cache, from the page allocator) and name the session
    /// that finds its callers; none speaks of it as a cache.
    @Test func itsFindingSaysWhatTheMemoryIsAndHowToAttributeIt() throws {
        let replay = Self.story(culprit: true).replay()
        let event = try #require(replay.events.first { $0.finding.slab == Attribution.outsideCaches && $0.kind == .opened },
                                 "events: \(replay.events.map(\.finding.slab))")
        let message = event.finding.message
        let alert = AlertPolicy.alert(event)
        let snapshot = try JSONValue.parse(SnapshotRenderer.renderFindings([event.finding]))
        let snapshotMessage = snapshot.array?.first?["message"]?.string
        for said in [message, alert.value("MESSAGE"), snapshotMessage] {
            let said = try #require(said)
            #expect(said.hasPrefix("Unreclaimable memory the kernel holds outside every slab cache (allocations above the "
                                   + "largest kmalloc cache, served by the page allocator) grows 16.0 KiB per cached inode "
                                   + "of shmem_inode_cache (R² "), "\(said)")
            #expect(said.contains("slabwatch attribute '(outside caches, unreclaimable)'"), "\(said)")
            #expect(!said.contains(" cache falls") && !said.contains(" cache from a leak") && !said.contains("Its cache"), "\(said)")
        }
    }

    /// A derived series must grow by twice the vmstat error before a window
    /// passes: on a 256-CPU node (125 pages × 256 CPUs × 4 KiB = 125 MiB) a
    /// rise of 187.5 MiB outside the caches is within what the counters may
    /// read off, while the same rise in a cache, and 312.5 MiB outside, open
    /// a finding. The counters here are exact: only the rule keeps it shut.
    @Test(arguments: [(12_000.0, true, false), (20_000.0, true, true), (12_000.0, false, true)])
    func aDerivedRiseWithinTwiceTheVmstatErrorOpensNothing(_ inodes: Double, _ outside: Bool, _ opens: Bool) {
        let error = VmstatAccuracy(threshold: 125, cpus: 256, pageSize: 4096)
        #expect(error.errorBytes == 125 << 20)
        var machine = BusyMachine()
        machine.culprits = [.init(cache: "kmalloc-cg-8k", filesystem: .tmpfs, bytesPerInode: 16_384, outsideCaches: outside)]
        machine.run(300)
        machine.run(600, to: [.tmpfs: 2_000 + inodes])
        machine.run(300)
        machine.samples = machine.samples.map { sample in
            var sample = sample
            sample.vmstat = error
            return sample
        }
        let name = outside ? Attribution.outsideCaches : "kmalloc-cg-8k"
        let opened = machine.replay().events.filter { $0.kind == .opened }.map(\.finding.slab)
        #expect(opened.contains(name) == opens, "opened: \(opened)")
    }

    /// The same busy day without the module: the caches' own activity and
    /// the counters' lag open no finding on any derived series.
    @Test func busyCachesAndTheCountersLagOpenNothingOutside() {
        let events = Self.story(culprit: false).replay().events
        #expect(!events.contains { $0.finding.slab.contains(" ") }, "\(events.map(\.finding.slab))")
    }
}

extension Double {
    /// A `BusyMachine.cache` footprint: whole pages.
    fileprivate var pages: UInt64 { UInt64(self / 4096) * 4096 }
}
