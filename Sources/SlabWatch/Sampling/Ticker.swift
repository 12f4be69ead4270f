import CLinux
import Dispatch
import Glibc
import Synchronization

/// What makes a sampler tick: at once, then every interval, on the sampler's
/// queue. The daemon's is a thread of its own (`ThreadTicker`); a test fires
/// its own, so no test waits for a timer.
protocol Ticker: AnyObject, Sendable {
    /// Calls `tick` on `queue` at once and then every `seconds` until
    /// `cancel`; a second `start` replaces the first. Called on `queue`.
    func start(every seconds: Double, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void)
    /// No `tick` runs after this returns. Called on the queue.
    func cancel()
}

/// A thread of its own that sleeps on the monotonic clock until a tick is
/// due and runs it with `queue.sync`, which Dispatch runs on the calling
/// thread when the queue is idle: a tick wakes one thread once. A Dispatch
/// timer source woke two — its manager thread out of epoll, which then woke
/// a worker through a futex — about 7 % of a sample's CPU at a 100 ms
/// interval in a profile. A tick that overruns the interval delays the next
/// instead of queueing more. Where no thread can be made (the process is
/// out of them), a Dispatch timer ticks instead.
final class ThreadTicker: Ticker, Sendable {
    private let current = Mutex<Current?>(nil)

    /// A ticker dropped without `cancel` (its sampler released while
    /// started) stops its thread: the tick then never runs again.
    deinit { cancel() }

    /// What ticks now.
    private enum Current {
        case thread(Run)
        case timer(DispatchTicker)
    }

    func start(every seconds: Double, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void) {
        cancel()
        let interval = UInt64(max(seconds, 1e-3) * 1e9)
        if let run = Run() {
            current.withLock { $0 = .thread(run) }
            if Self.spawn({ run.loop(every: interval, on: queue, tick) }) { return }
        }
        startDispatchTimer(every: interval, on: queue, tick)
    }

    func cancel() {
        current.withLock { current in
            switch current {
            case .thread(let run): run.cancel()
            case .timer(let timer): timer.cancel()
            case nil: break
            }
            current = nil
        }
    }

    /// The ticks while no thread can be made.
    private func startDispatchTimer(every interval: UInt64, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void) {
        let timer = DispatchTicker()
        timer.start(every: Double(interval) / 1e9, on: queue, tick)
        current.withLock { $0 = .timer(timer) }
    }

    /// Starts a detached thread running `body`; false when none could be made.
    private static func spawn(_ body: @escaping @Sendable () -> Void) -> Bool {
        let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            nameThisThread()
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// When the tick after one due at `deadline` is due, with the clock at
    /// `now`: an interval later, or, when that has passed already (the tick
    /// overran, the host stalled), the first time on the schedule after
    /// `now`; the ticks in between are skipped, not queued.
    static func next(after deadline: UInt64, every interval: UInt64, now: UInt64) -> UInt64 {
        let next = deadline + interval
        guard next < now else { return next }
        return next + ((now - next) / interval + 1) * interval
    }
}

/// One `start` of a `ThreadTicker`: its thread sleeps on `wake` (an
/// eventfd) until the next tick is due or `cancel` writes to it. The thread
/// and the ticker both hold it, so the descriptor stays open until neither does.
private final class Run: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let wake: Int32

    /// Nil when no eventfd could be made.
    init?() {
        wake = eventfd(0, Int32(EFD_CLOEXEC))
        if wake < 0 { return nil }
    }

    deinit { close(wake) }

    /// Called on the queue, so a tick, which checks `cancelled` on the queue, cannot start after it.
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wake, &one, MemoryLayout<UInt64>.size)
    }

    /// The thread's life: a tick at once, then one each interval, until cancelled.
    func loop(every interval: UInt64, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void) {
        // One work item, run again at every tick: a closure handed to `sync`
        // is made into a block on the heap each time (two allocations a
        // tick), a work item's block once. (Run any number of times and never
        // waited on, as Dispatch allows.)
        let work = DispatchWorkItem { [self] in
            if !cancelled.load(ordering: .acquiring) { tick() }
        }
        var deadline = Clock.monotonicNanoseconds()
        while true {
            queue.sync(execute: work)
            guard !cancelled.load(ordering: .acquiring) else { return }
            deadline = ThreadTicker.next(after: deadline, every: interval, now: Clock.monotonicNanoseconds())
            guard sleep(until: deadline) else { return }
        }
    }

    /// Sleeps until `deadline` (monotonic nanoseconds); false when woken by `cancel`.
    private func sleep(until deadline: UInt64) -> Bool {
        var descriptor = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        while true {
            let now = Clock.monotonicNanoseconds()
            guard now < deadline else { return true }
            // Whole milliseconds, rounded up: a wake before the deadline would sleep again.
            let milliseconds = (deadline - now + 999_999) / 1_000_000
            let ready = poll(&descriptor, 1, Int32(min(milliseconds, UInt64(Int32.max))))
            if ready > 0 { return false }
            if ready == 0 { return true }
            if errno != EINTR {
                // Cannot wait on `wake` (never seen): sleep to the deadline, cancel unheard till then.
                var until = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nil) == EINTR {}
                return !cancelled.load(ordering: .acquiring)
            }
        }
    }
}

/// Names the calling thread `threadName`, for `top -H`, `perf` and
/// `/proc/PID/task`: written to /proc/thread-self/comm, as
/// `pthread_setname_np` (which Glibc's Swift module leaves out) does.
/// Where /proc is not mounted the thread keeps the process's name.
private func nameThisThread() {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = ThreadTicker.threadName.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

extension ThreadTicker {
    /// The ticking thread's name: at most 15 bytes, the kernel's limit.
    static let threadName = "slabwatch-tick"
}

/// A thread's body, handed to pthread_create as its one pointer.
private final class ThreadBody {
    let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }
}

/// A Dispatch timer source on the sampler's queue: what ticks when no
/// thread can be made for `ThreadTicker`.
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
