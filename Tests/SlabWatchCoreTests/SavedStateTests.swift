import Foundation
import Testing
import TestSupport
@testable import SlabWatchCore

/// What survives a restart: the value tree, its binary form, and the ring,
/// findings and alert memory through it.
struct SavedStateTests {
    @Test func everyNodeKindRoundTrips() throws {
        let node = StateNode.object([
            "null": .null, "yes": .bool(true), "no": .bool(false),
            "negative": .integer(-1 << 62), "min": .integer(.min), "max": .unsigned(.max),
            "pi": .double(3.141592653589793), "nan-free": .double(-0.0), "tiny": .double(.leastNonzeroMagnitude),
            "name": .string("kmalloc-rnd-01-32 \u{7f}é"), "bytes": .bytes([0, 255, 7]),
            "list": .array([.integer(1), .array([]), .object([:])]),
        ])
        #expect(try StateNode.parse(node.serialized()) == node)
        // Keys are written sorted: the same value, the same bytes.
        #expect(try node.serialized() == StateNode.parse(node.serialized()).serialized())
    }

    /// Every prefix of a valid file, and every single-byte change of it,
    /// either parses or throws: the reader never traps on what it is given.
    @Test func damagedBytesThrowAndNeverTrap() throws {
        let bytes = try Self.savedState().serialized()
        var thrown = 0
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 400)) {
            do { _ = try SavedState.parse(Array(bytes[0..<length])) } catch { thrown += 1 }
        }
        #expect(thrown > 0)
        var state: UInt64 = 3
        for _ in 0..<2000 {
            var damaged = bytes
            let index = Int(nextRandom(&state) % UInt64(damaged.count))
            damaged[index] = UInt8(truncatingIfNeeded: nextRandom(&state))
            _ = try? SavedState.parse(damaged)
        }
        // Nesting deeper than the bound is refused, not recursed into.
        var deep: [UInt8] = []
        for _ in 0..<10_000 { deep += [8, 1] }  // an array holding an array holding…
        #expect(throws: StateFormatError.self) { try StateNode.parse(deep) }
        let pastTheEnd: [UInt8] = [6, 0xff, 0xff, 0xff, 0x7f]  // a string whose length runs past the end
        #expect(throws: StateFormatError.self) { try StateNode.parse(pastTheEnd) }
    }

    @Test func ringRoundTripsWithBothTiersAndKeepsAppending() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 3, maxSeries: 40))
        for t in 0..<20 {
            let caches = (0..<(t % 3 == 0 ? 30 : 20)).map { Self.cache("c\($0)", slabs: UInt64(t * 10 + $0)) }
            ring.append(Sample(timestampMilliseconds: Int64(t) * 1000, caches: caches, inodes: .init(inodes: UInt64(t), freeInodes: 0)))
        }
        var restored = try StateDecoder.decode(SampleRing.self, from: StateEncoder.encode(ring))
        #expect(restored.seriesNames == ring.seriesNames)
        for (tier, copy) in [(ring.fine, restored.fine), (ring.coarse, restored.coarse)] {
            #expect(copy.count == tier.count)
            for position in 0..<tier.count {
                #expect(copy.time(at: position) == tier.time(at: position))
                #expect(copy.counter(.inodes, at: position) == tier.counter(.inodes, at: position))
                for series in ring.seriesNames.indices {
                    #expect(copy.footprint(series: series, at: position) == tier.footprint(series: series, at: position))
                }
            }
        }
        // Both go on the same way from here.
        let next = Sample(timestampMilliseconds: 20_000, caches: [Self.cache("new", slabs: 5), Self.cache("c1", slabs: 9)])
        ring.append(next)
        restored.append(next)
        #expect(restored.seriesNames == ring.seriesNames)
        #expect(restored.fine.footprint(series: restored.series(named: "new")!, at: restored.fine.count - 1) == 5 * 4096)
    }

    /// Every counter of every slot survives the state file, each kept by its name.
    @Test func everyCounterRoundTripsByName() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 2, coarseEvery: 2))
        for t in 0..<5 { ring.append(Self.countingSample(t)) }
        let restored = try StateDecoder.decode(SampleRing.self, from: StateEncoder.encode(ring))
        for (tier, copy) in [(ring.fine, restored.fine), (ring.coarse, restored.coarse)] {
            for position in 0..<tier.count {
                for counter in SampleRing.Counter.allCases {
                    #expect(copy.counter(counter, at: position) == tier.counter(counter, at: position))
                    #expect(copy.counter(counter, at: position) != nil)
                }
            }
        }
    }

    /// A file that names no counters (written before they were named) holds
    /// the six of then, in their order; one that names them is read by name:
    /// a counter it lacks is absent (negative dentries, from a file written
    /// before they were counted), one this version does not know is dropped.
    @Test func countersAreReadByTheirNames() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 2, coarseEvery: 2))
        for t in 0..<3 { ring.append(Self.countingSample(t)) }
        guard case .object(var members) = try StateEncoder.encode(ring), case .object(var fine) = members["fine"],
              case .words64(let counters) = fine["counters"] else { Issue.record("ring does not encode as expected"); return }
        #expect(fine["counterNames"] == .array(SampleRing.Counter.allCases.map { .string($0.stateKey) }))

        // Six columns a slot, unnamed: the counters of then, in their order.
        let width = SampleRing.Counter.allCases.count
        fine["counterNames"] = nil
        fine["counters"] = .words64((0..<4).flatMap { slot in
            SampleRing.Counter.unnamedStateOrder.map { counters[slot * width + $0.rawValue] }
        })
        members["fine"] = .object(fine)
        let unnamed = try StateDecoder.decode(SampleRing.self, from: .object(members))
        for position in 0..<3 {
            for counter in SampleRing.Counter.unnamedStateOrder {
                #expect(unnamed.fine.counter(counter, at: position) == ring.fine.counter(counter, at: position))
            }
            #expect(ring.fine.counter(.negativeDentries, at: position) != nil)
            #expect(unnamed.fine.counter(.negativeDentries, at: position) == nil)
        }

        // Three columns a slot: slabBytes, one from a later version, inodes.
        fine["counterNames"] = .array([.string("slabBytes"), .string("memoryCgroups"), .string("inodes")])
        fine["counters"] = .words64((0..<4).flatMap { slot in
            [counters[slot * width + SampleRing.Counter.slabBytes.rawValue], 777, counters[slot * width + SampleRing.Counter.inodes.rawValue]]
        })
        members["fine"] = .object(fine)
        let named = try StateDecoder.decode(SampleRing.self, from: .object(members))
        for position in 0..<3 {
            #expect(named.fine.counter(.slabBytes, at: position) == ring.fine.counter(.slabBytes, at: position))
            #expect(named.fine.counter(.inodes, at: position) == ring.fine.counter(.inodes, at: position))
            #expect(named.fine.counter(.dentries, at: position) == nil && named.fine.counter(.openFiles, at: position) == nil)
            #expect(named.fine.counter(.negativeDentries, at: position) == nil)
        }

        // Names that repeat, or columns that do not fit them, are refused.
        fine["counterNames"] = .array([.string("inodes"), .string("inodes"), .string("slabBytes")])
        members["fine"] = .object(fine)
        #expect(throws: DecodingError.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
        fine["counterNames"] = .array([.string("inodes"), .string("slabBytes")])
        members["fine"] = .object(fine)
        #expect(throws: DecodingError.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
    }

    /// A sample in which every counter has a value of its own.
    static func countingSample(_ t: Int) -> Sample {
        let caches = [Self.cache("a", slabs: UInt64(1 + t)), SlabCache(name: "b", activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                                                                     pagesPerSlab: 1, activeSlabs: 1, slabs: 2, pageSize: 4096, reclaimable: true)]
        return Sample(timestampMilliseconds: Int64(t) * 1000, caches: caches,
                      meminfo: .slabTotals(of: caches, memTotal: 1 << 30, memAvailable: 1 << 29),
                      inodes: .init(inodes: UInt64(100 + t), freeInodes: 0),
                      dentries: .init(dentries: UInt64(200 + t), unusedDentries: 0, negativeDentries: UInt64(150 + t)),
                      fileHandles: .init(allocated: UInt64(300 + t), maximum: 1 << 20))
            .with {
                $0.sockets = SocketCounts(used: UInt64(400 + t))
                $0.tasks = TaskCounts(threads: UInt64(500 + t), runnable: 1)
                $0.memoryCgroups = MemoryCgroupCounts(total: UInt64(600 + t), live: 50, dying: UInt64(550 + t), version: .v1)
            }
    }

    /// A ring whose numbers decode but disagree with each other is refused,
    /// since appending to it would index out of bounds.
    @Test func inconsistentRingIsRefused() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 2, coarseEvery: 2))
        ring.append(Sample(timestampMilliseconds: 0, caches: [Self.cache("a", slabs: 1)]))
        guard case .object(var members) = try StateEncoder.encode(ring), case .object(var fine) = members["fine"] else {
            Issue.record("ring does not encode as an object"); return
        }
        fine["head"] = .integer(4)  // one past the last slot
        members["fine"] = .object(fine)
        #expect(throws: DecodingError.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
        members["fine"] = try StateEncoder.encode(ring.fine)
        members["seriesNames"] = .array([.string("a"), .string("a")])
        #expect(throws: DecodingError.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
    }

    /// The seed story stopped half-way and continued from its saved state
    /// ends as the uninterrupted run does, and opens its finding only once.
    @Test func detectorContinuesFromSavedMemoryWithoutReopening() throws {
        let story = Scenario.seed()
        let (uninterrupted, allEvents) = story.replay()
        #expect(allEvents.filter { $0.kind == .opened }.count == 1)

        var pipeline = Pipeline(), policy = AlertPolicy()
        let half = 100  // the finding is open by then
        var events: [GrowthDetector.Event] = []
        for sample in story.samples[..<half] {
            let report = pipeline.step(sample).report
            events += report.events
            _ = policy.alerts(for: report, now: sample.timestampMilliseconds)
        }
        #expect(events.contains { $0.kind == .opened })
        let latest = try #require(pipeline.latest)
        let saved = SavedState(latest, pageSize: 4096, bootID: "b", procfs: "/proc", version: "test", alerts: policy.memory)
        let restored = try SavedState.parse(saved.serialized())
        #expect(restored.detector == latest.memory)
        #expect(restored.alerts == policy.memory)
        #expect(restored.metadata.lastSampleMilliseconds == story.samples[half - 1].timestampMilliseconds)

        var pipeline2 = Pipeline(), policy2 = AlertPolicy()
        #expect(pipeline2.restore(restored, rebootSeenAt: nil) == .init(samples: half, openFindings: 1, ringKept: true))
        policy2.memory = restored.alerts
        var report = GrowthDetector.Report()
        var alerts: [Alert] = []
        for sample in story.samples[half...] {
            report = pipeline2.step(sample).report
            events += report.events
            alerts += policy2.alerts(for: report, now: sample.timestampMilliseconds).alerts
        }
        #expect(events.filter { $0.kind == .opened }.count == 1)
        #expect(!alerts.contains { $0.kind == .findingOpened })
        #expect(report.findings.map(\.slab) == uninterrupted.findings.map(\.slab))
        #expect(report.findings.first?.firstSeenMilliseconds == uninterrupted.findings.first?.firstSeenMilliseconds)
        #expect(report.findings.first?.classification == .tracksEviction)
    }

    /// From an earlier boot, what was open is resolved as `reboot`, and no
    /// window reaches back into the old boot's samples.
    @Test func anEarlierBootResolvesOpenFindingsAndFencesTheHistory() throws {
        let story = Scenario.seed()
        var s = Scenario()
        s.samples = Array(story.samples[..<100])
        let before = try #require(s.run().pipeline.latest)
        #expect(before.memory.openFindings.count == 1)
        let rebootAt = story.samples[99].timestampMilliseconds + 60_000
        var pipeline = Pipeline()
        let saved = SavedState(before, pageSize: 4096, bootID: "earlier", procfs: "/proc", version: "test", alerts: AlertPolicy().memory)
        #expect(pipeline.restore(saved, rebootSeenAt: rebootAt) == .init(samples: 100, openFindings: 0, ringKept: true))
        // After the reboot kmalloc-32 is small and flat: the old finding
        // stays resolved and nothing new opens.
        var after = Scenario()
        var report = GrowthDetector.Report()
        var events: [GrowthDetector.Event] = []
        for i in 0..<60 {
            after.add(inodes: 40_000 + after.jitter(300), caches: [("kmalloc-32", 200e6 + after.jitter(1e6), false)])
            var sample = after.samples[i]
            sample.timestampMilliseconds = rebootAt + Int64(i) * 5000
            report = pipeline.step(sample).report
            events += report.events
        }
        #expect(events.isEmpty)
        let resolved = try #require(report.findings.first { $0.slab == "kmalloc-32" })
        #expect(resolved.state == .resolved && resolved.resolution == .reboot)
        #expect(resolved.message.contains("rebooted"))
    }

    /// A rise after the reboot is fitted on this boot's samples only, even
    /// where the old boot's flat samples would extend the line (and the
    /// longest passing window would otherwise be chosen); the trend too.
    @Test func windowsNeverReachBackBeforeTheReboot() throws {
        var s = Scenario()
        for _ in 0..<100 { s.add(inodes: 40_000 + s.jitter(300), caches: [("kmalloc-32", 200e6 + s.jitter(1e6), false)]) }
        let before = try #require(s.run().pipeline.latest)
        let rebootAt = s.samples.last!.timestampMilliseconds + 5000
        var pipeline = Pipeline()
        _ = pipeline.restore(SavedState(before, pageSize: 4096, bootID: "earlier", procfs: "/proc", version: "test",
                                        alerts: AlertPolicy().memory), rebootSeenAt: rebootAt)
        var inodes = 40_000.0
        var report = GrowthDetector.Report()
        for i in 0..<100 {
            inodes += 10_000
            s.add(inodes: inodes + s.jitter(300), caches: [("kmalloc-32", 200e6 + 32768 * (inodes - 40_000) + s.jitter(1e6), false)])
            var sample = s.samples.last!
            sample.timestampMilliseconds = rebootAt + Int64(i) * 5000
            report = pipeline.step(sample).report
        }
        let finding = try #require(report.findings.first { $0.slab == "kmalloc-32" && $0.state == .open })
        #expect(finding.evidence.allSatisfy { $0.timestampMilliseconds >= rebootAt }, "\(finding.evidence.first!)")
        let trend = try #require(report.trend)
        #expect(trend.windowSeconds <= 99 * 5)
    }

    /// The state's times are its invariants: between 2000 and a day from
    /// now, never going back within a tier, the metadata's newest the ring's.
    @Test func timesOutsideTheirRangeAreRefused() throws {
        let now: Int64 = 1_796_000_000_000
        func state(_ times: [Int64], last: Int64? = nil) -> SavedState {
            var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2))
            for time in times { ring.append(Sample(timestampMilliseconds: time, caches: [Self.cache("a", slabs: 1)])) }
            return SavedState(metadata: .init(pageSize: 4096, bootID: "b", version: "test", lastSampleMilliseconds: last ?? times.last ?? 0),
                              ring: ring, detector: GrowthDetector().memory, alerts: AlertPolicy().memory)
        }
        #expect(throws: Never.self) { try state([now - 10_000, now - 5000, now]).checkTimes(now: now) }
        #expect(throws: Never.self) { try state([]).checkTimes(now: now) }
        #expect(throws: Never.self) { try state([now + 3_600_000]).checkTimes(now: now) }  // clock set back an hour
        #expect(throws: StateFormatError.self) { try state([.min, now]).checkTimes(now: now) }
        #expect(throws: StateFormatError.self) { try state([now], last: .max).checkTimes(now: now) }
        #expect(throws: StateFormatError.self) { try state([now + 2 * 86_400_000]).checkTimes(now: now) }
        #expect(throws: StateFormatError.self) { try state([SavedState.earliestMilliseconds - 1]).checkTimes(now: now) }
        #expect(throws: StateFormatError.self) { try state([now, now - 1]).checkTimes(now: now) }
        #expect(throws: StateFormatError.self) { try state([now - 1], last: now - 2).checkTimes(now: now) }
    }

    /// Counters the ring's own arithmetic relies on are checked as it decodes:
    /// `appended = Int64.max` would overflow on the next append.
    @Test(arguments: [
        ("appended", StateNode.integer(.max)), ("appended", .integer(2)), ("coarseCopies", .integer(.max)),
        ("lastSeen", .array([.integer(.min)])), ("lastCoarse", .array([.integer(-5)])), ("evictedSeries", .integer(-1)),
    ])
    func ringCountersOutsideTheGeometryAreRefused(_ key: String, _ value: StateNode) throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 4, coarseCapacity: 2, coarseEvery: 2))
        for t in 0..<6 { ring.append(Sample(timestampMilliseconds: Int64(t), caches: [Self.cache("a", slabs: 1)])) }
        guard case .object(var members) = try StateEncoder.encode(ring) else { Issue.record("not an object"); return }
        #expect(throws: Never.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
        members[key] = value
        #expect(throws: DecodingError.self) { try StateDecoder.decode(SampleRing.self, from: .object(members)) }
    }

    /// Ring times at both ends of Int64 (a recording's directory names, a
    /// state file) reach the detector's window arithmetic and the page's
    /// timestamps: they saturate instead of trapping.
    @Test func ringTimesAtTheEndsOfInt64DoNotTrap() throws {
        var pipeline = Pipeline(settings: .init(ring: .init(fineCapacity: 16, coarseCapacity: 4, coarseEvery: 4)))
        var report = GrowthDetector.Report()
        for (i, time) in [Int64.min, .min + 1, -1, 0, 1, .max - 1, .max].enumerated() {
            let sample = Sample(timestampMilliseconds: time, caches: [Self.cache("a", slabs: UInt64(1 + i * 100))],
                                inodes: .init(inodes: UInt64(1 + i * 1000), freeInodes: 0))
            report = pipeline.step(sample).report
        }
        #expect(report.findings.allSatisfy { !$0.message.isEmpty })
        #expect(RFC3339.format(unixMilliseconds: .min) == "0000-01-01T00:00:00.000Z")
        #expect(RFC3339.format(unixMilliseconds: .max) == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339.format(unixMilliseconds: 1_795_600_000_123) == "2026-11-25T09:46:40.123Z")
    }

    static func cache(_ name: String, slabs: UInt64) -> SlabCache {
        SlabCache(name: name, activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128, pagesPerSlab: 1,
                  activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: false)
    }

    static func savedState() -> SavedState {
        var pipeline = Pipeline(settings: .init(ring: .init(fineCapacity: 16, coarseCapacity: 8, coarseEvery: 2)))
        for sample in Scenario.seed().samples.prefix(40) { _ = pipeline.step(sample) }
        return SavedState(pipeline.latest!, pageSize: 4096, bootID: "boot", procfs: "/proc", version: "test", alerts: AlertPolicy().memory)
    }
}

private func nextRandom(_ state: inout UInt64) -> UInt64 {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return state >> 17
}

/// Inputs the fuzzer found (Tests/Fixtures/fuzz/README.md).
struct SavedStateFuzzFindingsTests {
    /// Finding times near Int64.min in a state that parses: the next
    /// evaluation must not trap (it did: arithmetic overflow in followPhase).
    @Test func extremeFindingTimesDoNotTrap() throws {
        let bytes = try Fixtures.bytes(RepositoryPaths.fixtures.appendingPathComponent("fuzz/state-time-overflow.bin"))
        let state = try SavedState.parse(Array(bytes))
        var pipeline = Pipeline(settings: .init(ring: state.ring.configuration))
        let restored = pipeline.restore(state, rebootSeenAt: nil)
        #expect(restored.ringKept && restored.openFindings > 0)
        let cache = SlabCache(name: "kmalloc-32", activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 1, pageSize: 4096, reclaimable: false)
        let sample = Sample(timestampMilliseconds: state.metadata.lastSampleMilliseconds &+ 5000, caches: [cache],
                            inodes: .init(inodes: 1, freeInodes: 0))
        let report = pipeline.step(sample).report
        #expect(report.findings.count >= 1)
    }
}
