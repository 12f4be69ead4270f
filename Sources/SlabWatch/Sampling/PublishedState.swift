public import SlabWatchCore
import SlabWatchHTTP
import Synchronization

/// What one sampler tick publishes: immutable inputs, and the `/metrics` and
/// `/snapshot` bodies rendered from them at most once, on the first request
/// after the tick (a tick nobody scrapes renders nothing, and reads none of
/// slabwatch's own figures), and gzipped at most once too. Rendering runs on
/// the requester's thread, never the sampler's, so a scrape never waits on a
/// tick; a concurrent request waits for the one render instead of repeating
/// it. It holds no ring: `/metrics` never waits for the history's lock.
public final class PublishedState: Sendable {
    public let sample: Sample
    public let report: GrowthDetector.Report
    /// Monotonic time of publication (CLOCK_MONOTONIC nanoseconds), for /healthz.
    public let publishedAtNanoseconds: UInt64
    public let intervalSeconds: Double
    private let exposition: Exposition
    private let rendered = Mutex<[Key: [UInt8]]>([:])

    /// The two documents a tick publishes.
    public enum Body: Sendable { case metrics, snapshot }
    private struct Key: Hashable { var body: Body; var gzip: Bool }

    /// What `/metrics` needs besides the tick, as the sampler had it then.
    struct Exposition: Sendable {
        /// Which caches `/metrics` lists (the `slab.*` keys).
        var selection: SharedCacheSelection
        /// Each cache's footprint about an hour before the tick, for the
        /// growth ranking; nil when nothing ranks by growth.
        var growth: FootprintBaseline? = nil
        var version: String
        /// The sampler's own figures as of the tick.
        var sampler: SamplerStatistics
        /// slabwatch's other figures about itself, read at the first render.
        var own: any SelfStatisticsSource
        /// The last body's size, so a render reserves enough at once.
        var sizeHint: SizeHint

        /// The caches `/metrics` lists for `sample`: the one place that chooses them.
        func exported(_ sample: Sample, report: GrowthDetector.Report) -> CacheSelection.Choice {
            selection.choose(sample, findings: report.findings, growth: growth)
        }
    }

    init(sample: Sample, report: GrowthDetector.Report, publishedAtNanoseconds: UInt64, intervalSeconds: Double,
         exposition: Exposition) {
        self.sample = sample
        self.report = report
        self.publishedAtNanoseconds = publishedAtNanoseconds
        self.intervalSeconds = intervalSeconds
        self.exposition = exposition
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
        case .metrics:
            let choice = exposition.exported(sample, report: report)
            let input = MetricsRenderer.Input(
                sample: sample, exportedCaches: choice.caches, cachesBeyondTop: choice.beyondTop, version: exposition.version,
                report: report, own: exposition.own.statistics(sampler: exposition.sampler))
            let bytes = MetricsRenderer.render(input, sizeHint: exposition.sizeHint.value)
            exposition.sizeHint.value = bytes.count + bytes.count / 8
            return bytes
        case .snapshot:
            return SnapshotRenderer.render(sample, intervalSeconds: intervalSeconds, report: report)
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

/// A size remembered across renders on any thread.
final class SizeHint: Sendable {
    private let bytes = Atomic<Int>(64 * 1024)
    var value: Int {
        get { bytes.load(ordering: .relaxed) }
        set { bytes.store(newValue, ordering: .relaxed) }
    }
}

/// A sampler's choice of caches, shared by the states it publishes: each
/// render asks it on the requesting thread, once per state, and it keeps for
/// the next state's render what it remembers (each name's filter decision,
/// when each cache was last in a top N).
final class SharedCacheSelection: Sendable {
    private let selection: Mutex<CacheSelection>

    init(_ selection: CacheSelection) {
        self.selection = Mutex(selection)
    }

    func choose(_ sample: Sample, findings: [Finding] = [], growth: FootprintBaseline? = nil) -> CacheSelection.Choice {
        selection.withLock { $0.choose(sample, findings: findings, growth: growth) }
    }

    /// New filters and bound (a reload); what it remembers of the top N stays,
    /// so a reload does not drop the caches it holds.
    func apply(filter: CacheFilter, bound: ExportBound) {
        selection.withLock {
            $0.filter = filter
            $0.bound = bound
        }
    }
}
