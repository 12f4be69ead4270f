import Dispatch

/// What makes a sampler tick: at once, then every interval, on the sampler's
/// queue. The daemon's is a Dispatch timer (`DispatchTicker`); a test fires
/// its own, so no test waits for a timer.
protocol Ticker: AnyObject, Sendable {
    /// Calls `tick` on `queue` at once and then every `seconds` until
    /// `cancel`; a second `start` replaces the first. Called on `queue`.
    func start(every seconds: Double, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void)
    /// No `tick` runs after this returns. Called on the queue.
    func cancel()
}

/// A Dispatch timer source on the sampler's queue: a tick that overruns the
/// interval delays the next instead of queueing more.
final class DispatchTicker: Ticker, @unchecked Sendable {  // `timer` is used only on the sampler's queue
    private var timer: (any DispatchSourceTimer)?

    func start(every seconds: Double, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void) {
        timer?.cancel()
        let source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now(), repeating: .nanoseconds(Int(seconds * 1e9)), leeway: .milliseconds(10))
        source.setEventHandler(handler: tick)
        timer = source
        source.resume()
    }

    func cancel() {
        timer?.cancel()
        timer = nil
    }
}
