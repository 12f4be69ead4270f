import Glibc
public import SlabWatchCore

/// The sampling of one `slabwatch measure` run, in three phases: a
/// baseline before the workload (of which only the last sample is kept,
/// the report's "before"), the workload while it runs (sampled every
/// interval, and once more just after it exits), and settling after it,
/// until `settleSeconds` have passed or a signal ends it. Memory is bounded
/// in every phase: `MeasurementSamples` thins a long phase and the interval
/// doubles with it.
///
/// Samples come from a `SampleSource` (the kernel's files, through
/// `ProcReader`), time from a `MeasureClock` and signals through
/// `Interruptions`, so that a test runs every phase in fake time. Not
/// thread-safe: one owner.
public struct MeasureRun {
    /// How long each phase lasts and how often it samples: the defaults of
    /// `measure`'s options, and the ranges they accept.
    public struct Settings: Sendable, Equatable {
        public var intervalSeconds = 0.2
        public var settleSeconds = 10.0
        public var baselineSeconds = 1.0

        public init() {}
    }

    /// Why a run ends before its report.
    public enum Stop: Error, Equatable {
        /// A signal arrived before the workload started: measure ends by it.
        case interrupted
        /// No slab cache can be read, so every report would be empty and pass.
        case unreadable(String)
    }

    private let source: any SampleSource
    private var clock: any MeasureClock
    private let interruptions: any Interruptions
    /// Grows as a long run or settling is thinned (`MeasurementSamples`).
    public private(set) var intervalSeconds: Double
    public private(set) var samples = MeasurementSamples()
    private var exitedAt: UInt64 = 0

    /// How often the workload is polled while it runs: its wall time is
    /// measured to this, and it is not a sample.
    static let pollSeconds = 0.005

    public init(source: any SampleSource, clock: any MeasureClock, interruptions: any Interruptions, intervalSeconds: Double) {
        self.source = source
        self.clock = clock
        self.interruptions = interruptions
        self.intervalSeconds = intervalSeconds
    }

    private mutating func sample() {
        if samples.append(source.sample(timestampMilliseconds: clock.wallMilliseconds())) { intervalSeconds *= 2 }
    }

    /// At least one sample, the last just before the workload starts.
    /// - Throws: `Stop` on a signal, or when the first sample has no cache.
    public mutating func sampleBaseline(seconds: Double) throws(Stop) {
        let count = max(1, Int((seconds / intervalSeconds).rounded()))
        for i in 0..<count {
            if i > 0 { clock.sleep(seconds: intervalSeconds) }
            if interruptions.pending { throw .interrupted }
            sample()
            if i == 0, samples.kept[0].caches.isEmpty {
                throw .unreadable(samples.kept[0].status(of: .slabinfo).error ?? "no slab caches listed")
            }
        }
        samples.commandStarted()
    }

    /// Starts the workload and samples every interval until it ends
    /// (polled every `pollSeconds`, so the wall time is the workload's),
    /// then once more. `watcher` sees it start, each sample, and its end.
    /// - Returns: how it ended, and its wall time in seconds.
    /// - Throws: `MeasureRunError`: `.stopped(.interrupted)` for a signal
    ///   before it starts (it never does), `.cannotStart` when it cannot.
    public mutating func sampleWorkload(_ workload: inout some Workload, watcher: inout some RunWatcher) throws(MeasureRunError)
        -> (Termination, Double)
    {
        if interruptions.pending { throw .stopped(.interrupted) }
        watcher.workloadStarting()
        let startedAt = clock.monotonicNanoseconds()
        do { try workload.start() } catch { throw .cannotStart(error) }
        watcher.workloadStarted()
        var next = startedAt
        var termination: Termination
        while true {
            if let ended = workload.poll() { termination = ended; break }
            let now = clock.monotonicNanoseconds()
            if now >= next {
                sample()
                next = max(next + UInt64(intervalSeconds * 1e9), now)  // a slow read skips a beat rather than sampling in a burst
                watcher.sampled(samples, secondsSinceStart: Double(now - startedAt) / 1e9)
            }
            clock.sleep(seconds: Self.pollSeconds)
        }
        exitedAt = clock.monotonicNanoseconds()
        watcher.workloadEnded()
        if samples.commandExited(firstAfter: source.sample(timestampMilliseconds: clock.wallMilliseconds())) { intervalSeconds *= 2 }
        return (termination, Double(exitedAt - startedAt) / 1e9)
    }

    /// Every interval until `seconds` after the workload exited, or until a signal.
    /// - Returns: how long it settled.
    public mutating func sampleSettling(seconds: Double) -> Double {
        func elapsed() -> Double { Double(clock.monotonicNanoseconds() - exitedAt) / 1e9 }
        while elapsed() < seconds, !interruptions.pending {
            clock.sleep(seconds: min(intervalSeconds, seconds - elapsed()))
            if interruptions.pending { break }
            sample()
        }
        return interruptions.pending ? min(seconds, elapsed()) : seconds
    }
}

/// One owner: its sources and clocks are not shared.
@available(*, unavailable)
extension MeasureRun: Sendable {}

/// Why `sampleWorkload` did not run the workload.
public enum MeasureRunError: Error {
    case stopped(MeasureRun.Stop)
    case cannotStart(WorkloadError)
}

/// Where measure's samples come from.
public protocol SampleSource {
    func sample(timestampMilliseconds: Int64) -> Sample
}

extension ProcReader: SampleSource {}

/// Told what happens while the workload runs (measure's `--attribute`).
public protocol RunWatcher {
    /// Before the workload is started: what must see all of it gets ready
    /// here (an attribution session of a named cache attaches first).
    mutating func workloadStarting()
    mutating func workloadStarted()
    /// After each sample: every sample kept so far, and the time since the workload started.
    mutating func sampled(_ samples: MeasurementSamples, secondsSinceStart: Double)
    mutating func workloadEnded()
}

/// No watcher (measure without `--attribute`): nothing is told.
extension RunWatcher {
    public mutating func workloadStarting() {}
}

extension Optional: RunWatcher where Wrapped: RunWatcher {
    public mutating func workloadStarting() { self?.workloadStarting() }
    public mutating func workloadStarted() { self?.workloadStarted() }
    public mutating func sampled(_ samples: MeasurementSamples, secondsSinceStart: Double) { self?.sampled(samples, secondsSinceStart: secondsSinceStart) }
    public mutating func workloadEnded() { self?.workloadEnded() }
}

/// Measure's time: the monotonic clock for its phases, the wall clock for
/// its samples' timestamps, and sleeping between samples.
public protocol MeasureClock {
    func monotonicNanoseconds() -> UInt64
    func wallMilliseconds() -> Int64
    /// Sleeps `seconds`, or less when a signal measure acts on arrives.
    mutating func sleep(seconds: Double)
}

/// The machine's clocks; sleeps end early on a pending signal.
public struct SystemMeasureClock: MeasureClock, Sendable {
    public init() {}

    public func monotonicNanoseconds() -> UInt64 { Clock.monotonicNanoseconds() }
    public func wallMilliseconds() -> Int64 { Clock.wallMilliseconds() }

    public mutating func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR && !SignalForwarding.pending { request = remaining }
    }
}

extension MeasureRun.Settings {
    public static let interval = DurationOption(name: "interval", summary: "time between samples while it runs and settles",
                                                default: Self().intervalSeconds, range: 0.01...60)
    public static let settle = DurationOption(name: "settle", summary: "how long to keep sampling after it exits",
                                              default: Self().settleSeconds, range: 0...3600)
    public static let baseline = DurationOption(name: "baseline", summary: "how long to sample before it starts",
                                                default: Self().baselineSeconds, range: 0...600)
    public static let options = [interval, settle, baseline]

    /// Each option as given, else its default.
    /// - Throws: `UsageError` for a value out of its range.
    public init(_ line: ParsedCommand) throws(UsageError) {
        self.init()
        intervalSeconds = try Self.interval.value(in: line) ?? intervalSeconds
        settleSeconds = try Self.settle.value(in: line) ?? settleSeconds
        baselineSeconds = try Self.baseline.value(in: line) ?? baselineSeconds
    }
}

extension MeasurementSettings {
    public static let noise = SizeOption(name: "noise", summary: "a cache moved when its footprint moved by this much, and by \(Self().noiseSlabs) slabs",
                                         default: Self().noiseBytes)
}
