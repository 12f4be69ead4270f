/// Milliseconds from `since` to `now`, saturating instead of trapping: the
/// times come from a state file too, and one that says year −290 million
/// must not stop the daemon.
public func elapsedMilliseconds(_ now: Int64, since: Int64) -> Int64 {
    let (difference, overflow) = now.subtractingReportingOverflow(since)
    return overflow ? (since > now ? .min : .max) : difference
}

/// `seconds` as whole milliseconds, saturating at the ends of Int64 (and 0
/// for NaN): window lengths come from settings, times from a state file or a
/// recording's directory names, and neither may trap the daemon.
func saturatingMilliseconds(_ seconds: Double) -> Int64 {
    let milliseconds = seconds * 1000
    if milliseconds.isNaN { return 0 }
    if milliseconds >= 9.2e18 { return .max }
    if milliseconds <= -9.2e18 { return .min }
    return Int64(milliseconds)
}

/// `milliseconds` before `now`, saturating instead of trapping.
func earlier(_ now: Int64, by milliseconds: Int64) -> Int64 {
    let (difference, overflow) = now.subtractingReportingOverflow(milliseconds)
    return overflow ? (milliseconds > 0 ? .min : .max) : difference
}
