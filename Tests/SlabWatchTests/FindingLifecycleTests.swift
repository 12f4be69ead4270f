import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// Growth stories written to disk and replayed through ProcReader → ring →
/// detector: a finding follows the memory, keeps the rise's fit, and is
/// classified whenever the driver falls, however late. The ring is small (20
/// minutes fine, 2 hours coarse at a 10 s interval) so a two-hour plateau rolls
/// the rise out of both tiers before the eviction.
struct FindingLifecycleTests {
    static let ring = SampleRing.Configuration(fineCapacity: 120, coarseCapacity: 120, coarseEvery: 6)
    static let perInode = 32.0 * 1024

    struct Replayed {
        var outcome: Replay.Outcome
        var events: [GrowthDetector.Event]
        var finding: Finding? { outcome.findings.first { $0.slab == "kmalloc-32" } }
        var kinds: [GrowthDetector.Event.Kind] { events.map(\.kind) }
        func first(_ kind: GrowthDetector.Event.Kind) -> GrowthDetector.Event? { events.first { $0.kind == kind } }
    }

    static func replay(_ dir: TemporaryDirectory, _ settings: DetectorSettings = .init()) throws -> Replayed {
        var events: [GrowthDetector.Event] = []
        let outcome = try Replay(settings: .init(detector: settings, ring: ring)).run(dir.url.path, onEvent: { event, _ in events.append(event) })
        #expect(outcome.skipped.isEmpty)
        return Replayed(outcome: outcome, events: events)
    }

    static func writer(_ dir: TemporaryDirectory) -> RecordingWriter {
        var w = RecordingWriter(root: dir.url)
        w.interval = 10
        return w
    }

    /// 20 minutes of quiet, 1 M inodes over 20 minutes, then `after`.
    @discardableResult
    static func seedStory(_ dir: TemporaryDirectory, then after: [RecordingWriter.Leg],
                          perUnit: Double = perInode, rise: Double = 1_000_000, memTotalKiB: UInt64 = 256 << 20) throws -> [Int64] {
        var w = writer(dir)
        return try w.story([.ramp(to: 40_000, over: 1200), .ramp(to: 40_000 + rise, over: 1200)] + after,
                           perUnit: perUnit, memTotalKiB: memTotalKiB)
    }

    static func expectRiseFit(_ f: Finding, perUnit: Double = perInode, rise: Double = 1_000_000) {
        #expect(f.driver == .inodes)
        #expect(abs(f.bytesPerUnit - perUnit) / perUnit < 0.01, "\(f.bytesPerUnit)")
        #expect(f.driverChange >= 0.98 * rise, "\(f.driverChange)")
        #expect(f.growthBytes >= 0.98 * perUnit * rise, "\(f.growthBytes)")
        #expect(f.rSquared > 0.99)
        #expect(f.evidence.count <= 60 && f.evidence.count >= 8)
    }

    @Test func riseHoldThenEvictionTheCacheFollowsResolvesOnceTheMemoryIsBack() throws {
        let dir = try TemporaryDirectory()
        let ends = try Self.seedStory(dir, then: [RecordingWriter.hold(7200, at: 1_040_000),
                                                  .ramp(to: 60_000, over: 180), RecordingWriter.hold(1200, at: 60_000)])
        let r = try Self.replay(dir)
        // Escalated when it passed 10 % of MemTotal, during the rise.
        #expect(r.kinds == [.opened, .escalated, .reclassified, .resolved], "\(r.kinds)")
        let f = try #require(r.finding)
        Self.expectRiseFit(f)
        #expect(f.state == .resolved && f.resolution == .memoryReturned)
        #expect(f.classification == .tracksEviction)
        #expect(f.message.contains("Its memory came back"), "\(f.message)")
        #expect(f.message.hasSuffix("It fell with the inode count when inodes were evicted: memory attached to cached inodes, not a leak."))
        // When each transition happened: opened during the rise, reclassified
        // during the eviction, resolved once the memory had been back 10 minutes.
        let opened = try #require(r.first(.opened)), escalated = try #require(r.first(.escalated))
        let reclassified = try #require(r.first(.reclassified)), resolved = try #require(r.first(.resolved))
        #expect(opened.timestampMilliseconds > ends[0] && escalated.timestampMilliseconds <= ends[1])
        #expect(reclassified.timestampMilliseconds > ends[2] && reclassified.timestampMilliseconds <= ends[3])
        #expect(resolved.timestampMilliseconds >= ends[2] + 600_000 && resolved.timestampMilliseconds <= ends[3] + 600_000)
        #expect(reclassified.finding.state == .open && reclassified.finding.classification == .tracksEviction)
        // The plot shows the fall along the line: fall points down to the evicted level.
        let fall = f.evidence.filter { $0.segment == .fall }
        #expect(fall.count >= 2)
        #expect(fall.first?.driver ?? 0 > 1_000_000 && fall.last?.driver ?? .infinity < 100_000)
        #expect(Double(fall.last?.footprintBytes ?? .max) < 2e9)
    }

    @Test func rightBeforeTheEvictionTheFindingIsOpenAndHolding() throws {
        let dir = try TemporaryDirectory()
        try Self.seedStory(dir, then: [RecordingWriter.hold(10_800, at: 1_040_000)])
        let r = try Self.replay(dir)
        #expect(r.kinds == [.opened, .escalated], "\(r.kinds)")
        let f = try #require(r.finding)
        Self.expectRiseFit(f)
        #expect(f.state == .open && f.phase == .holding && f.classification == .undetermined)
        #expect(f.severity == .critical)
        #expect(abs(Double(f.heldBytes) - Self.perInode * 1_000_000) / (Self.perInode * 1_000_000) < 0.01)
        #expect(f.message.contains("Stopped growing 3 h ago and still holds 30.5 GiB."), "\(f.message)")
        #expect(f.message.contains("Inodes have only risen so far: evicting them (echo 2 > /proc/sys/vm/drop_caches)"))
        // Three hours held at critical: the opening and the escalation, not one alert per cooldown.
        var policy = AlertPolicy()
        let alerts = r.events.flatMap { event in
            policy.alerts(for: .init(events: [event]), now: event.timestampMilliseconds).alerts
        }
        #expect(alerts.map(\.kind) == [.findingOpened, .findingEscalated])
        #expect(alerts.first?.value("SLABWATCH_PHASE") == "rising")
    }

    @Test func evictionTheCacheIgnoresIsLeakLikeAndStaysOpen() throws {
        let dir = try TemporaryDirectory()
        try Self.seedStory(dir, then: [RecordingWriter.hold(7200, at: 1_040_000),
                                       .ramp(to: 60_000, over: 180, cacheFollows: false), RecordingWriter.hold(1800, at: 60_000)])
        let r = try Self.replay(dir)
        #expect(r.kinds == [.opened, .escalated, .reclassified], "\(r.kinds)")
        let f = try #require(r.finding)
        Self.expectRiseFit(f)
        #expect(f.state == .open && f.classification == .leakLike && f.phase == .holding)
        #expect(r.first(.reclassified)?.finding.classification == .leakLike)
        #expect(f.message.contains("The inode count fell but it did not: leak-like."))
        #expect(f.evidence.contains { $0.segment == .fall && $0.driver < 100_000 && Double($0.footprintBytes) > 30e9 })
    }

    @Test func burstThatReturnsWithinMinutesResolves() throws {
        let dir = try TemporaryDirectory()
        var w = Self.writer(dir)
        try w.story([.ramp(to: 40_000, over: 600), .ramp(to: 340_000, over: 180), .ramp(to: 40_000, over: 120),
                      RecordingWriter.hold(1200, at: 40_000)], perUnit: 4096)
        let r = try Self.replay(dir)
        #expect(r.kinds == [.opened, .reclassified, .resolved], "\(r.kinds)")
        let f = try #require(r.finding)
        #expect(f.classification == .tracksEviction && f.resolution == .memoryReturned)
        #expect(abs(f.bytesPerUnit - 4096) / 4096 < 0.02)
    }

    @Test func sameStoryAtAHundredGigabytesAndTenMillionInodes() throws {
        let dir = try TemporaryDirectory()
        try Self.seedStory(dir, then: [RecordingWriter.hold(3600, at: 10_040_000), .ramp(to: 60_000, over: 300),
                                       RecordingWriter.hold(1200, at: 60_000)],
                           perUnit: 10_000, rise: 10_000_000, memTotalKiB: 1 << 30)
        let r = try Self.replay(dir)
        #expect(r.kinds.first == .opened && r.kinds.last == .resolved)
        #expect(r.kinds.filter { $0 == .opened }.count == 1)
        let f = try #require(r.finding)
        Self.expectRiseFit(f, perUnit: 10_000, rise: 10_000_000)
        #expect(f.classification == .tracksEviction && f.resolution == .memoryReturned)
        #expect(f.footprintPeak > 100_000_000_000)
    }

    @Test func reclaimableCacheResolvesAfterStoppingWhileStillHeld() throws {
        let dir = try TemporaryDirectory()
        var w = Self.writer(dir)
        try w.story([.ramp(to: 40_000, over: 600), .ramp(to: 540_000, over: 900), RecordingWriter.hold(1800, at: 540_000)],
                     cache: "dentry", perUnit: 192 * 1.1, reclaimable: true)
        let r = try Self.replay(dir)
        #expect(r.kinds == [.opened, .resolved], "\(r.kinds)")
        let f = try #require(r.outcome.findings.first { $0.slab == "dentry" })
        #expect(f.severity == .info && f.resolution == .stoppedGrowing)
        #expect(Double(f.heldBytes) > 0.9 * 192 * 1.1 * 500_000)  // resolved although still held
        #expect(r.events[1].timestampMilliseconds - r.events[0].timestampMilliseconds < 1500 * 1000)
    }

    @Test func aFindingThatOpenedAfterTheDriverPeakedStillClassifies() throws {
        // The daemon started late: its first windows already hold the rise and the
        // start of a plateau; the eviction comes afterwards.
        let dir = try TemporaryDirectory()
        try Self.seedStory(dir, then: [RecordingWriter.hold(600, at: 1_040_000), .ramp(to: 60_000, over: 120),
                                       RecordingWriter.hold(900, at: 60_000)])
        let r = try Self.replay(dir)
        let f = try #require(r.finding)
        #expect(f.classification == .tracksEviction)
        #expect(r.kinds.filter { $0 == .opened }.count == 1)
    }
}
