/// How fast a cache's footprint or a counter moved lately, per minute: what
/// `slabwatch top` and the web page show beside each cache. A figure of the
/// history, read from the fine tier; nil until the samples it compares span
/// enough of the window (`WindowCoverage`): two samples a second apart say
/// nothing about the last five minutes, and times 60 their noise is large.
extension SampleRing {
    /// Footprint change per minute over the last `seconds` of the fine tier
    /// (or as much of it as the ring holds, when that covers enough of them); nil otherwise.
    public func footprintPerMinute(_ name: String, seconds: Double) -> Double? {
        guard let series = series(named: name) else { return nil }
        return fine.perMinute(seconds: seconds) { fine.footprint(series: series, at: $0) }
    }

    /// The same for one of the ring's counters (slab totals, file counters).
    public func counterPerMinute(_ counter: Counter, seconds: Double) -> Double? {
        fine.perMinute(seconds: seconds) { fine.counter(counter, at: $0) }
    }
}

extension SampleRing.Tier {
    /// How fast `value` changed per minute between the newest slot and the
    /// oldest one at most `seconds` before it (the oldest there is, if fewer);
    /// nil when those two span less than `WindowCoverage` asks of `seconds`.
    fileprivate func perMinute(seconds: Double, _ value: (Int) -> UInt64?) -> Double? {
        guard count >= 2, let latest = value(count - 1) else { return nil }
        let now = time(at: count - 1)
        var position = count - 2
        while position > 0 && Double(elapsedMilliseconds(now, since: time(at: position - 1))) / 1000 <= seconds { position -= 1 }
        guard let then = value(position) else { return nil }
        let elapsed = Double(elapsedMilliseconds(now, since: time(at: position))) / 1000
        guard elapsed > 0, WindowCoverage.covers(spanSeconds: elapsed, windowSeconds: seconds) else { return nil }
        return (Double(latest) - Double(then)) / elapsed * 60
    }
}
