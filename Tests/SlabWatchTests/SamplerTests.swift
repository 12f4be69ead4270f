import Dispatch
import Foundation
import Logging
import SlabWatchCore
import Synchronization
import Testing
import TestSupport
@testable import SlabWatch

/// The sampler on this machine's capture, its ticks fired by the test at the
/// times the test sets (`ManualTicker`, `ManualTime`): a real timer on a busy
/// machine fires when it can, and a test that waits for one asserts nothing
/// exact. The Dispatch ticker itself runs in every end-to-end test.
struct SamplerTests {
    static func sampler(interval: Double = 0.05, store: StateStore = StateStore(), output: any SamplerOutput = NoSamplerOutput(),
                        statistics: any SelfStatisticsSource = Counted(), ticker: ManualTicker = ManualTicker(),
                        time: ManualTime = ManualTime()) throws -> Sampler {
        try Sampler(settings: .init(paths: TestPaths.localKernelPaths, intervalSeconds: interval),
                    ring: .init(fineCapacity: 64, coarseCapacity: 8, coarseEvery: 8), store: store, history: HistoryReader(),
                    output: output, statistics: statistics, logger: quietLogger, ticker: ticker, time: time)
    }

    @Test func eachTickStepsPublishesAndTellsTheOutputInOrder() throws {
        let store = StateStore(), output = Recorded(), statistics = Counted(), ticker = ManualTicker(), time = ManualTime()
        let sampler = try Self.sampler(store: store, output: output, statistics: statistics, ticker: ticker, time: time)
        sampler.start()
        defer { sampler.stop() }
        for _ in 0..<3 {
            ticker.fire()
            time.advance(seconds: 0.05)
        }
        #expect(output.calls == ["evaluated", "published", "evaluated", "published", "evaluated", "published"])
        let times = output.evaluatedTimes
        #expect(times.count == 3 && times == times.sorted() && Set(times).count == 3, "each tick has a later sample time")
        let state = try #require(store.latest)
        #expect(state.sample.caches.contains { $0.name == "dentry" })
        #expect(sampler.history.read()?.points(slab: "dentry", seconds: .infinity)?.count == 3)
        // The tick's own figures reach the render through the one source, once.
        #expect(statistics.calls == 0)
        let metrics = String(decoding: state.metrics, as: UTF8.self)
        #expect(metrics.contains("slabwatch_samples_total 3\n"))
        #expect(statistics.calls == 1 && statistics.lastSampler?.samplesTotal == 3)
        #expect(!metrics.contains("process_cpu_seconds_total"))  // the source said nothing about the process
    }

    @Test func withoutADaemonOneShotOutputReportsTheProcess() throws {
        let sampler = try Sampler(settings: .init(paths: TestPaths.localKernelPaths), ring: .init(fineCapacity: 8),
                                  store: StateStore(), logger: quietLogger)
        let metrics = String(decoding: sampler.sampleOnce().metrics, as: UTF8.self)
        #expect(metrics.contains("slabwatch_samples_total 1\n"))
        #expect(metrics.contains("process_cpu_seconds_total"))
        #expect(!metrics.contains("slabwatch_http_requests_total"))  // no server, no server figures
        #expect(String(decoding: sampler.sampleOnce().metrics, as: UTF8.self).contains("slabwatch_samples_total 2\n"))
    }

    /// Ticks at 0, 0.1 s and 0.9 s of a 0.1 s interval: the third arrives
    /// eight intervals after the second, so the seven between never ran.
    @Test func ticksAnOverrunSwallowedAreCountedAsSkipped() throws {
        let store = StateStore(), ticker = ManualTicker(), time = ManualTime()
        let sampler = try Self.sampler(interval: 0.1, store: store, ticker: ticker, time: time)
        sampler.start()
        defer { sampler.stop() }
        ticker.fire()
        time.advance(seconds: 0.1)
        ticker.fire()
        time.advance(seconds: 0.8)
        ticker.fire()
        #expect(String(decoding: try #require(store.latest).metrics, as: UTF8.self).contains("slabwatch_samples_skipped_total 7\n"))
    }

    /// `sampleOnce` runs outside the ticks: it is never counted as skipping.
    @Test func sampleOnceNeverCountsSkips() throws {
        let time = ManualTime()
        let sampler = try Self.sampler(interval: 0.01, time: time)
        _ = sampler.sampleOnce()
        time.advance(seconds: 10)
        let metrics = String(decoding: sampler.sampleOnce().metrics, as: UTF8.self)
        #expect(metrics.contains("slabwatch_samples_skipped_total 0\n"))
    }

    @Test func stopEndsTheTicks() throws {
        let output = Recorded(), ticker = ManualTicker()
        let sampler = try Self.sampler(output: output, ticker: ticker)
        sampler.start()
        ticker.fire()
        ticker.fire()
        #expect(!ticker.isCancelled)
        #expect(sampler.stop())
        #expect(ticker.isCancelled)
        ticker.fire()
        #expect(output.evaluatedTimes.count == 2)
    }

    /// A tick stuck in the kernel (here: in the output) does not hold
    /// shutdown: `stop` gives up after its timeout, and so does `finalState`,
    /// whose state the stuck tick is still changing. Once the tick returns,
    /// the stop it missed still takes effect.
    @Test func stopAbandonsAStuckTick() throws {
        let output = Recorded(), ticker = ManualTicker()
        output.holdFirstEvaluation()
        let sampler = try Self.sampler(output: output, ticker: ticker)
        sampler.start()
        ticker.fireWithoutWaiting()
        #expect(output.waitUntilHeld())
        #expect(!sampler.stop(timeout: 0.2))
        #expect(sampler.finalState(timeout: 0.2) == nil)
        #expect(!ticker.isCancelled)
        output.release()
        #expect(ticker.waitUntilCancelled())
        #expect(output.calls == ["evaluated", "published"])
        #expect(sampler.finalState() != nil)
    }

    /// The growth ranking reaches `/metrics` through the sampler: an hour after
    /// the first tick, a small cache that grew 4 MiB is exported beside the
    /// largest, read from the ring the sampler keeps (`FootprintBaseline`).
    @Test func aCacheThatGrewInTheHourIsExported() throws {
        let root = try TemporaryDirectory()
        func write(grownSlabs: Int) throws {
            let lines = (0..<25).map { i in
                let slabs = i == 24 ? 10_000 : (i == 3 ? 1 + grownSlabs : 1 + i)
                return "cache\(i) 128 128 32 128 1 : tunables 0 0 0 : slabdata \(slabs) \(slabs) 0\n"
            }
            try root.write("proc/slabinfo", "slabinfo - version: 2.1\n" + lines.joined())
        }
        try write(grownSlabs: 0)
        let time = ManualTime()
        let sampler = try Sampler(settings: .init(paths: KernelPaths(procfs: root.path("proc"), sysfs: root.path("sys")),
                                                  bound: ExportBound(topByFootprint: 1, topByGrowth: 1)),
                                  ring: .init(fineCapacity: 8, coarseCapacity: 8, coarseEvery: 1), store: StateStore(), history: HistoryReader(),
                                  output: NoSamplerOutput(), statistics: Counted(), logger: quietLogger, ticker: ManualTicker(), time: time)
        func exported() -> [String] {
            let metrics = String(decoding: sampler.sampleOnce().metrics, as: UTF8.self)
            return metrics.split(separator: "\n").filter { $0.hasPrefix("slabwatch_slab_footprint_bytes{") }.map { String($0.split(separator: "\"")[1]) }
        }
        #expect(exported() == ["cache24"])
        time.advance(seconds: 3600)
        try write(grownSlabs: 1024)  // 4 MiB more
        #expect(exported() == ["cache24", "cache3"])
    }

    /// A restored state's history is there before the first tick, and its
    /// findings are the final state's once a tick has run.
    @Test func aRestoredRingIsReadableAtOnce() throws {
        var pipeline = Pipeline(settings: Sampler.Settings().pipeline(ring: .init(fineCapacity: 64, coarseCapacity: 8, coarseEvery: 8)))
        let reader = ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096)
        for t in 0..<5 { _ = pipeline.step(reader.sample(timestampMilliseconds: 1_795_600_000_000 + Int64(t) * 5000)) }
        let saved = SavedState(try #require(pipeline.latest), pageSize: 4096, bootID: "b", procfs: "/proc", version: "test",
                               alerts: AlertPolicy().memory)
        let sampler = try Self.sampler()
        #expect(sampler.history.read() == nil && sampler.finalState() == nil)
        let restored = sampler.restore(saved, sameBoot: true)
        #expect(restored.ringKept && restored.samples == 5 && restored.openFindings == 0)
        #expect(sampler.history.read()?.points(slab: "dentry", seconds: .infinity)?.count == 5)
        sampler.sampleOnce()
        #expect(try #require(sampler.finalState()).ring.fine.count == 6)
    }

    /// A tick refills the arrays of the samples two ticks old (`ProcReader`,
    /// `Pipeline.record`). Requests that hold published states on other
    /// threads while the sampler ticks over changing files each see their
    /// state's sample whole (every count from one read) and unchanged for as
    /// long as they keep it.
    @Test func statesHeldByRequestsStayWholeWhileTheSamplerTicks() async throws {
        let root = try TemporaryDirectory()
        try root.write("proc/slabinfo", "")
        let proc = root.url.appendingPathComponent("proc")
        @Sendable func write(_ tick: UInt64) throws {
            let lines = (0..<64).map { "cache\($0) \(tick) \(tick) 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n" }
            try Data(("slabinfo - version: 2.1\n" + lines.joined()).utf8).write(to: proc.appendingPathComponent("slabinfo"))
            try Data("MemTotal: \(tick) kB\nSlab: 4 kB\n".utf8).write(to: proc.appendingPathComponent("meminfo"))
        }
        /// The tick a sample was read at, when every cache and meminfo agree on it.
        @Sendable func tick(of sample: Sample) -> UInt64? {
            let caches = sample.caches.filter { !$0.isDerived }
            guard caches.count == 64, let objects = caches.first?.activeObjects, caches.allSatisfy({ $0.activeObjects == objects }),
                  sample.meminfo?.totalBytes == objects * 1024 else { return nil }
            return objects
        }
        try write(1)
        let store = StateStore(), time = ManualTime()
        let sampler = try Sampler(settings: .init(paths: KernelPaths(procfs: root.path("proc"), sysfs: root.path("sys"))),
                                  ring: .init(fineCapacity: 8, coarseCapacity: 8, coarseEvery: 1), store: store, history: HistoryReader(),
                                  output: NoSamplerOutput(), statistics: Counted(), logger: quietLogger, ticker: ManualTicker(), time: time)
        sampler.sampleOnce()
        let ticking = Flag()
        // Each reader returns what it found wrong and how many states it checked:
        // a reader that never ran (a one-thread pool) must not pass for one that saw nothing wrong.
        let readers = try await withThrowingTaskGroup(of: (problems: [String], checked: Int)?.self) { group in
            group.addTask {
                defer { ticking.lower() }
                for t in 2...300 as ClosedRange<UInt64> {
                    try write(t)
                    time.advance(seconds: 1)
                    sampler.sampleOnce()
                    await Task.yield()  // the readers run between ticks even on a pool of one thread
                }
                return nil
            }
            for _ in 0..<3 {
                group.addTask {
                    var problems: [String] = [], held: [(state: PublishedState, tick: UInt64)] = [], checked = 0
                    while ticking.isRaised {
                        await Task.yield()
                        guard let state = store.latest else { continue }
                        checked += 1
                        guard let read = tick(of: state.sample) else { problems.append("a published sample is not whole"); continue }
                        held.append((state, read))
                        if held.count > 16 { held.removeFirst() }
                        for (state, read) in held where tick(of: state.sample) != read { problems.append("a held sample changed") }
                    }
                    return (problems, checked)
                }
            }
            return try await group.reduce(into: [(problems: [String], checked: Int)]()) { if let reader = $1 { $0.append(reader) } }
        }
        let problems = readers.flatMap(\.problems)
        #expect(problems.isEmpty, "\(Set(problems))")
        #expect(readers.count == 3 && readers.allSatisfy { $0.checked > 0 }, "states checked by each reader: \(readers.map(\.checked))")
        #expect(store.latest.flatMap { tick(of: $0.sample) } == 300)
    }
}

/// A flag one thread lowers and others watch.
final class Flag: Sendable {
    private let raised = Atomic(true)
    var isRaised: Bool { raised.load(ordering: .acquiring) }
    func lower() { raised.store(false, ordering: .releasing) }
}

/// Fires a sampler's ticks when the test says, on the sampler's queue, as a
/// Dispatch timer would; none once cancelled.
final class ManualTicker: Ticker, Sendable {
    private struct State {
        var queue: DispatchQueue?
        var tick: (@Sendable () -> Void)?
        var cancelled = false
    }

    private let lock = Mutex(State())
    private let cancelledSignal = DispatchSemaphore(value: 0)

    func start(every seconds: Double, on queue: DispatchQueue, _ tick: @escaping @Sendable () -> Void) {
        lock.withLock { $0 = State(queue: queue, tick: tick) }
    }

    func cancel() {
        lock.withLock { $0.cancelled = true }
        cancelledSignal.signal()
    }

    var isCancelled: Bool { lock.withLock { $0.cancelled } }

    /// One tick, run on the sampler's queue; returns when it has.
    func fire() {
        guard let (queue, tick) = running() else { return }
        queue.sync { if !isCancelled { tick() } }
    }

    /// One tick, queued on the sampler's queue.
    func fireWithoutWaiting() {
        guard let (queue, tick) = running() else { return }
        queue.async { [self] in if !isCancelled { tick() } }
    }

    /// Waits for `cancel` (generous: only a sampler that never stops trips it).
    func waitUntilCancelled() -> Bool {
        cancelledSignal.wait(timeout: .now() + 30) == .success
    }

    private func running() -> (DispatchQueue, @Sendable () -> Void)? {
        lock.withLock { state in
            guard let queue = state.queue, let tick = state.tick, !state.cancelled else { return nil }
            return (queue, tick)
        }
    }
}

/// Clocks that move only when the test moves them.
final class ManualTime: TimeSource, Sendable {
    private let now = Mutex((monotonic: UInt64(1_000_000_000), wall: Int64(1_795_600_000_000)))

    func monotonicNanoseconds() -> UInt64 { now.withLock { $0.monotonic } }
    func wallMilliseconds() -> Int64 { now.withLock { $0.wall } }

    func advance(seconds: Double) {
        now.withLock {
            $0.monotonic += UInt64(seconds * 1e9)
            $0.wall += Int64(seconds * 1000)
        }
    }
}

/// What a sampler told its output, in order; it can hold the first
/// evaluation (a tick stuck in the kernel) until released.
final class Recorded: SamplerOutput, Sendable {
    private let log = Mutex<(calls: [String], times: [Int64])>(([], []))
    private let holding = Atomic<Bool>(false)
    private let held = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    var calls: [String] { log.withLock { $0.calls } }
    var evaluatedTimes: [Int64] { log.withLock { $0.times } }

    func holdFirstEvaluation() { holding.store(true, ordering: .relaxed) }

    /// Waits for the held evaluation (generous: only a tick that never comes trips it).
    func waitUntilHeld() -> Bool { held.wait(timeout: .now() + 30) == .success }

    func release() { released.signal() }

    func evaluated(_ step: Pipeline.Step) {
        log.withLock {
            $0.calls.append("evaluated")
            $0.times.append(step.sample.timestampMilliseconds)
        }
        if holding.exchange(false, ordering: .relaxed) {
            held.signal()
            released.wait()
        }
    }

    func published(_ state: PublishedState) { log.withLock { $0.calls.append("published") } }
    func transitions(_ events: [GrowthDetector.Event]) { log.withLock { $0.calls.append("transitions") } }
}

/// Counts the reads of slabwatch's own figures, and says only the sampler's.
final class Counted: SelfStatisticsSource, Sendable {
    private let seen = Mutex<(calls: Int, sampler: SamplerStatistics?)>((0, nil))

    var calls: Int { seen.withLock { $0.calls } }
    var lastSampler: SamplerStatistics? { seen.withLock { $0.sampler } }

    func statistics(sampler: SamplerStatistics) -> SelfStatistics {
        seen.withLock {
            $0.calls += 1
            $0.sampler = sampler
        }
        return SelfStatistics(sampler: sampler)
    }
}

/// The daemon's pipeline, from its configuration: the ring has room for
/// `sampler.max-caches` and a quarter, and the detector's keys (the
/// inode-cache selector among them) reach the one place the ring reads them.
struct ConfigurationPipelineTests {
    @Test func theRingHasRoomForMaxCachesAndAQuarter() throws {
        #expect(Configuration().pipeline.ring.maxSeries == 2560)
        var configuration = Configuration()
        try configuration.set("sampler.max-caches", to: ["4096"], origin: "test")
        try configuration.set("ring.fine-samples", to: ["100"], origin: "test")
        #expect(configuration.pipeline.ring == .init(fineCapacity: 100, maxSeries: 5120))
    }

    @Test func theDetectorKeysReachThePipeline() throws {
        var configuration = Configuration()
        try configuration.set("detector.inode-caches", to: ["shmem_inode_cache"], origin: "test")
        let pipeline = Pipeline(settings: configuration.pipeline)
        #expect(pipeline.settings.detector == configuration.sampler.detector)
        #expect(pipeline.ring.inodeCaches.pattern == "shmem_inode_cache")
    }
}
