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
        var status = ""
    }

    private let state = Mutex(State())
    private let watchdog = ServiceManager.watchdogMicroseconds() != nil

    func ticked(_ published: PublishedState, intervalSeconds: Double) {
        let counts = published.report.openCounts
        let open = counts.values.reduce(0, +)
        let status = "STATUS=sampling \(published.sample.caches.count { !$0.isDerived }) caches every \(Human.duration(intervalSeconds)); "
            + "\(open) open findings (\(counts[.critical] ?? 0) critical)"
        let (becameReady, statusChanged) = state.withLock { s -> (Bool, Bool) in
            let first = !s.ready
            s.ready = true
            let changed = s.status != status
            s.status = status
            return (first, changed)
        }
        if becameReady { send("READY=1\n" + status) } else if statusChanged { send(status) }
        if watchdog { send("WATCHDOG=1") }
    }

    func send(_ message: String) {
        _ = try? ServiceManager.notify(message)
    }
}
