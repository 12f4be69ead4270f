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
        #expect(rows[1].hasPrefix(" quiet-big"))  // largest footprint; the flag column is blank
        options.sort = .growth
        rows = Self.rows(TopView.render(sample: sample, history: history, report: report, options: options))
        #expect(rows[0].hasPrefix("!kmalloc-32"))
        #expect(rows[1].hasPrefix(" slow-grower"), "\(rows[1])")  // +6 MB a minute, too little to flag; quiet-big does not move
        #expect(rows[1].contains("+5.7 MiB"), "\(rows[1])")
        options.sort = .name
        rows = Self.rows(TopView.render(sample: sample, history: history, report: report, options: options))
        // The series outside the caches sort by name too: `(` comes before any letter.
        #expect(rows[1].hasPrefix(" (outside caches, reclaimable) ") && rows[2].hasPrefix(" (outside caches, unreclaimable) "))
        #expect(rows[3].hasPrefix(" cache0 "))
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
        #expect(Self.rows(lines).count == 23 + 2)  // and the two series outside the caches (the story has no Percpu)
    }

    /// The series derived from the counters have rows that say they are no
    /// cache: no objects, size or waste; a finding on one floats up like a
    /// cache's; the header still counts kernel caches.
    @Test func theMemoryOutsideTheCachesHasRowsThatAreNoCache() throws {
        var pipeline = Pipeline()
        for sample in OutsideCachesStoryTests.story(culprit: true).samples { _ = pipeline.step(sample) }
        let latest = try #require(pipeline.latest)
        #expect(latest.report.findings.contains { $0.slab == Attribution.outsideCaches && $0.state == .open })
        var options = TopView.Options()
        options.width = 200
        let lines = TopView.render(sample: latest.sample, history: History(latest.ring), report: latest.report, options: options)
        let rows = Self.rows(lines)
        let outside = try #require(rows.first { $0.contains(Attribution.outsideCaches) })
        #expect(outside.hasPrefix("!(outside caches, unreclaimable) "), "\(rows.prefix(3))")
        let cells = outside.split(separator: " ")
        #expect(cells[3] == "-" && cells[4] == "-" && cells[7] == "-" && cells[8] == "n", "\(outside)")  // objects, size, waste; R
        #expect(outside.contains("/tmpfs inode"), "\(outside)")
        let kernelCaches = latest.sample.caches.count { !$0.isDerived }
        #expect(lines[0].contains("\(kernelCaches) of \(kernelCaches) caches"), "\(lines[0])")
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

    /// The machine of issue 29's xattr run: thirteen kmalloc-cg-* caches,
    /// names up to 23 characters (and, when asked, two long module names
    /// alike but for their end), and an open finding on kmalloc-cg-512 per
    /// tmpfs inode, falling.
    static func xattrScreen(longNames: Bool = false) -> (Sample, SampleRing, GrowthDetector.Report, Finding) {
        let names = ["8", "16", "32", "64", "96", "128", "192", "256", "512", "1k", "2k", "4k", "8k"].map { "kmalloc-cg-\($0)" }
            + ["shmem_inode_cache", "dentry", "ext4_allocation_context", "request_sock_subflow_v4", "request_sock_subflow_v6"]
            + (longNames ? ["a_module_with_a_rather_long_cache_name_number_1", "a_module_with_a_rather_long_cache_name_number_2"] : [])
        var s = Scenario()
        for step in 0..<60 {
            s.add(inodes: 40_000, caches: names.enumerated().map { ($1, 20e6 + Double($0) * 1e6 + Double(step) * 1e5, $0 % 3 == 0) })
        }
        var ring = SampleRing()
        for sample in s.samples { ring.append(sample) }
        var finding = Self.story().2.findings.first { $0.slab == "kmalloc-32" }!  // the story opens it (findingsFloatToTheTop…)
        finding.slab = "kmalloc-cg-512"
        finding.inodeCache = "shmem_inode_cache"
        finding.phase = .falling
        finding.classification = .tracksEviction
        return (s.samples.last!, ring, GrowthDetector.Report(findings: [finding]), finding)
    }

    /// Every width from 60 to 250 columns: no line is wider; no two caches
    /// show the same name; the flagged row's name is whole whenever any
    /// row's is; the finding loses its R² before anything else, and from 80
    /// columns on it is never cut. (At 120 columns names were cut to 11
    /// characters, five rows read `kmalloc-cg-`, the flagged `!kmalloc-cg`,
    /// and the finding `tracks-ev`.)
    @Test(arguments: [false, true])
    func everyWidthGivesNamesTheirRoom(longNames: Bool) {
        let (sample, ring, report, finding) = Self.xattrScreen(longNames: longNames)
        let full = TopView.Layout.findingText(finding, rSquared: true)
        let essential = TopView.Layout.findingText(finding, rSquared: false)
        var withoutRSquared = 0
        for width in 60...250 {
            var options = TopView.Options()
            options.width = width
            let lines = TopView.render(sample: sample, history: History(ring), report: report, options: options)
            #expect(lines.allSatisfy { $0.count <= width }, "\(width): \(lines.map(\.count).max() ?? 0)")
            let rows = Self.rows(lines)
            #expect(rows.count == sample.caches.count)
            let shown = rows.map { String($0.dropFirst().prefix { $0 != " " }) }  // after the flag column
            #expect(Set(shown).count == shown.count, "\(width): \(shown)")
            #expect(rows[0].hasPrefix("!kmalloc-cg-512 "), "\(width): \(rows[0])")
            #expect(rows.dropFirst().allSatisfy { $0.hasPrefix(" ") })
            #expect(!sample.caches.map(\.name).contains(where: shown.contains) || shown[0] == "kmalloc-cg-512")
            #expect(rows[0].hasSuffix(full) || !rows[0].contains("R²"), "\(width): \(rows[0])")
            if width >= 80 { #expect(rows[0].hasSuffix(full) || rows[0].hasSuffix(essential), "\(width): \(rows[0])") }
            if !rows[0].contains("R²") && rows[0].hasSuffix(essential) { withoutRSquared += 1 }
        }
        #expect(withoutRSquared > 0, "some width shows the finding without its R², whole")
    }

    /// The issue's 120-column terminal: every name whole, and the finding
    /// whole but for its R² (the columns took the room first).
    @Test func aHundredTwentyColumnsShowWholeNamesAndTheWholeFinding() throws {
        let (sample, ring, report, finding) = Self.xattrScreen()
        var options = TopView.Options()
        options.width = 120
        let rows = Self.rows(TopView.render(sample: sample, history: History(ring), report: report, options: options))
        #expect(rows[0].hasPrefix("!kmalloc-cg-512 ") && rows[0].hasSuffix(TopView.Layout.findingText(finding, rSquared: false)), "\(rows[0])")
        for cache in sample.caches {
            #expect(rows.contains { $0.dropFirst().hasPrefix(cache.name + " ") }, "\(cache.name)")
        }
        // Names longer than a third of the line keep their start and end.
        let (long, longRing, longReport, _) = Self.xattrScreen(longNames: true)
        let longRows = Self.rows(TopView.render(sample: long, history: History(longRing), report: longReport, options: options))
        #expect(longRows.contains { $0.hasPrefix(" a_module_with_a_rath~cache_name_number_1 ") }, "\(longRows)")
    }

    /// Who is charged ends a finding's row where the screen has room for it
    /// (`→ foo.service 92 %`, a pod by its UID's start), read from the
    /// finding here and from a daemon's /snapshot as `top --url` reads it;
    /// a narrower screen drops it before the R².
    @Test(arguments: [("/system.slice/foo.service", "foo.service"),
                      ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1d3a8e2c_5b6f_4c7d_9e0a_2f4b6c8d0e1f.slice/"
                       + "cri-containerd-3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a.scope", "pod 1d3a8e2c")])
    func aFindingsRowEndsWithWhoIsChargedWhereThereIsRoom(cgroup: String, name: String) throws {
        var (sample, ring, _, finding) = Self.xattrScreen()
        finding.charged = ChargedCgroups(source: .memcgKmem, windowSeconds: 600,
                                         entries: [.init(cgroup: cgroup, riseBytes: 9e7, share: 0.92, rSquared: 0.99)], otherShare: 0.08)
        let local = GrowthDetector.Report(findings: [finding])
        let remote = try SnapshotReader.parse(SnapshotRenderer.render(sample, intervalSeconds: 5, report: local))
        #expect(remote.findings.first?.charged == finding.charged)
        let full = TopView.Layout.findingText(finding, rSquared: true)
        for report in [local, GrowthDetector.Report(findings: remote.findings)] {
            var options = TopView.Options()
            options.width = 200
            let wide = Self.rows(TopView.render(sample: sample, history: History(ring), report: report, options: options))
            #expect(wide[0].hasSuffix(full + " → \(name) 92 %"), "\(wide[0])")
            options.width = 120
            let narrow = Self.rows(TopView.render(sample: sample, history: History(ring), report: report, options: options))
            #expect(!narrow[0].contains("→") && narrow[0].hasSuffix(TopView.Layout.findingText(finding, rSquared: false)), "\(narrow[0])")
        }
    }

    /// A flagged name is never cut to the cap: a row is flagged so that
    /// someone looks that cache up.
    @Test func aFlaggedNameIsWholeWhateverItsLength() {
        let (sample, ring, _, opened) = Self.xattrScreen(longNames: true)
        var finding = opened
        finding.slab = "a_module_with_a_rather_long_cache_name_number_1"
        let report = GrowthDetector.Report(findings: [finding])
        var options = TopView.Options()
        options.width = 100
        let rows = Self.rows(TopView.render(sample: sample, history: History(ring), report: report, options: options))
        #expect(rows[0].hasPrefix("!a_module_with_a_rather_long_cache_name_number_1 "), "\(rows[0])")
        #expect(rows.contains { $0.hasPrefix(" a_module_with_a_rather_long_cache_name_number_2 ") })
    }

    /// The columns' order of priority: which ones a narrowing screen keeps.
    @Test(arguments: [
        (250, ["OBJS ACT/TOTAL", "OBJSIZE", "FOOTPRINT", "WASTE", "R", "+/min 1m", "+/min 5m", "FINDING"]),
        (120, ["OBJSIZE", "FOOTPRINT", "R", "+/min 1m", "+/min 5m", "FINDING"]),
        (80, ["R", "FINDING"]),  // the 5-minute growth does not fit; R does, in what is left
    ])
    func narrowerScreensKeepTheFirstColumns(width: Int, titles: [String]) {
        let (sample, ring, report, _) = Self.xattrScreen()
        var options = TopView.Options()
        options.width = width
        let header = TopView.render(sample: sample, history: History(ring), report: report, options: options).first { $0.hasPrefix("CACHE") } ?? ""
        let shown = TopView.Layout.Column.allCases.map(\.title).filter { header.contains(" \($0)") } + (header.hasSuffix("FINDING") ? ["FINDING"] : [])
        #expect(shown == titles, "\(width): \(header)")
    }
}
