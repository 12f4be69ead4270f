import Foundation
import Glibc
import Testing

/// The memory outside every cache on the live kernel: 1,000 pipes resized to
/// 1 MiB hold 16 KiB each from the page allocator, in SUnreclaim and on no
/// slabinfo line. The daemon's `(outside caches, unreclaimable)` series must
/// rise and fall with them as the kernel's own counters do, while another
/// process churns tmpfs files with xattrs (shmem_inode_cache and
/// kmalloc-cg-1k: slab activity of caches, which the series must not see).
/// Part of the serialized end-to-end suite: it mounts a tmpfs and moves slab.
extension EndToEndTests {
    static let outsideMetric = #"slabwatch_memory_outside_caches_bytes{memory="unreclaimable"}"#

    @Test(.enabled(if: LargeAllocationTesting.available, "root, and a kernel whose pipe rings are above its largest kmalloc cache"))
    func liveOutsideSeriesTracksPipesBesideUnrelatedSlabChurn() throws {
        let perPipe = Double(try #require(LargeAllocationTesting.bytesPerPipe))
        let pipes = LargeAllocationTesting.pipes
        let error = try #require(OutsideTruth.vmstatErrorBytes(), "no vm stats threshold in /proc/zoneinfo")
        // Each of the daemon's two readings of SUnreclaim may lag by the
        // vmstat error (the test's own fold the per-CPU deltas first), and
        // caches may move between its reads of slabinfo and meminfo by as
        // much as the kernel's own readings of a phase spread.
        func bound(_ a: OutsideTruth.Reading, _ b: OutsideTruth.Reading) -> Double { 2 * error + max(a.kernelSpread, b.kernelSpread) }

        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        #expect(try DaemonProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=256m", "slabwatch-test", mountPoint.path]).status == 0)
        defer {
            _ = try? DaemonProcess.run("/bin/umount", [mountPoint.path])
            try? FileManager.default.removeItem(at: mountPoint)
        }
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "250ms"])
        let churn = try XattrChurn(directory: mountPoint)
        defer { churn.stop() }
        try daemon.waitForSamples(8)  // the churn gets going

        let before = try OutsideTruth.reading(daemon)
        var holder: LargeAllocationTesting.PipeHolder? = try LargeAllocationTesting.PipeHolder(count: pipes)
        let held = try OutsideTruth.reading(daemon)
        holder?.close()
        holder = nil
        let closed = try OutsideTruth.reading(daemon)
        churn.stop()

        let kernelRise = held.kernel - before.kernel, daemonRise = held.daemon - before.daemon
        #expect(abs(kernelRise - Double(pipes) * perPipe) / (Double(pipes) * perPipe) < 0.05,
                "the kernel's own counters: \(kernelRise) B outside the caches for \(pipes) pipes of \(perPipe) B")
        #expect(abs(daemonRise - kernelRise) <= bound(before, held), "rise: before \(before)\nheld \(held)\nerror \(error)")
        let kernelFall = held.kernel - closed.kernel, daemonFall = held.daemon - closed.daemon
        #expect(abs(daemonFall - kernelFall) <= bound(held, closed), "fall: held \(held)\nclosed \(closed)\nerror \(error)")
        #expect(abs((closed.daemon - before.daemon) - (closed.kernel - before.kernel)) <= bound(before, closed),
                "back: before \(before)\nclosed \(closed)\nerror \(error)")
        #expect(churn.rounds > 0, "the unrelated churn ran")
    }
}

/// What the test takes for the truth: `SUnreclaim − Σ unreclaimable cache
/// footprints` from /proc/meminfo and /proc/slabinfo right after writing
/// /proc/sys/vm/stat_refresh (root: it folds every CPU's vmstat deltas, so
/// SUnreclaim is exact), reclaimability from /sys/kernel/slab.
enum OutsideTruth {
    struct Reading: CustomStringConvertible {
        /// Medians of nine readings each, in bytes.
        var daemon: Double
        var kernel: Double
        /// How far the kernel's own readings spread: what caches moving
        /// between the read of /proc/slabinfo and of /proc/meminfo costs a
        /// reading while the churn runs (the daemon reads them apart too).
        var kernelSpread: Double
        var readings: [(daemon: Double, kernel: Double)]

        var description: String { "daemon \(daemon), kernel \(kernel) (spread \(kernelSpread)): \(readings)" }
    }

    /// Nine of the daemon's samples, two ticks apart, and nine of the
    /// kernel's counters beside them: medians, so a reading taken while a
    /// cache moved between the two files does not decide.
    static func reading(_ daemon: DaemonProcess) throws -> Reading {
        var fromDaemon: [Double] = [], fromKernel: [Double] = []
        for _ in 0..<9 {
            try daemon.waitForSamples(2)
            let value = try #require(samples(try daemon.get("/metrics").body)[EndToEndTests.outsideMetric], "no outside series in /metrics")
            fromDaemon.append(value)
            fromKernel.append(try kernel())
        }
        return Reading(daemon: median(fromDaemon), kernel: median(fromKernel), kernelSpread: fromKernel.max()! - fromKernel.min()!,
                       readings: Array(zip(fromDaemon, fromKernel)))
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static func kernel() throws -> Double {
        let fd = open("/proc/sys/vm/stat_refresh", O_WRONLY)
        try #require(fd >= 0, "cannot open /proc/sys/vm/stat_refresh")
        _ = write(fd, "1\n", 2)
        close(fd)
        // SUnreclaim read on either side of slabinfo, in this process (no
        // fork between the reads): their mean cancels caches that moved
        // steadily while slabinfo was read.
        let first = try sUnreclaim(), slabinfo = try read("/proc/slabinfo"), second = try sUnreclaim()
        let unreclaimable = (first + second) / 2
        var caches = 0.0
        for line in slabinfo.split(separator: "\n").dropFirst(2) {
            let fields = line.split(separator: " ")
            guard fields.count >= 16, let pagesPerSlab = Double(fields[5]), let slabs = Double(fields[14]) else { continue }
            if try !isReclaimable(String(fields[0])) { caches += slabs * pagesPerSlab * Double(getpagesize()) }
        }
        return unreclaimable - caches
    }

    static func sUnreclaim() throws -> Double {
        let line = try #require(try read("/proc/meminfo").split(separator: "\n").first { $0.hasPrefix("SUnreclaim:") })
        return try #require(Double(line.split(separator: " ")[1])) * 1024
    }

    /// A /proc file whole, by read(2) (its size reads as 0).
    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0, "cannot open \(path)")
        defer { close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = Glibc.read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    nonisolated(unsafe) static var reclaimable: [String: Bool] = [:]

    static func isReclaimable(_ cache: String) throws -> Bool {
        if let known = reclaimable[cache] { return known }
        let flag = try DaemonProcess.run("/bin/cat", ["/sys/kernel/slab/\(cache)/reclaim_account"]).output
        let value = try #require(flag.first, "no reclaim_account for \(cache)") == "1"
        reclaimable[cache] = value
        return value
    }

    /// The kernel's bound on a slab counter's lag: the largest `vm stats
    /// threshold` of /proc/zoneinfo (pages) × the CPUs of a zone's pagesets × the page size.
    static func vmstatErrorBytes() -> Double? {
        guard let text = try? DaemonProcess.run("/bin/cat", ["/proc/zoneinfo"]).output else { return nil }
        var threshold = 0.0, cpus = 0, cpusInZone = 0
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Node ") { cpusInZone = 0 }
            if trimmed.hasPrefix("cpu:") { cpusInZone += 1; cpus = max(cpus, cpusInZone) }
            if trimmed.hasPrefix("vm stats threshold:"), let value = Double(trimmed.split(separator: " ").last ?? "") {
                threshold = max(threshold, value)
            }
        }
        return threshold > 0 && cpus > 0 ? threshold * Double(cpus) * Double(getpagesize()) : nil
    }
}

/// Another process's slab activity: tmpfs files with a 700-byte user xattr
/// (kmalloc-cg-1k) made and deleted, 2,000 at a time, until stopped.
final class XattrChurn {
    private let process = Process()
    private let output = Pipe()
    private(set) var rounds = 0

    init(directory: URL) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import os, sys
            d = sys.argv[1]
            while True:
                names = [os.path.join(d, 'u%d' % i) for i in range(2000)]
                for p in names:
                    open(p, 'w').close()
                    os.setxattr(p, 'user.other', b'b' * 700)
                for p in names: os.unlink(p)
                print('round', flush=True)
            """, directory.path]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Ends the process, counts its rounds; its files go with the tmpfs.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        rounds = text.split(separator: "\n").count
    }

    deinit { stop() }
}
