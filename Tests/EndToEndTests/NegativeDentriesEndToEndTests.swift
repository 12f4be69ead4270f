import Foundation
import Glibc
import Testing

/// The curl/NSS story on the live kernel: a child process stat()s 600,000
/// names that do not exist in a directory on ext4 (each lookup leaves a
/// negative dentry; tmpfs keeps none), while another makes and deletes real
/// files in a directory of its own. The daemon must name `dentry` per
/// negative dentry at what the kernel spent on each, read by the test as
/// dentry's footprint in /proc/slabinfo over `nr_negative` of
/// /proc/sys/fs/dentry-state; once drop_caches frees them, the cache falls
/// with them and the finding says so. Part of the serialized end-to-end
/// suite: it moves slab and drops caches.
extension EndToEndTests {
    static let missingNames = 600_000

    /// A child's lookups: `argv[2]` stat()s of names that do not exist in
    /// `argv[1]`, at about `argv[3]` a second. Short names: a name longer than
    /// a dentry's inline room would add a kmalloc'd copy to each.
    static let lookupStorm = """
        import os, sys, time
        directory, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        start = time.monotonic()
        for i in range(count):
            try:
                os.stat(f"{directory}/m{i}")
            except FileNotFoundError:
                pass
            if i % 2000 == 1999:
                wait = start + (i + 1) / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        """

    /// Whether `url` is on ext4 (statfs magic 0xEF53, shared with ext2 and
    /// ext3, which keep negative dentries too). Through stat(1): the Glibc
    /// module has no statfs(2).
    static func isExt4(_ url: URL) -> Bool {
        let magic = try? DaemonProcess.run("/usr/bin/stat", ["-f", "-c", "%t", url.path])
        return magic?.status == 0 && magic?.output.trimmingCharacters(in: .whitespacesAndNewlines) == "ef53"
    }

    /// The kernel's own figures: dentry's footprint and `nr_negative`.
    struct DentryReading {
        var footprint: Double
        var negative: Double

        static func now() throws -> DentryReading {
            let state = try DaemonProcess.run("/bin/cat", ["/proc/sys/fs/dentry-state"]).output.split(whereSeparator: \.isWhitespace)
            let negative = try #require(state.count > 4 ? Double(state[4]) : nil, "no nr_negative: \(state)")
            let slab = try #require(try EndToEndTests.liveSlabs(["dentry"])["dentry"])
            return DentryReading(footprint: slab.footprint, negative: negative)
        }
    }

    @Test(.enabled(if: getuid() == 0 && isExt4(FileManager.default.temporaryDirectory),
                   "drops caches, and needs a temporary directory on ext4"))
    func liveNegativeDentriesAreNamedAndFollowDropCaches() throws {
        let base = FileManager.default.temporaryDirectory
        let lookups = base.appendingPathComponent("slabwatch-negative-\(UUID().uuidString)")
        let churn = base.appendingPathComponent("slabwatch-churn-\(UUID().uuidString)")
        for directory in [lookups, churn] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        defer { for directory in [lookups, churn] { try? FileManager.default.removeItem(at: directory) } }
        let daemon = try DaemonProcess(arguments: [
            "--sampler.interval", "250ms", "--detector.windows", "20s,60s", "--detector.min-growth-bytes", "8MiB",
            "--detector.min-driver-change", "5000", "--detector.open-after", "2", "--detector.leak-grace", "30s",
            "--detector.hold-after", "10s"])
        // Real files made and deleted beside the lookups: ext4 inodes and
        // dentries coming and going, the same 500 names again and again.
        let work = try UnrelatedWork(["cd '\(churn.path)' && while :; do for i in $(seq 1 500); do echo x > f$i; done; rm -f f*; done"])
        defer { work.stop() }
        usleep(5_000_000)  // the churn gets going

        let before = try DentryReading.now()
        let storm = try DaemonProcess.run("/usr/bin/python3", ["-c", Self.lookupStorm, lookups.path, String(Self.missingNames), "40000"])
        #expect(storm.status == 0, "\(storm.error)")
        let after = try DentryReading.now()
        let left = after.negative - before.negative
        #expect(left > 0.9 * Double(Self.missingNames), "each lookup left a negative dentry: \(left)")
        let spent = (after.footprint - before.footprint) / left
        var seen: [String: Any]?
        do {
            try daemon.waitFor("dentry finding per negative dentry", timeout: 30) {
                seen = try Self.detectorFinding(daemon, "dentry")
                return seen?["driver"] as? String == "negative_dentries"
            }
        } catch {
            Issue.record("no dentry finding per negative dentry; the last seen: \(seen.map { "\($0)" } ?? "none")")
            throw error
        }
        usleep(3_000_000)  // the fit settles on the window that covers the rise

        let finding = try #require(try Self.detectorFinding(daemon, "dentry"))
        let reported = try #require(finding["bytes_per_unit"] as? Double)
        #expect(abs(reported - spent) / spent < 0.05, "reported \(reported) B per negative dentry, the kernel spent \(spent)")
        #expect(finding["driver"] as? String == "negative_dentries", "\(finding)")
        #expect(finding["reclaimable"] as? Bool == true)
        #expect((finding["message"] as? String)?.contains(" per negative dentry (R² ") == true, "\(finding)")
        #expect((finding["message"] as? String)?.contains("lookups of names that do not exist") == true, "\(finding)")
        let metrics = samples(try daemon.get("/metrics").body)
        #expect(metrics["slabwatch_finding_flagged{driver=\"negative_dentries\",inode_cache=\"\",slab=\"dentry\"}"] == 1)

        Self.dropCaches()
        let dropped = try DentryReading.now()
        #expect(dropped.negative < after.negative - 0.5 * left, "drop_caches freed them: \(dropped.negative) of \(after.negative)")
        try daemon.waitFor("tracks-eviction", timeout: 60) {
            try Self.detectorFinding(daemon, "dentry")?["classification"] as? String == "tracks-eviction"
        }
        let evicted = try #require(try Self.detectorFinding(daemon, "dentry"))
        #expect(evicted["driver"] as? String == "negative_dentries")
        #expect((evicted["message"] as? String)?.contains("It fell with the negative dentry count when negative dentries were evicted") == true,
                "\(evicted)")
    }
}
