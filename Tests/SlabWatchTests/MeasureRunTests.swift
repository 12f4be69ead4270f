import SlabWatchCore
import Synchronization
import Testing
@testable import SlabWatch

/// `measure`'s phases in fake time: a fake clock whose sleeps move it, a
/// workload that ends at a given time, signals at a given time. No test
/// here sleeps or reads a real clock.
struct MeasureRunTests {
    /// One time for the clock, the workload and the signals.
    final class FakeTime: Sendable {
        private let nanoseconds = Mutex<UInt64>(5_000_000_000)
        var now: UInt64 { nanoseconds.withLock { $0 } }
        func advance(_ seconds: Double) { nanoseconds.withLock { $0 += UInt64((seconds * 1e9).rounded()) } }
        var seconds: Double { Double(now) / 1e9 }
    }

    struct FakeClock: MeasureClock {
        let time: FakeTime
        func monotonicNanoseconds() -> UInt64 { time.now }
        func wallMilliseconds() -> Int64 { 1_700_000_000_000 + Int64(time.now / 1_000_000) }
        mutating func sleep(seconds: Double) { time.advance(seconds) }
    }

    /// A signal arrives at `at` (fake seconds), or never.
    struct FakeSignals: Interruptions {
        let time: FakeTime
        var at: Double?
        var pending: Bool { at.map { time.seconds >= $0 } ?? false }
    }

    /// Ends `after` seconds from its start, as `ending` says.
    struct FakeWorkload: Workload {
        let time: FakeTime
        let after: Double
        var ending = Termination.exited(0)
        var refusal: WorkloadError?
        private(set) var startedAt: Double?

        init(time: FakeTime, after: Double, ending: Termination = .exited(0), refusal: WorkloadError? = nil) {
            self.time = time
            self.after = after
            self.ending = ending
            self.refusal = refusal
        }

        mutating func start() throws(WorkloadError) {
            if let refusal { throw refusal }
            startedAt = time.seconds
        }

        func poll() -> Termination? {
            guard let startedAt else { return nil }
            return time.seconds - startedAt >= after ? ending : nil
        }
    }

    /// kmalloc-32 grows a slab with every sample taken; `caches: false` is a machine whose slabinfo lists nothing.
    final class GrowingMachine: SampleSource {
        private var taken: UInt64 = 0
        let caches: Bool

        init(caches: Bool = true) { self.caches = caches }

        func sample(timestampMilliseconds: Int64) -> Sample {
            taken += 1
            let cache = SlabCache(name: "kmalloc-32", activeObjects: 128 * taken, objects: 128 * taken, objectSize: 32, objectsPerSlab: 128,
                                  pagesPerSlab: 1, activeSlabs: taken, slabs: taken, pageSize: 4096, reclaimable: false)
            return Sample(timestampMilliseconds: timestampMilliseconds, caches: caches ? [cache] : [], sources: [.slabinfo: SourceStatus(up: true)])
        }
    }

    /// Counts what it is told.
    struct CountingWatcher: RunWatcher {
        var started = 0, ended = 0
        var sinceStart: [Double] = []
        mutating func workloadStarted() { started += 1 }
        mutating func sampled(_ samples: MeasurementSamples, secondsSinceStart: Double) { sinceStart.append(secondsSinceStart) }
        mutating func workloadEnded() { ended += 1 }
    }

    /// A watcher that takes `attachSeconds` to get ready, as a BPF session does.
    struct AttachingWatcher: RunWatcher {
        let time: FakeTime
        var readyAt: Double?
        mutating func workloadStarting() {
            time.advance(0.3)
            readyAt = time.seconds
        }
        mutating func workloadStarted() {}
        mutating func sampled(_ samples: MeasurementSamples, secondsSinceStart: Double) {}
        mutating func workloadEnded() {}
    }

    /// What watches the workload is ready before it starts (measure's
    /// `--attribute` session attaches first): started after it, the session
    /// missed a short workload's allocations, or all of them. The time it
    /// takes is not the workload's.
    @Test func theWatcherIsReadyBeforeTheWorkloadStarts() throws {
        let time = FakeTime()
        var run = Self.run(time)
        try run.sampleBaseline(seconds: 0)
        var workload = FakeWorkload(time: time, after: 1)
        var watcher = AttachingWatcher(time: time)
        let (_, wallSeconds) = try run.sampleWorkload(&workload, watcher: &watcher)
        let ready = try #require(watcher.readyAt), started = try #require(workload.startedAt)
        #expect(ready <= started)
        #expect(wallSeconds == 1)
    }

    static func run(_ time: FakeTime, interval: Double = 0.2, signalAt: Double? = nil, caches: Bool = true) -> MeasureRun {
        MeasureRun(source: GrowingMachine(caches: caches), clock: FakeClock(time: time), interruptions: FakeSignals(time: time, at: signalAt),
                   intervalSeconds: interval)
    }

    /// A 1 s baseline at 200 ms: five samples, 800 ms apart end to end; only the last is kept.
    @Test func theBaselineSamplesItsLengthAndKeepsItsLast() throws {
        let time = FakeTime()
        let start = time.now
        var run = Self.run(time)
        try run.sampleBaseline(seconds: 1)
        #expect(run.samples.taken == 5 && run.samples.kept.count == 1 && run.samples.phase == .run)
        #expect(time.now - start == 800_000_000)
        var none = Self.run(FakeTime())
        try none.sampleBaseline(seconds: 0)
        #expect(none.samples.taken == 1, "a baseline of 0 s still takes the 'before' sample")
    }

    /// A 2 s workload at 200 ms: a sample every interval from its start, one
    /// just after it ended (the `ended` index), then 1 s of settling at 200 ms.
    @Test func theRunAndSettlingSampleEveryIntervalAndMarkTheEnd() throws {
        let time = FakeTime()
        var run = Self.run(time)
        try run.sampleBaseline(seconds: 0)
        var workload = FakeWorkload(time: time, after: 2)
        var watcher = CountingWatcher()
        let (ending, wallSeconds) = try run.sampleWorkload(&workload, watcher: &watcher)
        #expect(ending == .exited(0) && wallSeconds == 2)
        #expect(run.samples.taken == 1 + 10 + 1, "the baseline, 0 to 1.8 s, and the first after the end")
        #expect(run.samples.ended == 11 && run.samples.phase == .settling)
        #expect(watcher.started == 1 && watcher.ended == 1 && watcher.sinceStart.count == 10)
        #expect(watcher.sinceStart.first == 0 && abs((watcher.sinceStart.last ?? 0) - 1.8) < 1e-9, "\(watcher.sinceStart)")
        #expect(run.sampleSettling(seconds: 1) == 1)
        #expect(run.samples.taken == 12 + 5)
        let measurement = try #require(run.samples.report(command: .init(arguments: ["w"], exitStatus: 0, wallSeconds: wallSeconds),
                                                          intervalSeconds: run.intervalSeconds, settleSeconds: 1))
        #expect(measurement.command.wallSeconds == 2)
    }

    /// Memory stays bounded however long the workload runs: 30 s at 10 ms
    /// is 3,000 samples, of which the run keeps at most `maximumPerPhase`,
    /// sampling less often each time it thins.
    @Test func aLongRunIsThinned() throws {
        let time = FakeTime()
        var run = Self.run(time, interval: 0.01)
        try run.sampleBaseline(seconds: 0)
        var workload = FakeWorkload(time: time, after: 30)
        var watcher = CountingWatcher()
        _ = try run.sampleWorkload(&workload, watcher: &watcher)
        let ended = try #require(run.samples.ended)
        #expect(ended - 1 <= MeasurementSamples.maximumPerPhase, "\(ended) kept of the run")
        #expect(ended - 1 >= MeasurementSamples.maximumPerPhase / 2)
        #expect(run.intervalSeconds > 0.01)
        #expect(run.samples.taken < 3000, "the interval doubled as it thinned: \(run.samples.taken)")
    }

    /// A status reaped by something else is lost, and counts as failed.
    @Test func aLostStatusCountsAsFailed() throws {
        let time = FakeTime()
        var run = Self.run(time)
        try run.sampleBaseline(seconds: 0)
        var workload = FakeWorkload(time: time, after: 0.5, ending: .lost)
        var watcher = CountingWatcher()
        let (ending, _) = try run.sampleWorkload(&workload, watcher: &watcher)
        #expect(ending == .lost && ending.status != 0)
        #expect(SlabWatch.ExitStatus.measured(commandStatus: ending.status, verdicts: []) == .commandFailed)
    }

    /// A signal during the baseline ends measure before the workload starts;
    /// during settling it ends settling early, and says how long it settled.
    @Test func signalsEndTheBaselineAndSettling() throws {
        let time = FakeTime()
        var early = Self.run(time, signalAt: time.seconds + 0.3)
        #expect(throws: MeasureRun.Stop.interrupted) { try early.sampleBaseline(seconds: 1) }

        let later = FakeTime()
        var run = Self.run(later, signalAt: later.seconds + 1 + 0.5)
        try run.sampleBaseline(seconds: 0)
        var workload = FakeWorkload(time: later, after: 1)
        var watcher = CountingWatcher()
        _ = try run.sampleWorkload(&workload, watcher: &watcher)
        let taken = run.samples.taken
        let settled = run.sampleSettling(seconds: 10)
        #expect(abs(settled - 0.6) < 1e-6, "ended at the first sleep after the signal: \(settled)")
        #expect(run.samples.taken == taken + 2)
    }

    /// A signal before the workload starts: it never starts.
    @Test func aSignalBeforeTheStartKeepsTheWorkloadFromStarting() throws {
        let time = FakeTime()
        var run = Self.run(time, signalAt: time.seconds)
        var workload = FakeWorkload(time: time, after: 1)
        var watcher = CountingWatcher()
        #expect(throws: MeasureRunError.self) { _ = try run.sampleWorkload(&workload, watcher: &watcher) }
        #expect(workload.startedAt == nil && watcher.started == 0)
    }

    @Test func aMachineWithoutCachesIsRefusedBeforeTheWorkload() {
        var run = Self.run(FakeTime(), caches: false)
        #expect(throws: MeasureRun.Stop.unreadable("no slab caches listed")) { try run.sampleBaseline(seconds: 1) }
    }

    @Test func aWorkloadThatCannotStartSaysItsStatus() throws {
        let time = FakeTime()
        var run = Self.run(time)
        try run.sampleBaseline(seconds: 0)
        var workload = FakeWorkload(time: time, after: 1, refusal: WorkloadError(status: 127, description: "cannot run 'x'"))
        var watcher = CountingWatcher()
        do {
            _ = try run.sampleWorkload(&workload, watcher: &watcher)
            Issue.record("started")
        } catch {
            guard case .cannotStart(let refusal) = error else { Issue.record("\(error)"); return }
            #expect(refusal.status == 127 && watcher.started == 0)
        }
    }

    /// measure's own exit status, never the command's.
    @Test(arguments: [
        (Int32(0), [Budget.Verdict](), SlabWatch.ExitStatus.success),
        (3, [], .commandFailed),
        (0, [.cannotJudge("")], .cannotJudge),
    ])
    func measuresExitStatus(command: Int32, verdicts: [Budget.Verdict], status: SlabWatch.ExitStatus) {
        #expect(SlabWatch.ExitStatus.measured(commandStatus: command, verdicts: verdicts) == status)
    }

    /// `--attribute auto`: the unreclaimable cache grown most, never an inode cache nor a reclaimable one.
    @Test func autoAttributesTheUnreclaimableCacheGrownMost() {
        func cache(_ name: String, slabs: UInt64, reclaimable: Bool) -> SlabCache {
            SlabCache(name: name, activeObjects: 1, objects: 1, objectSize: 8, objectsPerSlab: 1, pagesPerSlab: 1, activeSlabs: slabs,
                      slabs: slabs, pageSize: 4096, reclaimable: reclaimable)
        }
        let before = Sample(timestampMilliseconds: 0, caches: [cache("kmalloc-cg-512", slabs: 10, reclaimable: false),
                                                               cache("shmem_inode_cache", slabs: 10, reclaimable: false),
                                                               cache("dentry", slabs: 10, reclaimable: true)])
        let latest = Sample(timestampMilliseconds: 1000, caches: [cache("kmalloc-cg-512", slabs: 20, reclaimable: false),
                                                                  cache("shmem_inode_cache", slabs: 90, reclaimable: false),
                                                                  cache("dentry", slabs: 90, reclaimable: true),
                                                                  cache("kmalloc-64", slabs: 5, reclaimable: false)])
        #expect(AttributionRun.grownMost(since: before, latest: latest, inodeCaches: .standard) == "kmalloc-cg-512")
        #expect(AttributionRun.grownMost(since: latest, latest: latest, inodeCaches: .standard) == nil, "nothing grew")
    }
}
