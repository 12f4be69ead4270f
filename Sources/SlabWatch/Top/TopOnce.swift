public import SlabWatchCore

/// `top --once`: one screen as text, for scripts and bug reports. Two frames
/// one delay apart, so that the growth columns have two samples; a column
/// stays `-` until the delay covers enough of its window (`WindowCoverage`).
public enum TopOnce: Sendable {
    /// - Throws: `TopFailure` when a frame cannot be had.
    public static func render(feed: any TopFeed, clock: any TopClock, options: TopView.Options) throws(TopFailure) -> String {
        var options = options
        options.color = false
        options.width = 1000  // whole names and findings
        _ = try feed.next()
        clock.sleep(seconds: options.intervalSeconds)
        let frame = try feed.next()
        return TopView.render(sample: frame.sample, history: frame.history, report: frame.report, options: options).joined(separator: "\n")
    }
}
