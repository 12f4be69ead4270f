import Dispatch
import Glibc
import Logging
import SlabWatchCore
import Synchronization
import Testing
@testable import SlabWatch

/// The sampler on this machine's capture, driven by its own Dispatch timer.
struct SamplerTests {
    /// What the hooks saw, from the sampler's queue.
    final class Seen: Sendable {
        let evaluations = Mutex<[Int64]>([])
        let published = Mutex(0)
        let statistics = Mutex<SamplerStatistics?>(nil)

        var evaluationCount: Int { evaluations.withLock { $0.count } }
    }

    static func sampler(interval: Double = 0.05, store: StateStore = StateStore()) throws -> Sampler {
        try Sampler(settings: .init(paths: TestPaths.localKernelPaths, intervalSeconds: interval),
                    ring: .init(fineCapacity: 64, coarseCapacity: 8, coarseEvery: 8), store: store, logger: quietLogger)
    }

    static func hooks(_ seen: Seen, onEvaluation: @escaping @Sendable (Int) -> Void = { _ in }) -> Sampler.Hooks {
        var hooks = Sampler.Hooks()
        hooks.evaluated = { _, now in
            let count = seen.evaluations.withLock { $0.append(now); return $0.count }
            onEvaluation(count)
        }
        hooks.published = { _ in seen.published.withLock { $0 += 1 } }
        hooks.selfStatistics = { statistics in
            seen.statistics.withLock { $0 = statistics }
            return SelfStatistics(sampler: statistics)
        }
        return hooks
    }

    /// Polls `condition` for up to `seconds` (a shared machine can be slow); true once it holds.
    static func eventually(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = DispatchTime.now() + seconds
        while DispatchTime.now() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test func eachTickSamplesEvaluatesAndPublishes() throws {
        let store = StateStore()
        let sampler = try Self.sampler(store: store)
        let seen = Seen()
        sampler.start(hooks: Self.hooks(seen))
        defer { sampler.stop() }
        #expect(Self.eventually { seen.evaluationCount >= 3 && seen.published.withLock { $0 } >= 3 })
        sampler.stop()
        let times = seen.evaluations.withLock { $0 }
        #expect(times == times.sorted() && Set(times).count == times.count, "each tick has a later sample time")
        let state = try #require(store.latest)
        #expect(state.sample.caches.contains { $0.name == "dentry" })
        // The tick's own figures reach the render through the one hook.
        let metrics = String(decoding: state.metrics, as: UTF8.self)
        let statistics = try #require(seen.statistics.withLock { $0 })
        #expect(statistics.samplesTotal == UInt64(seen.evaluationCount))
        #expect(metrics.contains("slabwatch_samples_total \(statistics.samplesTotal)\n"))
        #expect(!metrics.contains("process_cpu_seconds_total"))  // the hook said nothing about the process
    }

    @Test func withoutAHookOneShotOutputReportsTheProcess() throws {
        let sampler = try Self.sampler()
        let metrics = String(decoding: sampler.sampleOnce().metrics, as: UTF8.self)
        #expect(metrics.contains("slabwatch_samples_total 1\n"))
        #expect(metrics.contains("process_cpu_seconds_total"))
        #expect(!metrics.contains("slabwatch_http_requests_total"))  // no server, no server figures
        #expect(String(decoding: sampler.sampleOnce().metrics, as: UTF8.self).contains("slabwatch_samples_total 2\n"))
    }

    /// A tick that overruns by several intervals: the ticks that did not run are counted.
    @Test func ticksAnOverrunSwallowedAreCountedAsSkipped() throws {
        let store = StateStore()
        let sampler = try Self.sampler(interval: 0.1, store: store)
        let seen = Seen()
        sampler.start(hooks: Self.hooks(seen) { count in if count == 2 { usleep(800_000) } })
        defer { sampler.stop() }
        #expect(Self.eventually { seen.evaluationCount >= 4 })
        sampler.stop()
        _ = store.latest?.metrics
        let skipped = try #require(seen.statistics.withLock { $0 }).samplesSkipped
        #expect(skipped >= 3, "an 0.8 s stall at a 0.1 s interval swallows about 7 ticks")
    }

    /// `sampleOnce` runs outside the timer: it is never counted as skipping.
    @Test func sampleOnceNeverCountsSkips() throws {
        let sampler = try Self.sampler(interval: 0.01)
        _ = sampler.sampleOnce()
        usleep(100_000)
        let metrics = String(decoding: sampler.sampleOnce().metrics, as: UTF8.self)
        #expect(metrics.contains("slabwatch_samples_skipped_total 0\n"))
    }

    @Test func stopEndsTheTicks() throws {
        let sampler = try Self.sampler()
        let seen = Seen()
        sampler.start(hooks: Self.hooks(seen))
        #expect(Self.eventually { seen.evaluationCount >= 2 })
        #expect(sampler.stop())
        let atStop = seen.evaluationCount
        usleep(300_000)  // six intervals
        #expect(seen.evaluationCount == atStop)
    }

    /// A tick stuck in the kernel (here: in a hook) does not hold shutdown: `stop` gives up after its timeout.
    @Test func stopAbandonsAStuckTick() throws {
        let sampler = try Self.sampler()
        let seen = Seen()
        let release = DispatchSemaphore(value: 0)
        sampler.start(hooks: Self.hooks(seen) { count in if count == 1 { release.wait() } })
        #expect(Self.eventually { seen.evaluationCount == 1 })
        #expect(!sampler.stop(timeout: 0.2))  // false: abandoned, the evidence that stop did not wait for the tick
        release.signal()
        // Once the tick returns, the stop it missed still takes effect.
        usleep(300_000)
        let afterRelease = seen.evaluationCount
        usleep(300_000)
        #expect(seen.evaluationCount == afterRelease)
    }
}
