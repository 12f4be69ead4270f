import Dispatch
import Synchronization

/// Takes frames from the feed on a thread of its own, one at a time, so
/// that keys and signals are answered while a daemon is slow; wakes the
/// terminal when one is ready.
final class FrameFetcher: Sendable {
    private struct State {
        var busy = false
        var finished: Result<TopFrame, TopFailure>?
    }

    private let feed: any TopFeed
    private let terminal: any TopTerminal
    private let state = Mutex(State())
    /// Its own thread: a serial queue runs on an overcommitting pool, so a
    /// fetch never waits for a worker that a blocked caller holds.
    private let queue = DispatchQueue(label: "slabwatch.top.fetch")

    init(feed: any TopFeed, terminal: any TopTerminal) {
        self.feed = feed
        self.terminal = terminal
    }

    /// A fetch is under way.
    var busy: Bool { state.withLock { $0.busy } }

    /// Starts the next fetch (the caller starts one only when none is busy).
    func start() {
        state.withLock { $0.busy = true }
        queue.async { [self] in
            let result = Result { () throws(TopFailure) in try feed.next() }
            state.withLock { $0 = State(busy: false, finished: result) }
            terminal.wake()
        }
    }

    /// The last fetch's outcome, once.
    func take() -> Result<TopFrame, TopFailure>? {
        state.withLock { current in
            defer { current.finished = nil }
            return current.finished
        }
    }
}
