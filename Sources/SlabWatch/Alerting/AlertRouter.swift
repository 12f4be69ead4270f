import Dispatch
import Logging
import SlabWatchCore
import Synchronization
import Systemd

/// Delivers alerts to the journal at `alerts.journal-socket` (or, with no
/// journal, as one structured line on stderr) on its own queue, so a slow or
/// missing journal never delays the sampler. Counts every outcome for
/// `slabwatch_alerts_total`.
///
/// The journal is where alerts belong from the first time a socket is at its
/// path (at start, or later: a namespace's journald may start after us).
/// Until then this host has no journal there and stderr is the sink; after,
/// an alert the journal does not take (socket gone, nobody listening) is
/// counted `failed`, logged with the reason, and written to stderr instead.
final class AlertRouter: Sendable {
    private let queue = DispatchQueue(label: "slabwatch.alerts")
    /// Used from the sampler queue (route) and the signal queue (apply on SIGHUP).
    private let policy: Mutex<AlertPolicy>
    private let journal: JournalSink
    /// Whether a socket has been seen at the journal's path (never unset).
    private let journalSeen = Atomic(false)
    private let logger: Logger
    private let counts = Mutex<[AlertOutcome: UInt64]>([:])

    /// The journal alerts go to: the one at a socket path, or one a test controls.
    struct JournalSink: Sendable {
        /// Where it listens, for log lines.
        var socketPath: String
        var isAvailable: @Sendable () -> Bool
        var send: @Sendable ([(name: String, value: String)]) throws -> Void

        /// The journald listening at `socketPath`, written to in its native protocol.
        static func system(socketPath: String) -> JournalSink {
            JournalSink(socketPath: socketPath, isAvailable: { Journal.isAvailable(socketPath: socketPath) },
                        send: { try Journal.send($0, to: socketPath) })
        }
    }

    convenience init(settings: AlertPolicy.Settings, journalSocket: String, logger: Logger) {
        self.init(settings: settings, journal: .system(socketPath: journalSocket), logger: logger)
    }

    init(settings: AlertPolicy.Settings, journal: JournalSink, logger: Logger) {
        policy = Mutex(AlertPolicy(settings: settings))
        self.journal = journal
        self.logger = logger
        if journal.isAvailable() {
            journalSeen.store(true, ordering: .relaxed)
        } else {
            logger.notice("no journal socket: alerts go to stderr until one appears", metadata: ["socket": "\(journal.socketPath)"])
        }
    }

    /// Called on the sampler queue after each evaluation; returns at once.
    func route(_ report: GrowthDetector.Report, now: Int64) {
        let (alerts, suppressed) = policy.withLock { $0.alerts(for: report, now: now) }
        if suppressed > 0 { count(AlertOutcome(sink: currentSink, result: .suppressed), by: UInt64(suppressed)) }
        guard !alerts.isEmpty else { return }
        queue.async { [self] in alerts.forEach(deliver) }
    }

    /// Transitions outside a tick (an attribution attached to a finding).
    func route(_ events: [GrowthDetector.Event], now: Int64) {
        let (alerts, suppressed) = policy.withLock { $0.alerts(for: events, now: now) }
        if suppressed > 0 { count(AlertOutcome(sink: currentSink, result: .suppressed), by: UInt64(suppressed)) }
        guard !alerts.isEmpty else { return }
        queue.async { [self] in alerts.forEach(deliver) }
    }

    func apply(_ settings: AlertPolicy.Settings) { policy.withLock { $0.settings = settings } }

    /// Cooldowns and held-back findings, saved and restored with the state.
    var memory: AlertPolicy.Memory {
        get { policy.withLock { $0.memory } }
        set { policy.withLock { $0.memory = newValue } }
    }

    /// Waits until every alert handed over so far has been delivered (shutdown, tests).
    func drain() { queue.sync {} }

    var outcomes: [AlertOutcome: UInt64] { counts.withLock { $0 } }

    private var currentSink: AlertOutcome.Sink { journalIsTheSink() ? .journal : .stderr }

    /// Whether alerts belong in the journal: once its socket has been seen, always.
    private func journalIsTheSink() -> Bool {
        if journalSeen.load(ordering: .relaxed) { return true }
        guard journal.isAvailable() else { return false }
        if !journalSeen.exchange(true, ordering: .relaxed) {
            logger.notice("journal socket appeared: alerts go there", metadata: ["socket": "\(journal.socketPath)"])
        }
        return true
    }

    private func deliver(_ alert: Alert) {
        if journalIsTheSink() {
            do {
                try journal.send(alert.fields.map { ($0.name, $0.value) })
                count(AlertOutcome(sink: .journal, result: .sent))
                return
            } catch {
                count(AlertOutcome(sink: .journal, result: .failed))
                logger.warning("journal send failed, alert goes to stderr", metadata: ["error": "\(error)"])
            }
        }
        var metadata: Logger.Metadata = [:]
        for field in alert.fields where field.name != "MESSAGE" {
            metadata[field.name.lowercased()] = "\(field.value)"
        }
        logger.log(level: Self.level(alert.priority), "\(alert.message)", metadata: metadata)
        count(AlertOutcome(sink: .stderr, result: .sent))
    }

    /// The log level of an alert on stderr: its syslog priority's namesake.
    static func level(_ priority: Alert.Priority) -> Logger.Level {
        switch priority {
        case .critical: .critical
        case .warning: .warning
        case .notice: .notice
        case .info: .info
        }
    }

    private func count(_ outcome: AlertOutcome, by amount: UInt64 = 1) {
        counts.withLock { $0[outcome, default: 0] += amount }
    }
}
