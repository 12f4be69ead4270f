import Foundation
import Glibc
import Testing
import SlabWatchCore

/// Who is charged, on the live kernel's v1 memory controller: two cgroups of
/// the test's own side by side, `xattr.service` making tmpfs files with
/// 400-byte user xattrs at a steady pace (kmalloc-cg-512 and
/// shmem_inode_cache grow), `churn.service` making and deleting ext4 files
/// in waves (unrelated inodes and dentries, its kernel memory coming and
/// going). The finding must name the first, with its share; the truth is the
/// test's own reads of both cgroups' `memory.kmem.usage_in_bytes`. Then
/// 1,000 cgroups come and go while the daemon runs, and its resident memory
/// stays flat. Every cgroup the test makes is removed, and /proc/cgroups'
/// memory count comes back to where it was.
extension EndToEndTests {
    @Test(.enabled(if: getuid() == 0 && BPFTesting.memoryV1Mount() != nil, "root, and the memory controller on cgroup v1"))
    func liveFindingNamesTheCgroupCharged() throws {
        let hierarchy = try #require(BPFTesting.memoryV1Mount())
        let cgroupsBefore = try CgroupReading.now(hierarchy)
        let parentName = "slabwatch-test-\(UUID().uuidString.prefix(8))"
        var parent: BPFTesting.Cgroup? = try BPFTesting.Cgroup(in: hierarchy, name: parentName)
        // A hostile name beside them (quotes, backslash, markup, a tab; cgroupfs refuses a newline): escaped where shown.
        let hostileName = "evil \"x\\y\"<b>\t.service"
        var cgroups: [BPFTesting.Cgroup] = try ["xattr.service", "churn.service", hostileName].map {
            try BPFTesting.Cgroup(in: hierarchy + "/" + parentName, name: $0)
        }
        let tmpfs = try AttributionTesting.Tmpfs()
        let ext4Directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-charge-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: ext4Directory, withIntermediateDirectories: true)
        var makers: [ChargeMaker] = []
        defer {
            // In order: the processes and their files, then the cgroups (emptied), leaves before their parent.
            makers.forEach { $0.stop() }
            _ = try? DaemonProcess.run("/usr/bin/find", [tmpfs.path, ext4Directory, "-mindepth", "1", "-delete"])
            try? FileManager.default.removeItem(atPath: ext4Directory)
            cgroups = []
            if parent != nil { parent = nil }
            #expect(access("\(hierarchy)/\(parentName)", F_OK) != 0, "the test's cgroups are gone")
        }
        let detector = ["--detector.windows", "20s", "--detector.min-growth-bytes", "8MiB", "--detector.min-driver-change", "5000",
                        "--detector.open-after", "2"]
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "250ms"] + detector)
        try daemon.waitForSamples(24, timeout: 60)
        let kmemBefore = try cgroups.prefix(2).map { try Self.kmemUsage($0.path) }

        // 60,000 files with xattrs at 1,000 a second beside ext4 waves of 10,000 files made and deleted.
        makers = [try ChargeMaker(cgroup: cgroups[0].path, script: ChargeMaker.xattrs, directory: tmpfs.path),
                  try ChargeMaker(cgroup: cgroups[1].path, script: ChargeMaker.waves, directory: ext4Directory),
                  try ChargeMaker(cgroup: cgroups[2].path, script: ChargeMaker.few, directory: tmpfs.path)]
        try makers[0].waitUntilDone()
        let kmemAfter = try cgroups.prefix(2).map { try Self.kmemUsage($0.path) }
        let xattrRise = Double(kmemAfter[0]) - Double(kmemBefore[0]), churnRise = Double(kmemAfter[1]) - Double(kmemBefore[1])
        #expect(xattrRise > 60_000 * 1_000, "the kernel charged xattr.service \(xattrRise) B for 60,000 files")

        let xattr = "/\(parentName)/xattr.service"
        var charged: [String: Any] = [:]
        // A walk every 12 samples (3 s): the ranking follows the next walks.
        try daemon.waitFor("kmalloc-cg-512's finding charged to \(xattr)", timeout: 60) {
            guard let finding = try Self.detectorFinding(daemon, "kmalloc-cg-512"), let found = finding["charged"] as? [String: Any],
                  let top = (found["cgroups"] as? [[String: Any]])?.first, top["cgroup"] as? String == xattr
            else { return false }
            charged = found
            return true
        }
        let top = try #require((charged["cgroups"] as? [[String: Any]])?.first)
        #expect(charged["source"] as? String == "memcg-kmem", "\(charged)")
        #expect((top["share"] as? Double ?? 0) >= 0.8, "xattr.service's share \(top); the kernel: xattr +\(xattrRise) B, churn +\(churnRise) B")
        // What the ranking says xattr.service gained is at most what the kernel charged it over the whole run (its window is within it).
        let rise = top["rise_bytes"] as? Double ?? 0
        #expect(rise > 0.3 * xattrRise && rise < xattrRise * 1.02 + 4096, "ranked +\(rise) B; the kernel charged +\(xattrRise) B")
        #expect((top["owner"] as? [String: Any])?["unit"] as? String == "xattr.service")
        print("charged: xattr.service share \(top["share"] ?? "?"), ranked rise \(rise) B, R² \(top["r_squared"] ?? "?"); "
              + "the kernel: xattr.service +\(xattrRise) B, churn.service +\(churnRise) B")
        let finding = try #require(try Self.detectorFinding(daemon, "kmalloc-cg-512"))
        #expect((finding["message"] as? String)?.contains("Kernel memory charged to \(xattr) rose") == true, "\(finding["message"] ?? "")")
        #expect((finding["message"] as? String)?.contains("cgroup v1 counts a cgroup's kernel memory as one number") == true)
        print("sentence: \(finding["message"] ?? "")")

        // /snapshot carries the cgroups, the hostile name read back exactly; /metrics stays valid.
        let snapshot = try #require(try JSONSerialization.jsonObject(with: Data(try daemon.get("/snapshot").body.utf8)) as? [String: Any])
        let exported = try #require((snapshot["cgroups"] as? [String: Any])?["exported"] as? [[String: Any]])
        let names = Set(exported.compactMap { $0["cgroup"] as? String })
        #expect(names.isSuperset(of: [xattr, "/\(parentName)/churn.service", "/\(parentName)/\(hostileName)"]), "\(names)")
        let metrics = try daemon.get("/metrics").body
        #expect(try DaemonProcess.run(Paths.promtool, ["check", "metrics"], input: Data(metrics.utf8)).status == 0)
        #expect(try daemon.get("/").body.contains("<table class=\"charged\">"))

        // 1,000 cgroups come and go, 100 at a time, each batch seen by a walk:
        // the daemon's resident memory stays within the history's bound.
        makers.forEach { $0.stop() }
        let rssBefore = try Self.residentBytes(daemon.pid)
        for batch in 0..<10 {
            let made = try (0..<100).map { try BPFTesting.Cgroup(in: hierarchy + "/" + parentName, name: "pod\(batch)-\($0)") }
            try daemon.waitForSamples(13, timeout: 60)
            withExtendedLifetime(made) {}
        }
        try daemon.waitForSamples(13, timeout: 60)
        let rssAfter = try Self.residentBytes(daemon.pid)
        let exportedNow = samples(try daemon.get("/metrics").body)["slabwatch_cgroups{state=\"exported\"}"] ?? .infinity
        #expect(exportedNow <= 512, "sampler.max-cgroups")
        // The history holds 720 readings × (64 + 2) values of 8 bytes and 64 names (≈ 0.4 MB): what it
        // may add is that, twice for the allocator's slack, and a megabyte for everything else that moved.
        let bound = 2.0 * 720 * Double(CgroupHistory.maxColumns + 2) * 8 + 1_048_576
        print("resident: \(rssBefore) → \(rssAfter) B over 1,000 cgroups (bound \(bound) B)")
        #expect(Double(rssAfter) - Double(rssBefore) < bound, "RSS \(rssBefore) → \(rssAfter) B over 1,000 cgroups")
        #expect(daemon.terminate().status == 0)
        // The files, then their cgroups. What they were charged for pins a removed cgroup
        // (dying) until freed: the ext4 waves' negative dentries go with the dentry cache.
        #expect(try DaemonProcess.run("/usr/bin/find", [tmpfs.path, ext4Directory, "-mindepth", "1", "-delete"]).status == 0)
        withExtendedLifetime(tmpfs) {}
        cgroups = []
        parent = nil
        // Three at most for the rest of the machine: the test's own named cgroups and their parent are four.
        func isBack() throws -> Bool { try CgroupReading.now(hierarchy).isBack(to: cgroupsBefore, dyingAllowed: 3) }
        var deadline = Date().addingTimeInterval(5)
        while try !isBack() && Date() < deadline { usleep(200_000) }
        if try !isBack() { try "2".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8) }
        deadline = Date().addingTimeInterval(30)
        while try !isBack() && Date() < deadline { usleep(200_000) }
        let cgroupsAfter = try CgroupReading.now(hierarchy)
        #expect(cgroupsAfter.isBack(to: cgroupsBefore, dyingAllowed: 3), "/proc/cgroups' memory count back to \(cgroupsBefore): \(cgroupsAfter)")
    }

    /// VmRSS of `pid`, bytes.
    static func residentBytes(_ pid: Int32) throws -> UInt64 {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(UInt64(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }
}

/// A process that joins a memory cgroup and runs one of the scripts below in
/// a directory, says "done" when its work is made, and waits to be stopped.
final class ChargeMaker {
    private let process = Process()
    private let output = Pipe()

    /// 60,000 tmpfs files with a 400-byte user xattr each, 1,000 a second.
    static let xattrs = """
        for i in range(60000):
            p = os.path.join(d, 'x%d' % i)
            open(p, 'w').close()
            os.setxattr(p, 'user.test', b'x' * 400)
            if i % 100 == 99: time.sleep(0.1)
        print('done', flush=True)
        """
    /// ext4 files in waves: 10,000 made, then deleted, again and again.
    static let waves = """
        print('done', flush=True)
        while True:
            for i in range(10000): open(os.path.join(d, 'w%d' % i), 'w').close()
            time.sleep(1)
            for i in range(10000): os.unlink(os.path.join(d, 'w%d' % i))
            time.sleep(1)
        """
    /// A few files: enough to be charged something.
    static let few = """
        for i in range(200): open(os.path.join(d, 'few%d' % i), 'w').close()
        print('done', flush=True)
        """

    init(cgroup: String, script: String, directory: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let body = script.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        process.arguments = ["-c", """
            import os, sys, time
            cgroup, d = sys.argv[1], sys.argv[2]
            with open(cgroup + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
            if True:
            \(body)
            time.sleep(3600)
            """, cgroup, directory]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func waitUntilDone() throws {
        let line = output.fileHandleForReading.availableData
        try #require(String(decoding: line, as: UTF8.self).contains("done"), "the maker did not finish")
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
