import Glibc

/// The two clocks slabwatch uses: monotonic for scheduling and freshness,
/// wall-clock only for the timestamps it reports.
enum Clock {
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static var pageSize: UInt64 { UInt64(sysconf(Int32(_SC_PAGESIZE))) }
}
