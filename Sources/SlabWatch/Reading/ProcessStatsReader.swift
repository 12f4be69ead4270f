import Glibc
import SlabWatchCore
import Synchronization

/// Reads the daemon's own `process_*` figures from the real /proc/self (never
/// from the configured procfs root, which may be a recording of another machine).
/// Thread-safe: one read at a time (renders may come from any thread).
final class ProcessStatsReader: @unchecked Sendable {  // the file buffer and start time are used only under `lock`
    private let lock = Mutex(())
    private let files = FileReader(initialCapacity: 4096)
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    private lazy var startTimeSeconds: Double = computeStartTime()

    /// Nil (the `process_*` families left out) rather than made-up zeros when
    /// /proc/self/stat cannot be read or parsed.
    func read() -> ProcessStatistics? {
        lock.withLock { _ in readLocked() }
    }

    private func readLocked() -> ProcessStatistics? {
        guard let fields = statFields() else { return nil }
        // Fields after the command name, numbered from 3 (state) as in proc(5).
        func field(_ number: Int) -> UInt64? { UInt64(fields[number - 3]) }
        guard let user = field(14), let system = field(15), let resident = field(24), let virtual = field(23),
              let descriptors = openDescriptors()
        else { return nil }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessStatistics(
            cpuSeconds: Double(user + system) / ticksPerSecond,
            residentBytes: resident * pageSize,
            virtualBytes: virtual,
            openFileDescriptors: descriptors,
            maxFileDescriptors: UInt64(limit.rlim_cur),
            startTimeSeconds: startTimeSeconds)
    }

    /// /proc/self/stat's fields after `(comm)`; comm may hold spaces and parentheses.
    private func statFields() -> [Substring]? {
        guard let bytes = try? files.read("/proc/self/stat"),
              let close = bytes.lastIndex(of: UInt8(ascii: ")"))
        else { return nil }
        let rest = String(decoding: bytes[(close + 1)...], as: UTF8.self)
        let fields = rest.split(separator: " ")
        return fields.count >= 22 ? fields : nil
    }

    private func openDescriptors() -> UInt64? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var count: UInt64 = 0
        while readdir(dir) != nil { count += 1 }
        return count >= 2 ? count - 2 : 0  // "." and ".."
    }

    private func computeStartTime() -> Double {
        guard let fields = statFields(), let bytes = try? files.read("/proc/stat") else { return 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let bootTime = Double(line.dropFirst(6).trimmingCharacters(in: " ")),
              let startTicks = Double(fields[22 - 3])
        else { return 0 }
        return bootTime + startTicks / ticksPerSecond
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}
