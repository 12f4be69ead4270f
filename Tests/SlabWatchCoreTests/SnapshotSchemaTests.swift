import Testing
import TestSupport
@testable import SlabWatchCore

/// `SnapshotSchema` is the `/snapshot` document: every key the renderer
/// writes is in it, and nothing else is.
struct SnapshotSchemaTests {
    /// A snapshot in which every key appears: a finding with other drivers,
    /// evidence and a BPF attribution (stacks and processes), and a trend.
    static func everyKey() throws -> JSONValue {
        var (sample, _, story) = TopViewTests.story()
        var report = story
        let index = try #require(report.findings.firstIndex { $0.slab == "kmalloc-32" })
        var attribution = AttributedFindingTests.attribution
        attribution.callSites[0].processes = [.init(pid: 4121, comm: "python3", cgroup: "/system.slice/foo.service", cgroupID: 9,
                                                    allocations: 990, netCount: 990, netBytes: 31_680)]
        report.findings[index].attribution = attribution
        // A pod's container, so the owner object has every key.
        let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1d3a5b7c_9e0f_4a1b_8c2d_3e4f5a6b7c8d.slice/cri-containerd-"
            + String(repeating: "3f2a1b9c", count: 8) + ".scope"
        report.findings[index].charged = ChargedCgroups(source: .memcgKmem, windowSeconds: 600,
                                                        entries: [.init(cgroup: pod, riseBytes: 3e7, share: 0.9, rSquared: 0.99)], otherShare: 0.1)
        sample.cgroupMemory = CgroupMemory.largest([.init(path: pod, kernelBytes: 30 << 20, slabReclaimableBytes: 1 << 20, slabUnreclaimableBytes: 2 << 20),
                                        .init(path: "/system.slice/foo.service", kernelBytes: 1 << 20)], limit: 1, version: .v2)
        sample.cgroupMemory?.readAtMilliseconds = sample.timestampMilliseconds
        #expect(!report.findings[index].otherDrivers.isEmpty && !report.findings[index].evidence.isEmpty)
        #expect(report.trend != nil)
        return try JSONValue.parse(SnapshotRenderer.render(sample, intervalSeconds: 5, report: report))
    }

    /// The key paths of `value` in the schema's notation: `[]` for an array's
    /// elements, the schema's `{name}` for the keys of an object keyed by name.
    static func paths(_ value: JSONValue, under path: String = "", into paths: inout Set<String>) {
        switch value {
        case .object(let members):
            let prefix = path.isEmpty ? "" : path + "."
            let keyedByName = SnapshotSchema.fields.first { $0.path.hasPrefix(prefix + "{") && !$0.path.dropFirst(prefix.count).contains(".") }
            for (key, member) in members {
                let child = keyedByName?.path ?? prefix + key
                paths.insert(child)
                Self.paths(member, under: child, into: &paths)
            }
        case .array(let elements):
            for element in elements { Self.paths(element, under: path + "[]", into: &paths) }
        default:
            break
        }
    }

    @Test func renderedKeysAreTheSchemas() throws {
        var rendered: Set<String> = []
        Self.paths(try Self.everyKey(), into: &rendered)
        let schema = Set(SnapshotSchema.fields.map(\.path))
        #expect(rendered.subtracting(schema).isEmpty, "rendered, not in SnapshotSchema: \(rendered.subtracting(schema).sorted())")
        #expect(schema.subtracting(rendered).isEmpty, "in SnapshotSchema, never rendered: \(schema.subtracting(rendered).sorted())")
    }

    /// Each path once, each after the object or array that holds it, each
    /// with a type and a meaning.
    @Test func everyFieldIsSaidOnceBelowItsParent() {
        var seen: Set<String> = []
        for field in SnapshotSchema.fields {
            #expect(!seen.contains(field.path), "\(field.path) twice")
            var parent = field.path
            while let last = parent.lastIndex(where: { $0 == "." || $0 == "[" }) {
                parent = String(parent[..<last])
                if !parent.hasSuffix("[]") { break }
            }
            if parent != field.path { #expect(seen.contains(parent), "\(field.path) before \(parent)") }
            #expect(!field.type.isEmpty && !field.meaning.isEmpty, "\(field.path)")
            seen.insert(field.path)
        }
    }
}
