import Glibc

/// The two clocks slabwatch uses: monotonic for scheduling and freshness,
/// wall-clock only for the timestamps it reports.
public enum Clock: Sendable {
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// The clocks a sampler reads: `Clock`'s on a machine (`SystemTime`), a
/// test's own in a test, so no test waits for time to pass.
protocol TimeSource: Sendable {
    func monotonicNanoseconds() -> UInt64
    func wallMilliseconds() -> Int64
}

/// The machine's clocks.
struct SystemTime: TimeSource {
    func monotonicNanoseconds() -> UInt64 { Clock.monotonicNanoseconds() }
    func wallMilliseconds() -> Int64 { Clock.wallMilliseconds() }
}

/// Sample timestamps: the wall clock, except that they never run backwards.
///
/// When the wall clock is stepped back (NTP, an operator's `date -s`), the
/// timestamps follow the monotonic clock from the last one until the wall
/// clock catches up, so the ring and the detector never see time reversed;
/// a step forward is a gap, as if no samples were taken meanwhile.
struct SampleClock {
    private var last: (wall: Int64, monotonic: UInt64)?

    mutating func timestamp(wallMilliseconds wall: Int64, monotonicNanoseconds monotonic: UInt64) -> Int64 {
        var stamp = wall
        if let last {
            let elapsed = Int64((monotonic &- last.monotonic) / 1_000_000)
            // Saturating: `last` may be a restored time, and no restored time may trap.
            let next = last.wall.addingReportingOverflow(max(1, elapsed))
            stamp = max(wall, next.overflow ? .max : next.partialValue)
        }
        last = (stamp, monotonic)
        return stamp
    }

    /// Timestamps from now on come after `milliseconds` (a restored ring's
    /// newest sample), even if the wall clock was set back while stopped.
    mutating func continueAfter(_ milliseconds: Int64, monotonicNanoseconds monotonic: UInt64) {
        last = (max(milliseconds, last?.wall ?? .min), monotonic)
    }

    /// The timestamp of a sample taken now by `time`'s clocks.
    mutating func now(_ time: any TimeSource) -> Int64 {
        timestamp(wallMilliseconds: time.wallMilliseconds(), monotonicNanoseconds: time.monotonicNanoseconds())
    }
}
