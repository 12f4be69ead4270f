import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// The memory cgroup reader at the scale of a busy Kubernetes node, on
/// cgroup v2 trees written as the kubelet's systemd driver and containerd
/// name them (`CgroupTrees`): its bounds hold, each leaf is read once, the
/// interior cgroups (slices, pods) are not read, so nothing is counted twice in
/// `other`, and the owners reach /metrics and /snapshot.
struct KubeletCgroupTreeTests {
    /// 110 pods × 3 containers and 60 services: 390 leaves below 115 interior
    /// cgroups (`kubepods.slice`, two QoS slices, 110 pods, `system.slice`).
    @Test func aBusyNodesLeavesAreEachReadOnceAndTheRestSummedExactly() throws {
        let dir = try TemporaryDirectory()
        let leaves = try CgroupTrees.kubeletNode(at: dir.path("cgroup"))
        let memory = CgroupMemoryReader(root: dir.path("cgroup"), version: .v2, limit: 50).read()
        #expect(memory.entries.count == 50 && memory.others == leaves.count - 50 && memory.unreadable == 0 && !memory.truncated)
        let largest = leaves.sorted { $0.charge.kernel > $1.charge.kernel }.prefix(50)
        #expect(memory.entries.map(\.path) == largest.map(\.path))
        #expect(memory.entries.contains { $0.path.contains("/kubepods.slice/") } && memory.entries.contains { $0.path.hasPrefix("/system.slice/") })
        // Every leaf once, no interior cgroup: the exported and other add up to
        // the kernel's own hierarchical totals of the two top-level slices.
        let exported = memory.entries.reduce(UInt64(0)) { $0 + $1.kernelBytes }
        let topLevel = try ["kubepods.slice", "system.slice"].map { try Self.kernel(dir.path("cgroup/\($0)/memory.stat")) }.reduce(0, +)
        #expect(exported + memory.otherKernelBytes == topLevel)
        #expect(leaves.reduce(0) { $0 + $1.charge.kernel } == topLevel)
        let entry = try #require(memory.entries.first)
        let leaf = try #require(leaves.first { $0.path == entry.path })
        #expect(entry.slabReclaimableBytes == leaf.charge.slabReclaimable && entry.slabUnreclaimableBytes == leaf.charge.slabUnreclaimable)
    }

    /// /metrics: each exported cgroup with the pod UID and container id (or
    /// unit) its path names, `other` the rest, and promtool finds nothing to
    /// say; /snapshot: the same owners, and the pods' QoS classes.
    @Test func ownersReachMetricsAndSnapshot() throws {
        let dir = try TemporaryDirectory()
        let leaves = try CgroupTrees.kubeletNode(at: dir.path("cgroup"))
        var sample = Sample(timestampMilliseconds: 1_700_000_000_000)
        sample.cgroupMemory = CgroupMemoryReader(root: dir.path("cgroup"), version: .v2, limit: 50).read()
        let memory = try #require(sample.cgroupMemory)
        let metrics = String(decoding: MetricsRenderer.render(.init(sample: sample, exportedCaches: [], version: "t", report: .init(findings: []),
                                                                    own: SelfStatistics())), as: UTF8.self)
        for entry in memory.entries {
            let leaf = try #require(leaves.first { $0.path == entry.path })
            let line = "slabwatch_cgroup_kernel_memory_bytes{cgroup=\"\(leaf.path)\",container_id=\"\(leaf.containerID ?? "")\","
                + "pod_uid=\"\(leaf.podUID ?? "")\",unit=\"\(leaf.unit ?? "")\"} \(leaf.charge.kernel)\n"
            #expect(metrics.contains(line), "\(line)")
        }
        #expect(metrics.contains("slabwatch_cgroup_kernel_memory_bytes{cgroup=\"other\",container_id=\"\",pod_uid=\"\",unit=\"\"} \(memory.otherKernelBytes)\n"))
        #expect(metrics.contains("slabwatch_cgroups{state=\"other\"} 340\n"))
        #expect(try Self.promtool(metrics).isEmpty)

        let snapshot = try #require(try JSONSerialization.jsonObject(with: Data(SnapshotRenderer.render(sample, intervalSeconds: 5))) as? [String: Any])
        let exported = try #require((snapshot["cgroups"] as? [String: Any])?["exported"] as? [[String: Any]])
        #expect(exported.count == 50)
        for object in exported {
            let leaf = try #require(leaves.first { $0.path == object["cgroup"] as? String })
            let owner = try #require(object["owner"] as? [String: Any])
            #expect(owner["pod_uid"] as? String == leaf.podUID && owner["container_id"] as? String == leaf.containerID
                    && owner["unit"] as? String == leaf.unit, "\(object)")
            if leaf.podUID != nil {
                #expect(owner["runtime"] as? String == "containerd" && (owner["qos_class"] as? String).map { leaf.path.contains("-\($0)") || $0 == "guaranteed" } == true)
            }
        }
    }

    /// 5,000 cgroups: the largest `sampler.max-cgroups`, the other 4,950 summed
    /// exactly; with a walk bound below the node's size the walk stops there,
    /// says so, and still reads no cgroup twice.
    @Test func fiveThousandCgroupsStayWithinTheBounds() throws {
        let dir = try TemporaryDirectory()
        let leaves = try CgroupTrees.flatNode(at: dir.path("cgroup"), count: 5000)
        let memory = CgroupMemoryReader(root: dir.path("cgroup"), version: .v2, limit: 50).read()
        #expect(memory.entries.count == 50 && memory.others == 4950 && !memory.truncated)
        #expect(memory.entries.reduce(UInt64(0)) { $0 + $1.kernelBytes } + memory.otherKernelBytes == leaves.reduce(0) { $0 + $1.charge.kernel })

        let cut = CgroupMemoryReader(root: dir.path("cgroup"), version: .v2, limit: 50, maxDirectories: 1000).read()
        #expect(cut.truncated && cut.entries.count == 50)
        #expect(cut.entries.count + cut.others + cut.unreadable == 998, "the root and system.slice are 2 of the 1,000 directories walked")
        #expect(Set(cut.entries.map(\.path)).count == cut.entries.count)
    }

    static func kernel(_ memoryStat: String) throws -> UInt64 {
        let line = try #require(try String(contentsOfFile: memoryStat, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("kernel ") })
        return try #require(UInt64(line.dropFirst("kernel ".count)))
    }

    /// promtool check metrics' complaints (empty when it has none).
    static func promtool(_ text: String) throws -> String {
        let promtool = try #require(["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                    "promtool is not installed (Debian package prometheus)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? report : "exit \(process.terminationStatus): \(report)"
    }
}
