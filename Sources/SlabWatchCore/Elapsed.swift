/// Milliseconds from `since` to `now`, saturating instead of trapping: the
/// times come from a state file too, and one that says year −290 million
/// must not stop the daemon.
func elapsedMilliseconds(_ now: Int64, since: Int64) -> Int64 {
    let (difference, overflow) = now.subtractingReportingOverflow(since)
    return overflow ? (since > now ? .min : .max) : difference
}
