import Testing
import TestSupport
@testable import SlabWatchCore

/// The one path from sample to finding: its halves, its settings (the one
/// inode-cache selector), a restore, a reload, and the series it derives.
struct PipelineTests {
    /// A step is its two halves: the same story stepped, and recorded then
    /// evaluated sample by sample, ends with the same findings and ring.
    @Test func aStepIsRecordThenEvaluate() throws {
        let story = Scenario.seed()
        var stepped = Pipeline(), halves = Pipeline()
        var steppedEvents: [GrowthDetector.Event] = [], halvesEvents: [GrowthDetector.Event] = []
        for sample in story.samples {
            steppedEvents += stepped.step(sample).report.events
            halvesEvents += halves.evaluate(latest: halves.record(sample)).report.events
        }
        #expect(steppedEvents == halvesEvents && steppedEvents.contains { $0.kind == .opened })
        #expect(try #require(stepped.latest).report == #require(halves.latest).report)
        #expect(stepped.ring.seriesNames == halves.ring.seriesNames && stepped.ring.fine.count == halves.ring.fine.count)
    }

    /// A record refills the caches array of the sample recorded two records
    /// back once nothing else holds it, so a steady tick allocates none; an
    /// array someone still holds (a request serving that sample) is never
    /// written: the record then makes a new one.
    @Test func aRecordRefillsTheArrayOfTwoRecordsBackUnlessItIsHeld() {
        var samples = Scenario.seed().samples
        // The first sample has many more caches: an array refilled from its
        // storage keeps that capacity, which a new one would not have.
        samples[0].caches += (0..<200).map { SlabCache(name: "module\($0)", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64,
                                                          pagesPerSlab: 1, activeSlabs: 1, slabs: 1, pageSize: 4096) }
        let storage = { (sample: Sample) in sample.caches.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } }
        var pipeline = Pipeline()
        var first: Sample? = pipeline.step(samples[0]).sample
        let firstStorage = storage(first!)
        _ = pipeline.step(samples[1])
        first = nil
        let held = pipeline.step(samples[2]).sample
        #expect(storage(held) == firstStorage && held.caches.capacity >= samples[0].caches.count)
        _ = pipeline.step(samples[3])
        let fifth = pipeline.step(samples[4]).sample
        #expect(storage(fifth) != storage(held))
        #expect(held.caches == Pipeline.recorded(samples[2]).caches && fifth.caches == Pipeline.recorded(samples[4]).caches)
    }

    /// The ring takes the detector's selector and its minimum driver change
    /// from the pipeline's settings: at the start, at a reload, and over a
    /// restored ring that another selector chose.
    @Test func theRingFollowsTheDetectorsSettingsAndNothingElse() throws {
        var settings = DetectorSettings()
        settings.inodeCaches = try InodeCacheSelector(pattern: "shmem_inode_cache")
        settings.minDriverChange = 1000
        var pipeline = Pipeline(settings: .init(detector: settings))
        #expect(pipeline.ring.inodeCaches == settings.inodeCaches && pipeline.ring.inodeCacheMinimumMove == 1000)

        var reloaded = settings
        reloaded.inodeCaches = try InodeCacheSelector(pattern: "ext4_inode_cache")
        reloaded.minDriverChange = 2500
        pipeline.apply(reloaded)
        #expect(pipeline.settings.detector == reloaded)
        #expect(pipeline.ring.inodeCaches == reloaded.inodeCaches && pipeline.ring.inodeCacheMinimumMove == 2500)

        // A state saved by a daemon that followed the default inode caches.
        var machine = BusyMachine()
        machine.run(60)
        let saved = SavedState(try #require(machine.pipeline(DetectorSettings()).latest), pageSize: 4096, bootID: "b",
                               procfs: "/proc", version: "test", alerts: AlertPolicy().memory)
        #expect(Set(saved.ring.inodeCacheNames.compactMap { $0 }) == ["ext4_inode_cache", "shmem_inode_cache", "mystor_inode_cache"])
        var restarted = Pipeline(settings: .init(detector: settings))
        #expect(restarted.restore(saved, rebootSeenAt: nil).ringKept)
        #expect(restarted.ring.inodeCaches == settings.inodeCaches && restarted.ring.inodeCacheMinimumMove == 1000)
        #expect(restarted.ring.inodeCacheNames.isEmpty && restarted.ring.fine.count == saved.ring.fine.count)
    }

    /// A state of another ring geometry gives its findings, not its history.
    @Test func aRingOfAnotherGeometryIsLeftButItsFindingsAreTaken() throws {
        var s = Scenario()
        s.samples = Array(Scenario.seed().samples.prefix(100))
        let saved = SavedState(try #require(s.run().pipeline.latest), pageSize: 4096, bootID: "b", procfs: "/proc",
                               version: "test", alerts: AlertPolicy().memory)
        var other = Pipeline(settings: .init(ring: .init(fineCapacity: 100)))
        #expect(other.restore(saved, rebootSeenAt: nil) == .init(samples: 0, openFindings: 1, ringKept: false))
        #expect(other.ring.fine.count == 0 && other.ring.configuration.fineCapacity == 100)
        #expect(other.latest == nil)
    }

    /// `latest` is nil before any step; after one it carries what an attach
    /// changed since, as a final checkpoint must.
    @Test func latestShowsWhatChangedSinceTheStep() throws {
        var pipeline = try #require(AttributedFindingTests.pipelineWithAFinding())
        #expect(Pipeline().latest == nil)
        #expect(try #require(pipeline.latest).memory.openFindings.first?.attribution == nil)
        _ = pipeline.attach(AttributedFindingTests.attribution, now: 5)
        #expect(try #require(pipeline.latest).memory.openFindings.first?.attribution == AttributedFindingTests.attribution)
    }

    /// Room for every kept cache plus a quarter for churn.
    @Test(arguments: [(2048, 2560), (4, 5), (1, 1), (100_000, 125_000)])
    func theRingHasRoomForMaxCachesAndAQuarter(_ maxCaches: Int, _ maxSeries: Int) {
        let ring = Pipeline.Settings.ring(.init(fineCapacity: 7, coarseCapacity: 3, coarseEvery: 2), maxCaches: maxCaches)
        #expect(ring == .init(fineCapacity: 7, coarseCapacity: 3, coarseEvery: 2, maxSeries: maxSeries))
    }

    /// A derived series joins every sample as a cache named as no kernel
    /// cache can be, is absent where its source is, and once recorded the
    /// ring keeps it and the detector fits it like any cache.
    @Test func aDerivedSeriesIsRecordedAndFittedLikeACache() throws {
        let outside = DerivedSeries(name: "outside the caches", reclaimable: false, subject: "Memory outside the caches", nextStep: "Look.") { sample in
            sample.inodes.map { 100_000_000 + 4096 * $0.inodes }  // 4 KiB per inode, above the caches
        }
        let story = Scenario.seed()
        var unmeasured = story.samples[0]
        unmeasured.inodes = nil
        #expect(Pipeline.recorded(unmeasured, adding: [outside]).caches == unmeasured.caches)

        var pipeline = Pipeline()
        for sample in story.samples.prefix(144) {
            let recorded = Pipeline.recorded(sample, adding: [outside])
            let cache = try #require(recorded.caches.last)
            #expect(cache.name == outside.name && cache.nameSource == .derived && cache.reclaimable == false)
            #expect(cache.footprintBytes == 100_000_000 + 4096 * sample.inodes!.inodes)
            _ = pipeline.step(recorded)
        }
        #expect(pipeline.ring.series(named: outside.name) != nil)
        let finding = try #require(pipeline.latest?.report.findings.first { $0.slab == outside.name })
        #expect(finding.driver == .inodes && abs(finding.bytesPerUnit - 4096) < 41)
    }
}

/// Every test scenario runs through the pipeline with the settings it is
/// given: a custom inode-cache selector reaches the ring (it did not, and
/// such a scenario measured the default selector's columns).
struct ScenarioPipelineTests {
    /// kmalloc-cg-512 holds 512 B per tmpfs inode beside ext4's churn.
    static func tmpfsCulprit() -> Scenario {
        var machine = BusyMachine()
        machine.culprits = [.init(cache: "kmalloc-cg-512", filesystem: .tmpfs, bytesPerInode: 512)]
        machine.run(300)
        machine.run(300, to: [.tmpfs: 150_000])
        machine.run(120, to: [.ext4: 200_000])  // a find beside it …
        machine.run(60, to: [.ext4: 60_000])    // … evicted
        machine.run(300, to: [.tmpfs: 300_000])
        machine.run(300)
        var scenario = Scenario()
        scenario.samples = machine.samples
        return scenario
    }

    @Test func aCustomSelectorReachesTheRing() throws {
        let scenario = Self.tmpfsCulprit()
        let byDefault = try #require(scenario.replay().0.findings.first { $0.slab == "kmalloc-cg-512" })
        #expect(byDefault.inodeCache == "shmem_inode_cache")

        var none = DetectorSettings()
        none.inodeCaches = try InodeCacheSelector(pattern: "")
        let report = scenario.replay(none).0
        let finding = try #require(report.findings.first { $0.slab == "kmalloc-cg-512" })
        #expect(finding.inodeCache == nil, "no inode cache is followed, so the global count drives it: \(finding.message)")
        #expect(scenario.run(none).pipeline.ring.inodeCacheNames.isEmpty)
    }
}

extension BusyMachine {
    /// Its samples through one pipeline.
    func pipeline(_ settings: DetectorSettings) -> Pipeline {
        var scenario = Scenario()
        scenario.samples = samples
        return scenario.run(settings).pipeline
    }
}
