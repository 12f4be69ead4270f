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
///
/// A value made only by `StateStore.publish`: publishing one allocates
/// nothing (its sample and report are the step's storage, already made), and
/// its bodies are kept in its store's `RenderedBodies` under its `tick`. A
/// request still holding a state after a newer tick's body was rendered gets
/// that state's bodies rendered for it alone (see `RenderedBodies`).
public struct PublishedState: Sendable {
    public let sample: Sample
    public let report: GrowthDetector.Report
    /// Monotonic time of publication (CLOCK_MONOTONIC nanoseconds), for /healthz.
    public let publishedAtNanoseconds: UInt64
    public let intervalSeconds: Double
    private let exposition: Exposition
    /// Which of its store's ticks this is, from 1: the key of its bodies.
    let tick: UInt64
    private let bodies: RenderedBodies

    /// The two documents a tick publishes.
    public enum Body: Sendable { case metrics, snapshot }

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

    fileprivate init(sample: Sample, report: GrowthDetector.Report, publishedAtNanoseconds: UInt64, intervalSeconds: Double,
                     exposition: Exposition, tick: UInt64, bodies: RenderedBodies) {
        self.sample = sample
        self.report = report
        self.publishedAtNanoseconds = publishedAtNanoseconds
        self.intervalSeconds = intervalSeconds
        self.exposition = exposition
        self.tick = tick
        self.bodies = bodies
    }

    /// The `/metrics` body.
    public var metrics: [UInt8] { bytes(.metrics) }

    /// The `/snapshot` body.
    public var snapshot: [UInt8] { bytes(.snapshot) }

    /// A body, rendered on first use.
    public func bytes(_ body: Body) -> [UInt8] {
        bodies.withBodies(of: self) { kept in RenderedBodies.cached(.init(body: body, gzip: false), in: &kept) { render(body) } }
    }

    /// A body gzip-compressed, compressed on first use (nil if zlib failed).
    public func gzipped(_ body: Body) -> [UInt8]? {
        bodies.withBodies(of: self) { kept in
            let plain = RenderedBodies.cached(.init(body: body, gzip: false), in: &kept) { render(body) }
            let compressed = RenderedBodies.cached(.init(body: body, gzip: true), in: &kept) { Gzip.compress(plain) ?? [] }
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
}

/// The bodies of the newest tick a request rendered, for every state of one
/// store: one object for all its ticks, so a tick allocates no box of its
/// own. Rendering runs under the lock, so a concurrent request for the same
/// tick waits for the one render; the sampler never takes it, so a scrape
/// never waits on a tick nor a tick on a scrape.
///
/// A newer tick's first request drops the bodies kept (keeping the
/// dictionary's storage): they stay resident until then, not until the next
/// tick is published, as they did in a state of their own — the same
/// bodies at most, held longer when nobody scrapes. A request for an older
/// tick than the one kept (it took its state before the sampler published
/// the next, and asked after a request rendered that one) renders outside
/// the lock and keeps nothing: that tick is rendered again, for it alone,
/// after waiting at most for a render of the newer tick to learn it is older.
final class RenderedBodies: Sendable {
    struct Key: Hashable { var body: PublishedState.Body; var gzip: Bool }

    private struct Kept {
        var tick: UInt64 = 0
        var bodies: [Key: [UInt8]] = [:]
    }

    private let kept = Mutex(Kept())

    /// Calls `use` with the bodies kept for `state`'s tick, under the lock;
    /// for an older tick than the one kept, with bodies of its own.
    func withBodies<Result: Sendable>(of state: PublishedState, _ use: (inout [Key: [UInt8]]) -> Result) -> Result {
        let result: Result? = kept.withLock { kept in
            if state.tick > kept.tick {
                kept.tick = state.tick
                kept.bodies.removeAll(keepingCapacity: true)
            }
            return state.tick == kept.tick ? use(&kept.bodies) : nil
        }
        if let result { return result }
        var own: [Key: [UInt8]] = [:]
        return use(&own)
    }

    static func cached(_ key: Key, in bodies: inout [Key: [UInt8]], _ make: () -> [UInt8]) -> [UInt8] {
        if let bytes = bodies[key] { return bytes }
        let bytes = make()
        bodies[key] = bytes
        return bytes
    }
}

/// Holds the latest `PublishedState`; swapped once per tick, read by any
/// thread. The one maker of states: each is the next tick of its store.
public final class StateStore: Sendable {
    private let current = Mutex<PublishedState?>(nil)
    private let bodies = RenderedBodies()

    public init() {}

    public var latest: PublishedState? { current.withLock { $0 } }

    /// Publishes a tick's state and returns it: the store's next tick,
    /// its bodies kept in the store's `RenderedBodies`.
    func publish(sample: Sample, report: GrowthDetector.Report, publishedAtNanoseconds: UInt64, intervalSeconds: Double,
                 exposition: PublishedState.Exposition) -> PublishedState {
        current.withLock { latest in
            let state = PublishedState(sample: sample, report: report, publishedAtNanoseconds: publishedAtNanoseconds,
                                       intervalSeconds: intervalSeconds, exposition: exposition, tick: (latest?.tick ?? 0) + 1,
                                       bodies: bodies)
            latest = state
            return state
        }
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
