import Foundation
import LinearRegex
import Testing
import TestSupport
@testable import SlabWatchCore

struct MetricsRendererTests {
    static func render(_ caches: [SlabCache], sample: Sample? = nil, report: GrowthDetector.Report = .init()) -> String {
        let sample = sample ?? Sample(timestampMilliseconds: 1_000, caches: caches)
        let bytes = MetricsRenderer.render(.init(
            sample: sample, exportedCaches: caches, version: "test", report: report,
            own: SelfStatistics(process: ProcessStatistics(cpuSeconds: 1.5, residentBytes: 1, virtualBytes: 2, openFileDescriptors: 3,
                                                           maxFileDescriptors: 4, startTimeSeconds: 5),
                                server: ServerStatistics())))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every sink × result is a series, zeros included, labelled with the
    /// names the router counts under.
    @Test func alertSeriesAreEverySinkAndResult() {
        let sample = Sample(timestampMilliseconds: 1_000)
        let bytes = MetricsRenderer.render(.init(
            sample: sample, exportedCaches: [], version: "test", report: .init(),
            own: SelfStatistics(alerts: [AlertOutcome(sink: .stderr, result: .suppressed): 3], server: ServerStatistics())))
        let series = String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("slabwatch_alerts_total{") }
        #expect(series.count == AlertOutcome.Sink.allCases.count * AlertOutcome.Result.allCases.count)
        #expect(series.contains("slabwatch_alerts_total{result=\"suppressed\",sink=\"stderr\"} 3"))
        #expect(series.filter { $0.hasSuffix(" 0") }.count == series.count - 1)
    }

    /// Each cache of the sample is counted in one state: exported, left out
    /// by the bound (`beyond_top`), or by the filters.
    @Test func cacheCountsSayHowManyTheBoundLeftOut() {
        let caches = (0..<10).map { SampleRingTests.cache("c\($0)", slabs: UInt64($0 + 1)) }
        var sample = Sample(timestampMilliseconds: 1_000, caches: caches)
        sample.cachesOverLimit = 4
        let bytes = MetricsRenderer.render(.init(sample: sample, exportedCaches: Array(caches.suffix(3)), cachesBeyondTop: 5, version: "test"))
        let counts = String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("slabwatch_caches{") }
        #expect(counts == [
            "slabwatch_caches{state=\"beyond_top\"} 5", "slabwatch_caches{state=\"exported\"} 3",
            "slabwatch_caches{state=\"filtered\"} 2", "slabwatch_caches{state=\"over_limit\"} 4",
        ])
    }

    @Test func familiesAreSortedAndEachHasHelpAndType() {
        var seed = Scenario.seed()
        seed.samples = Array(seed.samples.prefix(150))  // a finding is open, the trend is rising
        let (report, _) = seed.replay()
        #expect(!report.findings.isEmpty && report.trend?.secondsToLimit != nil)
        let text = Self.render([SampleRingTests.cache("b", slabs: 1), SampleRingTests.cache("a", slabs: 2)],
                               sample: seed.samples.last!, report: report)
        #expect(text.contains("slabwatch_finding_flagged{driver=\"inodes\",inode_cache=\"\",slab=\"kmalloc-32\"} 1"))
        #expect(text.contains("slabwatch_findings_open{severity=\"critical\"} 1"))
        #expect(text.contains("slabwatch_finding_info{classification=\"undetermined\",driver=\"inodes\",inode_cache=\"\",severity=\"critical\",slab=\"kmalloc-32\",state=\"open\"} 1"))
        let helps = text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] }
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(helps == types)
        #expect(helps == helps.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(Set(helps).count == helps.count)
        let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        for line in samples {
            let family = line.prefix { $0 != "{" && $0 != " " }
            #expect(helps.contains(family), "\(line) has no HELP")
        }
    }

    @Test func labelValuesAreEscaped() {
        let text = Self.render([SampleRingTests.cache("we\"ird\\name\nx", slabs: 1)])
        #expect(text.contains(#"slabwatch_slab_slabs{slab="we\"ird\\name\nx"} 1"#))
    }

    /// Equal inputs built apart render the same bytes. Swift seeds each
    /// dictionary's order by its storage, so the two inputs' sources, parse
    /// errors and alert counts (filled in opposite orders, at other
    /// capacities) iterate differently: output that followed a dictionary's
    /// order, the input's or the renderer's own, would differ here.
    @Test func sameInputSameBytes() {
        func input(reversed: Bool, spare: Int) -> MetricsRenderer.Input {
            let caches = (0..<50).map { SampleRingTests.cache("c\($0)", slabs: UInt64($0)) }.sorted { $0.name < $1.name }
            var sample = Sample(timestampMilliseconds: 1_000, caches: reversed ? caches.reversed() : caches)
            sample.sources = .init(minimumCapacity: spare)
            var statistics = SamplerStatistics()
            statistics.parseErrors = .init(minimumCapacity: spare)
            for source in reversed ? Source.allCases.reversed() : Source.allCases {
                let rank = Source.allCases.firstIndex(of: source)!
                sample.sources[source] = SourceStatus(up: rank % 2 == 0, error: rank % 2 == 0 ? nil : "down \(rank)")
                statistics.parseErrors[source] = UInt64(rank + 1)
            }
            var alerts = [AlertOutcome: UInt64](minimumCapacity: spare)
            let outcomes = AlertOutcome.Sink.allCases.flatMap { sink in AlertOutcome.Result.allCases.map { AlertOutcome(sink: sink, result: $0) } }
            for outcome in reversed ? outcomes.reversed() : outcomes {
                alerts[outcome] = UInt64(outcome.sink.rawValue.count * 10 + outcome.result.rawValue.count)
            }
            return .init(sample: sample, exportedCaches: caches, version: "test", report: Self.threeFindings,
                         own: SelfStatistics(sampler: statistics, alerts: alerts, server: ServerStatistics()))
        }
        #expect(Self.threeFindings.findings.filter { $0.state == .open }.count == 3)
        let first = String(decoding: MetricsRenderer.render(input(reversed: false, spare: 0)), as: UTF8.self)
        #expect(first.contains("slabwatch_parse_errors_total{source=\"slabinfo\"} 1"))
        for spare in [0, 16, 64, 256] {
            #expect(String(decoding: MetricsRenderer.render(input(reversed: true, spare: spare)), as: UTF8.self) == first)
        }
    }

    /// Three caches that rise with inodes, each with an open finding.
    static let threeFindings: GrowthDetector.Report = {
        var s = Scenario()
        var inodes = 40_000.0
        for step in 0..<150 {
            if step >= 24 { inodes += 1_000_000 / 120 }
            let rise = max(0, inodes - 40_000)
            s.add(inodes: inodes + s.jitter(300), caches: [
                ("kmalloc-32", 200e6 + 32 * 1024 * rise + s.jitter(1e6), false),
                ("kmalloc-64", 100e6 + 16 * 1024 * rise + s.jitter(1e6), false),
                ("module_cache", 50e6 + 8 * 1024 * rise + s.jitter(1e6), false),
            ] + s.background())
        }
        return s.replay().0
    }()

    @Test func downSourceOmitsItsFamiliesAndShowsDown() {
        var sample = Sample(timestampMilliseconds: 0)
        sample.sources[.meminfo] = SourceStatus(up: false, error: "gone")
        sample.sources[.slabinfo] = SourceStatus(up: true)
        let text = Self.render([], sample: sample)
        #expect(!text.contains("slabwatch_memory_"))
        #expect(text.contains("slabwatch_source_up{source=\"meminfo\"} 0"))
        #expect(text.contains("slabwatch_source_up{source=\"slabinfo\"} 1"))
    }

    @Test func reclaimableOnlyWhenKnown() {
        var known = SampleRingTests.cache("known", slabs: 1)
        known.reclaimable = true
        let text = Self.render([known, SampleRingTests.cache("unknown", slabs: 1)])
        #expect(text.contains("slabwatch_slab_reclaimable{slab=\"known\"} 1"))
        #expect(!text.contains("slabwatch_slab_reclaimable{slab=\"unknown\"}"))
    }
}

struct SnapshotRendererTests {
    @Test func schemaAndOrdering() throws {
        var small = SampleRingTests.cache("small", slabs: 1)
        small.reclaimable = false
        var big = SampleRingTests.cache("big", slabs: 10)
        big.aliases = ["alias_a", "alias_b"]
        let sample = Sample(
            timestampMilliseconds: 1_795_611_213_889, caches: [small, big],
            meminfo: Meminfo(fields: [.init(name: "MemTotal", value: 1 << 30, isBytes: true)]),
            fileHandles: .init(allocated: 12, maximum: 100),
            sources: [.slabinfo: SourceStatus(up: true), .meminfo: SourceStatus(up: false, error: "open: \"denied\"")])
        let bytes = SnapshotRenderer.render(sample, intervalSeconds: 0.5)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(json["timestamp"] as? String == "2026-11-25T12:53:33.889Z")
        #expect(json["interval_seconds"] as? Double == 0.5)
        let memory = try #require(json["memory"] as? [String: Any])
        #expect(memory["total_bytes"] as? Int == 1 << 30)
        #expect(memory["slab_bytes"] is NSNull)
        let fs = try #require(json["fs"] as? [String: Any])
        #expect(fs["open_files"] as? Int == 12 && fs["inodes"] is NSNull)
        let caches = try #require(json["caches"] as? [[String: Any]])
        #expect(caches.map { $0["name"] as? String } == ["big", "small"])
        #expect(caches[0]["aliases"] as? [String] == ["alias_a", "alias_b"])
        #expect(caches[0]["reclaimable"] is NSNull && caches[1]["reclaimable"] as? Bool == false)
        #expect(caches[0]["footprint_bytes"] as? Int == 10 * 4096)
        #expect(caches[0]["memory_bytes"] == nil)  // one name for the footprint everywhere
        let sources = try #require(json["sources"] as? [String: [String: Any]])
        #expect(sources["meminfo"]?["error"] as? String == "open: \"denied\"")
        #expect(sources["slabinfo"]?["up"] as? Bool == true)
        #expect(sources["inode_nr"]?["up"] as? Bool == false)
        #expect((json["findings"] as? [Any])?.isEmpty == true)
    }

    @Test func controlCharactersInNamesStayValidJSON() throws {
        let sample = Sample(timestampMilliseconds: 0, caches: [SampleRingTests.cache("a\u{01}b\tc\u{7F}é", slabs: 1)])
        let bytes = SnapshotRenderer.render(sample, intervalSeconds: 5)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let caches = try #require(json["caches"] as? [[String: Any]])
        #expect(caches[0]["name"] as? String == "a\u{01}b\tc\u{7F}é")
    }
}

struct CacheFilterTests {
    @Test func includeExcludeAndMinimumFootprint() throws {
        var filter = try CacheFilter(include: "kmalloc-.*|dentry", exclude: "kmalloc-cg-.*", minimumFootprintBytes: 8192)
        let caches = [
            SampleRingTests.cache("kmalloc-32", slabs: 4), SampleRingTests.cache("kmalloc-cg-32", slabs: 4),
            SampleRingTests.cache("dentry", slabs: 1), SampleRingTests.cache("xdentry", slabs: 9),
            SampleRingTests.cache("dentry#2", slabs: 9),
        ]
        #expect(filter.exported(caches).map(\.name) == ["kmalloc-32"])
    }

    @Test func invalidPatternIsAnError() {
        #expect(throws: LinearRegex.SyntaxError.self) { try CacheFilter(include: "kmalloc-[") }
    }
}

struct DownSourceRenderingTests {
    /// docs/reference/metrics.md: a failing source never fails the scrape; its families are left out, HELP and TYPE included.
    @Test func slabinfoDownLeavesNoSlabFamilies() {
        let sample = Sample(timestampMilliseconds: 0, sources: [.slabinfo: SourceStatus(up: false, error: "denied")])
        let text = String(decoding: MetricsRenderer.render(.init(sample: sample, exportedCaches: [], version: "t")), as: UTF8.self)
        #expect(!text.contains("slabwatch_slab_"))
        #expect(!text.contains("slabwatch_memory_") && !text.contains("slabwatch_fs_"))
        #expect(text.contains("slabwatch_source_up{source=\"slabinfo\"} 0"))
    }
}
