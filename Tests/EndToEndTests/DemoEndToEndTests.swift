import Foundation
import Glibc
import Testing

/// scripts/demo.sh as a new user runs it, on the live kernel: it shows a real
/// finding and what the finding says once its files are gone, and leaves
/// nothing behind (no daemon, no mount, no scratch directory), also when it
/// is interrupted. Part of the serialized end-to-end suite: its tmpfs growth
/// must not overlap another test's.
extension EndToEndTests {
    static let demo = Paths.repositoryRoot.appendingPathComponent("scripts/demo.sh")

    /// The demo's output so far and, once it ended, its status. A process
    /// still running after `hangDeadline` is killed and reported as such: the
    /// deadline only catches a hung demo (it takes under a minute here), it
    /// asserts no time.
    final class DemoRun: @unchecked Sendable {
        // `output` is written by the pipe's handler and read by the test: under `lock`.
        private let lock = NSLock()
        private var text = ""
        let process = Process()

        /// The demo as a new user starts it from a terminal: with SIGINT at
        /// its default (the test runner's children inherit it ignored, and a
        /// shell cannot trap a signal ignored on entry), in a process group of
        /// its own (Foundation makes one; `interruptGroup` checks), so a
        /// Ctrl-C can be sent to that group as a terminal sends it.
        init() throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["--default-signal=INT", EndToEndTests.demo.path]
            process.environment = ProcessInfo.processInfo.environment.merging(["SLABWATCH": DaemonProcess.binary.path]) { $1 }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let chunk = String(decoding: handle.availableData, as: UTF8.self)
                self?.lock.lock(); self?.text += chunk; self?.lock.unlock()
            }
            try process.run()
        }

        var output: String { lock.lock(); defer { lock.unlock() }; return text }

        /// Waits for the demo to end; false when it had to be killed.
        func finish(hangDeadline: Double = 600) -> Bool {
            let deadline = Date().addingTimeInterval(hangDeadline)
            while process.isRunning && Date() < deadline { usleep(100_000) }
            guard !process.isRunning else { process.interrupt(); kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return false }
            process.waitUntilExit()
            usleep(100_000)  // the pipe's last bytes
            return true
        }

        /// SIGINT to the demo's process group: the demo and the command it runs, as Ctrl-C.
        func interruptGroup() throws {
            let pid = process.processIdentifier
            try #require(getpgid(pid) == pid, "the demo is not the leader of its process group")
            kill(-pid, SIGINT)
        }

        /// Waits until the output says `text`, or the demo ends.
        func waitFor(_ text: String) {
            while process.isRunning && !output.contains(text) { usleep(100_000) }
        }
    }

    /// What the demo made, from its first line ("scratch DIR, daemon pid N"),
    /// is gone: the daemon, any mount below the scratch directory, the directory.
    static func demoLeftNothing(_ output: String) throws {
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("demo: scratch ") }, "\(output)")
        let words = line.split(separator: " ")
        let scratch = String(words[2].dropLast())  // "DIR,"
        let pid = try #require(Int32(words.last ?? ""))
        #expect(scratch.hasPrefix("/") && !FileManager.default.fileExists(atPath: scratch), "\(scratch) is left")
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "the demo's daemon (pid \(pid)) still runs")
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        #expect(!mounts.contains(scratch), "a mount below \(scratch) is left")
    }

    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func demoShowsAFindingAndCleansUp() throws {
        let run = try DemoRun()
        #expect(run.finish(), "the demo hung:\n\(run.output)")
        let output = run.output
        #expect(run.process.terminationStatus == 0, "\(output)")
        // The finding a new user reads: the xattrs' cache, per tmpfs inode, and top's screen.
        #expect(output.contains(" grows ") && output.contains(" per cached inode of shmem_inode_cache (R² "), "\(output)")
        #expect(output.contains("tmpfs inodes go only when their files are deleted"), "\(output)")
        #expect(output.contains("CACHE ") && output.contains("!kmalloc-cg-"), "\(output)")
        #expect(output.contains("when their files were deleted: memory attached to tmpfs inodes, not a leak."), "\(output)")
        try Self.demoLeftNothing(output)
    }

    /// Interrupted with Ctrl-C while it makes the files (SIGINT to its whole
    /// process group, as a terminal sends it), the demo still stops its
    /// daemon, unmounts its tmpfs and removes its directory.
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func anInterruptedDemoCleansUp() throws {
        let run = try DemoRun()
        run.waitFor("user xattr each")
        try run.interruptGroup()
        #expect(run.finish(), "the demo hung:\n\(run.output)")
        #expect(run.process.terminationStatus == 130, "\(run.output)")
        #expect(run.output.contains("demo: cleaned up"), "\(run.output)")
        try Self.demoLeftNothing(run.output)
    }
}
