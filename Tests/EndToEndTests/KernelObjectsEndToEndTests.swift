import Foundation
import Glibc
import Testing

/// Dying memory cgroups and held sockets on the live kernel, each beside
/// unrelated ext4 file churn. The truth is computed from the kernel's own
/// counters before and after (/proc/slabinfo, /proc/cgroups and the memory
/// hierarchy's directories, sock_inode_cache's objects), never expected as a
/// constant: what a dying cgroup holds depends on the machine (how many
/// memcg-aware shrinkers it ever registered). Each leaves the machine as it
/// found it: cgroups removed and released, sockets closed. Part of the
/// serialized end-to-end suite: they make cgroups and move slab.
extension EndToEndTests {
    /// The daemon with the demo's low thresholds and short windows.
    static let kernelObjectDaemon = [
        "--sampler.interval", "250ms", "--detector.windows", "20s,60s", "--detector.min-growth-bytes", "8MiB",
        "--detector.min-driver-change", "5000", "--detector.min-socket-change", "2000", "--detector.min-cgroup-change", "100",
        "--detector.open-after", "2", "--detector.leak-grace", "30s", "--detector.hold-after", "10s"]

    /// Real ext4 files made and deleted beside the story: inodes, dentries
    /// and open files coming and going.
    static func fileChurn(in directory: URL) throws -> UnrelatedWork {
        try UnrelatedWork(["cd '\(directory.path)' && while :; do for i in $(seq 1 300); do echo x > f$i; done; rm -f f*; sleep 0.2; done"])
    }

    // MARK: dying memory cgroups

    /// `argv[3]` memory cgroups under `argv[1]`, over about `argv[4]` seconds:
    /// each made, entered by a child that writes 16 KiB to a file of its own
    /// in `argv[2]` (page cache charged to it) and exits, then removed. The
    /// page cache keeps each one dying.
    static let dyingCgroups = """
        import os, sys, time
        parent, files, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        start = time.monotonic()
        for i in range(count):
            path = f"{parent}/c{i}"
            os.mkdir(path)
            # The file is made here, outside the cgroup: the ext4 inode-table and
            # directory blocks a new inode dirties are charged to whoever first
            # reads them in, deleting the file does not free them, and one such
            # page kept a removed cgroup dying for minutes. The child's charge is
            # its data's page cache, which deleting the file frees.
            os.close(os.open(f"{files}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
            pid = os.fork()
            if pid == 0:
                with open(f"{path}/cgroup.procs", "w") as procs:
                    procs.write(str(os.getpid()))
                with open(f"{files}/f{i}", "r+b") as f:
                    f.write(b"x" * 16384)
                os._exit(0)
            os.waitpid(pid, 0)
            while True:
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.001)
            wait = start + (i + 1) * seconds / count - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        """

    /// /proc/cgroups' memory count, and the directories of the hierarchy at `root`.
    struct CgroupReading {
        var total: Double
        var directories: Double
        var dying: Double { total - directories }

        /// Back to `level` but for what the rest of the machine did meanwhile:
        /// its live cgroups are counted (directories), its dying ones cannot be
        /// told from the test's, so `dyingAllowed` are allowed (the machine's
        /// own process supervisor makes and removes memory cgroups all the
        /// time): fewer than the test's own that could stay dying.
        func isBack(to level: CgroupReading, dyingAllowed: Double = 15) -> Bool {
            total <= level.total + dyingAllowed + max(0, directories - level.directories)
        }

        static func now(_ root: String) throws -> CgroupReading {
            let text = try DaemonProcess.run("/bin/cat", ["/proc/cgroups"]).output
            let line = text.split(separator: "\n").first { $0.hasPrefix("memory") }
            let row = line?.split(whereSeparator: { $0 == " " || $0 == "\t" }) ?? []
            let total = try #require(row.count > 2 ? Double(row[2]) : nil, "no memory row in /proc/cgroups")
            let dirs = try DaemonProcess.run("/usr/bin/find", [root, "-mindepth", "0", "-type", "d"]).output.split(separator: "\n").count
            return CgroupReading(total: total, directories: Double(dirs))
        }
    }

    @Test(.enabled(if: getuid() == 0 && BPFTesting.memoryV1Mount() != nil && isExt4(FileManager.default.temporaryDirectory),
                   "root, the memory controller on cgroup v1, and a temporary directory on ext4"))
    func liveDyingCgroupsAreNamedAndReleased() throws {
        let hierarchy = try #require(BPFTesting.memoryV1Mount())
        let parentName = "slabwatch-dying-\(UUID().uuidString.prefix(8))"
        let base = FileManager.default.temporaryDirectory
        let files = base.appendingPathComponent("slabwatch-dying-\(UUID().uuidString)")
        let churn = base.appendingPathComponent("slabwatch-churn-\(UUID().uuidString)")
        for directory in [files, churn] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        let start = try CgroupReading.now(hierarchy)
        var parent: BPFTesting.Cgroup? = try BPFTesting.Cgroup(in: hierarchy, name: parentName)
        defer {
            // The files first: their page cache is what keeps the cgroups dying.
            for directory in [files, churn] { try? FileManager.default.removeItem(at: directory) }
            withExtendedLifetime(parent) {}; parent = nil  // removed here, after the files that pinned its children
            #expect(access("\(hierarchy)/\(parentName)", F_OK) != 0, "the test's cgroup is gone")
        }
        let daemon = try DaemonProcess(arguments: Self.kernelObjectDaemon)
        let work = try Self.fileChurn(in: churn)
        defer { work.stop() }
        usleep(5_000_000)  // the churn gets going, the daemon has a level

        let candidates: Set<String> = ["kmalloc-1k", "kmalloc-4k", "kmalloc-2k", "kmalloc-512", "kmalloc-cg-1k", "kmalloc-cg-2k", "mem_cgroup"]
        let before = try Self.liveFootprints(candidates), cgroupsBefore = try CgroupReading.now(hierarchy)
        // 3,000: a kernel of late 2026 spends about 4 KiB of kmalloc-4k on
        // each (one earlier spent more), and 1,500 came to 6 MB, under the
        // 8 MiB the detector needs to see a cache grow.
        let count = 3_000
        let made = try DaemonProcess.run("/usr/bin/python3", ["-c", Self.dyingCgroups, "\(hierarchy)/\(parentName)", files.path, "\(count)", "40"])
        #expect(made.status == 0, "\(made.error)")
        let after = try Self.liveFootprints(candidates), cgroupsAfter = try CgroupReading.now(hierarchy)
        let dying = cgroupsAfter.dying - cgroupsBefore.dying
        #expect(dying > Double(count) * 0.93, "the charged cgroups stay dying: \(dying) of \(count)")
        // What each cgroup holds, cache by cache, as the kernel spent it; the largest is the one to be named.
        let spent = after.map { ($0.key, ($0.value - (before[$0.key] ?? 0)) / dying) }
        let (cache, perCgroup) = try #require(spent.filter { $0.0 != "mem_cgroup" }.max { $0.1 < $1.1 })
        #expect(perCgroup * dying > 8 * 1024 * 1024, "\(cache) grew past the minimum: \(spent)")

        var seen: [String: Any]?
        do {
            try daemon.waitFor("\(cache) per dying memory cgroup", timeout: 30) {
                seen = try Self.detectorFinding(daemon, cache)
                return seen?["driver"] as? String == "dying_memory_cgroups"
            }
        } catch {
            Issue.record("no \(cache) finding per dying memory cgroup; the last seen: \(seen.map { "\($0)" } ?? "none"); spent \(spent)")
            throw error
        }
        usleep(3_000_000)  // the fit settles on the window that covers the rise
        let finding = try #require(try Self.detectorFinding(daemon, cache))
        let reported = try #require(finding["bytes_per_unit"] as? Double)
        #expect(abs(reported - perCgroup) / perCgroup < 0.05, "reported \(reported) B per dying cgroup, the kernel spent \(perCgroup) in \(cache)")
        #expect((finding["message"] as? String)?.contains(" per dying memory cgroup (R² ") == true, "\(finding)")
        // The daemon's count is the kernel's (its walk is every 12th sample: allow what changed meanwhile).
        let metric = samples(try daemon.get("/metrics").body)["slabwatch_memory_cgroups{state=\"dying\"}"]
        let now = try CgroupReading.now(hierarchy)
        #expect(metric.map { abs($0 - now.dying) <= 0.02 * now.dying } == true, "/metrics says \(metric ?? -1) dying, the kernel \(now.dying)")
        if let memcg = try Self.detectorFinding(daemon, "mem_cgroup") {
            #expect(memcg["driver"] as? String != "dying_memory_cgroups" && memcg["driver"] as? String != "memory_cgroups", "\(memcg)")
        }

        // Deleting the files uncharges their page cache: the cgroups are released.
        // Should a page the script did not foresee stay charged to a few of them
        // (another test's files may share their ext4 metadata blocks), an idle
        // machine with no memory pressure keeps it, and its cgroup, for minutes:
        // after 20 s, force_empty on the parent reclaims what is left.
        try FileManager.default.removeItem(at: files)
        do {
            try daemon.waitFor("released by deleting the files", timeout: 20) { try CgroupReading.now(hierarchy).isBack(to: cgroupsBefore) }
        } catch {
            print("dying cgroups left 20 s after their files were deleted: \((try? CgroupReading.now(hierarchy)).map { "\($0)" } ?? "?"); forcing")
            try daemon.waitFor("released after force_empty", timeout: 40) {
                try? "0".write(toFile: "\(hierarchy)/\(parentName)/memory.force_empty", atomically: false, encoding: .utf8)
                return try CgroupReading.now(hierarchy).isBack(to: cgroupsBefore)
            }
        }
        try daemon.waitFor("tracks-eviction", timeout: 60) {
            try Self.detectorFinding(daemon, cache)?["classification"] as? String == "tracks-eviction"
        }
        let released = try #require(try Self.detectorFinding(daemon, cache))
        #expect((released["message"] as? String)?.contains("when dying memory cgroups were released") == true, "\(released)")
        let end = try CgroupReading.now(hierarchy)
        #expect(end.isBack(to: start), "the memory cgroup count is back to its level: \(start) then \(end)")
    }

    // MARK: sockets

    /// `argv[1]` UNIX socketpairs over about `argv[2]` seconds, held until
    /// the process is killed; writes `argv[3]` once they are all open.
    static let heldSockets = """
        import os, resource, socket, sys, time
        count, seconds, ready = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
        resource.setrlimit(resource.RLIMIT_NOFILE, (2 * count + 100, 2 * count + 100))
        pairs, start = [], time.monotonic()
        for i in range(count):
            pairs.append(socket.socketpair())
            if i % 200 == 199:
                wait = start + (i + 1) * seconds / count - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        open(ready, "w").close()
        while True:
            time.sleep(3600)
        """

    @Test(.enabled(if: getuid() == 0 && isExt4(FileManager.default.temporaryDirectory), "raises its descriptor limit, and file churn on ext4"))
    func liveHeldSocketsAreNamedPerSocket() throws {
        let base = FileManager.default.temporaryDirectory
        let churn = base.appendingPathComponent("slabwatch-churn-\(UUID().uuidString)")
        let ready = base.appendingPathComponent("slabwatch-sockets-\(UUID().uuidString)")
        let script = base.appendingPathComponent("slabwatch-sockets-\(UUID().uuidString).py")
        try FileManager.default.createDirectory(at: churn, withIntermediateDirectories: true)
        try Self.heldSockets.write(to: script, atomically: false, encoding: .utf8)  // atomically leaves a directory in /tmp (see replaceFile)
        defer { for path in [churn, ready, script] { try? FileManager.default.removeItem(at: path) } }
        let daemon = try DaemonProcess(arguments: Self.kernelObjectDaemon)
        let work = try Self.fileChurn(in: churn)
        defer { work.stop() }
        usleep(5_000_000)

        // UNIX sockets live in a cache merged with signal_cache on this kernel: the row is named by its first alias.
        let names: Set<String> = ["sock_inode_cache", "signal_cache", "UNIX"]
        let before = try Self.liveSlabs(names)
        // Held by a process of its own, stopped (and its sockets closed) by killing it.
        let holder = try UnrelatedWork(["exec /usr/bin/python3 '\(script.path)' 8000 30 '\(ready.path)'"])
        defer { holder.stop() }
        try daemon.waitFor("8,000 socketpairs open", timeout: 120) { access(ready.path, F_OK) == 0 }
        let after = try Self.liveSlabs(names)
        let sockets = try #require(after["sock_inode_cache"]).activeObjects - (try #require(before["sock_inode_cache"])).activeObjects
        #expect(sockets > 15_000, "sock_inode_cache holds every socket: \(sockets) more for 16,000")
        let cache = after["UNIX"] != nil ? "UNIX" : "signal_cache"
        let perSocket = (try #require(after[cache]).footprint - (try #require(before[cache])).footprint) / sockets

        var seen: [String: Any]?
        do {
            try daemon.waitFor("\(cache) per socket", timeout: 30) {
                seen = try Self.detectorFinding(daemon, cache)
                return seen?["driver"] as? String == "sockets"
            }
        } catch {
            Issue.record("no \(cache) finding per socket; the last seen: \(seen.map { "\($0)" } ?? "none")")
            throw error
        }
        usleep(3_000_000)
        let finding = try #require(try Self.detectorFinding(daemon, cache))
        let reported = try #require(finding["bytes_per_unit"] as? Double)
        #expect(abs(reported - perSocket) / perSocket < 0.05, "reported \(reported) B per socket, the kernel spent \(perSocket) in \(cache)")
        #expect((finding["message"] as? String)?.contains(" per socket (R² ") == true, "\(finding)")
        if let own = try Self.detectorFinding(daemon, "sock_inode_cache") {
            #expect(own["driver"] as? String != "sockets", "sock_inode_cache is never fitted against its own count: \(own)")
        }

        holder.stop()  // its sockets close with it
        // Generous: once in six full-suite runs 60 s passed with no verdict while
        // the suite's builds loaded both cores; why is not known, so a timeout
        // says what the daemon and the kernel showed.
        do {
            try daemon.waitFor("tracks-eviction", timeout: 180) {
                seen = try Self.detectorFinding(daemon, cache)
                return seen?["classification"] as? String == "tracks-eviction"
            }
        } catch {
            let now = try Self.liveSlabs(names)
            Issue.record("""
                no tracks-eviction: \(cache) \(before[cache]?.footprint ?? -1) B before, \(after[cache]?.footprint ?? -1) B held, \
                \(now[cache]?.footprint ?? -1) B now; sock_inode_cache \(before["sock_inode_cache"]?.activeObjects ?? -1) → \
                \(after["sock_inode_cache"]?.activeObjects ?? -1) → \(now["sock_inode_cache"]?.activeObjects ?? -1) objects; \
                the last finding: \(seen.map { "\($0)" } ?? "none")
                """)
            throw error
        }
        let closed = try #require(try Self.detectorFinding(daemon, cache))
        #expect((closed["message"] as? String)?.contains("when sockets were closed") == true, "\(closed)")
    }
}
