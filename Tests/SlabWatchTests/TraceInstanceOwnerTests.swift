import Glibc
import Testing
@testable import SlabWatch

/// Who made a tracefs instance, from its name, and whether a process can tell
/// that the owner still runs. (Live: the sweep itself, in
/// TracefsNamespaceEndToEndTests.)
struct TraceInstanceOwnerTests {
    typealias Owner = TraceInstanceOwner

    @Test(arguments: [
        ("slabwatch-4026531836-1234-98765-1", Owner(pidNamespace: 4026531836, pid: 1234, startTime: 98765)),
        ("slabwatch-4026532176-1-5-17", Owner(pidNamespace: 4026532176, pid: 1, startTime: 5)),
        // The older form says only the pid.
        ("slabwatch-1234-1", Owner(pidNamespace: nil, pid: 1234, startTime: nil)),
    ])
    func namesSayTheirOwner(name: String, owner: Owner) {
        #expect(Owner(instanceName: name) == owner)
    }

    @Test(arguments: [
        "slabwatch", "slabwatch-", "slabwatch-1234", "slabwatch-1234-1-2", "slabwatch-4026531836-1234-98765-1-2",
        "slabwatch--1234-98765-1", "slabwatch-4026531836-+1234-98765-1", "slabwatch-4026531836- 1234-98765-1",
        "slabwatch-4026531836-0-98765-1", "slabwatch-0-1", "slabwatch-4026531836-99999999999-98765-1",
        "slabwatch-4026531836-1234-98765-x", "test-attr-1234", "slabwatchx-1234-1", "other-4026531836-1234-98765-1",
    ])
    func otherNamesSayNone(name: String) {
        #expect(Owner(instanceName: name) == nil)
    }

    @Test func aNameReadsBackAsItsOwner() {
        let owner = Owner(pidNamespace: 4026531836, pid: 77, startTime: 123456)
        let name = owner.instanceName(number: 3)
        #expect(name == "slabwatch-4026531836-77-123456-3")
        #expect(Owner(instanceName: name) == owner)
    }

    static let observer = Owner(pidNamespace: 4026531836, pid: 500, startTime: 1)
    static let owner = Owner(pidNamespace: 4026531836, pid: 1234, startTime: 98765)

    /// In the observer's own namespace the pid decides, with its start time;
    /// anything that proves neither is left to the kernel (unknown).
    @Test(arguments: [
        (Owner.PidLookup.noSuchProcess, Owner.Liveness.gone),
        (.process(state: "S", startTime: 98765), .alive),
        (.process(state: "R", startTime: 98765), .alive),
        (.process(state: "S", startTime: 98766), .unknown),  // the pid reused (or a time namespace's shifted clock): not the owner
        (.process(state: "Z", startTime: 98765), .unknown),  // a zombie, or a leader whose threads still run
        (.hidden, .unknown),  // ProtectProc=invisible, hidepid
    ])
    func sameNamespaceOwnersAreJudgedByPid(lookup: Owner.PidLookup, liveness: Owner.Liveness) {
        var looked: [Int32] = []
        let judged = Self.owner.liveness(seenBy: Self.observer, lookup: { pid in
            looked.append(pid)
            return lookup
        })
        #expect(judged == liveness && looked == [1234])
    }

    /// Where the pid means nothing (another namespace, the older name) or the
    /// observer cannot judge pids, no pid is looked up at all.
    @Test(arguments: [
        (TraceInstanceOwnerTests.owner, nil as Owner?),
        (Owner(pidNamespace: 4026532176, pid: 1, startTime: 5), TraceInstanceOwnerTests.observer),
        (Owner(pidNamespace: nil, pid: 1234, startTime: nil), TraceInstanceOwnerTests.observer),
    ])
    func otherOwnersAreNotJudgedByPid(owner: Owner, observer: Owner?) {
        var looked: [Int32] = []
        let judged = owner.liveness(seenBy: observer, lookup: { pid in
            looked.append(pid)
            return .noSuchProcess
        })
        #expect(judged == .unknown && looked.isEmpty)
    }

    @Test(arguments: [
        ("1234 (slabwatch) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 98765 1000 100", "S", UInt64(98765)),
        // A command name with spaces and parentheses (prctl(PR_SET_NAME) lets anyone choose it).
        ("99 (a) b) R (c) Z 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0", "Z", 42),
    ])
    func statGivesStateAndStartTime(line: String, state: Character, start: UInt64) {
        let stat = ProcessStat(line)
        #expect(stat?.state == state && stat?.startTime == start)
    }

    @Test(arguments: ["", "1234 (slabwatch) S 1 2 3", "1234 (slabwatch) SS 1 1234 1234 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0"])
    func statThatIsNotOneIsRefused(line: String) {
        #expect(ProcessStat(line) == nil)
    }

    /// /proc judges this namespace's pids only when NSpid lists one pid, this one.
    @Test func procfsOfOwnNamespaceIsToldByNSpid() {
        let pid = getpid()
        #expect(Owner.ownNamespaceOnly(status: "Name:\tslabwatch\nNSpid:\t\(pid)\nNSpgid:\t\(pid)\n"))
        #expect(!Owner.ownNamespaceOnly(status: "Name:\tslabwatch\nNSpid:\t\(pid + 1000)\t\(pid)\n"), "a /proc of an outer namespace")
        #expect(!Owner.ownNamespaceOnly(status: "Name:\tslabwatch\nNSpid:\t\(pid + 1)\n"))
        #expect(!Owner.ownNamespaceOnly(status: "Name:\tslabwatch\n"), "a kernel without NSpid")
    }

    /// This test process: /proc here is its namespace's own.
    @Test func thisProcessNamesItself() throws {
        let me = try #require(Owner.thisProcess)
        var status = stat()
        #expect(stat("/proc/self/ns/pid", &status) == 0 && me.pidNamespace == UInt64(status.st_ino))
        #expect(me.pid == getpid() && (me.startTime ?? 0) > 0)
        guard case .process(_, let started) = Owner.lookUp(getpid()) else {
            Issue.record("this process is not found")
            return
        }
        #expect(started == me.startTime)
    }
}
