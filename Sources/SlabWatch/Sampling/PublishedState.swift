public import SlabWatchCore
import SlabWatchHTTP
import Synchronization

/// What one sampler tick publishes: immutable inputs, and the `/metrics` and
/// `/snapshot` bodies rendered from them at most once, on the first request
/// after the tick (a tick nobody scrapes renders nothing), and gzipped at
/// most once too. Rendering runs on
/// the requester's thread, never the sampler's, so a scrape never waits on a
/// tick; a concurrent request waits for the one render instead of repeating it.
public final class PublishedState: Sendable {
    public let sample: Sample
    public let report: GrowthDetector.Report
    /// Monotonic time of publication (CLOCK_MONOTONIC nanoseconds), for /healthz.
    public let publishedAtNanoseconds: UInt64
    public let intervalSeconds: Double
    private let renderMetrics: @Sendable () -> [UInt8]
    private let renderSnapshot: @Sendable () -> [UInt8]
    private let rendered = Mutex<[Key: [UInt8]]>([:])

    /// The two documents a tick publishes.
    public enum Body: Sendable { case metrics, snapshot }
    private struct Key: Hashable { var body: Body; var gzip: Bool }

    public init(sample: Sample, report: GrowthDetector.Report, publishedAtNanoseconds: UInt64, intervalSeconds: Double,
                metrics: @escaping @Sendable () -> [UInt8], snapshot: @escaping @Sendable () -> [UInt8]) {
        self.sample = sample
        self.report = report
        self.publishedAtNanoseconds = publishedAtNanoseconds
        self.intervalSeconds = intervalSeconds
        renderMetrics = metrics
        renderSnapshot = snapshot
    }

    /// The `/metrics` body.
    public var metrics: [UInt8] { bytes(.metrics) }

    /// The `/snapshot` body.
    public var snapshot: [UInt8] { bytes(.snapshot) }

    /// A body, rendered on first use.
    public func bytes(_ body: Body) -> [UInt8] {
        rendered.withLock { cache in Self.cached(Key(body: body, gzip: false), in: &cache) { render(body) } }
    }

    /// A body gzip-compressed, compressed on first use (nil if zlib failed).
    public func gzipped(_ body: Body) -> [UInt8]? {
        rendered.withLock { cache in
            let plain = Self.cached(Key(body: body, gzip: false), in: &cache) { render(body) }
            let compressed = Self.cached(Key(body: body, gzip: true), in: &cache) { Gzip.compress(plain) ?? [] }
            return compressed.isEmpty ? nil : compressed
        }
    }

    private func render(_ body: Body) -> [UInt8] {
        switch body {
        case .metrics: renderMetrics()
        case .snapshot: renderSnapshot()
        }
    }

    private static func cached(_ key: Key, in cache: inout [Key: [UInt8]], _ make: () -> [UInt8]) -> [UInt8] {
        if let bytes = cache[key] { return bytes }
        let bytes = make()
        cache[key] = bytes
        return bytes
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
