import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// `MetricsRenderer.families` is what /metrics renders: every HELP and TYPE
/// line, the order, and the labels of every series come from it.
struct MetricFamiliesTests {
    /// One /metrics body with every family in it: a finding, a trend with a
    /// limit, the server's, the process's and the state's figures.
    static func everyFamily() throws -> String {
        let dir = try TemporaryDirectory()
        try FindingLifecycleTests.seedStory(dir, then: [RecordingWriter.hold(600, at: 1_040_000)])
        var report = try FindingLifecycleTests.replay(dir).outcome.report
        #expect(!report.findings.isEmpty && report.trend?.secondsToLimit != nil)
        // Who is charged for the open finding, as a ranking would say.
        let open = try #require(report.findings.firstIndex { $0.state == .open })
        report.findings[open].charged = ChargedCgroups(source: .memcgSlabUnreclaimable, windowSeconds: 600,
                                                       entries: [.init(cgroup: "/system.slice/a.service", riseBytes: 1e6, share: 0.9, rSquared: 0.98)],
                                                       otherShare: 0.1)
        var sample = Pipeline.recorded(ProcReader(paths: TestPaths.localKernelPaths, pageSize: 4096).sample(timestampMilliseconds: 0))
        sample.cgroupMemory = .largest([.init(path: "/system.slice/a.service", kernelBytes: 3, slabReclaimableBytes: 1, slabUnreclaimableBytes: 2),
                                        .init(path: "/system.slice/b.service", kernelBytes: 1)], limit: 1, version: .v2)
        let metrics = MetricsRenderer.render(.init(
            sample: sample, exportedCaches: sample.caches.filter { !$0.isDerived }, version: "t", report: report,
            own: SelfStatistics(
                process: .init(cpuSeconds: 1, residentBytes: 1, virtualBytes: 1, openFileDescriptors: 1, maxFileDescriptors: 1, startTimeSeconds: 1),
                server: .init(), persistence: .init())))
        return String(decoding: metrics, as: UTF8.self)
    }

    @Test func renderedHelpAndTypeAreTheTables() throws {
        let lines = try Self.everyFamily().split(separator: "\n")
        let help = lines.filter { $0.hasPrefix("# HELP ") }.map { $0.dropFirst(7) }
        let type = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.dropFirst(7) }
        let families = MetricsRenderer.families
        #expect(help.map(String.init) == families.map { "\($0.name) \($0.help)" })
        #expect(type.map(String.init) == families.map { "\($0.name) \($0.type)" })
    }

    /// Each series carries exactly its family's labels, in their order.
    @Test func seriesCarryTheirFamilysLabels() throws {
        let labels = Dictionary(uniqueKeysWithValues: MetricsRenderer.families.map { ("\($0.name)", $0.labels) })
        var seen: Set<String> = []
        for line in try Self.everyFamily().split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = try #require(labels[name], "\(name) is in no family")
            var names: [String] = []
            if let open = line.firstIndex(of: "{") {
                // Label values here are cache names and enum words: no `=` or `"` inside.
                for pair in line[line.index(after: open)...].prefix(while: { $0 != "}" }).split(separator: ",") {
                    names.append(String(pair.prefix { $0 != "=" }))
                }
            }
            #expect(names == family, "\(line)")
            seen.insert(name)
        }
        #expect(seen == Set(labels.keys))
    }

    @Test func familiesAreInByteOrderOnce() {
        let names = MetricsRenderer.families.map { "\($0.name)" }
        #expect(names == names.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }))
        #expect(Set(names).count == names.count)
    }
}
