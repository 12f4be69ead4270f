import Foundation
import Glibc
import Testing
import TestSupport

extension AttributionTesting {
    /// The inode of a process's PID namespace (`/proc/PID/ns/pid`), as
    /// slabwatch's instance names record it; 0 when it cannot be read.
    static func pidNamespace(of pid: String) -> UInt64 {
        var status = stat()
        return stat("/proc/\(pid)/ns/pid", &status) == 0 ? UInt64(status.st_ino) : 0
    }

    /// The instances a process of the test's own PID namespace named for itself.
    static func instances(ofPid pid: Int32) -> [String] {
        slabwatchInstances().filter { $0.hasPrefix("slabwatch-\(pidNamespace(of: "self"))-\(pid)-") }
    }

    /// `slabwatch attribute` as PID 1 of a PID namespace of its own, with that
    /// namespace's /proc, as in a pod: `unshare --pid --fork --mount-proc`.
    /// Its mount namespace is a copy of the host's, so it uses the tracefs the
    /// test mounted: the same instances as every other session's.
    final class PIDNamespaceSession {
        let unshare: Session
        /// The session's pid on the host (it is 1 in its own namespace).
        let pid: Int32

        init(_ arguments: [String]) throws {
            // --kill-child: should the test fail first, the session goes with unshare.
            unshare = try Session(executable: "/usr/bin/unshare",
                                  ["--pid", "--fork", "--mount-proc", "--kill-child", DaemonProcess.binary.path, "attribute"] + arguments)
            let deadline = Date().addingTimeInterval(20)  // only a hung machine takes this long
            while true {
                let children = (try? String(contentsOfFile: "/proc/\(unshare.pid)/task/\(unshare.pid)/children", encoding: .utf8)) ?? ""
                if let child = children.split(separator: " ").first.flatMap({ Int32($0) }),
                   (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8)) == "slabwatch\n" {
                    pid = child
                    break
                }
                guard Date() < deadline, unshare.process.isRunning else {
                    throw DaemonProcess.Failure(message: "the session in a PID namespace of its own did not start")
                }
                usleep(10_000)
            }
        }

        /// Its namespace's inode.
        var namespace: UInt64 { pidNamespace(of: "\(pid)") }

        /// Its pid as its namespace numbers it (the last of `NSpid`).
        var pidInItsNamespace: Int32? {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(separator: "\t").last.flatMap { Int32($0) }
        }

        func wait() -> DaemonProcess.RunResult { unshare.wait() }
    }
}

/// tracefs is one for the whole machine: a pod that mounts the node's sees
/// the host's instances and every other pod's. Sessions in PID namespaces of
/// their own (each slabwatch its namespace's PID 1, as in a pod) and on the
/// host, at once: none removes or turns off an instance whose session runs,
/// and a killed session's instance is removed from any namespace.
extension EndToEndTests {
    /// A host session, a session in a PID namespace of its own started while
    /// it traces, and a second host session: each one's sweep (before it makes
    /// its own instance) leaves the others tracing, and all three end well.
    @Test func sessionsInOtherPIDNamespacesLeaveEachOthersInstancesAlone() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)  // the test's own view of the instances
        defer { withExtendedLifetime(tracefs) {} }
        let host = try AttributionTesting.Session(["attribute", "dentry", "--duration", "120s", "--source", "trace"])
        let hostInstance = try AttributionTesting.instance(of: host.pid)
        try AttributionTesting.waitUntilTracing(hostInstance)
        let pod = try AttributionTesting.PIDNamespaceSession(["kmalloc-cg-512", "--duration", "120s", "--source", "trace"])
        let podInstance = try AttributionTesting.instance(of: pod.pid)
        try AttributionTesting.waitUntilTracing(podInstance)
        #expect(AttributionTesting.isTracing(hostInstance), "the pod's session turned the host's off")
        let secondHost = try AttributionTesting.Session(["attribute", "dentry", "--duration", "120s", "--source", "trace"])
        let secondHostInstance = try AttributionTesting.instance(of: secondHost.pid)
        try AttributionTesting.waitUntilTracing(secondHostInstance)
        #expect(AttributionTesting.isTracing(hostInstance), "the second host session turned the first off")
        #expect(AttributionTesting.isTracing(podInstance), "a host session turned the pod's off")
        #expect(Set([hostInstance, podInstance, secondHostInstance]).count == 3)

        let ours = [hostInstance, podInstance, secondHostInstance]
        for pid in [host.pid, pod.pid, secondHost.pid] { kill(pid, SIGINT) }
        for (name, result) in [("host", host.wait()), ("pod", pod.wait()), ("second host", secondHost.wait())] {
            #expect(result.status == 0 && result.output.contains("stopped by interrupted"), "\(name): \(result.error)")
            #expect(!ours.contains { result.error.contains($0) }, "\(name) touched another's instance: \(result.error)")
        }
        #expect(Set(AttributionTesting.slabwatchInstances()).isDisjoint(with: ours))
    }

    /// Two sessions that are each PID 1 of a namespace of their own, at once:
    /// their instances' names are their own (each says its namespace), and
    /// neither touches the other's.
    @Test func sessionsThatAreEachPID1KeepApart() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let first = try AttributionTesting.PIDNamespaceSession(["dentry", "--duration", "120s", "--source", "trace"])
        let firstInstance = try AttributionTesting.instance(of: first.pid)
        try AttributionTesting.waitUntilTracing(firstInstance)
        let second = try AttributionTesting.PIDNamespaceSession(["dentry", "--duration", "120s", "--source", "trace"])
        let secondInstance = try AttributionTesting.instance(of: second.pid)
        try AttributionTesting.waitUntilTracing(secondInstance)
        #expect(first.pidInItsNamespace == 1 && second.pidInItsNamespace == 1)
        #expect(first.namespace != second.namespace)
        #expect(firstInstance.hasPrefix("slabwatch-\(first.namespace)-1-"), "\(firstInstance)")
        #expect(secondInstance.hasPrefix("slabwatch-\(second.namespace)-1-"), "\(secondInstance)")
        #expect(AttributionTesting.isTracing(firstInstance), "the second session turned the first one's off")

        for pid in [first.pid, second.pid] { kill(pid, SIGINT) }
        for result in [first.wait(), second.wait()] {
            #expect(result.status == 0 && result.output.contains("stopped by interrupted"), "\(result.error)")
            #expect(!result.error.contains(firstInstance) && !result.error.contains(secondInstance), "\(result.error)")
        }
        #expect(Set(AttributionTesting.slabwatchInstances()).isDisjoint(with: [firstInstance, secondInstance]))
    }

    /// SIGKILL, across PID namespaces: the next session removes what a killed
    /// one left, and says so — a host session a pod's, a pod's session the
    /// host's, and a pod's session another pod's (both PID 1).
    @Test func aKilledSessionsInstanceIsRemovedFromAnotherPIDNamespace() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let short = ["dentry", "--source", "trace", "--duration", "200ms"]

        let pod = try AttributionTesting.PIDNamespaceSession(["dentry", "--duration", "120s", "--source", "trace"])
        let podInstance = try Self.killedAfterTracing(pod.pid)
        _ = pod.wait()
        let host = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute"] + short)
        #expect(host.status == 0 && host.error.contains("removed tracefs instances") && host.error.contains(podInstance), "\(host.error)")
        #expect(!AttributionTesting.slabwatchInstances().contains(podInstance))

        let killedHost = try AttributionTesting.Session(["attribute", "dentry", "--duration", "120s", "--source", "trace"])
        let hostInstance = try Self.killedAfterTracing(killedHost.pid)
        _ = killedHost.wait()
        let fromPod = try AttributionTesting.PIDNamespaceSession(short).wait()
        #expect(fromPod.status == 0 && fromPod.error.contains(hostInstance), "\(fromPod.error)")
        #expect(!AttributionTesting.slabwatchInstances().contains(hostInstance))

        let otherPod = try AttributionTesting.PIDNamespaceSession(["dentry", "--duration", "120s", "--source", "trace"])
        let otherPodInstance = try Self.killedAfterTracing(otherPod.pid)
        _ = otherPod.wait()
        let fromAnotherPod = try AttributionTesting.PIDNamespaceSession(short).wait()
        #expect(fromAnotherPod.status == 0 && fromAnotherPod.error.contains(otherPodInstance), "\(fromAnotherPod.error)")
        #expect(!AttributionTesting.slabwatchInstances().contains(otherPodInstance))
    }

    /// The sweep's rule, case by case, on instances the test makes as
    /// sessions leave them (real instances, in the real tracefs): a live
    /// process of this namespace stands in for a live owner, a held
    /// `free_buffer` for a live session elsewhere. Removed: an owner whose pid
    /// no process has (even before it set `disable_on_free`); with the option
    /// set and nothing holding it, one whose pid now runs a process started
    /// at another time, one elsewhere, one of the older name. Kept, and
    /// nothing written to them: an owner that runs (its pid decides, not the
    /// option); one elsewhere without the option (a session that has just
    /// made it); one elsewhere that something holds.
    @Test func theSweepRemovesOnlyInstancesWhoseSessionIsOver() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let owner = Process()  // stands in for a live owner: a process of this namespace
        owner.executableURL = URL(fileURLWithPath: "/bin/sleep")
        owner.arguments = ["600"]  // a bound for a hung test; stopped below
        try owner.run()
        defer {
            kill(owner.processIdentifier, SIGKILL)  // sleep inherits the test runner's blocked signals, SIGTERM included
            owner.waitUntilExit()
        }
        let stat = try String(contentsOfFile: "/proc/\(owner.processIdentifier)/stat", encoding: .utf8)
        let afterName = try #require(stat.lastIndex(of: ")"))
        // Field 22, counted from the state (field 3) after the name.
        let started = try #require(UInt64(stat[stat.index(after: afterName)...].split(separator: " ")[22 - 3]))
        let here = AttributionTesting.pidNamespace(of: "self"), elsewhere = here + 1_000_000  // a namespace of no process here
        let pid = owner.processIdentifier
        let unused = try #require(Self.unusedPid())
        let removed = [
            "slabwatch-\(here)-\(unused)-5-1",  // no marker: the pid alone decides
            "slabwatch-\(here)-\(pid)-\(started + 1)-1",  // the pid reused
            "slabwatch-\(elsewhere)-1-5-3",
            "slabwatch-\(pid)-1",  // the older name
        ]
        let running = "slabwatch-\(here)-\(pid)-\(started)-1"
        let elsewhereJustMade = "slabwatch-\(elsewhere)-1-5-1", elsewhereHeld = "slabwatch-\(elsewhere)-1-5-2"
        let kept = [running, elsewhereJustMade, elsewhereHeld]
        let root = "\(AttributionTesting.tracing)/instances"
        for name in removed + kept { try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: false) }
        var held: Int32 = -1
        defer {
            if held >= 0 { close(held) }
            for name in removed + kept { rmdir("\(root)/\(name)") }
        }
        for name in removed.dropFirst() + [running, elsewhereHeld] {
            try "1".write(toFile: "\(root)/\(name)/options/disable_on_free", atomically: false, encoding: .utf8)
        }
        held = open("\(root)/\(elsewhereHeld)/free_buffer", O_WRONLY | O_CLOEXEC)
        #expect(held >= 0)
        // Something on in the kept ones, to see that the sweep writes nothing to them.
        for name in kept {
            try "1".write(toFile: "\(root)/\(name)/events/kmem/kmem_cache_free/enable", atomically: false, encoding: .utf8)
        }

        let sweep = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--source", "trace", "--duration", "200ms"])
        #expect(sweep.status == 0, "\(sweep.error)")
        let left = Set(AttributionTesting.slabwatchInstances())
        for name in removed {
            #expect(!left.contains(name) && sweep.error.contains(name), "\(name) should be removed: \(sweep.error)")
        }
        for name in kept {
            #expect(left.contains(name) && !sweep.error.contains(name), "\(name) should be kept: \(sweep.error)")
            #expect(AttributionTesting.control(name, "events/kmem/kmem_cache_free/enable") == "1"
                    && AttributionTesting.control(name, "tracing_on") == "1", "\(name) was written to")
        }
    }

    /// A pid no process has, from the top of the range: the kernel hands pids
    /// out upwards, so it stays free while the test runs (barring a wrap).
    static func unusedPid() -> Int32? {
        let max = Int32((try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 32768
        return stride(from: max - 1, to: max - 1000, by: -1).first { kill($0, 0) == -1 && errno == ESRCH }
    }

    /// Waits until the session of `pid` traces, kills it with SIGKILL, and
    /// returns its instance, which the kernel has stopped (its free_buffer closed).
    static func killedAfterTracing(_ pid: Int32) throws -> String {
        let instance = try AttributionTesting.instance(of: pid)
        try AttributionTesting.waitUntilTracing(instance)
        kill(pid, SIGKILL)
        // The kernel turns it off when the dying process's free_buffer is released.
        let deadline = Date().addingTimeInterval(20)  // only a hung machine takes this long
        while AttributionTesting.control(instance, "tracing_on") != "0" && Date() < deadline { usleep(10_000) }
        #expect(AttributionTesting.control(instance, "tracing_on") == "0", "the kernel stops a killed session's tracing")
        return instance
    }
}
