import Logging
import SlabWatchCore
import Synchronization
import Testing
import TestSupport
@testable import SlabWatch

/// The router with a journal the test controls (the real journald path is
/// covered end to end, in SystemdEndToEndTests) and a logger that keeps what
/// goes to stderr.
struct AlertRouterTests {
    /// A journal that records entries, and can be gone or failing.
    final class TestJournal: Sendable {
        struct Refused: Error {}
        let available = Atomic(true)
        let failing = Atomic(false)
        let entries = Mutex<[[String: String]]>([])

        var sink: AlertRouter.JournalSink {
            AlertRouter.JournalSink(isAvailable: { self.available.load(ordering: .relaxed) }, send: { fields in
                if self.failing.load(ordering: .relaxed) { throw Refused() }
                self.entries.withLock { $0.append(Dictionary(fields.map { ($0.name, $0.value) }) { first, _ in first }) }
            })
        }
    }

    /// Keeps every log line (what the router writes to stderr instead of the journal).
    struct KeptLines: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.kept.withLock { $0.append((event.level, "\(event.message)", event.metadata ?? [:])) }
        }
    }
    /// The lines, shared by the handler's copies.
    final class Lines: Sendable {
        let kept = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
    }

    /// The seed story's finding opening, replayed through the real ring and detector.
    static func storyEvents() -> [GrowthDetector.Event] {
        Scenario.seed().replay().1.filter { $0.kind == .opened }
    }

    static func router(_ journal: TestJournal, cooldownSeconds: Double = 600) -> (AlertRouter, Lines) {
        let lines = Lines()
        let logger = Logger(label: "alerts") { _ in KeptLines(lines: lines) }
        var settings = AlertPolicy.Settings()
        settings.cooldownSeconds = cooldownSeconds
        return (AlertRouter(settings: settings, journal: journal.sink, logger: logger), lines)
    }

    @Test func alertsGoToTheJournalWithTheirFields() throws {
        let journal = TestJournal()
        let (router, lines) = Self.router(journal)
        let opened = Self.storyEvents()
        try #require(opened.count == 1)
        router.route(opened, now: opened[0].timestampMilliseconds)
        router.drain()
        let entry = try #require(journal.entries.withLock { $0 }.first)
        #expect(journal.entries.withLock { $0.count } == 1)
        #expect(entry["MESSAGE_ID"] == "aaecc68b8b2e4066a6955852ef5fcbf7")
        #expect(entry["SLABWATCH_SLAB"] == opened[0].finding.slab)
        #expect(entry["PRIORITY"] != nil && entry["MESSAGE"] != nil)
        #expect(router.outcomes == [AlertOutcome(sink: .journal, result: .sent): 1])
        #expect(lines.kept.withLock { $0.isEmpty })
    }

    @Test func aFailingJournalSendsTheAlertToStderrAndCountsBoth() throws {
        let journal = TestJournal()
        journal.failing.store(true, ordering: .relaxed)
        let (router, lines) = Self.router(journal)
        let opened = Self.storyEvents()
        router.route(opened, now: opened[0].timestampMilliseconds)
        router.drain()
        #expect(router.outcomes == [AlertOutcome(sink: .journal, result: .failed): 1, AlertOutcome(sink: .stderr, result: .sent): 1])
        let kept = lines.kept.withLock { $0 }
        #expect(kept.map(\.message).contains("journal send failed, alert goes to stderr"))
        let alert = try #require(kept.first { $0.metadata["message_id"] != nil })
        // The seed story's finding opens at warning: its journal PRIORITY 4 logs at warning.
        #expect(alert.metadata["priority"] == "4" && alert.level == .warning)
        #expect(alert.metadata["slabwatch_slab"] == .string(opened[0].finding.slab))
    }

    @Test func withNoJournalAlertsGoToStderrOnly() throws {
        let journal = TestJournal()
        journal.available.store(false, ordering: .relaxed)
        let (router, lines) = Self.router(journal)
        let opened = Self.storyEvents()
        router.route(opened, now: opened[0].timestampMilliseconds)
        router.drain()
        #expect(journal.entries.withLock { $0.isEmpty })
        #expect(router.outcomes == [AlertOutcome(sink: .stderr, result: .sent): 1])
        #expect(lines.kept.withLock { $0.count } == 1)
    }

    /// A cache that opens again within the cooldown is held back, and counted
    /// as suppressed on the sink it would have gone to.
    @Test func aReopeningWithinTheCooldownIsSuppressed() throws {
        let journal = TestJournal()
        let (router, _) = Self.router(journal, cooldownSeconds: 600)
        let opened = Self.storyEvents()
        let at = opened[0].timestampMilliseconds
        router.route(opened, now: at)
        router.route(opened, now: at + 60_000)
        router.drain()
        #expect(journal.entries.withLock { $0.count } == 1)
        #expect(router.outcomes == [AlertOutcome(sink: .journal, result: .sent): 1, AlertOutcome(sink: .journal, result: .suppressed): 1])
    }
}
