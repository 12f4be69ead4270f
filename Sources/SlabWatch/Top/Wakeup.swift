import Glibc

/// A pipe that wakes the interactive top's poll: written by the signal
/// handlers (whichever thread the kernel picks to run them) and by a fetch
/// that ended.
enum Wakeup {
    /// Read end, write end; both non-blocking, so a handler never waits.
    /// Made before the handlers are installed: a lazy global's first use is
    /// not async-signal-safe.
    static let pipeEnds: (Int32, Int32) = {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return (-1, -1) }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        return (ends[0], ends[1])
    }()

    /// Async-signal-safe: one write(2).
    static func ring() {
        var byte: UInt8 = 1
        _ = write(pipeEnds.1, &byte, 1)
    }

    /// Empties the pipe once the loop is awake.
    static func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(pipeEnds.0, &bytes, bytes.count) > 0 {}
    }
}
