import Foundation
import Glibc
import Testing
import TestSupport

/// What the BPF attribution tests share: the BPF objects a process holds,
/// whether the kernel still has them, and a cgroup of the test's own.
enum BPFTesting {
    static let bpftool = "/usr/sbin/bpftool"
    static var available: Bool { getuid() == 0 && access("/sys/kernel/btf/vmlinux", R_OK) == 0 && access(bpftool, X_OK) == 0 }

    /// Program and map ids behind the process's descriptors (from /proc/PID/fdinfo).
    static func objectIDs(_ pid: Int32) -> (programs: Set<Int>, maps: Set<Int>) {
        var programs = Set<Int>(), maps = Set<Int>()
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fdinfo")) ?? [] {
            guard let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8) else { continue }
            for line in info.split(separator: "\n") {
                let parts = line.split(separator: "\t")
                guard parts.count == 2, let id = Int(parts[1]) else { continue }
                if parts[0] == "prog_id:" { programs.insert(id) }
                if parts[0] == "map_id:" { maps.insert(id) }
            }
        }
        return (programs, maps)
    }

    /// Ids among `ids` the kernel still has (bpftool finds them).
    static func remaining(_ kind: String, _ ids: Set<Int>) throws -> Set<Int> {
        try ids.filter { try DaemonProcess.run(bpftool, [kind, "show", "id", "\($0)"]).status == 0 }
    }

    /// Waits (BPF objects are freed after an RCU grace period) until none of the ids is left.
    static func waitUntilGone(_ ids: (programs: Set<Int>, maps: Set<Int>)) throws -> (programs: Set<Int>, maps: Set<Int>) {
        let deadline = Date().addingTimeInterval(10)
        var left = (programs: try remaining("prog", ids.programs), maps: try remaining("map", ids.maps))
        while !(left.programs.isEmpty && left.maps.isEmpty) && Date() < deadline {
            usleep(200_000)
            left = (try remaining("prog", left.programs), try remaining("map", left.maps))
        }
        return left
    }

    /// Where the cgroup2 hierarchy is mounted here (/sys/fs/cgroup, or /sys/fs/cgroup/unified beside v1).
    static func cgroup2Mount() -> String? {
        let mountinfo = (try? DaemonProcess.run("/bin/cat", ["/proc/self/mountinfo"]).output) ?? ""
        for line in mountinfo.split(separator: "\n") where line.contains(" - cgroup2 ") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[3] == "/" { return String(fields[4]) }
        }
        return nil
    }

    /// Where the cgroup v1 memory hierarchy is mounted here (/sys/fs/cgroup/memory), when it is.
    static func memoryV1Mount() -> String? {
        let mountinfo = (try? DaemonProcess.run("/bin/cat", ["/proc/self/mountinfo"]).output) ?? ""
        for line in mountinfo.split(separator: "\n") where line.contains(" - cgroup cgroup ") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[3] == "/", fields.last?.split(separator: ",").contains("memory") == true { return String(fields[4]) }
        }
        return nil
    }

    /// This process's cgroup in the v1 memory hierarchy (/proc/self/cgroup's
    /// `memory` line), which the processes it starts inherit; nil where the
    /// memory controller is not on v1.
    static func ownMemoryCgroupV1() -> String? {
        guard memoryV1Mount() != nil, let lines = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        for line in lines.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            if fields.count == 3, fields[1].split(separator: ",").contains("memory") { return String(fields[2]) }
        }
        return nil
    }

    /// A cgroup of the test's own, made in `hierarchy` and removed when
    /// released. A v1 memory cgroup is emptied first (`memory.force_empty`):
    /// one removed while page cache is still charged to it would stay behind
    /// as a dying cgroup. (The tests' processes write no file from it.)
    final class Cgroup {
        let path: String

        init(in hierarchy: String, name: String) throws {
            path = "\(hierarchy)/\(name)"
            guard mkdir(path, 0o755) == 0 else { throw DaemonProcess.Failure(message: "mkdir \(path): errno \(errno)") }
        }

        /// Its path as the session names it, from the hierarchy's root.
        var name: String { "/" + (path.split(separator: "/").last.map(String.init) ?? "") }

        deinit {
            if access("\(path)/memory.force_empty", W_OK) == 0 { try? "0".write(toFile: "\(path)/memory.force_empty", atomically: false, encoding: .utf8) }
            // Its processes have exited; the kernel lets them go from cgroup.procs a moment later.
            let deadline = Date().addingTimeInterval(10)
            while rmdir(path) != 0 && errno == EBUSY && Date() < deadline { usleep(50_000) }
        }
    }

    static func json(_ result: DaemonProcess.RunResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)\n\(result.error)")
    }

    static func sites(_ json: [String: Any]) throws -> [[String: Any]] { try #require(json["call_sites"] as? [[String: Any]]) }

    static func processes(_ site: [String: Any]) -> [[String: Any]] { site["processes"] as? [[String: Any]] ?? [] }
}

/// The BPF session on the live kernel (root): every allocation counted, each
/// free matched in the kernel, the process and cgroup named, nothing left.
extension EndToEndTests {
    @Test(.enabled(if: BPFTesting.available))
    func bpfSessionCountsEveryAllocationAndItsNetExactly() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let fs = try AttributionTesting.Tmpfs()
        let expected = try AttributionTesting.kernelsOwnCallSite(fs)
        let created = 20_000, deleted = 5_000
        var session: Int32 = 0
        let result = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--duration", "10s", "--json"],
                                                      started: { session = $0 }) {
            fs.create(created, prefix: "keep")
            for i in 0..<deleted { unlink("\(fs.path)/keep\(i)") }
            // Inode frees wait for an RCU grace period and its callbacks, which
            // a loaded machine delays by seconds: 1.5 s once saw only 1,371 of
            // the 5,000 frees while builds ran beside the test.
            usleep(5_000_000)
        }
        #expect(result.status == 0, "\(result.error)")
        let json = try BPFTesting.json(result)
        #expect(json["source"] as? String == "bpf" && json["fallback"] is NSNull, "\(json)")
        let top = try #require(try BPFTesting.sites(json).first)
        #expect(top["function"] as? String == expected, "\(top)")
        #expect((top["allocations"] as? Double ?? 0) >= Double(created), "\(top)")
        // This process's own part: exact, whatever else the machine allocates meanwhile.
        let mine = try #require(BPFTesting.processes(top).first { $0["pid"] as? Double == Double(getpid()) }, "\(top)")
        let net = mine["net_count"] as? Double ?? 0, kept = Double(created - deleted)
        #expect(abs(net - kept) <= kept * 0.01, "net \(net) of \(kept) kept: \(mine)")
        #expect((mine["net_bytes"] as? Double ?? 0) >= net * 700)
        #expect((mine["allocations"] as? Double ?? 0) >= Double(created))
        let stack = try #require((top["stacks"] as? [[String: Any]])?.first?["frames"] as? [String])
        #expect(stack.first == expected && stack.contains { $0.hasPrefix("shmem_mknod+") }, "\(stack)")
        #expect(json["not_followed"] as? Double == 0 && json["dropped"] as? Double == 0 && json["stopped_by"] as? String == "duration")
        // (Other slabwatch processes on the machine may have instances of their own.)
        let left = AttributionTesting.instances(ofPid: session)
        #expect(left.isEmpty, "a BPF session makes no tracefs instance: \(left)")
    }

    @Test(.enabled(if: BPFTesting.available))
    func bpfChurnNetsToAboutZero() throws {
        let fs = try AttributionTesting.Tmpfs()
        let result = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--duration", "3s", "--json"]) {
            fs.create(5000, prefix: "churn", removeEach: true)
            usleep(1_000_000)
        }
        #expect(result.status == 0, "\(result.error)")
        let top = try #require(try BPFTesting.sites(try BPFTesting.json(result)).first { ($0["allocations"] as? Double ?? 0) >= 5000 })
        let mine = try #require(BPFTesting.processes(top).first { $0["pid"] as? Double == Double(getpid()) }, "\(top)")
        let allocations = mine["allocations"] as? Double ?? 0, net = mine["net_count"] as? Double ?? .infinity
        #expect(allocations >= 5000 && net <= allocations * 0.01, "churn must net to about zero: \(mine)")
    }

    /// More live objects than the map holds: the rest are counted, not
    /// followed, and the result says so.
    @Test(.enabled(if: BPFTesting.available))
    func aFullLiveObjectMapIsCountedNeverSilent() throws {
        let fs = try AttributionTesting.Tmpfs()
        let result = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--attribution.max-live-objects", "1024",
                                                       "--duration", "3s", "--json"]) { fs.create(3000, prefix: "full") }
        #expect(result.status == 0, "\(result.error)")
        let json = try BPFTesting.json(result)
        #expect((json["not_followed"] as? Double ?? 0) >= 3000 - 1024, "\(json)")
        #expect((json["allocations"] as? Double ?? 0) >= 3000)
        let text = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--attribution.max-live-objects", "1024",
                                                     "--duration", "2s"]) { fs.create(3000, prefix: "again") }
        #expect(text.output.contains("allocations not followed (attribution.max-live-objects)"), "\(text.output)")
    }

    /// kmalloc-cg-512: a user xattr of 400 bytes on tmpfs is one
    /// simple_xattr_alloc of 512 (value and header), accounted to the memcg.
    @Test(.enabled(if: BPFTesting.available))
    func bpfKmallocSessionFiltersBySizeAndGfpClass() throws {
        let fs = try AttributionTesting.Tmpfs()
        let result = try AttributionTesting.attribute(["kmalloc-cg-512", "--source", "bpf", "--duration", "3s", "--json"]) {
            Self.createFilesWithXattrs(URL(fileURLWithPath: fs.path), count: 3000, perSecond: 100_000)
        }
        #expect(result.status == 0, "\(result.error)")
        let sites = try BPFTesting.sites(try BPFTesting.json(result))
        let xattr = try #require(sites.first { ($0["function"] as? String)?.hasPrefix("simple_xattr_alloc+") == true }, "\(sites)")
        let mine = try #require(BPFTesting.processes(xattr).first { $0["pid"] as? Double == Double(getpid()) }, "\(xattr)")
        #expect(mine["net_count"] as? Double == 3000 && mine["net_bytes"] as? Double == 3000 * 512, "\(mine)")
    }

    /// A process of its own in a cgroup of its own, and (where the memory
    /// controller is on v1, as here) in a fresh memory cgroup under
    /// /sys/fs/cgroup/memory: the sentence names the process, its cgroup
    /// and its memory cgroup, which on such a host is the only one that
    /// tells it from every other process (their cgroup2 cgroup is `/`).
    @Test(.enabled(if: BPFTesting.available && BPFTesting.cgroup2Mount() != nil))
    func bpfNamesTheAllocatingProcessItsCgroupAndItsMemoryCgroup() throws {
        let fs = try AttributionTesting.Tmpfs()
        let cgroup = try BPFTesting.Cgroup(in: try #require(BPFTesting.cgroup2Mount()), name: "slabwatch-test-\(getpid())")
        let memory = try BPFTesting.memoryV1Mount().map { try BPFTesting.Cgroup(in: $0, name: "slabwatch-test-memory-\(getpid())") }
        var child: Int32 = 0
        let result = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--duration", "3s", "--json"]) {
            let script = """
                import os
                for group in \([cgroup.path, memory?.path].compactMap { $0 }):
                    with open(group + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
                print(os.getpid(), flush=True)
                for i in range(3000): open('\(fs.path)/c%d' % i, 'w').close()
                """
            if let run = try? DaemonProcess.run("/usr/bin/python3", ["-c", script]) { child = Int32(run.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        }
        #expect(result.status == 0 && child > 0, "\(result.error)")
        let top = try #require(try BPFTesting.sites(try BPFTesting.json(result)).first { ($0["function"] as? String)?.hasPrefix("shmem_alloc_inode+") == true })
        let owner = try #require(BPFTesting.processes(top).first { $0["pid"] as? Double == Double(child) }, "\(top)")
        #expect(owner["net_count"] as? Double == 3000 && owner["cgroup"] as? String == cgroup.name, "\(owner)")
        if let memory {
            #expect(owner["memory_cgroup"] as? String == memory.name, "\(owner)")
            // The memory cgroup's id is its directory's inode in the v1 memory hierarchy, not the cgroup2 one.
            var status = stat()
            #expect(stat(memory.path, &status) == 0 && owner["memory_cgroup_id"] as? Double == Double(status.st_ino), "\(owner)")
        }
        let text = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "bpf", "--duration", "2s"]) {
            let script = """
                import os
                for group in \([cgroup.path, memory?.path].compactMap { $0 }):
                    with open(group + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
                print(os.getpid(), flush=True)
                for i in range(3000): open('\(fs.path)/d%d' % i, 'w').close()
                """
            if let run = try? DaemonProcess.run("/usr/bin/python3", ["-c", script]) { child = Int32(run.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        }
        let owners = "python3 (pid \(child)) in \(cgroup.name)" + (memory.map { ", memory cgroup \($0.name)" } ?? "")
        let sentence = try #require(text.output.split(separator: "\n").first { $0.hasPrefix("Allocated mostly by shmem_alloc_inode+") }, "\(text.output)")
        #expect(sentence.hasSuffix(", from \(owners)."), "\(sentence)")
        #expect(text.output.contains("(3,000 of 3,000) from \(owners)"), "\(text.output)")
    }

    /// Every program, map and link is a descriptor of the session's process:
    /// gone when it ends, and when it is killed.
    @Test(.enabled(if: BPFTesting.available))
    func bpfSessionsLeaveNoProgramOrMapBehind() throws {
        for signal in [SIGTERM, SIGKILL] {
            let process = Process()
            process.executableURL = DaemonProcess.binary
            process.arguments = ["attribute", "dentry", "--source", "bpf", "--duration", "60s", "--json"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while AttributionTesting.bpfLinks(process.processIdentifier) < 3 && Date() < deadline { usleep(20_000) }
            let ids = BPFTesting.objectIDs(process.processIdentifier)
            #expect(ids.programs.count >= 3 && ids.maps.count >= 6, "\(ids)")
            #expect(try BPFTesting.remaining("prog", ids.programs) == ids.programs, "bpftool sees the session's programs")
            kill(process.processIdentifier, signal)
            let out = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            if signal == SIGTERM {
                #expect(process.terminationStatus == 0 && String(decoding: out, as: UTF8.self).contains("\"stopped_by\":\"interrupted\""))
            }
            let left = try BPFTesting.waitUntilGone(ids)
            #expect(left.programs.isEmpty && left.maps.isEmpty, "after \(signal == SIGKILL ? "SIGKILL" : "SIGTERM"): \(left)")
        }
    }

    /// No BTF: the session traces with tracefs and says why in one line;
    /// forced to BPF it fails with that line. Without privileges bpf(2) is refused.
    @Test(.enabled(if: BPFTesting.available))
    func missingBTFFallsBackToTracefsAndSaysSo() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)  // to see whether the kernel has hist triggers
        defer { withExtendedLifetime(tracefs) {} }
        let fallback = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--attribution.btf", "/nonexistent/vmlinux",
                                                                         "--duration", "500ms", "--json"])
        #expect(fallback.status == 0, "\(fallback.error)")
        let json = try BPFTesting.json(fallback)
        // Each better path that could not run, and why: BPF, then a hist trigger where the kernel has none (this one).
        let histTriggers = access("\(AttributionTesting.tracing)/events/kmem/kmem_cache_alloc/hist", F_OK) == 0
        #expect(json["source"] as? String == (histTriggers ? "hist" : "trace"), "\(json)")
        #expect(json["fallback"] as? String == "bpf unavailable: /nonexistent/vmlinux missing (a kernel without CONFIG_DEBUG_INFO_BTF); "
                + (histTriggers ? "traced with a tracefs hist trigger" : "hist unavailable: this kernel has no hist triggers (CONFIG_HIST_TRIGGERS); traced with tracefs"),
                "\(json)")
        let text = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--attribution.btf", "/nonexistent/vmlinux", "--duration", "200ms"])
        #expect(text.status == 0 && text.output.contains("(bpf unavailable: /nonexistent/vmlinux missing"), "\(text.output)")
        let forced = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--source", "bpf", "--attribution.btf", "/nonexistent/vmlinux"])
        #expect(forced.status == 4 && forced.error.split(separator: "\n").count == 1 && forced.error.contains("/nonexistent/vmlinux missing"), "\(forced.error)")
        let unprivileged = try DaemonProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                                     DaemonProcess.binary.path, "attribute", "dentry", "--source", "bpf", "--duration", "1s"])
        #expect(unprivileged.status == 5 && unprivileged.error.contains("CAP_BPF and CAP_PERFMON"), "\(unprivileged.error)")
        #expect(AttributionTesting.slabwatchInstances().isEmpty)
    }

    /// libbpf is loaded when a session starts, never by linking: an idle
    /// daemon's memory map does not have it.
    @Test func libbpfIsNeitherLinkedNorMappedByAnIdleDaemon() throws {
        let needed = try DaemonProcess.run("/usr/bin/readelf", ["-d", DaemonProcess.binary.path]).output
        #expect(needed.contains("(NEEDED)") && !needed.contains("libbpf"), "\(needed)")
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments)
        #expect(try daemon.get("/metrics").status == 200)
        let maps = try DaemonProcess.run("/bin/cat", ["/proc/\(daemon.pid)/maps"]).output
        #expect(maps.contains("libc.so") && !maps.contains("libbpf"))
    }
}
