import Testing
import TestSupport
@testable import SlabWatchCore

/// The `slabwatch top` screen: what floats up, how it sorts and filters, and
/// that it fits the terminal it is given.
struct TopViewTests {
    /// The seed story half-way: kmalloc-32 grows with an open finding, twenty
    /// background caches wobble, and "quiet-big" is the largest but flat.
    static func story() -> (Sample, History, GrowthDetector.Report) {
        var s = Scenario()
        for step in 0..<100 {
            let kmalloc = 200e6 + Double(max(0, step - 24)) * 300e6
            s.add(inodes: 40_000 + Double(max(0, step - 24)) * 9000,
                  caches: [("kmalloc-32", kmalloc, false), ("quiet-big", 90e9, true), ("slow-grower", 50e6 + Double(step) * 0.5e6, false)]
                    + s.background())
        }
        let latest = s.run().pipeline.latest!
        return (latest.sample, History(latest.ring), latest.report)
    }

    static func rows(_ lines: [String]) -> [String] {
        Array(lines.drop { !$0.hasPrefix("CACHE") }.dropFirst())
    }

    @Test func findingsFloatToTheTopThenTheSortKeyDecides() {
        let (sample, history, report) = Self.story()
        #expect(report.findings.contains { $0.slab == "kmalloc-32" && $0.state == .open })
        var options = TopView.Options()
        options.width = 200
        var rows = Self.rows(TopView.render(sample: sample, history: history, report: report, options: options))
        #expect(rows[0].hasPrefix("!kmalloc-32"))
        #expect(rows[0].contains("/inode R²"), "\(rows[0])")
        #expect(rows[1].hasPrefix("quiet-big"))  // largest footprint
        options.sort = .growth
        rows = Self.rows(TopView.render(sample: sample, history: history, report: report, options: options))
        #expect(rows[0].hasPrefix("!kmalloc-32"))
        #expect(rows[1].hasPrefix("slow-grower"), "\(rows[1])")  // +6 MB a minute, too little to flag; quiet-big does not move
        #expect(rows[1].contains("+5.7 MiB"), "\(rows[1])")
        options.sort = .name
        rows = Self.rows(TopView.render(sample: sample, history: history, report: report, options: options))
        #expect(rows[1].hasPrefix("cache0 "))
        #expect(TopView.SortKey.name.next == .footprint)
    }

    @Test func filterKeepsMatchingNamesAndABadPatternFiltersNothing() {
        let (sample, history, report) = Self.story()
        var options = TopView.Options()
        options.width = 200
        options.filterText = "grow"
        var lines = TopView.render(sample: sample, history: history, report: report, options: options)
        #expect(Self.rows(lines).count == 1 && Self.rows(lines)[0].hasPrefix("slow-grower"))
        #expect(lines[0].contains("1 of 23 caches") && lines[0].contains("filter: /grow/"))
        options.filterText = "(unclosed"
        lines = TopView.render(sample: sample, history: history, report: report, options: options)
        #expect(Self.rows(lines).count == 23)
    }

    /// An 80×24 terminal: no line is wider, the rows stop at the height, and
    /// the finding still shows its bytes per inode.
    @Test func fitsAnEightyByTwentyFourTerminal() {
        let (sample, history, report) = Self.story()
        var options = TopView.Options()
        options.width = 80
        options.height = 23
        let lines = TopView.render(sample: sample, history: history, report: report, options: options)
        #expect(lines.count == 23)
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.map(\.count))")
        #expect(Self.rows(lines)[0].contains("/inode"), "\(Self.rows(lines)[0])")
    }

    @Test func controlBytesInANameCannotMoveTheCursor() {
        var sample = Sample(timestampMilliseconds: 0, caches: [
            SlabCache(name: "evil\u{1b}[2J\u{7}name", activeObjects: 1, objects: 1, objectSize: 8, objectsPerSlab: 1, pagesPerSlab: 1,
                      activeSlabs: 1, slabs: 1, pageSize: 4096, reclaimable: nil),
        ])
        sample.meminfo = nil
        let lines = TopView.render(sample: sample, history: .empty, report: .init(), options: .init())
        #expect(!lines.joined().unicodeScalars.contains { $0.value < 0x20 })
        #expect(Self.rows(lines)[0].hasPrefix("evil?[2J?name"))
        // C1 controls too: U+009B is CSI and U+009D OSC on their own.
        sample.caches[0].name = "c1\u{9b}2J\u{9d}0;t\u{9c}"
        let c1 = TopView.render(sample: sample, history: .empty, report: .init(), options: .init())
        #expect(!c1.joined().unicodeScalars.contains { (0x80...0x9F).contains($0.value) })
        #expect(Self.rows(c1)[0].hasPrefix("c1?2J?0;t? "), "\(Self.rows(c1)[0])")
        var colored = TopView.Options()
        colored.color = true
        #expect(TopView.render(sample: sample, history: .empty, report: .init(), options: colored).joined().contains("\u{1b}[1m"))
    }
}
