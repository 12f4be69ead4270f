import Foundation
import Glibc
import Testing
import TestSupport

/// `slabwatch top` as a person uses it: in a real terminal (tmux, 80×24), keys
/// sent, the screen read back; and `--once` on a fixture, held to a golden file.
extension EndToEndTests {
    static func tmux(_ arguments: [String]) throws -> DaemonProcess.RunResult {
        try DaemonProcess.run("/usr/bin/tmux", arguments)
    }

    /// Starts `command` in a detached 80×24 tmux session that stays after the
    /// command exits; returns what ends it. Started through python3 (which
    /// closes inherited descriptors): the tmux server would otherwise keep
    /// every pipe this test process has open. The server exits with its last
    /// session but leaves its socket and directory behind: the returned
    /// closure removes them if this session made them.
    static func startTmux(_ session: String, _ command: String) throws -> () -> Void {
        let socketDirectory = "/tmp/tmux-\(getuid())"
        let socketDirectoryExisted = FileManager.default.fileExists(atPath: socketDirectory)
        let launch = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, "
            + "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode)"
        #expect(try DaemonProcess.run("/usr/bin/python3", ["-c", launch, "/usr/bin/tmux", "new-session", "-d", "-s", session,
                                                           "-x", "80", "-y", "24", command]).status == 0)
        let end = {
            _ = try? Self.tmux(["kill-session", "-t", session])
            if !socketDirectoryExisted {
                unlink("\(socketDirectory)/default")
                rmdir(socketDirectory)
            }
        }
        do { _ = try Self.tmux(["set-option", "-t", session, "remain-on-exit", "on"]) } catch { end(); throw error }
        return end
    }

    @Test func topInATerminalSortsFiltersAndQuitsCleanly() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
            Issue.record("tmux is not installed (scripts/test.sh installs it)"); return
        }
        let lines = (0..<30).map { "static\($0) 128 128 32 128 1 : tunables 0 0 0 : slabdata \($0 + 5000) \($0 + 5000) 0" }
        let root = try FakeProcRoot(slabinfo: nil)
        let session = "slabwatch-top-\(getpid())"
        var step = 0
        func writeSlabinfo() throws {
            step += 1
            try root.write("slabinfo", "slabinfo - version: 2.1\n" + lines.joined(separator: "\n")
                + "\ngrower 128 128 32 128 1 : tunables 0 0 0 : slabdata \(step * 20) \(step * 20) 0\n")
        }
        try writeSlabinfo()
        let command = ([DaemonProcess.binary.path, "top", "-d", "300ms"] + Array(root.arguments.prefix(4))).joined(separator: " ")
        let endTmux = try Self.startTmux(session, command)
        defer { endTmux() }
        func screen() throws -> [String] { try Self.tmux(["capture-pane", "-p", "-t", session]).output.components(separatedBy: "\n") }
        func waitFor(_ what: String, _ condition: ([String]) -> Bool) throws {
            for _ in 0..<50 {
                try writeSlabinfo()  // grower grows 80 KiB every 100 ms
                if condition(try screen()) { return }
                usleep(100_000)
            }
            Issue.record("timed out waiting for \(what); screen:\n\(try screen().joined(separator: "\n"))")
        }
        func firstRow(_ lines: [String]) -> String { lines.drop { !$0.hasPrefix("CACHE") }.dropFirst().first ?? "" }

        try waitFor("the footprint sort") { $0[0].contains("sort: footprint") && firstRow($0).hasPrefix("static29") }
        #expect(try screen().allSatisfy { $0.count <= 80 })
        _ = try Self.tmux(["send-keys", "-t", session, "s"])
        // grower stays far below static29's footprint, but in the growth sort it leads.
        try waitFor("grower on top of the growth sort") { $0[0].contains("sort: growth") && firstRow($0).hasPrefix("grower") }
        _ = try Self.tmux(["send-keys", "-t", session, "/", "s", "t", "a", "t", "i", "c", "2", "Enter"])
        try waitFor("the filter") { $0[0].contains("11 of 31 caches") && firstRow($0).hasPrefix("static2") }
        _ = try Self.tmux(["send-keys", "-t", session, "q"])
        try waitFor("top to exit") { _ in (try? Self.tmux(["display-message", "-p", "-t", session, "#{pane_dead}"]).output) == "1\n" }
        // Back on the normal screen: what top drew was on the alternate one.
        let after = try screen()
        #expect(!after.joined().contains("slabwatch top:"), "\(after)")

        // Ctrl-C (SIGINT) restores the terminal the same way.
        _ = try Self.tmux(["respawn-pane", "-t", session, command])
        try waitFor("top to start again") { $0[0].contains("sort: footprint") }
        _ = try Self.tmux(["send-keys", "-t", session, "C-c"])
        try waitFor("top to exit on Ctrl-C") { _ in (try? Self.tmux(["display-message", "-p", "-t", session, "#{pane_dead}"]).output) == "1\n" }
        #expect(!(try screen()).joined().contains("slabwatch top:"))
    }

    @Test func topOnceOnTheFixtureIsTheGoldenScreen() throws {
        let fixture = RepositoryPaths.localCapture
        let result = try DaemonProcess.run(DaemonProcess.binary.path, [
            "top", "--once", "-d", "100ms", "--sort", "name", "--path.procfs", fixture.appendingPathComponent("proc").path,
            "--path.sysfs", fixture.appendingPathComponent("sys").path])
        #expect(result.status == 0, "\(result.error)")
        let screen = result.output.replacingOccurrences(of: #"\d\d:\d\d:\d\d UTC"#, with: "HH:MM:SS UTC", options: .regularExpression)
        // Two samples 100 ms apart cover no growth window: the columns stay empty, not 600 times 100 ms of noise.
        #expect(screen.contains("every 100 ms") && screen.contains("        -          -") && !screen.contains(" 0 B"), "\(screen)")
        #expect(!screen.contains("\u{1b}"), "--once writes no escape codes")
        let golden = RepositoryPaths.fixtures.appendingPathComponent("golden/top-once.txt")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" { try replaceFile(golden, with: screen) }
        #expect(screen == (try String(contentsOf: golden, encoding: .utf8)), "rerun with UPDATE_GOLDEN=1 if intended, then review the diff")
        let badSort = try DaemonProcess.run(DaemonProcess.binary.path, ["top", "--once", "--sort", "weight"])
        #expect(badSort.status == 2 && badSort.error.contains("footprint, growth, objects, size, name"), "\(badSort.error)")
        let noTerminal = try DaemonProcess.run(DaemonProcess.binary.path, ["top"])
        #expect(noTerminal.status == 2 && noTerminal.error.contains("needs a terminal"), "\(noTerminal.error)")
    }

    /// `--url`: a running daemon's finding (from its own history) shows in
    /// top's first row; bad URLs and unreachable daemons get one line.
    @Test func topReadsARunningDaemonsFindings() throws {
        let root = try FakeProcRoot(slabinfo: nil)
        let story = try EndToEndTests.GrowthStory(root)
        defer { story.stop() }
        let daemon = try DaemonProcess(arguments: root.arguments + ["--sampler.interval", "100ms"] + EndToEndTests.quickDetector)
        try daemon.waitFor("kmalloc-32 finding", timeout: 20) { try EndToEndTests.detectorFinding(daemon, "kmalloc-32")?["state"] as? String == "open" }
        let result = try DaemonProcess.run(DaemonProcess.binary.path, ["top", "--url", "http://127.0.0.1:\(daemon.port)", "--once", "-d", "300ms"])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.components(separatedBy: "\n")
        #expect(lines[0].hasPrefix("slabwatch top from http://127.0.0.1:\(daemon.port): 2 of 2 caches"), "\(lines[0])")
        let first = lines.drop { !$0.hasPrefix("CACHE") }.dropFirst().first ?? ""
        #expect(first.hasPrefix("!kmalloc-32") && first.contains("/inode R²"), "\(result.output)")
        // Two polls 300 ms apart cover no growth window: the columns stay empty rather than extrapolate them.
        #expect(first.contains("          -          -  "), "\(first)")

        let https = try DaemonProcess.run(DaemonProcess.binary.path, ["top", "--url", "https://127.0.0.1:\(daemon.port)", "--once"])
        #expect(https.status == 2 && https.error.contains("must start with http://"), "\(https.error)")
        let gone = try DaemonProcess.run(DaemonProcess.binary.path, ["top", "--url", "http://127.0.0.1:\(freePort())", "--once"])
        #expect(gone.status == 1 && gone.error.contains("cannot connect"), "\(gone.error)")
    }
}
