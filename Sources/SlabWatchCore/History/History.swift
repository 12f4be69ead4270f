/// The ring as the pages, `/chart.svg`, `/snapshot?history=` and `top` read
/// it: a read-only value, with the figures they show. Holding one shares the
/// ring's storage (copy on write), so a reader that keeps it across the next
/// sample makes that append copy the ring: read, render, let go.
public struct History: Sendable {
    private let ring: SampleRing

    public init(_ ring: SampleRing) {
        self.ring = ring
    }

    /// No history at all: what a page shows before the first sample.
    public static let empty = History(SampleRing(configuration: .init(fineCapacity: 1, coarseCapacity: 1), initialSeriesCapacity: 1))

    /// The points of `slab` newer than `seconds` before the newest sample,
    /// oldest first (`HistoryPoint.collect`); nil when the cache was never seen.
    public func points(slab: String, seconds: Double) -> [HistoryPoint]? {
        HistoryPoint.collect(ring, slab: slab, seconds: seconds)
    }

    /// A cache's footprint change per minute over the last `seconds` (`SampleRing.footprintPerMinute`).
    public func footprintPerMinute(_ name: String, seconds: Double) -> Double? {
        ring.footprintPerMinute(name, seconds: seconds)
    }

    /// A counter's change per minute over the last `seconds` (`SampleRing.counterPerMinute`).
    public func counterPerMinute(_ counter: SampleRing.Counter, seconds: Double) -> Double? {
        ring.counterPerMinute(counter, seconds: seconds)
    }
}
