import Glibc
import Logging
import SlabWatchCore
import Synchronization
import Testing
import TestSupport
@testable import SlabWatch
import Systemd

/// The router with a journal the test controls (the real journald path is
/// covered end to end, in SystemdEndToEndTests, and JournalLiveTests) and a
/// logger that keeps what goes to stderr.
struct AlertRouterTests {
    /// A journal that records entries, and can be gone (its socket too, as
    /// `Journal.send` then fails) or failing (a socket nobody listens on).
    final class TestJournal: Sendable {
        let available: Atomic<Bool>
        let failing = Atomic(false)
        let entries = Mutex<[[String: String]]>([])

        init(available: Bool = true) { self.available = Atomic(available) }

        var sink: AlertRouter.JournalSink {
            AlertRouter.JournalSink(socketPath: "/run/test/socket", isAvailable: { self.available.load(ordering: .relaxed) }, send: { fields in
                guard self.available.load(ordering: .relaxed) else { throw SystemdError(call: "sendmsg to /run/test/socket", errno: ENOENT) }
                if self.failing.load(ordering: .relaxed) { throw SystemdError(call: "sendmsg to /run/test/socket", errno: ECONNREFUSED) }
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

    /// A host with no journal at the socket (a container): stderr is where
    /// alerts go, said once at start, and not a failure.
    @Test func withNoJournalAlertsGoToStderrOnly() throws {
        let journal = TestJournal(available: false)
        let (router, lines) = Self.router(journal)
        let opened = Self.storyEvents()
        router.route(opened, now: opened[0].timestampMilliseconds)
        router.drain()
        #expect(journal.entries.withLock { $0.isEmpty })
        #expect(router.outcomes == [AlertOutcome(sink: .stderr, result: .sent): 1])
        let kept = lines.kept.withLock { $0 }
        #expect(kept.count == 2)
        #expect(kept.first?.level == .notice && kept.first?.message == "no journal socket: alerts go to stderr until one appears")
        #expect(kept.first?.metadata["socket"] == "/run/test/socket")
        #expect(kept.last?.metadata["message_id"] == "aaecc68b8b2e4066a6955852ef5fcbf7")
    }

    /// The journal's socket vanishes after alerts went there: an alert is
    /// then counted failed, logged with the reason, and written to stderr,
    /// never counted as a stderr alert alone.
    @Test func aJournalSocketThatVanishesCountsFailedAndLogsWhy() throws {
        let journal = TestJournal()
        let (router, lines) = Self.router(journal, cooldownSeconds: 0)
        let opened = Self.storyEvents()
        let at = opened[0].timestampMilliseconds
        router.route(opened, now: at)
        router.drain()
        journal.available.store(false, ordering: .relaxed)
        router.route(opened, now: at + 60_000)  // no cooldown: the same opening alerts again
        router.drain()
        #expect(journal.entries.withLock { $0.count } == 1)
        #expect(router.outcomes == [AlertOutcome(sink: .journal, result: .sent): 1, AlertOutcome(sink: .journal, result: .failed): 1,
                                    AlertOutcome(sink: .stderr, result: .sent): 1])
        let kept = lines.kept.withLock { $0 }
        let failure = try #require(kept.first { $0.message == "journal send failed, alert goes to stderr" })
        #expect(failure.level == .warning)
        #expect(failure.metadata["error"] == "sendmsg to /run/test/socket failed: No such file or directory")
        #expect(kept.contains { $0.metadata["message_id"] == "aaecc68b8b2e4066a6955852ef5fcbf7" })
    }

    /// A journal whose socket appears after start (a namespace's journald
    /// started later) gets the alerts from then on.
    @Test func aJournalThatAppearsLaterGetsTheAlertsFromThenOn() throws {
        let journal = TestJournal(available: false)
        let (router, lines) = Self.router(journal, cooldownSeconds: 0)
        let opened = Self.storyEvents()
        let at = opened[0].timestampMilliseconds
        router.route(opened, now: at)
        router.drain()
        journal.available.store(true, ordering: .relaxed)
        router.route(opened, now: at + 60_000)
        router.drain()
        #expect(journal.entries.withLock { $0.count } == 1)
        #expect(router.outcomes == [AlertOutcome(sink: .stderr, result: .sent): 1, AlertOutcome(sink: .journal, result: .sent): 1])
        #expect(lines.kept.withLock { $0 }.contains { $0.level == .notice && $0.message == "journal socket appeared: alerts go there" })
    }

    /// A socket path no AF_UNIX address can hold would fail every alert; it is
    /// refused at start instead, naming the key.
    @Test func aJournalSocketPathTooLongForAnAddressIsRefusedAtLoad() throws {
        let fits = "/run/" + String(repeating: "j", count: Journal.maximumSocketPathBytes - 5)
        #expect(try ConfigurationSource(file: nil, overrides: [("alerts.journal-socket", fits)]).load().journalSocket == fits)
        let long = fits + "x"
        #expect(throws: ConfigurationError(origin: "flag --alerts.journal-socket", line: nil, key: "alerts.journal-socket",
                                           message: "'\(long)' is longer than a socket address holds (107 bytes)")) {
            try ConfigurationSource(file: nil, overrides: [("alerts.journal-socket", long)]).load()
        }
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
