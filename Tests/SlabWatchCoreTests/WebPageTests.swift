import Foundation
import Testing
@testable import SlabWatchCore

/// The web page and its charts, rendered without a server: what they show and
/// that nothing a kernel puts in a cache name can break out of the markup.
struct WebPageTests {
    static func inputs() -> WebPage.Inputs {
        let (sample, history, report) = TopViewTests.story()
        return WebPage.Inputs(sample: sample, report: report, history: history, sampleAgeSeconds: 2, intervalSeconds: 5, version: "test")
    }

    @Test func indexShowsTheFindingItsChartsAndTheTopCaches() throws {
        let inputs = Self.inputs()
        let finding = try #require(inputs.report.findings.first { $0.slab == "kmalloc-32" })
        let html = WebPage.index(inputs)
        #expect(html.contains(Markup.escape(finding.message)))
        #expect(html.components(separatedBy: "<svg").count - 1 == 2)
        #expect(html.contains("data-series=\"fit: \(Human.bytes(finding.bytesPerUnit))/inode"))
        #expect(html.contains("href=\"/chart.svg?slab=kmalloc-32&kind=evidence\""))
        #expect(html.contains("<tr class=\"flagged\"><td><a href=\"/cache?slab=kmalloc-32\">kmalloc-32</a>"))
        // The largest cache heads the footprint table even though it does not grow.
        let footprintTable = try #require(html.components(separatedBy: "<caption>Largest footprint</caption>").last)
        #expect(footprintTable.firstRange(of: "quiet-big")!.lowerBound < footprintTable.firstRange(of: "slow-grower")!.lowerBound)
        #expect(!html.contains("<script"))
    }

    /// The memory outside the caches has a row in the tables and a page of
    /// its own that says what it is, not objects, an object size and a
    /// waste as large as the whole footprint.
    @Test func theMemoryOutsideTheCachesIsShownAsNoCache() throws {
        var pipeline = Pipeline()
        for sample in OutsideCachesStoryTests.story(culprit: true).samples { _ = pipeline.step(sample) }
        let latest = try #require(pipeline.latest)
        let inputs = WebPage.Inputs(sample: latest.sample, report: latest.report, history: History(latest.ring), sampleAgeSeconds: 2,
                                    intervalSeconds: 5, version: "test")
        let outside = try #require(inputs.sample.caches.first { $0.name == Attribution.outsideCaches })
        let html = WebPage.index(inputs)
        let link = "<a href=\"/cache?slab=%28outside%20caches%2C%20unreclaimable%29\">(outside caches, unreclaimable)</a>"
        #expect(html.contains("<tr class=\"flagged\"><td>\(link)</td><td>\(Human.bytes(Double(outside.footprintBytes)))</td><td>–</td><td>–</td>"),
                "\(html)")
        let page = try #require(WebPage.cache(Attribution.outsideCaches, inputs))
        #expect(page.contains("<th>what</th><td>Unreclaimable memory the kernel holds outside every slab cache"), "\(page)")
        #expect(!page.contains("<th>waste</th>") && !page.contains("<th>object size</th>") && page.contains("no (SUnreclaim)"))
    }

    @Test func cachePageIsFoundByNameOrAliasAndNilOtherwise() throws {
        var inputs = Self.inputs()
        let index = try #require(inputs.sample.caches.firstIndex { $0.name == "slow-grower" })
        inputs.sample.caches[index].aliases = ["creeper"]
        let page = try #require(WebPage.cache("creeper", inputs))
        #expect(page.contains("<h1>slow-grower</h1>") && page.contains("also called") && page.contains("slow-grower: footprint over time"))
        #expect(WebPage.cache("no-such-cache", inputs) == nil)
    }

    @Test func hostileCacheNamesAreEscapedInHTMLAndSVG() throws {
        var inputs = Self.inputs()
        let hostile = "x\"><script>alert(1)</script>&\u{1}\u{7f}'"
        let index = try #require(inputs.sample.caches.firstIndex { $0.name == "quiet-big" })
        inputs.sample.caches[index].name = hostile
        let page = try #require(WebPage.cache(hostile, inputs))
        let html = WebPage.index(inputs) + page
        #expect(!html.contains("<script>"))
        #expect(!html.contains("\u{1}") && !html.contains("\u{7f}"))
        #expect(html.contains("x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;\u{FFFD}\u{FFFD}&#39;"))
        // In a link the name is percent-encoded.
        #expect(html.contains("/cache?slab=x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E%26%01%7F%27"))
        let svg = WebPage.historyChart(slab: hostile, points: []).render()
        #expect(svg.contains("<title>x&quot;&gt;&lt;script&gt;") && !svg.contains("<script"))
    }

    @Test func evidenceChartDrawsTheFallInItsOwnColourAndTheLineAcrossIt() throws {
        var finding = FindingSentenceTests.finding(.inodes)
        // 10 rise points on an exact 32 KiB/inode line, then 3 fall points at low inode counts.
        let rise = (0..<10).map { (i: Int) -> Finding.EvidencePoint in
            let inodes: Double = 100_000 + Double(i) * 10_000
            let bytes: Double = 3e9 + Double(i) * 10_000 * 32768
            return Finding.EvidencePoint(timestampMilliseconds: Int64(i) * 5000, driver: inodes, footprintBytes: UInt64(bytes), segment: .rise)
        }
        finding.fit.points = rise
        finding.fit.bytesPerUnit = 32768
        for step in 0..<3 {
            finding.fallTrail.append(.init(timestampMilliseconds: 60_000 + Int64(step) * 5000, driver: 20_000,
                                           footprintBytes: 5_000_000_000 - UInt64(step) * 500_000_000, segment: .fall))
        }
        let chart = WebPage.evidenceChart(finding)
        #expect(chart.series.map(\.name) == ["fit: 32.0 KiB/inode, R² \(Human.decimal(finding.rSquared, 3))", "rise", "inodes evicted"])
        let line = chart.series[0].points
        // Through the rise exactly, and extended down to the fall's inode count.
        #expect(line.first!.x == 20_000 && abs(line.first!.y - (3e9 - 80_000 * 32768)) < 1)
        #expect(line.last!.x == 190_000 && abs(line.last!.y - (3e9 + 90_000 * 32768)) < 1)
        // A line that would cross zero before the smallest driver value starts at zero instead.
        let fromZero = try #require(WebPage.fittedLine(finding, rise, across: [0, 190_000]) { $0.driver })
        #expect(abs(fromZero[0].y) < 1 && abs(fromZero[0].x - (100_000 - 3e9 / 32768)) < 1)
        let svg = chart.render()
        #expect(svg.components(separatedBy: "<circle").count - 1 == 13 + 2)  // points + two legend markers
        #expect(svg.contains("stroke-dasharray"))
    }

    @Test func ticksAreRoundInHumanUnits() {
        let bytes = SVGChart.range([0, 30.5 * 1024 * 1024 * 1024], scale: .bytes, fromZero: false)
        #expect(bytes.step == 10 * 1024 * 1024 * 1024)
        #expect(bytes.values.map { SVGChart.label($0, .bytes, step: bytes.step) } == ["0", "10.0 GiB", "20.0 GiB", "30.0 GiB", "40.0 GiB"])
        let inodes = SVGChart.range([60_000, 1_040_000], scale: .count("inodes"), fromZero: false)
        #expect(inodes.values.map { SVGChart.label($0, .count("inodes"), step: inodes.step) } == ["0", "200k", "400k", "600k", "800k", "1.0M", "1.2M"])
        // 2026-11-26 05:40:00 UTC to 06:10: ticks every 10 minutes, labelled as clock times.
        let start = 1_795_671_600_000.0
        let time = SVGChart.range([start, start + 1_800_000], scale: .time, fromZero: false)
        #expect(time.step == 600_000)
        #expect(SVGChart.label(start, .time, step: time.step) == "05:40")
        // A flat series still gets a range, and an empty chart says so.
        #expect(SVGChart.range([5, 5], scale: .count("x"), fromZero: false).high > 5)
        #expect(SVGChart(title: "t", x: .time, y: .bytes, series: []).render().contains("no data yet"))
    }
}

/// What one hostile source can make the page cost: a 3 MB cache name and
/// many findings are cut, not rendered whole.
extension WebPageTests {
    static let huge = String(repeating: "a<", count: 1_500_000)

    @Test func aHugeCacheNameIsCutWithAnEllipsisAndNotLinked() throws {
        var inputs = Self.inputs()
        let cache = try #require(inputs.sample.caches.firstIndex { $0.name == "kmalloc-32" })
        let finding = try #require(inputs.report.findings.firstIndex { $0.slab == "kmalloc-32" })
        inputs.sample.caches[cache].name = Self.huge
        inputs.sample.caches[cache].aliases = (0..<50).map { "\(Self.huge)\($0)" }
        inputs.report.findings[finding].slab = Self.huge
        let shown = Markup.escape(String(Self.huge.prefix(WebPage.maxNameCharacters - 1))) + "…"
        let index = WebPage.index(inputs)
        #expect(index.utf8.count < 100_000, "\(index.utf8.count) bytes")
        #expect(index.contains(shown))
        #expect(!index.contains("slab=a%3Ca%3C"))  // no link that could not be requested anyway
        let page = try #require(WebPage.cache(Self.huge, inputs))
        #expect(page.utf8.count < 100_000, "\(page.utf8.count) bytes")
        #expect(page.contains("<h1>\(shown)</h1>") && page.contains("and 40 more"))
        let svg = WebPage.historyChart(slab: Self.huge, points: []).render()
        #expect(svg.utf8.count < 10_000 && svg.contains(shown))
    }

    @Test func atMost20FindingsAreDrawnAndTheRestCounted() throws {
        var inputs = Self.inputs()
        let finding = try #require(inputs.report.findings.first)
        inputs.report.findings = (0..<30).map { index in
            var copy = finding
            copy.slab = "cache-\(index)"
            return copy
        }
        let index = WebPage.index(inputs)
        #expect(index.components(separatedBy: "<section class=\"finding").count - 1 == WebPage.maxFindingsShown)
        #expect(index.contains("10 more findings not shown here"))
    }

    /// A name at the bound is shown and linked whole.
    @Test func aNameAtTheBoundIsShownWhole() throws {
        let name = String(repeating: "k", count: WebPage.maxNameCharacters)
        #expect(WebPage.shownName(name) == name)
        #expect(WebPage.shownName(name + "k") == String(repeating: "k", count: WebPage.maxNameCharacters - 1) + "…")
    }
}
