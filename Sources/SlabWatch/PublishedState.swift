public import SlabWatchCore
import Synchronization

/// What one sampler tick publishes: immutable, rendered once, shared by every
/// reader. The HTTP side only ever copies these bytes.
public final class PublishedState: Sendable {
    public let sample: Sample
    /// The `/metrics` body.
    public let metrics: [UInt8]
    /// The `/snapshot` body.
    public let snapshot: [UInt8]
    /// Monotonic time of publication (CLOCK_MONOTONIC nanoseconds), for /healthz.
    public let publishedAtNanoseconds: UInt64
    public let intervalSeconds: Double
    public let report: GrowthDetector.Report

    public init(sample: Sample, metrics: [UInt8], snapshot: [UInt8], report: GrowthDetector.Report,
                publishedAtNanoseconds: UInt64, intervalSeconds: Double) {
        self.sample = sample
        self.report = report
        self.metrics = metrics
        self.snapshot = snapshot
        self.publishedAtNanoseconds = publishedAtNanoseconds
        self.intervalSeconds = intervalSeconds
    }
}

/// Holds the latest `PublishedState`; swapped once per tick, read by any thread.
public final class StateStore: Sendable {
    private let current = Mutex<PublishedState?>(nil)

    public init() {}

    public var latest: PublishedState? { current.withLock { $0 } }

    public func publish(_ state: PublishedState) {
        current.withLock { $0 = state }
    }
}
