import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
@testable import SlabWatch

/// The daemon's ticker: a thread that sleeps to each deadline and ticks on
/// the sampler's queue.
struct ThreadTickerTests {
    /// On time, the next tick is an interval after the last deadline; after
    /// an overrun, the next on the schedule after now (missed ones skipped).
    @Test(arguments: [
        (deadline: 1_000, now: 1_040, next: 1_100),  // the tick took 40: next on schedule
        (deadline: 1_000, now: 1_100, next: 1_100),  // exactly one interval: that tick is due now
        (deadline: 1_000, now: 1_250, next: 1_300),  // overran by 2.5 intervals: 1,100 and 1,200 skipped
        (deadline: 1_000, now: 1_000, next: 1_100),
    ])
    func theNextTickFallsOnTheScheduleAfterNow(deadline: UInt64, now: UInt64, next: UInt64) {
        #expect(ThreadTicker.next(after: deadline, every: 100, now: now) == next)
    }

    /// Ticks come on the queue, and none after `cancel` (called on the queue,
    /// as the sampler does), including from a start that a second one replaced.
    @Test func ticksRunOnTheQueueAndStopAtCancel() async throws {
        let queue = DispatchQueue(label: "ticker-test")
        let key = DispatchSpecificKey<Bool>()
        queue.setSpecific(key: key, value: true)
        let ticks = Atomic<Int>(0)
        let offQueue = Atomic<Int>(0)
        let ticker = ThreadTicker()
        let tick: @Sendable () -> Void = {
            if DispatchQueue.getSpecific(key: key) != true { offQueue.add(1, ordering: .relaxed) }
            ticks.add(1, ordering: .relaxed)
        }
        queue.sync {
            ticker.start(every: 0.005, on: queue, tick)
            ticker.start(every: 0.005, on: queue, tick)  // replaces the first: its thread must stop too
        }
        var waited = 0
        while ticks.load(ordering: .relaxed) < 5 && waited < 2_000 {  // up to 20 s on a loaded machine
            try await Task.sleep(nanoseconds: 10_000_000)
            waited += 1
        }
        #expect(ticks.load(ordering: .relaxed) >= 5)
        queue.sync { ticker.cancel() }
        let atCancel = ticks.load(ordering: .relaxed)
        try await Task.sleep(nanoseconds: 100_000_000)  // twenty intervals
        #expect(ticks.load(ordering: .relaxed) == atCancel)
        #expect(offQueue.load(ordering: .relaxed) == 0)
    }

    /// The ticking thread carries a name of its own, so that `top -H` or a
    /// profile tells it from the web side's threads.
    @Test func theTickingThreadIsNamed() async throws {
        func named() -> Bool {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return tasks.contains { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)) == ThreadTicker.threadName + "\n" }
        }
        let queue = DispatchQueue(label: "ticker-name-test")
        let ticker = ThreadTicker()
        let ticked = Atomic<Bool>(false)
        queue.sync { ticker.start(every: 60, on: queue) { ticked.store(true, ordering: .relaxed) } }
        var waited = 0
        while !(ticked.load(ordering: .relaxed) && named()) && waited < 2_000 {
            try await Task.sleep(nanoseconds: 10_000_000)
            waited += 1
        }
        #expect(named(), "a thread named \(ThreadTicker.threadName)")
        queue.sync { ticker.cancel() }
    }
}
