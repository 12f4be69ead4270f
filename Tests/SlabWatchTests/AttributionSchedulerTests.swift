import Dispatch
import Logging
import Synchronization
import Testing
@testable import SlabWatch
@testable import SlabWatchCore

/// The daemon's attribution sessions, with a session runner the test drives:
/// one session at a time, and a finding that becomes due meanwhile is
/// attributed when the running one ends — once, in its newest state, unless
/// it resolved meanwhile.
struct AttributionSchedulerTests {
    /// Sessions that run until the test ends them (or the scheduler stops).
    final class ControlledSessions: Sendable {
        let started = Mutex<[String]>([])
        private let begun = DispatchSemaphore(value: 0)
        private let ended = DispatchSemaphore(value: 0)

        var runner: AttributionScheduler.Runner {
            { slab, _, _, cancelled throws(Tracefs.Failure) in
                self.started.withLock { $0.append(slab) }
                self.begun.signal()
                while self.ended.wait(timeout: .now() + .milliseconds(10)) == .timedOut && !cancelled() {}
                return .init(attribution: Attribution(cache: slab, source: .bpf, callSites: [], events: 0, dropped: 0, windowSeconds: 1,
                                                      stopReason: .duration))
            }
        }

        /// The next session to start. (A generous bound: it trips only on a scheduler that never starts one.)
        func nextStarted() -> String? {
            guard begun.wait(timeout: .now() + 10) == .success else { return nil }
            return started.withLock { $0.last }
        }

        func endRunning() { ended.signal() }
    }

    /// The caches whose attributions were attached, in order.
    final class Attached: Sendable {
        let caches = Mutex<[String]>([])
    }

    /// A finding on an unreclaimable cache, as the detector opens one.
    static func finding(_ slab: String, phase: Finding.Phase = .rising, resolved: Bool = false) -> Finding {
        let fit = Finding.RiseFit(
            bytesPerUnit: 512, rSquared: 0.998, windowSeconds: 60, growthBytes: 64e6, driverChange: 125_000,
            fits: [], points: [], footprintFloor: 1_000_000, driverFloor: 40_000, driverPeak: 165_000,
            driverPeakAt: 0, footprintAtDriverPeak: 65_000_000)
        let cache = SlabCache(name: slab, activeObjects: 1, objects: 1, objectSize: 512, objectsPerSlab: 8,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 65_000_000 / 4096, pageSize: 4096, reclaimable: false)
        var finding = Finding(slab: slab, driver: .inodes, fit: fit, cache: cache, now: 0, settings: .init())
        finding.phase = phase
        if resolved { finding.resolve(.memoryReturned, now: 1) }
        return finding
    }

    static func report(_ findings: [Finding], opened: [String] = []) -> GrowthDetector.Report {
        GrowthDetector.Report(findings: findings, events: findings.filter { opened.contains($0.slab) }.map {
            .init(kind: .opened, finding: $0, timestampMilliseconds: 0)
        })
    }

    /// Attributions attach to what the test keeps; what it logs is kept too ("attribution session
    /// started" is logged before the session is handed to its queue: it counts starts at once).
    static func scheduler(_ sessions: ControlledSessions, lines: AlertRouterTests.Lines,
                          attached: Attached) -> AttributionScheduler {
        var settings = AttributionSettings()
        settings.enabled = true
        return AttributionScheduler(settings: settings, procfs: "/nonexistent", logger: Logger(label: "a") { _ in AlertRouterTests.KeptLines(lines: lines) },
                                    runner: sessions.runner) { attribution in attached.caches.withLock { $0.append(attribution.cache) } }
    }

    static func starts(_ lines: AlertRouterTests.Lines) -> Int {
        lines.kept.withLock { $0.filter { $0.message == "attribution session started" }.count }
    }

    @Test func findingsDueWhileASessionRunsAreAttributedWhenItEnds() throws {
        let sessions = ControlledSessions(), lines = AlertRouterTests.Lines(), attached = Attached()
        let scheduler = Self.scheduler(sessions, lines: lines, attached: attached)
        let a = Self.finding("shmem_inode_cache"), b = Self.finding("kmalloc-cg-512"), c = Self.finding("kmalloc-64"),
            d = Self.finding("dentry-like")
        scheduler.consider(Self.report([a], opened: [a.slab]))
        #expect(sessions.nextStarted() == a.slab)
        // While a runs: b opens; c opens and resolves; d opens, holds, and rises again.
        scheduler.consider(Self.report([a, b], opened: [b.slab]))
        scheduler.consider(Self.report([a, b, c, d], opened: [c.slab, d.slab]))
        scheduler.consider(Self.report([a, b, Self.finding(c.slab, resolved: true), Self.finding(d.slab, phase: .holding)]))
        scheduler.consider(Self.report([a, b, Self.finding(d.slab)]))
        #expect(Self.starts(lines) == 1, "never two at once")
        sessions.endRunning()
        #expect(sessions.nextStarted() == b.slab, "the first passed over, first")
        sessions.endRunning()
        #expect(sessions.nextStarted() == d.slab, "once, though it became due twice")
        sessions.endRunning()
        scheduler.stop()
        #expect(sessions.started.withLock { $0 } == [a.slab, b.slab, d.slab], "c resolved before its turn")
        #expect(attached.caches.withLock { $0 } == [a.slab, b.slab, d.slab])
    }

    /// More findings due at once than the queue holds: those beyond it are
    /// said, once each, and the rest are attributed in turn.
    @Test func theQueueIsBoundedAndSaysWhatItRefuses() throws {
        let sessions = ControlledSessions(), lines = AlertRouterTests.Lines(), attached = Attached()
        let scheduler = Self.scheduler(sessions, lines: lines, attached: attached)
        let running = Self.finding("running")
        scheduler.consider(Self.report([running], opened: [running.slab]))
        #expect(sessions.nextStarted() == running.slab)
        let waiting = (0..<(AttributionQueue.capacity + 5)).map { Self.finding("cache-\($0)") }
        scheduler.consider(Self.report([running] + waiting, opened: waiting.map(\.slab)))
        scheduler.consider(Self.report([running] + waiting, opened: waiting.map(\.slab)))  // due again: refused again, said once
        let refused = lines.kept.withLock { $0.filter { $0.level == .warning && $0.message.hasPrefix("attribution queue full") }.count }
        #expect(refused == 5)
        for expected in waiting.prefix(AttributionQueue.capacity) {
            sessions.endRunning()
            #expect(sessions.nextStarted() == expected.slab)
        }
        sessions.endRunning()
        scheduler.stop()
        #expect(sessions.started.withLock { $0.count } == 1 + AttributionQueue.capacity)
    }

    /// Stopping ends the running session early and starts none of those waiting.
    @Test func stopStartsNothingMore() throws {
        let sessions = ControlledSessions(), lines = AlertRouterTests.Lines(), attached = Attached()
        let scheduler = Self.scheduler(sessions, lines: lines, attached: attached)
        let a = Self.finding("a"), b = Self.finding("b")
        scheduler.consider(Self.report([a, b], opened: [a.slab, b.slab]))
        #expect(sessions.nextStarted() == a.slab)
        scheduler.stop()  // returns once a's session has seen `cancelled`
        #expect(sessions.started.withLock { $0 } == [a.slab])
        #expect(attached.caches.withLock { $0 } == [a.slab])
    }
}
