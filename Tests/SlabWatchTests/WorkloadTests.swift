import Glibc
import Testing
@testable import SlabWatch

/// `measure`'s workload with real processes: how each way of ending reads,
/// and the statuses env(1) gives a command that cannot run.
struct WorkloadTests {
    /// Polls until it ends. The deadline only ends a hung test (the
    /// commands here end at once); it is not a measurement of time.
    static func wait(_ workload: inout SpawnedCommand) -> Termination? {
        let deadline = Clock.monotonicNanoseconds() + 60_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            if let ended = workload.poll() { return ended }
            usleep(1000)
        }
        Issue.record("\(workload.arguments) did not end within 60 s")
        return nil
    }

    @Test(arguments: [
        (["/bin/sh", "-c", "exit 3"], Termination.exited(3), Int32(3)),
        (["/bin/sh", "-c", "kill -TERM $$"], .killed(signal: SIGTERM), 143),
        (["true"], .exited(0), 0),  // found on PATH
    ])
    func endingsReadAsAShellReportsThem(arguments: [String], ending: Termination, status: Int32) throws {
        var workload = SpawnedCommand(arguments, forwardsSignals: false)
        try workload.start()
        let ended = Self.wait(&workload)
        #expect(ended == ending && ended?.status == status)
        #expect(workload.poll() == ending, "asked again, it says the same")
    }

    @Test(arguments: [
        ("/nonexistent/command", Int32(127), "cannot run '/nonexistent/command': No such file or directory"),
        ("no-such-command-on-path", 127, "cannot run 'no-such-command-on-path': No such file or directory"),
        ("/etc/passwd", 126, "cannot run '/etc/passwd': Permission denied"),
    ])
    func aCommandThatCannotRunHasEnvsStatus(command: String, status: Int32, message: String) {
        var workload = SpawnedCommand([command], forwardsSignals: false)
        do {
            try workload.start()
            Issue.record("\(command) started")
        } catch {
            #expect(error.status == status && error.description == message)
        }
    }

    /// Polling never blocks: a command that runs on is still running; a
    /// status reaped by someone else is lost, not waited for.
    @Test func pollNeverBlocksAndALostStatusIsSaid() throws {
        var running = SpawnedCommand(["/bin/sh", "-c", "exec sleep 60"], forwardsSignals: false)
        try running.start()
        let pid = try #require(running.processID)
        #expect(running.poll() == nil)
        kill(pid, SIGKILL)
        #expect(Self.wait(&running) == .killed(signal: SIGKILL))

        var reaped = SpawnedCommand(["/bin/true"], forwardsSignals: false)
        try reaped.start()
        var status: Int32 = 0
        #expect(waitpid(try #require(reaped.processID), &status, 0) > 0)
        #expect(reaped.poll() == .lost && Termination.lost.status == 1)
    }
}
