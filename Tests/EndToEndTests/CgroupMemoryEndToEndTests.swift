import Foundation
import Glibc
import Testing

/// Kernel memory per memory cgroup on the live kernel's v1 memory controller:
/// two cgroups of the test's own side by side, one making tmpfs files with
/// 400-byte user xattrs (the seed's growth), one making empty ext4 files. The
/// daemon's `slabwatch_cgroup_kernel_memory_bytes` for each must be what the
/// kernel's own `memory.kmem.usage_in_bytes` says. Part of the serialized
/// end-to-end suite: it mounts a tmpfs, makes cgroups and moves slab.
extension EndToEndTests {
    @Test(.enabled(if: getuid() == 0 && BPFTesting.memoryV1Mount() != nil, "root, and the memory controller on cgroup v1"))
    func liveCgroupsAreChargedWhatTheKernelSays() throws {
        let hierarchy = try #require(BPFTesting.memoryV1Mount())
        let parentName = "slabwatch-test-\(UUID().uuidString.prefix(8))"
        var parent: BPFTesting.Cgroup? = try BPFTesting.Cgroup(in: hierarchy, name: parentName)
        var cgroups: [BPFTesting.Cgroup] = try ["xattrs", "ext4"].map { try BPFTesting.Cgroup(in: hierarchy + "/" + parentName, name: $0) }
        let tmpfs = try AttributionTesting.Tmpfs()
        let ext4Directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-cg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: ext4Directory, withIntermediateDirectories: true)
        var makers: [FileMaker] = []
        defer {
            // In order: the processes and their files, then the cgroups (emptied), leaves before their parent.
            makers.forEach { $0.stop(); $0.removeFiles() }
            try? FileManager.default.removeItem(atPath: ext4Directory)
            cgroups = []
            withExtendedLifetime(parent) {}; parent = nil  // removed here, after the cgroups inside it
            #expect(access("\(hierarchy)/\(parentName)", F_OK) != 0, "the test's cgroups are gone")
        }
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "250ms"])
        makers = [try FileMaker(cgroup: cgroups[0].path, directory: tmpfs.path, xattr: true),
                  try FileMaker(cgroup: cgroups[1].path, directory: ext4Directory, xattr: false)]
        for maker in makers { try maker.waitUntilDone() }

        for cgroup in cgroups {
            let name = "/\(parentName)\(cgroup.name)"
            let charged = try Self.kmemUsage(cgroup.path)
            #expect(charged > 20_000 * 1_000, "\(name): the kernel charged \(charged) B for 20,000 files")
            // The daemon walks the cgroups every 12 samples: wait for a walk after the files were made.
            let key = "slabwatch_cgroup_kernel_memory_bytes{cgroup=\"\(name)\",container_id=\"\",pod_uid=\"\",unit=\"\"}"
            try daemon.waitFor("\(name) in /metrics within 2 % of the \(charged) B the kernel charged", timeout: 20) {
                let seen = samples((try? daemon.get("/metrics").body) ?? "")[key]
                return seen.map { abs($0 - Double(charged)) / Double(charged) < 0.02 } ?? false
            }
        }
        let metrics = try daemon.get("/metrics").body
        #expect(try DaemonProcess.run(Paths.promtool, ["check", "metrics"], input: Data(metrics.utf8)).status == 0)
        #expect(daemon.terminate().status == 0)
        withExtendedLifetime(tmpfs) {}
    }

    /// A `path.cgroupfs` with no memory hierarchy under it (the node's tree
    /// not mounted where the manifest says) is said in the log, once, and the
    /// daemon serves everything else.
    @Test func aCgroupfsWithoutAMemoryHierarchyIsSaid() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-cgroupfs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "250ms", "--path.cgroupfs", empty])
        try daemon.waitForSamples(3)
        let metrics = samples(try daemon.get("/metrics").body)
        #expect(metrics["slabwatch_source_up{source=\"slabinfo\"}"] == 1 && metrics["slabwatch_cgroups{state=\"exported\"}"] == nil)
        #expect(daemon.terminate().status == 0)
        let said = daemon.log.split(separator: "\n").filter { $0.contains("no memory cgroup hierarchy under path.cgroupfs") }
        #expect(said.count == 1 && said.first?.contains(empty) == true, "\(daemon.log)")
    }

    static func kmemUsage(_ cgroup: String) throws -> UInt64 {
        try #require(UInt64(try String(contentsOfFile: "\(cgroup)/memory.kmem.usage_in_bytes", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
    }

}

/// A process that joins a memory cgroup, makes 20,000 files (with a 400-byte
/// user xattr each on tmpfs), says "done" and waits to be stopped.
final class FileMaker {
    private let process = Process()
    private let output = Pipe()
    let directory: String

    init(cgroup: String, directory: String, xattr: Bool) throws {
        self.directory = directory
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import os, sys, time
            cgroup, d, xattr = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
            with open(cgroup + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
            for i in range(20000):
                p = os.path.join(d, 'f%d' % i)
                open(p, 'w').close()
                if xattr: os.setxattr(p, 'user.test', b'x' * 400)
            print('done', flush=True)
            time.sleep(3600)
            """, cgroup, directory, xattr ? "1" : "0"]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func waitUntilDone() throws {
        let line = output.fileHandleForReading.availableData
        try #require(String(decoding: line, as: UTF8.self).contains("done"), "the file maker did not finish")
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func removeFiles() {
        for i in 0..<20_000 { unlink("\(directory)/f\(i)") }
    }
}
