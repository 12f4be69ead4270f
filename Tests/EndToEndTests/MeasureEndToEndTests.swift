import Foundation
import Glibc
import Testing

/// `slabwatch measure` and `slabwatch diff` on the live kernel: tmpfs files
/// with user xattrs of one size, each test on a tmpfs of its own. The cost
/// measure reports must be what /proc/slabinfo says the kernel spent per
/// file, read by the test itself before and after. Part of the serialized
/// end-to-end suite: other tmpfs growth beside it would be its noise (a
/// tmpfs test of another checkout running at the same time makes them fail:
/// its inodes are `shmem_inode_cache`'s too).
extension EndToEndTests {
    /// Creates `count` files with a `size`-byte user xattr each, at about
    /// 20,000 a second (so the run spans several samples), and deletes them
    /// again when `delete` is given.
    static let xattrWorkload = """
        import os, sys, time
        d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        value = b"a" * size
        start = time.time()
        for i in range(n):
            fd = os.open(os.path.join(d, "f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644)
            os.setxattr(fd, "user.slabwatch", value)
            os.close(fd)
            if i % 1000 == 999:
                wait = start + (i + 1) / 20000.0 - time.time()
                if wait > 0: time.sleep(wait)
        if sys.argv[4:] == ["delete"]:
            for i in range(n): os.unlink(os.path.join(d, "f%d" % i))
        """

    /// A fresh tmpfs under the temporary directory, unmounted and removed after `body`.
    static func withTmpfs<T>(_ body: (URL) throws -> T) throws -> T {
        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-measure-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: mountPoint) }
        #expect(try DaemonProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1g", "slabwatch-test", mountPoint.path]).status == 0)
        defer { _ = try? DaemonProcess.run("/bin/umount", [mountPoint.path]) }
        return try body(mountPoint)
    }

    static func measure(_ options: [String], _ command: [String]) throws -> DaemonProcess.RunResult {
        try DaemonProcess.run(DaemonProcess.binary.path, ["measure"] + options + ["--"] + command)
    }

    static func xattrs(_ directory: URL, files: Int, size: Int, delete: Bool = false) -> [String] {
        ["/usr/bin/python3", "-c", xattrWorkload, directory.path, "\(files)", "\(size)"] + (delete ? ["delete"] : [])
    }

    /// `measure --json` into a file; the report as a dictionary, and the run.
    static func measureJSON(_ options: [String], _ command: [String]) throws -> (report: [String: Any], run: DaemonProcess.RunResult) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-measure-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try measure(["--json", "--output", file.path] + options, command)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        return (report, run)
    }

    static func removeContents(of directory: URL) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    static func cache(_ report: [String: Any], _ name: String) -> [String: Any]? {
        (report["caches"] as? [[String: Any]])?.first { $0["slab"] as? String == name }
    }

    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs and reads /proc/slabinfo"))
    func measureReportsWhatTheKernelSpentPerFileAndWhatItKept() throws {
        try Self.withTmpfs { directory in
            let files = 40_000
            let before = try Self.liveFootprints(["kmalloc-cg-512"])
            let (report, run) = try Self.measureJSON(["--settle", "2s"], Self.xattrs(directory, files: files, size: 400))
            let after = try Self.liveFootprints(["kmalloc-cg-512"])
            #expect(run.status == 0, "\(run.error)")
            let spent = (try #require(after["kmalloc-cg-512"]) - (before["kmalloc-cg-512"] ?? 0)) / Double(files)
            let xattrs = try #require(Self.cache(report, "kmalloc-cg-512"), "\(report)")
            let reported = try #require(xattrs["bytes_per_unit"] as? Double)
            #expect(abs(reported - spent) / spent < 0.05, "reported \(reported) B per file, the kernel spent \(spent)")
            #expect(xattrs["driver"] as? String == "inodes")
            #expect(xattrs["inode_cache"] as? String == "shmem_inode_cache")
            #expect(xattrs["filesystem"] as? String == "tmpfs")
            #expect(try #require(xattrs["r_squared"] as? Double) > 0.99)
            // The files are still there: their xattrs are kept after exit.
            let kept = try #require(xattrs["kept_bytes"] as? Double)
            #expect(abs(kept - spent * Double(files)) / (spent * Double(files)) < 0.05, "kept \(kept)")
            #expect(xattrs["reclaimable"] as? Bool == false)
            #expect(try #require(report["kept_unreclaimable_bytes"] as? Double) >= kept)
            let total = try #require(report["slab_unreclaimable"] as? [String: Any])
            #expect(try #require(total["bytes_per_unit"] as? Double) > reported, "the total per file holds the inode too")
            #expect(report["exit_status"] as? Double == 0)
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func filesDeletedBeforeExitLeaveNothingKept() throws {
        try Self.withTmpfs { directory in
            let (report, run) = try Self.measureJSON(["--settle", "2s"], Self.xattrs(directory, files: 40_000, size: 400, delete: true))
            #expect(run.status == 0, "\(run.error)")
            let xattrs = try #require(Self.cache(report, "kmalloc-cg-512"), "the rise is reported: \(report)")
            let peak = try #require(xattrs["peak_bytes"] as? Double), start = try #require(xattrs["before_bytes"] as? Double)
            #expect(peak - start > 15e6)
            for slab in ["kmalloc-cg-512", "shmem_inode_cache"] {
                let kept = Self.cache(report, slab)?["kept_bytes"] as? Double ?? 0
                #expect(abs(kept) < 1_048_576, "\(slab) kept \(kept)")
            }
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func budgetsFailAboveTheCostAndPassBelowIt() throws {
        try Self.withTmpfs { directory in
            // Each run creates files of its own: rewriting another run's xattrs moves no driver.
            let first = directory.appendingPathComponent("over"), second = directory.appendingPathComponent("within")
            try FileManager.default.createDirectory(at: first, withIntermediateDirectories: false)
            try FileManager.default.createDirectory(at: second, withIntermediateDirectories: false)
            let over = try Self.measure(["--settle", "1s", "--budget", "kmalloc-cg-512=256B/inode", "--budget", "kept=1GiB"],
                                        Self.xattrs(first, files: 20_000, size: 400))
            #expect(over.status == 6, "\(over.error)")
            #expect(over.error.contains("budget kmalloc-cg-512=256B/inode: exceeded, "), "\(over.error)")
            #expect(over.error.contains("budget kept=1GiB: within"), "\(over.error)")
            let within = try Self.measure(["--settle", "1s", "--budget", "kmalloc-cg-512=1KiB/inode", "--budget", "unreclaimable=4KiB/inode"],
                                          Self.xattrs(second, files: 20_000, size: 400))
            #expect(within.status == 0, "\(within.error)")
            #expect(within.error.contains("budget kmalloc-cg-512=1KiB/inode: within, "))
        }
    }

    @Test(.enabled(if: getuid() == 0, "reads /proc/slabinfo"))
    func theCommandsFailureAndOutputPassThrough() throws {
        let failed = try Self.measure(["--settle", "0s", "--budget", "kept=1GiB"], ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(failed.status == 8, "measure's own code for a command that failed")
        #expect(failed.output == "out\n", "its stdout is its own")
        #expect(failed.error.hasPrefix("err\n"), "its stderr comes first, then the report: \(failed.error)")
        #expect(failed.error.contains("failed with status 3"))
        let killed = try Self.measure(["--settle", "0s"], ["/bin/sh", "-c", "kill -TERM $$"])
        #expect(killed.status == 8 && killed.error.contains("failed with status \(128 + SIGTERM)"), "\(killed.error)")
        let missing = try Self.measure(["--settle", "0s"], ["/nonexistent/slabwatch-command"])
        #expect(missing.status == 127)
        #expect(missing.error.contains("cannot run '/nonexistent/slabwatch-command'"))
    }

    /// Started with SIGCHLD ignored (a CI runner or wrapper can leave it so),
    /// the kernel would reap the command itself and its failure would read as 0.
    @Test(.enabled(if: getuid() == 0, "reads /proc/slabinfo"))
    func aFailureStillFailsWhenSIGCHLDWasIgnored() throws {
        // python3, not sh: a shell keeps SIGCHLD for itself and passes it on as default.
        let ignoring = "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
        let run = try DaemonProcess.run("/usr/bin/python3", ["-c", ignoring, DaemonProcess.binary.path,
                                                             "measure", "--baseline", "0s", "--settle", "0s", "--", "/bin/sh", "-c", "exit 3"])
        #expect(run.status == 8 && run.error.contains("failed with status 3"), "\(run.error)")
    }

    /// SIGTERM to slabwatch goes to the command; slabwatch reports once it
    /// has exited, with its status (the command dealt with the signal: measure
    /// ends as usual, not by the signal).
    @Test(.enabled(if: getuid() == 0, "reads /proc/slabinfo"))
    func sigtermIsPassedOnToTheCommand() throws {
        let process = Process()
        process.executableURL = DaemonProcess.binary
        process.arguments = ["measure", "--baseline", "0s", "--settle", "0s", "--",
                             "/bin/sh", "-c", "trap 'echo caught; exit 42' TERM; echo ready; while :; do sleep 0.05; done"]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("ready") { seen += output.fileHandleForReading.availableData }
        usleep(300_000)
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            // Not passed on: the command still loops. Stop both rather than hang the suite.
            let pid = process.processIdentifier
            let children = (try? DaemonProcess.run("/bin/cat", ["/proc/\(pid)/task/\(pid)/children"]).output) ?? ""
            for child in children.split(separator: " ").compactMap({ Int32($0) }) { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
            Issue.record("slabwatch measure did not end after SIGTERM: the command did not get it")
        }
        seen += output.fileHandleForReading.readDataToEndOfFile()
        let report = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 8 && process.terminationReason == .exit, "\(report)")
        #expect(String(decoding: seen, as: UTF8.self) == "ready\ncaught\n")
        #expect(report.contains("failed with status 42"), "\(report)")
    }

    @Test(.enabled(if: getuid() == 0, "reads /proc/slabinfo"))
    func aCommandThatTouchesNothingGivesAnEmptyPassingReport() throws {
        let (report, run) = try Self.measureJSON(["--settle", "1s", "--budget", "kept=16MiB"], ["/bin/true"])
        #expect(run.status == 0, "\(run.error)")
        #expect((report["caches"] as? [Any])?.isEmpty == true, "\(report["caches"] ?? [])")
        #expect(report["kept_bytes"] as? Double == 0)
        #expect((report["budgets"] as? [[String: Any]])?.first?["verdict"] as? String == "within")
        // A cost per inode of a run that made no inodes cannot be judged: it must not pass.
        let unjudged = try Self.measure(["--settle", "0s", "--budget", "kmalloc-cg-512=256B/inode"], ["/bin/true"])
        #expect(unjudged.status == 7, "\(unjudged.error)")
        #expect(unjudged.error.contains("budget kmalloc-cg-512=256B/inode: cannot judge, "), "\(unjudged.error)")
    }

    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func diffShowsTheCostMovingBetweenSizeClassesAndTheTotalFalling() throws {
        try Self.withTmpfs { directory in
            let reports = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-diff-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: reports, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: reports) }
            let large = reports.appendingPathComponent("400.json").path, small = reports.appendingPathComponent("100.json").path
            // Each run makes its files and keeps them; they are deleted between
            // the runs, unmeasured. (Deleted within the run, the tmpfs inode
            // cache's object count lags the deletion, SLUB holding freed
            // objects a while, and the global count fits better: a run would
            // then name no filesystem, or one run would and the other not.)
            #expect(try Self.measure(["--settle", "1s", "--json", "--output", large],
                                     Self.xattrs(directory, files: 30_000, size: 400)).status == 0)
            try Self.removeContents(of: directory)
            #expect(try Self.measure(["--settle", "1s", "--json", "--output", small],
                                     Self.xattrs(directory, files: 30_000, size: 100)).status == 0)
            try Self.removeContents(of: directory)
            let diff = try DaemonProcess.run(DaemonProcess.binary.path, ["diff", large, small])
            #expect(diff.status == 0, "\(diff.error)")
            let lines = diff.output.split(separator: "\n")
            let from = try #require(lines.first { $0.hasPrefix("kmalloc-cg-512: ") }, "\(diff.output)")
            #expect(from.contains("per inode of shmem_inode_cache (tmpfs) → nothing (did not move)"), "\(from)")
            let to = try #require(lines.first { $0.hasPrefix("kmalloc-cg-192: ") }, "\(diff.output)")
            #expect(to.contains("nothing (did not move) → ") && to.contains("(new)"), "\(to)")
            let total = try #require(lines.first { $0.hasPrefix("unreclaimable slab: ") }, "\(diff.output)")
            #expect(total.contains("per inode of shmem_inode_cache (tmpfs) (−"), "the total per file falls: \(total)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "reads /sys/kernel/slab"))
    func badInputIsOneLineAndExitTwo() throws {
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-bad-\(UUID().uuidString).json")
        try Data("{\"command\":[\"x\"]}".utf8).write(to: report)
        defer { try? FileManager.default.removeItem(at: report) }
        let cases: [([String], String)] = [
            (["measure", "--budget", "kmalloc-32=lots", "--", "/bin/true"], "--budget: 'kmalloc-32=lots' is not CACHE=SIZE/UNIT"),
            (["measure", "--budget", "no-such-cache=1B/inode", "--", "/bin/true"], "no slab cache named 'no-such-cache'"),
            (["measure"], "measure needs a command"),
            (["measure", "--"], "measure needs a command"),
            (["measure", "--interval", "0", "--", "/bin/true"], "--interval: '0' is not a duration from 10ms to 1m"),
            (["measure", "--interval", "0x10ms", "--", "/bin/true"], "--interval: '0x10ms' is not a duration from 10ms to 1m"),
            (["measure", "--settle", "1e3ms", "--", "/bin/true"], "--settle: '1e3ms' is not a duration from 0s to 1h"),
            (["diff", report.path, "/nonexistent.json"], "not a measurement"),
            (["diff", "/nonexistent.json", report.path], "/nonexistent.json: cannot open"),
            (["diff", "/proc/self/status", report.path], "invalid JSON"),
            (["top", "--", "x"], "'top' runs no command"),
        ]
        let help = try DaemonProcess.run(DaemonProcess.binary.path, ["--help"])
        #expect(help.output.contains("  measure ") && help.output.contains("  diff "))
        let measureHelp = try DaemonProcess.run(DaemonProcess.binary.path, ["measure", "--help"])
        #expect(measureHelp.output.contains("[--budget LIMIT]") && measureHelp.output.contains("-- COMMAND [ARGS...]"), "\(measureHelp.output)")
        for (arguments, message) in cases {
            let run = try DaemonProcess.run(DaemonProcess.binary.path, arguments)
            #expect(run.status == 2, "\(arguments): \(run.status) \(run.error)")
            #expect(run.error.hasPrefix("slabwatch: ") && run.error.filter { $0 == "\n" }.count == 1, "\(arguments): \(run.error)")
            #expect(run.error.contains(message), "\(arguments): \(run.error)")
            #expect(run.output.isEmpty)
        }
    }

    /// An unprivileged user reads no slab caches: every report would be empty and pass, so measure refuses.
    @Test(.enabled(if: getuid() == 0, "drops to an unprivileged user"))
    func withoutSlabinfoMeasureRefusesBeforeRunning() throws {
        let run = try DaemonProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                             DaemonProcess.binary.path, "measure", "--", "/bin/echo", "ran"])
        #expect(run.status == 1, "\(run.error)")
        #expect(run.output.isEmpty, "the command must not run")
        #expect(run.error.contains("measure cannot read the slab caches: ") && run.error.contains("needs root or CAP_DAC_READ_SEARCH") && run.error.filter { $0 == "\n" }.count == 1, "\(run.error)")
    }

    /// The culprit's cost with a `find` over the ext4 root after
    /// `drop_caches` beside it (ext4 inodes and dentries coming and going)
    /// and a core kept busy.
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs and drops caches"))
    func measureHoldsBesideUnrelatedWork() throws {
        try Self.withTmpfs { directory in
            let work = try UnrelatedWork()
            defer { work.stop() }
            usleep(2_000_000)  // the unrelated work gets going
            let files = 40_000
            let before = try Self.liveFootprints(["kmalloc-cg-512"])
            let (report, run) = try Self.measureJSON(["--settle", "1s"], Self.xattrs(directory, files: files, size: 400))
            let after = try Self.liveFootprints(["kmalloc-cg-512"])
            work.stop()
            #expect(run.status == 0, "\(run.error)")
            let spent = (try #require(after["kmalloc-cg-512"]) - (before["kmalloc-cg-512"] ?? 0)) / Double(files)
            let xattrs = try #require(Self.cache(report, "kmalloc-cg-512"), "\(report)")
            let reported = try #require(xattrs["bytes_per_unit"] as? Double)
            #expect(abs(reported - spent) / spent < 0.05, "reported \(reported) B per file, the kernel spent \(spent): \(xattrs)")
            #expect(xattrs["inode_cache"] as? String == "shmem_inode_cache", "\(xattrs)")
        }
    }
}
