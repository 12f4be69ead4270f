import Foundation
import Glibc
import Testing
import TestSupport

/// State across restarts, with the real binary: a finding survives a clean
/// stop and a kill -9 with its first_seen and alerts once; a reboot resolves
/// it; kill -9 at any moment never leaves a file the next start refuses;
/// damaged files and unusable directories start fresh and say so.
extension EndToEndTests {
    /// kmalloc-32 grows 40.96 bytes per inode in a fake procfs, one step every 100 ms.
    final class GrowthStory: @unchecked Sendable {  // `stopped` guarded by `running`
        let root: FakeProcRoot
        private let running = NSLock()
        private var stopped = false
        private var thread: Thread?

        init(_ root: FakeProcRoot) throws {
            self.root = root
            try root.write("meminfo", "MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n")
            try root.write("sys/kernel/random/boot_id", "boot-one\n")
            write(step: 0)
            thread = Thread { [self] in
                var step = 0
                while !isStopped {
                    step += 1
                    write(step: step)
                    usleep(100_000)
                }
            }
            thread?.start()
        }

        var isStopped: Bool { running.lock(); defer { running.unlock() }; return stopped }

        func stop() {
            running.lock(); stopped = true; running.unlock()
            usleep(200_000)
            thread = nil  // the thread's block holds self: let both go
        }

        private func write(step: Int) {
            let slabs = 2048 + step * 10, inodes = 10_000 + step * 1000
            try? root.write("slabinfo", "slabinfo - version: 2.1\n"
                + "kmalloc-32 \(slabs * 128) \(slabs * 128) 32 128 1 : tunables 0 0 0 : slabdata \(slabs) \(slabs) 0\n"
                + "dentry 4200 4200 192 21 1 : tunables 0 0 0 : slabdata 200 200 0\n")
            try? root.write("sys/fs/inode-nr", "\(inodes) 0\n")
        }
    }

    static let quickDetector = ["--detector.windows", "3s", "--detector.min-growth-bytes", "1MiB", "--detector.min-driver-change", "1000",
                                "--detector.open-after", "2", "--alerts.journal-socket", "/nonexistent/journal-socket"]

    static func finding(_ daemon: DaemonProcess, _ slab: String) throws -> [String: Any]? {
        try detectorFinding(daemon, slab)
    }

    @Test func findingSurvivesRestartsAlertsOnceAndResolvesAtReboot() throws {
        let root = try FakeProcRoot(slabinfo: nil)
        let story = try GrowthStory(root)
        defer { story.stop() }
        let state = root.url.appendingPathComponent("state").path
        let arguments = root.arguments + Self.quickDetector + ["--state.directory", state, "--state.checkpoint-interval", "1s"]

        let first = try DaemonProcess(arguments: arguments)
        try first.waitFor("kmalloc-32 finding", timeout: 20) { try Self.finding(first, "kmalloc-32")?["state"] as? String == "open" }
        let opened = try #require(try Self.finding(first, "kmalloc-32"))
        let stop = first.terminate()  // writes a last checkpoint
        #expect(stop.isClean, "\(stop)")
        #expect(FileManager.default.fileExists(atPath: "\(state)/state"))

        // A clean restart: the finding is there at once, with its first_seen.
        let second = try DaemonProcess(arguments: arguments)
        let restored = try #require(try Self.finding(second, "kmalloc-32"))
        #expect(restored["first_seen"] as? String == opened["first_seen"] as? String)
        #expect(restored["state"] as? String == "open")
        #expect(second.log.contains("msg=\"state restored\"") && second.log.contains("boot=same"), "\(second.log)")
        #expect(try second.get("/metrics").body.contains("slabwatch_state_restored{outcome=\"same-boot\"} 1"))
        // Growth goes on; after a checkpoint, kill -9.
        try second.waitFor("a checkpoint") { try second.get("/metrics").body.contains("slabwatch_state_checkpoints_total{result=\"written\"} 1") }
        usleep(1_500_000)
        second.signal(SIGKILL)
        second.process.waitUntilExit()

        let third = try DaemonProcess(arguments: arguments)
        let afterKill = try #require(try Self.finding(third, "kmalloc-32"))
        #expect(afterKill["first_seen"] as? String == opened["first_seen"] as? String)
        try third.waitForSamples(10)  // ten ticks of the third run with the finding open, each of which could alert
        let openedAlerts = [first.log, second.log, third.log].map { $0.components(separatedBy: "slabwatch_alert=finding-opened").count - 1 }
        #expect(openedAlerts == [1, 0, 0], "opened alerts per run: \(openedAlerts)")
        #expect(third.terminate().status == 0)

        // Another boot: the memory the finding described is gone.
        story.stop()
        try root.write("sys/kernel/random/boot_id", "boot-two\n")
        let fourth = try DaemonProcess(arguments: arguments)
        let rebooted = try #require(try Self.finding(fourth, "kmalloc-32"))
        #expect(rebooted["state"] as? String == "resolved")
        #expect(rebooted["resolution"] as? String == "reboot")
        #expect(fourth.log.contains("boot=earlier"))
        let history = try JSONSerialization.jsonObject(with: Data(try fourth.get("/snapshot?slab=kmalloc-32&history=3600").body.utf8)) as? [String: Any]
        let points = (history?["points"] as? [[String: Any]])?.count ?? 0
        #expect(points > 20, "the earlier boot's history is kept for display: \(points) points")
        #expect(fourth.terminate().status == 0)
    }

    /// kill -9 at random moments, also while a checkpoint is being written
    /// (a wide ring makes each take a while): every start comes up, and no
    /// start ever finds a state file it has to refuse (write, fsync, rename).
    @Test func killNineAtAnyMomentNeverLeavesAStateFileToRefuse() throws {
        let lines = (0..<1500).map { "cache\($0) 128 128 32 128 1 : tunables 0 0 0 : slabdata \($0 + 1) \($0 + 1) 0" }
        let root = try FakeProcRoot(slabinfo: "slabinfo - version: 2.1\n" + lines.joined(separator: "\n") + "\n")
        let state = root.url.appendingPathComponent("state").path
        let arguments = root.arguments + ["--sampler.interval", "100ms", "--state.directory", state,
                                          "--state.checkpoint-interval", "1s", "--ring.fine-samples", "2000"]
        var random: UInt64 = 42
        var restoredStarts = 0, killedMidWrite = 0
        for _ in 0..<12 {
            let daemon = try DaemonProcess(arguments: arguments)
            #expect(!daemon.log.contains("state file not used"), "\(daemon.log)")
            if daemon.log.contains("msg=\"state restored\"") { restoredStarts += 1 }
            random = random &* 6364136223846793005 &+ 1442695040888963407
            usleep(useconds_t(300_000 + (random >> 33) % 2_200_000))
            daemon.signal(SIGKILL)
            daemon.process.waitUntilExit()
            if FileManager.default.fileExists(atPath: "\(state)/.state.tmp") { killedMidWrite += 1 }
        }
        #expect(restoredStarts >= 6, "\(restoredStarts) of 12 starts restored a state")
        // Most of a checkpoint is encoding and compressing (no file yet); the
        // write-fsync-rename window is short, so few kills land inside it.
        print("kill -9 loop: \(restoredStarts) of 12 starts restored a state, \(killedMidWrite) kills left a half-written temporary file")
    }

    /// Damaged files start fresh with one warning and are kept aside; a
    /// directory that cannot be made leaves the daemon serving without state.
    @Test func damagedStateAndUnusableDirectoryStartFresh() throws {
        let root = try FakeProcRoot(slabinfo: "slabinfo - version: 2.1\nkmalloc-32 128 128 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        let state = root.url.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let arguments = root.arguments + ["--state.directory", state.path]
        for damage in [Data(), Data("SLABWATCH-STATE\n garbage that is not a state".utf8)] {
            try damage.write(to: state.appendingPathComponent("state"))
            let daemon = try DaemonProcess(arguments: arguments)
            #expect(daemon.log.components(separatedBy: "state file not used").count == 2, "\(daemon.log)")
            #expect(try daemon.get("/metrics").body.contains("slabwatch_state_restored{outcome=\"discarded\"} 1"))
            #expect(try Data(contentsOf: state.appendingPathComponent("state.corrupt")) == damage)
            #expect(daemon.terminate().status == 0)
            #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("state").path), "a clean stop writes a fresh state")
        }

        try Data("not a directory".utf8).write(to: root.url.appendingPathComponent("file"))
        let daemon = try DaemonProcess(arguments: root.arguments + ["--state.directory", root.url.appendingPathComponent("file/state").path,
                                                                    "--state.checkpoint-interval", "1s"])
        try daemon.waitForSamples(13)  // at 200 ms, over two checkpoint intervals (1 s): each would say it again
        let metrics = try daemon.get("/metrics").body
        #expect(metrics.contains("slabwatch_state_enabled 0"))
        #expect(metrics.contains("slabwatch_source_up{source=\"slabinfo\"} 1"))
        #expect(daemon.log.components(separatedBy: "state directory not usable").count == 2, "said once: \(daemon.log)")
        #expect(daemon.terminate().status == 0)
    }
}

extension EndToEndTests {
    /// Two daemons, one state directory: the second says who holds it and
    /// runs without persistence; the first's state is the one on disk. A
    /// daemon reading another procfs root sets that state aside.
    @Test func aSecondDaemonOnTheSameStateDirectoryRunsWithoutPersistence() throws {
        let slabinfo = "slabinfo - version: 2.1\nkmalloc-32 128 128 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n"
        let root = try FakeProcRoot(slabinfo: slabinfo)
        let state = root.url.appendingPathComponent("state").path
        let arguments = root.arguments + ["--state.directory", state, "--state.checkpoint-interval", "1s"]
        let first = try DaemonProcess(arguments: arguments)
        try first.waitFor("a checkpoint") { try first.get("/metrics").body.contains("slabwatch_state_checkpoints_total{result=\"written\"} 1") }

        let second = try DaemonProcess(arguments: arguments)
        #expect(second.log.contains("msg=\"state directory in use; running without persistence\""), "\(second.log)")
        #expect(second.log.contains("(pid \(first.pid))"), "names the holder: \(second.log)")
        #expect(!second.log.contains("state restored"))
        #expect(try second.get("/metrics").body.contains("slabwatch_state_enabled 0"))
        #expect(try first.get("/metrics").body.contains("slabwatch_state_enabled 1"))
        let before = try FileManager.default.attributesOfItem(atPath: "\(state)/state")[.modificationDate] as? Date
        #expect(second.terminate().status == 0)
        let after = try FileManager.default.attributesOfItem(atPath: "\(state)/state")[.modificationDate] as? Date
        #expect(before == after, "the second daemon's stop wrote nothing")
        #expect(first.terminate().status == 0)

        // The same directory, now read for another procfs root: not restored.
        let other = try FakeProcRoot(slabinfo: slabinfo)
        let third = try DaemonProcess(arguments: other.arguments + ["--state.directory", state])
        #expect(third.log.contains("msg=\"state file describes another source; set aside, starting fresh\""), "\(third.log)")
        #expect(third.log.contains("recorded from procfs \(root.url.appendingPathComponent("proc").path)"), "\(third.log)")
        #expect(try third.get("/metrics").body.contains("slabwatch_state_restored{outcome=\"discarded\"} 1"))
        #expect(FileManager.default.fileExists(atPath: "\(state)/state.corrupt"))
        #expect(third.terminate().status == 0)
    }

    /// A FIFO where the checkpoint's temporary file goes blocked the
    /// checkpoint thread in open(2), and SIGTERM behind it, until someone
    /// read the FIFO. Checkpoints go on, and the stop is prompt.
    @Test func aFIFOInTheStateDirectoryBlocksNeitherCheckpointsNorTheStop() throws {
        let root = try FakeProcRoot(slabinfo: "slabinfo - version: 2.1\nkmalloc-32 128 128 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        let state = root.url.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let fifo = state.appendingPathComponent(".state.tmp").path
        let daemon = try DaemonProcess(arguments: root.arguments + ["--state.directory", state.path, "--state.checkpoint-interval", "1s"])
        defer {  // a daemon stuck in open(2) is released, so a failure does not hang the run
            let reader = open(fifo, O_RDONLY | O_NONBLOCK)
            if reader >= 0 { close(reader) }
        }
        // The first checkpoint's own temporary file may still be there for a moment.
        try daemon.waitFor("the FIFO made") { mkfifo(fifo, 0o600) == 0 }
        let written = { try samples(daemon.get("/metrics").body)["slabwatch_state_checkpoints_total{result=\"written\"}"] ?? 0 }
        let before = try written()
        try daemon.waitFor("two checkpoints past the FIFO") { try written() >= before + 2 }
        #expect(try samples(daemon.get("/metrics").body)["slabwatch_state_checkpoints_total{result=\"failed\"}"] == 0)
        #expect(mkfifo(fifo, 0o600) == 0 || errno == EEXIST)
        let stop = daemon.terminate()
        #expect(stop.isClean, "\(stop)")
    }
}

extension FakeProcRoot {
    /// Replaces a file under proc/ whole (write, then rename), so the daemon never reads half of it.
    func write(_ relative: String, _ text: String) throws {
        let file = url.appendingPathComponent("proc/\(relative)")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try replaceFile(file, with: text)
    }
}
