import Foundation
import Glibc
import Testing
import TestSupport

/// What the attribution tests share: a tmpfs of their own, the session
/// started around a workload, and the kernel's own view of the call site.
enum AttributionTesting {
    static let tracing = "/sys/kernel/tracing"

    /// A tmpfs of our own, unmounted and removed when released.
    final class Tmpfs: Sendable {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-attr-\(UUID().uuidString)").path

        init() throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard mount("none", path, "tmpfs", 0, nil) == 0 else { throw DaemonProcess.Failure(message: "mount tmpfs: errno \(errno)") }
        }

        deinit {
            umount2(path, Int32(MNT_DETACH))
            rmdir(path)
        }

        /// Creates `count` files (each a new shmem inode), optionally removing each at once.
        func create(_ count: Int, prefix: String, removeEach: Bool = false) {
            for i in 0..<count {
                let file = "\(path)/\(prefix)\(i)"
                let fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
                if fd >= 0 { close(fd) }
                if removeEach { unlink(file) }
            }
        }
    }

    /// Leaves tracefs as the test found it. With `mount`, mounts it where it
    /// is absent (a test reading the kernel's own trace needs it); either way,
    /// unmounts at the end what was not mounted before — also what a session
    /// killed with SIGKILL mounted and could not unmount.
    final class TracefsAsFound {
        let wasMounted = access("\(tracing)/instances", F_OK) == 0

        init(mount: Bool = false) throws {
            guard mount && !wasMounted else { return }
            guard Glibc.mount("nodev", tracing, "tracefs", 0, nil) == 0 else {
                throw DaemonProcess.Failure(message: "mount tracefs: errno \(errno)")
            }
        }

        deinit {
            if !wasMounted && access("\(tracing)/instances", F_OK) == 0 { umount2(tracing, Int32(MNT_DETACH)) }
        }
    }

    /// A mount namespace of the test's own where tracefs is not mounted (as
    /// on a machine that never mounted it), held by a sleeping process, so
    /// that what a session mounts in it stays to be seen after the session
    /// ends. The host's mounts are not touched; the namespace goes with its holder.
    final class NamespaceWithoutTracefs {
        let holder = Process()

        init() throws {
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            // Every tracefs mount goes, wherever it is: another tool on the
            // machine may have one of its own (in /tmp, say), and the copy
            // of the host's mounts would have it too.
            // (sleep: a bound for a test that hangs; the holder is stopped when released.)
            holder.arguments = ["--mount", "--propagation", "private", "sh", "-c",
                                "for target in $(grep ' - tracefs ' /proc/self/mountinfo | cut -d' ' -f5); do umount -l \"$target\"; done 2>/dev/null; "
                                + "umount -l /sys/kernel/debug 2>/dev/null; exec sleep 900"]
            try holder.run()
            let deadline = Date().addingTimeInterval(10)
            while (try? String(contentsOfFile: "/proc/\(holder.processIdentifier)/comm", encoding: .utf8)) != "sleep\n" {
                guard Date() < deadline, holder.isRunning else { throw DaemonProcess.Failure(message: "the namespace's holder did not start") }
                usleep(10_000)
            }
        }

        deinit {
            holder.terminate()
            holder.waitUntilExit()
        }

        /// The namespace's tracefs mounts, as its mount table lists them.
        func tracefsMounts() throws -> [String] {
            try String(contentsOfFile: "/proc/\(holder.processIdentifier)/mountinfo", encoding: .utf8)
                .split(separator: "\n").filter { $0.contains(" - tracefs ") }.map(String.init)
        }

        /// `slabwatch attribute` started in the namespace (nsenter execs it: the pid is the session's).
        func attribute(_ arguments: [String]) throws -> Session {
            try Session(executable: "/usr/bin/nsenter",
                        ["--target", "\(holder.processIdentifier)", "--mount", "--", DaemonProcess.binary.path, "attribute"] + arguments)
        }
    }

    /// A process whose output is read when it has exited.
    final class Session {
        let process = Process()
        private let output = Pipe(), error = Pipe()

        init(executable: String = DaemonProcess.binary.path, _ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardOutput = output
            process.standardError = error
            try process.run()
        }

        var pid: Int32 { process.processIdentifier }

        func wait() -> DaemonProcess.RunResult {
            let out = output.fileHandleForReading.readDataToEndOfFile(), err = error.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return .init(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self), error: String(decoding: err, as: UTF8.self))
        }
    }

    /// The tracefs instance of a session's process, once it has made it.
    static func instance(of pid: Int32) throws -> String {
        let deadline = Date().addingTimeInterval(20)  // only a hung session takes this long
        while Date() < deadline {
            if let name = heldInstance(pid) { return name }
            usleep(20_000)
        }
        throw DaemonProcess.Failure(message: "no tracefs instance of process \(pid)")
    }

    /// The instance whose `free_buffer` process `pid` holds open, as every
    /// session holds its own while it runs: the owner, whatever the instance
    /// is called and whichever namespaces the process is in.
    static func heldInstance(_ pid: Int32) -> String? {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)") else { continue }
            let parts = target.split(separator: "/")
            if parts.count >= 3, parts[parts.count - 1] == "free_buffer", parts[parts.count - 3] == "instances" {
                return String(parts[parts.count - 2])
            }
        }
        return nil
    }

    /// Waits until the session of `instance` traces: its events on, then its
    /// tracing (a new instance's `tracing_on` is 1 until the session turns it
    /// off to set it up, and the events are enabled only after that).
    static func waitUntilTracing(_ instance: String) throws {
        let deadline = Date().addingTimeInterval(20)  // only a hung session takes this long
        while !isTracing(instance) {
            guard Date() < deadline else { throw DaemonProcess.Failure(message: "\(instance) did not start tracing") }
            usleep(20_000)
        }
    }

    /// Every session enables kmem_cache_alloc ("1*" with its stack trigger);
    /// a sweep that turned the instance off leaves "0".
    static func isTracing(_ instance: String) -> Bool {
        control(instance, "events/kmem/kmem_cache_alloc/enable").hasPrefix("1") && control(instance, "tracing_on") == "1"
    }

    /// A control file of an instance, without its newline ("" when it cannot be read).
    static func control(_ instance: String, _ file: String) -> String {
        ((try? String(contentsOfFile: "\(tracing)/instances/\(instance)/\(file)", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// BPF links the process holds: its programs are attached once it has them.
    static func bpfLinks(_ pid: Int32) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == "anon_inode:bpf_link" }.count
    }

    static func slabwatchInstances() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(tracing)/instances")) ?? []).filter { $0.hasPrefix("slabwatch-") }
    }

    /// Starts `slabwatch attribute`, runs `workload` once its session traces
    /// (its tracefs instance is there, or its BPF programs are attached: three
    /// for a cache, two for the allocations above every cache), returns its result.
    static func attribute(_ arguments: [String], bpfPrograms: Int = 3, started: (Int32) -> Void = { _ in },
                          whileRunning workload: () -> Void) throws -> DaemonProcess.RunResult {
        // A session's own tracefs is seen by no one: the test looks through a mount of its own.
        let tracefs = try TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let process = Process()
        process.executableURL = DaemonProcess.binary
        process.arguments = ["attribute"] + arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let pid = process.processIdentifier
        started(pid)
        let deadline = Date().addingTimeInterval(20)  // only a session that never starts takes this long
        while heldInstance(pid) == nil && bpfLinks(pid) < bpfPrograms && process.isRunning {
            guard Date() < deadline else {
                process.terminate()
                throw DaemonProcess.Failure(message: "the session of process \(pid) did not start tracing")
            }
            usleep(20_000)
        }
        usleep(300_000)  // events enabled after the instance appears (the last link after the third)
        workload()
        let out = output.fileHandleForReading.readDataToEndOfFile(), err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return .init(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self), error: String(decoding: err, as: UTF8.self))
    }

    /// The call site the kernel itself prints for a shmem inode allocation, in
    /// an instance of the test's own (not slabwatch's code).
    static func kernelsOwnCallSite(_ fs: Tmpfs) throws -> String {
        let instance = "\(tracing)/instances/test-attr-\(getpid())"
        try FileManager.default.createDirectory(atPath: instance, withIntermediateDirectories: false)
        defer {
            try? "0".write(toFile: "\(instance)/events/kmem/kmem_cache_alloc/enable", atomically: false, encoding: .utf8)
            rmdir(instance)
        }
        try "name == \"shmem_inode_cache\"".write(toFile: "\(instance)/events/kmem/kmem_cache_alloc/filter", atomically: false, encoding: .utf8)
        try "1".write(toFile: "\(instance)/events/kmem/kmem_cache_alloc/enable", atomically: false, encoding: .utf8)
        fs.create(3, prefix: "probe")
        let trace = try String(contentsOfFile: "\(instance)/trace", encoding: .utf8)
        let line = try #require(trace.split(separator: "\n").first { $0.contains("kmem_cache_alloc:") })
        let field = try #require(line.split(separator: " ").first { $0.hasPrefix("call_site=") })
        return String(field.dropFirst("call_site=".count).prefix { $0 != "/" })  // shmem_alloc_inode+0x1d
    }
}

/// `slabwatch attribute` and the daemon's attribution on the live kernel
/// (root): tmpfs files grow shmem_inode_cache, whose allocating function the
/// kernel's own trace names. Part of the serialized end-to-end suite: their
/// tmpfs inodes come and go, which the live detector test must not see.
extension EndToEndTests {
    @Test func growthIsAttributedToTheKernelsOwnCallSite() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let fs = try AttributionTesting.Tmpfs()
        let expected = try AttributionTesting.kernelsOwnCallSite(fs)
        let result = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "trace", "--duration", "3s", "--json"]) {
            fs.create(2000, prefix: "grow")
        }
        #expect(result.status == 0, "\(result.error)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let sites = try #require(json["call_sites"] as? [[String: Any]])
        let top = try #require(sites.first)
        #expect(top["function"] as? String == expected, "\(top)")
        #expect(top["module"] is NSNull)
        #expect((top["net_count"] as? Double ?? 0) >= 1900, "\(top)")
        #expect((top["net_bytes"] as? Double ?? 0) >= 1900 * 700)
        #expect((top["share"] as? Double ?? 0) > 0.99)
        let stack = try #require((top["stacks"] as? [[String: Any]])?.first?["frames"] as? [String])
        #expect(stack.first == expected && stack.contains { $0.hasPrefix("shmem_mknod+") }, "\(stack)")
        #expect(json["dropped"] as? Double == 0 && json["stopped_by"] as? String == "duration")
        #expect(AttributionTesting.slabwatchInstances().isEmpty)
    }

    @Test func churnNetsToAboutZero() throws {
        let fs = try AttributionTesting.Tmpfs()
        let result = try AttributionTesting.attribute(["shmem_inode_cache", "--source", "trace", "--duration", "3s", "--json"]) {
            fs.create(1500, prefix: "churn", removeEach: true)
            usleep(1_000_000)  // inode frees wait for an RCU grace period
        }
        #expect(result.status == 0, "\(result.error)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let top = try #require((json["call_sites"] as? [[String: Any]])?.first)
        let allocations = top["allocations"] as? Double ?? 0, net = top["net_count"] as? Double ?? .infinity
        #expect(allocations >= 1400, "\(top)")
        #expect(net <= allocations * 0.05, "churn must net to about zero: \(top)")
    }

    @Test func killedSessionsLeaveNoInstanceBehind() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)  // to see the instances
        defer { withExtendedLifetime(tracefs) {} }
        // SIGTERM: the session stops early, reports, and removes its instance.
        let process = Process()
        process.executableURL = DaemonProcess.binary
        process.arguments = ["attribute", "dentry", "--source", "trace", "--duration", "60s", "--json"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        while AttributionTesting.slabwatchInstances().isEmpty { usleep(20_000) }
        process.terminate()
        let report = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // The session says itself that SIGTERM ended it, before its 60 s: no clock in the test.
        let json = try #require(try JSONSerialization.jsonObject(with: report) as? [String: Any])
        #expect(json["stopped_by"] as? String == "interrupted", "\(json)")
        #expect((json["window_seconds"] as? Double ?? .infinity) < 60, "\(json)")
        #expect(AttributionTesting.slabwatchInstances().isEmpty)

        // SIGKILL leaves it; the next session removes it and says so.
        let killed = Process()
        killed.executableURL = DaemonProcess.binary
        killed.arguments = ["attribute", "dentry", "--source", "trace", "--duration", "60s"]
        killed.standardOutput = FileHandle.nullDevice
        killed.standardError = FileHandle.nullDevice
        try killed.run()
        while AttributionTesting.slabwatchInstances().isEmpty { usleep(20_000) }
        kill(killed.processIdentifier, SIGKILL)
        killed.waitUntilExit()
        let left = AttributionTesting.slabwatchInstances()
        #expect(left.count == 1)
        // Its free_buffer closed with it: the kernel stopped its tracing and shrank its buffer.
        #expect(AttributionTesting.control(left.first ?? "?", "tracing_on") == "0")
        #expect((Int(AttributionTesting.control(left.first ?? "?", "buffer_size_kb")) ?? .max) < 64,
                "\(AttributionTesting.control(left.first ?? "?", "buffer_size_kb")) KiB per CPU left")
        let next = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--source", "trace", "--duration", "200ms"])
        #expect(next.status == 0 && next.error.contains("removed tracefs instances") && next.error.contains(left.first ?? "?"), "\(next.error)")
        #expect(AttributionTesting.slabwatchInstances().isEmpty)
    }

    /// The issue's repro, where tracefs is not mounted: a kmalloc session,
    /// and a second session that outlives it. Each traces in tracefs of its
    /// own (a mount in no mount table), so the first one's end pulls nothing
    /// from under the second: both remove their instances and exit 0, and
    /// no mount is left.
    @Test func overlappingSessionsEachRemoveTheirOwnInstance() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)  // the test's own view of the instances
        defer { withExtendedLifetime(tracefs) {} }
        let namespace = try AttributionTesting.NamespaceWithoutTracefs()
        #expect(try namespace.tracefsMounts().isEmpty)
        let first = try namespace.attribute(["kmalloc-cg-512", "--duration", "4s", "--source", "trace"])
        let firstInstance = try AttributionTesting.instance(of: first.pid)
        // The second runs until told to stop: it is still tracing when the first ends.
        let second = try namespace.attribute(["dentry", "--duration", "120s", "--source", "trace"])
        let secondInstance = try AttributionTesting.instance(of: second.pid)
        #expect(try namespace.tracefsMounts().isEmpty, "a session's own tracefs is in no mount table")
        let firstResult = first.wait()
        #expect(firstResult.status == 0, "\(firstResult.error)")
        #expect(!AttributionTesting.slabwatchInstances().contains(firstInstance))
        #expect(AttributionTesting.control(secondInstance, "tracing_on") == "1", "the second still traces")
        kill(second.pid, SIGINT)
        let secondResult = second.wait()
        #expect(secondResult.status == 0 && secondResult.output.contains("stopped by interrupted"), "\(secondResult.error)")
        #expect(!AttributionTesting.slabwatchInstances().contains(secondInstance))
        #expect(try namespace.tracefsMounts().isEmpty)
    }

    /// SIGKILL: the session's tracefs mount goes with its descriptor, and the
    /// instance it leaves records nothing (its free_buffer closed).
    @Test func aKilledSessionLeavesNoMount() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let namespace = try AttributionTesting.NamespaceWithoutTracefs()
        let session = try namespace.attribute(["kmalloc-cg-512", "--duration", "120s", "--source", "trace"])
        let instance = try AttributionTesting.instance(of: session.pid)
        #expect(try namespace.tracefsMounts().isEmpty)
        kill(session.pid, SIGKILL)
        _ = session.wait()
        #expect(try namespace.tracefsMounts().isEmpty, "nothing mounted is left by a killed session")
        #expect(AttributionTesting.control(instance, "tracing_on") == "0")
        let next = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--source", "trace", "--duration", "200ms"])
        #expect(next.status == 0 && next.error.contains(instance), "\(next.error)")
        #expect(!AttributionTesting.slabwatchInstances().contains(instance))
    }

    /// An instance the kernel will not remove (a file of it held open): the
    /// session still prints what it found, turns every event off, says what
    /// it left, and exits 1.
    @Test func aSessionThatCannotRemoveItsInstanceSaysSoAndFails() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let session = try AttributionTesting.Session(["attribute", "kmalloc-cg-512", "--duration", "1s", "--source", "trace"])
        let instance = try AttributionTesting.instance(of: session.pid)
        let held = open("\(AttributionTesting.tracing)/instances/\(instance)/tracing_on", O_RDONLY | O_CLOEXEC)
        #expect(held >= 0)
        let result = session.wait()
        #expect(result.status == 1, "\(result.output)\n\(result.error)")
        #expect(result.output.hasPrefix("kmalloc-cg-512: "), "what it found is still printed: \(result.output)")
        #expect(result.error.contains("tracefs instance \(instance): could not be removed"), "\(result.error)")
        for event in ["kmem_cache_alloc", "kmem_cache_free", "kmalloc", "kfree"] {
            #expect(AttributionTesting.control(instance, "events/kmem/\(event)/enable") == "0", "\(event) left on")
        }
        #expect(AttributionTesting.control(instance, "tracing_on") == "0")
        close(held)
        #expect(rmdir("\(AttributionTesting.tracing)/instances/\(instance)") == 0)
    }

    @Test func badInputGetsOneLineAndItsExitCode() throws {
        let unknown = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "no_such_cache"])
        #expect(unknown.status == 2 && unknown.error.split(separator: "\n").count == 1 && unknown.error.contains("no slab cache named"))
        let unprivileged = try DaemonProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                                     DaemonProcess.binary.path, "attribute", "dentry", "--duration", "1s"])
        #expect(unprivileged.status == 5 && unprivileged.error.contains("root"), "\(unprivileged.error)")
        // Nothing under /sys/kernel (no tracefs mount point, no BTF), as a private
        // mount namespace shows it: the session traces in tracefs of its own.
        let bare = try DaemonProcess.run("/usr/bin/unshare", ["-m", "sh", "-c",
                                                              "mount -t tmpfs none /sys/kernel && exec \(DaemonProcess.binary.path) attribute dentry --duration 1s --json"])
        #expect(bare.status == 0 && bare.output.contains("\"source\":\"trace\""), "\(bare.error)")
        let badDuration = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--duration", "forever"])
        #expect(badDuration.status == 2)
    }

    /// `--source hist` runs a hist trigger or nothing: on a kernel without
    /// them (this one) it is exit 4 and one line, never a silent stream.
    @Test func forcedHistRunsOnlyWhereTheKernelHasHistTriggers() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)
        defer { withExtendedLifetime(tracefs) {} }
        let histTriggers = access("\(AttributionTesting.tracing)/events/kmem/kmem_cache_alloc/hist", F_OK) == 0
        let forced = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--source", "hist", "--duration", "500ms", "--json"])
        if histTriggers {
            #expect(forced.status == 0 && forced.output.contains("\"source\":\"hist\""), "\(forced.output)\n\(forced.error)")
        } else {
            #expect(forced.status == 4 && forced.output.isEmpty, "\(forced.output)")
            #expect(forced.error == "slabwatch: --source hist: this kernel has no hist triggers (CONFIG_HIST_TRIGGERS)\n", "\(forced.error)")
        }
        let unprivileged = try DaemonProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                                     DaemonProcess.binary.path, "attribute", "dentry", "--source", "hist", "--duration", "1s"])
        #expect(unprivileged.status == 5 && unprivileged.error.split(separator: "\n").count == 1, "\(unprivileged.error)")
        let both = try DaemonProcess.run(DaemonProcess.binary.path, ["attribute", "dentry", "--source", "hist", "--stream"])
        #expect(both.status == 2 && both.error.contains("--stream is --source trace"), "\(both.error)")
        #expect(AttributionTesting.slabwatchInstances().isEmpty)
    }

    /// The daemon with `attribution.enabled`: the finding that opens on
    /// shmem_inode_cache gets its attribution, the sentence names the call
    /// site, and an `attributed` alert carries it.
    @Test func daemonAttributesAFindingItOpens() throws {
        let tracefs = try AttributionTesting.TracefsAsFound(mount: true)  // to see that no instance is left
        defer { withExtendedLifetime(tracefs) {} }
        let fs = try AttributionTesting.Tmpfs()
        let detector = ["--detector.windows", "20s", "--detector.min-growth-bytes", "8MiB", "--detector.min-driver-change", "5000",
                        "--detector.open-after", "2", "--alerts.journal-socket", "/nonexistent/journal-socket"]
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "250ms", "--attribution.enabled", "true",
                                                   "--attribution.duration", "2s"] + detector)
        usleep(2_000_000)  // a quiet baseline
        let directory = URL(fileURLWithPath: fs.path)
        let writer = Thread { Self.createFiles(directory, count: 80_000, perSecond: 5000) }
        writer.start()
        try daemon.waitFor("the finding's attribution", timeout: 60) {
            try Self.detectorFinding(daemon, "shmem_inode_cache")?["attribution"] is [String: Any]
        }
        let finding = try #require(try Self.detectorFinding(daemon, "shmem_inode_cache"))
        let attribution = try #require(finding["attribution"] as? [String: Any])
        let top = try #require((attribution["call_sites"] as? [[String: Any]])?.first)
        #expect((top["function"] as? String)?.hasPrefix("shmem_alloc_inode+") == true, "\(top)")
        #expect((top["net_count"] as? Double ?? 0) > 1000, "\(top)")
        #expect((finding["message"] as? String)?.contains("Allocated mostly by shmem_alloc_inode+") == true)
        // Where the kernel has BPF and BTF (this one), the daemon's session is the BPF one, and names who allocates.
        if BPFTesting.available {
            #expect(attribution["source"] as? String == "bpf" && attribution["fallback"] is NSNull, "\(attribution)")
            let writerProcess = (top["processes"] as? [[String: Any]])?.first { $0["pid"] as? Double == Double(getpid()) }
            #expect((writerProcess?["net_count"] as? Double ?? 0) > 1000, "\(top)")
            #expect((finding["message"] as? String)?.contains(" (pid \(getpid())) in /") == true, "\(finding["message"] ?? "")")
            let maps = try DaemonProcess.run("/bin/cat", ["/proc/\(daemon.pid)/maps"]).output
            #expect(maps.contains("libbpf.so.1"), "loaded when the session started")
        }
        try daemon.waitFor("the attributed alert") {
            daemon.log.contains("message_id=ecfc041e121a42ac9decc0aa0fcfb3c1") && daemon.log.contains("slabwatch_call_site=shmem_alloc_inode+")
        }
        #expect(daemon.log.contains("slabwatch_module=vmlinux"))
        while writer.isExecuting { usleep(100_000) }
        #expect(daemon.terminate().status == 0)
        #expect(AttributionTesting.slabwatchInstances().isEmpty)
    }

    /// Two findings that open close together (tmpfs files with 400-byte
    /// xattrs grow shmem_inode_cache and kmalloc-cg-512): the second opens
    /// while the first one's session runs, waits, and is attributed when it
    /// ends — to the xattr's own allocation.
    @Test func aFindingThatOpensDuringASessionIsAttributedAfterIt() throws {
        let fs = try AttributionTesting.Tmpfs()
        let detector = ["--detector.windows", "20s", "--detector.min-growth-bytes", "8MiB", "--detector.min-driver-change", "5000",
                        "--detector.open-after", "2", "--alerts.journal-socket", "/nonexistent/journal-socket"]
        // Sessions long enough that the second finding opens during the first.
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "250ms", "--attribution.enabled", "true",
                                                   "--attribution.duration", "5s"] + detector)
        usleep(2_000_000)  // a quiet baseline
        let directory = URL(fileURLWithPath: fs.path)
        let writer = Thread { Self.createFilesWithXattrs(directory, count: 100_000, perSecond: 4000) }
        writer.start()
        defer { while writer.isExecuting { usleep(100_000) } }
        try daemon.waitFor("both findings attributed", timeout: 120) {
            try ["shmem_inode_cache", "kmalloc-cg-512"].allSatisfy { try Self.detectorFinding(daemon, $0)?["attribution"] is [String: Any] }
        }
        let xattr = try #require(try Self.detectorFinding(daemon, "kmalloc-cg-512")?["attribution"] as? [String: Any])
        let sites = try #require(xattr["call_sites"] as? [[String: Any]])
        #expect(sites.contains { ($0["function"] as? String)?.hasPrefix("simple_xattr_alloc+") == true }, "\(sites)")
        #expect(daemon.terminate().status == 0)
    }

    /// A kernel with /proc/allocinfo (a fake procfs here: this one has none):
    /// the daemon attributes without tracing, and without attribution.enabled.
    @Test func daemonReadsAllocInfoWhereTheKernelHasIt() throws {
        let story = try SeedStoryPlayer()
        defer { story.stop() }
        let allocinfo = story.root.url.appendingPathComponent("proc/allocinfo")
        let grower = Thread {
            var bytes = 0
            while !story.isStopped {
                bytes += 32 * 1000
                try? replaceFile(allocinfo, with: """
                    allocinfo - version: 1.0
                    #     <size>  <calls> <tag info>
                           65536       64 fs/seq_file.c:84 func:seq_open
                    \(String(repeating: " ", count: 12 - String(bytes).count))\(bytes) \(bytes / 32) fs/foo/inode.c:42 [foo] func:foo_attach_inode

                    """)
                usleep(100_000)
            }
        }
        grower.start()
        let daemon = try DaemonProcess(arguments: story.root.arguments + ["--sampler.interval", "100ms", "--attribution.duration", "1s"]
                                       + Self.quickDetector)
        try daemon.waitFor("the finding's allocinfo attribution", timeout: 60) {
            try Self.detectorFinding(daemon, "kmalloc-32")?["attribution"] is [String: Any]
        }
        let finding = try #require(try Self.detectorFinding(daemon, "kmalloc-32"))
        let attribution = try #require(finding["attribution"] as? [String: Any])
        #expect(attribution["source"] as? String == "allocinfo")
        let top = try #require((attribution["call_sites"] as? [[String: Any]])?.first)
        #expect(top["function"] as? String == "foo_attach_inode (fs/foo/inode.c:42)" && top["module"] as? String == "foo", "\(top)")
        #expect((finding["message"] as? String)?.contains("Meanwhile /proc/allocinfo grew most at foo_attach_inode (fs/foo/inode.c:42) [foo]") == true)
        #expect(AttributionTesting.slabwatchInstances().isEmpty, "no tracing for allocinfo")
    }
}
