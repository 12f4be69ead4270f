/// One point of a cache's history from the ring (`/snapshot?slab=…&history=…`).
public struct HistoryPoint: Sendable, Equatable {
    public var timestampMilliseconds: Int64
    /// Nil when the cache was absent from that sample.
    public var footprintBytes: UInt64?
    public var inodes: UInt64?
    public var dentries: UInt64?
    public var openFiles: UInt64?

    /// Longer spans than this ask for everything: far more than any ring holds,
    /// and small enough that the cutoff never overflows.
    static let longestSpanSeconds = 1e12

    /// The points of `slab` newer than `seconds` before the newest sample,
    /// oldest first: coarse-tier points older than the fine tier, then the fine tier.
    /// Any `seconds` is safe (negative, huge, NaN); nil when the cache was never seen.
    static func collect(_ ring: SampleRing, slab: String, seconds: Double) -> [HistoryPoint]? {
        guard let series = ring.series(named: slab), ring.fine.count > 0 else { return nil }
        let newest = ring.fine.time(at: ring.fine.count - 1)
        let span = seconds.isNaN ? 0 : min(max(0, seconds), longestSpanSeconds)
        let cutoff = newest - Int64(span * 1000)
        let fineStart = ring.fine.time(at: 0)
        var points: [HistoryPoint] = []
        for position in 0..<ring.coarse.count {
            let time = ring.coarse.time(at: position)
            if time >= cutoff && time < fineStart { points.append(point(ring.coarse, series, position)) }
        }
        for position in 0..<ring.fine.count where ring.fine.time(at: position) >= cutoff {
            points.append(point(ring.fine, series, position))
        }
        return points
    }

    private static func point(_ tier: SampleRing.Tier, _ series: Int, _ position: Int) -> HistoryPoint {
        HistoryPoint(
            timestampMilliseconds: tier.time(at: position), footprintBytes: tier.footprint(series: series, at: position),
            inodes: tier.counter(.inodes, at: position), dentries: tier.counter(.dentries, at: position),
            openFiles: tier.counter(.openFiles, at: position))
    }

    /// `{"slab": …, "history_seconds": …, "points": [{timestamp, footprint_bytes, inodes, dentries, open_files}]}`
    public static func render(slab: String, seconds: Double, points: [HistoryPoint]) -> [UInt8] {
        var json = JSONWriter(reservingCapacity: 64 + points.count * 120)
        json.beginObject()
        json.key("slab"); json.string(slab)
        json.key("history_seconds"); json.number(seconds)
        json.key("points"); json.beginArray()
        for p in points {
            json.beginObject()
            json.key("timestamp"); json.string(RFC3339.format(unixMilliseconds: p.timestampMilliseconds))
            json.key("footprint_bytes"); json.number(p.footprintBytes)
            json.key("inodes"); json.number(p.inodes)
            json.key("dentries"); json.number(p.dentries)
            json.key("open_files"); json.number(p.openFiles)
            json.endObject()
        }
        json.endArray()
        json.endObject()
        json.newline()
        return json.bytes
    }
}
