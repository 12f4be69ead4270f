import SlabWatchCore
import Synchronization
import Systemd

/// Tells the service manager how the daemon is doing: `READY=1` after the first
/// sample (the listening socket is up by then), `WATCHDOG=1` from every tick so
/// a hung sampler gets the service restarted, and `STATUS=` when it changes.
/// Without `NOTIFY_SOCKET` every call is a cheap no-op.
final class ServiceNotifier: Sendable {
    private struct State {
        var ready = false
        var shown: Shown?
    }

    /// What `STATUS=` says: its text is built only when one of these changed,
    /// not every tick (a string of this length is a heap allocation).
    private struct Shown: Equatable {
        var caches: Int
        var open = 0
        var critical = 0
        var intervalSeconds: Double
    }

    private let state = Mutex(State())
    private let watchdog = ServiceManager.watchdogMicroseconds() != nil

    func ticked(_ published: PublishedState, intervalSeconds: Double) {
        var shown = Shown(caches: published.sample.caches.count { !$0.isDerived }, intervalSeconds: intervalSeconds)
        for finding in published.report.findings where finding.state == .open {
            shown.open += 1
            if finding.severity == .critical { shown.critical += 1 }
        }
        let (becameReady, statusChanged) = state.withLock { s -> (Bool, Bool) in
            let first = !s.ready
            s.ready = true
            let changed = s.shown != shown
            s.shown = shown
            return (first, changed)
        }
        if becameReady { send("READY=1\n" + Self.status(shown)) } else if statusChanged { send(Self.status(shown)) }
        if watchdog { send("WATCHDOG=1") }
    }

    private static func status(_ shown: Shown) -> String {
        "STATUS=sampling \(shown.caches) caches every \(Human.duration(shown.intervalSeconds)); "
            + "\(shown.open) open findings (\(shown.critical) critical)"
    }

    func send(_ message: String) {
        _ = try? ServiceManager.notify(message)
    }
}
