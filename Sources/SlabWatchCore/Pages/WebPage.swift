/// The pages a person reads in a browser: `/` (memory and slab totals, each
/// finding with its sentence and two charts, the top caches) and `/cache`
/// (one cache's history). Server-rendered HTML with inline SVG; nothing is
/// fetched from elsewhere, so the page works on an air-gapped node.
/// Pure: the daemon passes what it has published and the ring's `History`.
public enum WebPage: Sendable {
    public struct Inputs: Sendable {
        public var sample: Sample
        public var report: GrowthDetector.Report
        public var history: History
        /// Seconds since the sample was published.
        public var sampleAgeSeconds: Double
        public var intervalSeconds: Double
        public var version: String

        public init(sample: Sample, report: GrowthDetector.Report, history: History, sampleAgeSeconds: Double,
                    intervalSeconds: Double, version: String) {
            self.sample = sample
            self.report = report
            self.history = history
            self.sampleAgeSeconds = sampleAgeSeconds
            self.intervalSeconds = intervalSeconds
            self.version = version
        }
    }

    /// Resolved findings stay on the page this long after they resolved.
    static let recentSeconds = 24.0 * 3600
    /// The longest cache name shown whole. The kernel's are short (under 40
    /// characters); only a fake or hostile source makes longer ones, and one
    /// 3 MB name made `/` a 12 MB page. A longer name is cut with an ellipsis
    /// and not linked (its link could not be requested: a request head is
    /// 8 KiB at most).
    static let maxNameCharacters = 64
    /// Findings the index shows in full (each with two charts); more are counted.
    static let maxFindingsShown = 20
    /// Other names of a merged cache shown on its page; more are counted.
    static let maxAliasesShown = 10
    static let rise = "#1f6feb", fall = "#e8590c", fit = "#2f9e44", history = "#6741d9"

    // MARK: charts

    /// Footprint against its driver: the fitted line (dashed, underneath),
    /// the rise's points, and the fall's in another colour. The line spans
    /// every point, so a fall that comes back down it reads as a per-driver
    /// cache and one that stays above it as memory the driver no longer explains.
    public static func evidenceChart(_ finding: Finding) -> SVGChart {
        let isTime = finding.driver == .time
        func x(_ p: Finding.EvidencePoint) -> Double { isTime ? p.driver * 1000 : p.driver }
        let rising = finding.evidence.filter { $0.segment == .rise }
        let falling = finding.evidence.filter { $0.segment == .fall }
        var series: [SVGChart.Series] = []
        if let line = fittedLine(finding, rising, across: finding.evidence.map(x), x: x) {
            series.append(.init(name: "fit: \(Human.bytes(finding.bytesPerUnit))/\(finding.driver.singular), R² \(Human.decimal(finding.rSquared, 3))",
                                color: fit, style: .dashedLine, points: line))
        }
        series.append(.init(name: "rise", color: rise, style: .points, points: rising.map { (x($0), Double($0.footprintBytes)) }))
        let drivers = finding.inodeCache.map { "\(shownName($0)) inodes" } ?? finding.driver.plural
        if !falling.isEmpty {
            series.append(.init(name: "\(drivers) \(finding.fallVerb)", color: fall, style: .points,
                                points: falling.map { (x($0), Double($0.footprintBytes)) }))
        }
        return SVGChart(title: "\(shownName(finding.slab)): footprint against \(drivers)",
                        x: isTime ? .time : .count(drivers), y: .bytes, series: series)
    }

    /// The detector's slope through the centre of the rise's points, from the
    /// smallest to the largest `across` value (cut where it would go below zero).
    static func fittedLine(_ finding: Finding, _ points: [Finding.EvidencePoint], across: [Double],
                           x: (Finding.EvidencePoint) -> Double) -> [(x: Double, y: Double)]? {
        guard points.count >= 2, let low = across.min(), let high = across.max(), high > low else { return nil }
        let xs = points.map(x), ys = points.map { Double($0.footprintBytes) }
        let meanX = xs.reduce(0, +) / Double(xs.count), meanY = ys.reduce(0, +) / Double(ys.count)
        let slope = finding.driver == .time ? finding.bytesPerUnit / 1000 : finding.bytesPerUnit
        func y(_ x: Double) -> Double { meanY + slope * (x - meanX) }
        var start = low
        if y(start) < 0, slope > 0 { start = meanX - meanY / slope }
        return start < high ? [(start, y(start)), (high, y(high))] : nil
    }

    /// Footprint over time from the history (coarse tier first, then fine).
    public static func historyChart(slab: String, points: [HistoryPoint]) -> SVGChart {
        let line = points.compactMap { p in p.footprintBytes.map { (x: Double(p.timestampMilliseconds), y: Double($0)) } }
        return SVGChart(title: "\(shownName(slab)): footprint over time", x: .time, y: .bytes,
                        series: [.init(name: "footprint", color: history, style: .line, points: line)])
    }

    // MARK: pages

    public static func index(_ inputs: Inputs) -> String {
        var html = head(title: "slabwatch", refreshSeconds: 30)
        html += "<h1>slabwatch <small>\(Markup.escape(inputs.version))</small></h1>\n"
        html += summary(inputs)
        let findings = shownFindings(inputs)
        html += "<h2>Findings</h2>\n"
        if findings.isEmpty {
            html += "<p class=\"quiet\">No cache grows with inodes, dentries, open files or time. The detector needs a few minutes of samples.</p>\n"
        }
        for finding in findings.prefix(maxFindingsShown) { html += section(for: finding, inputs) }
        if findings.count > maxFindingsShown {
            html += "<p class=\"quiet\">\(findings.count - maxFindingsShown) more findings not shown here: see <a href=\"/snapshot\">/snapshot</a>.</p>\n"
        }
        html += "<h2>Caches</h2>\n<div class=\"tables\">\n"
        html += table("Largest footprint", rows(inputs, top: 15) { $0.cache.footprintBytes > $1.cache.footprintBytes })
        html += table("Fastest growth (5 min)", rows(inputs, top: 15) { ($0.perMinute5 ?? -.infinity) > ($1.perMinute5 ?? -.infinity) })
        html += "</div>\n"
        html += "<p class=\"quiet\"><a href=\"/metrics\">/metrics</a> · <a href=\"/snapshot\">/snapshot</a> · <a href=\"/healthz\">/healthz</a> · refreshes every 30 s</p>\n"
        return html + "</body></html>\n"
    }

    /// One cache: its figures, its finding if any, its history. Nil when the
    /// latest sample has no cache of that name.
    public static func cache(_ name: String, _ inputs: Inputs) -> String? {
        guard let cache = inputs.sample.caches.first(where: { $0.name == name || $0.aliases.contains(name) }) else { return nil }
        var html = head(title: "\(shownName(cache.name)) — slabwatch", refreshSeconds: 30)
        html += "<p><a href=\"/\">← slabwatch</a></p>\n<h1>\(Markup.escape(shownName(cache.name)))</h1>\n<table class=\"facts\">\n"
        // A derived series has no objects, size or waste: it says what it is instead.
        let objectFacts: [(String, String)] = cache.isDerived ? [("what", DerivedSeries.named(cache.name)?.subject ?? "a series derived from /proc/meminfo")] : [
            ("objects (active / total)", "\(Human.grouped(Double(cache.activeObjects))) / \(Human.grouped(Double(cache.objects)))"),
            ("object size", Human.bytes(Double(cache.objectSize))),
            ("waste", Human.bytes(Double(cache.wasteBytes))),
        ]
        let facts: [(String, String)] = [("footprint", Human.bytes(Double(cache.footprintBytes)))] + objectFacts + [
            ("reclaimable", cache.reclaimable.map { $0 ? "yes (SReclaimable)" : "no (SUnreclaim)" } ?? (cache.isDerived ? "in neither slab counter" : "unknown")),
            ("growth per minute, 1 / 5 min", "\(perMinute(inputs.history.footprintPerMinute(cache.name, seconds: 60))) / \(perMinute(inputs.history.footprintPerMinute(cache.name, seconds: 300)))"),
        ] + (cache.aliases.isEmpty ? [] : [("also called", aliasList(cache.aliases))])
        for (label, value) in facts { html += "<tr><th>\(Markup.escape(label))</th><td>\(Markup.escape(value))</td></tr>\n" }
        html += "</table>\n"
        if let finding = inputs.report.findings.first(where: { $0.slab == cache.name }) {
            html += section(for: finding, inputs)
        } else {
            html += chartBlock(historyChart(slab: cache.name, points: inputs.history.points(slab: cache.name, seconds: .infinity) ?? []),
                               link: chartLink(cache.name, kind: "history"))
        }
        return html + "</body></html>\n"
    }

    // MARK: parts

    /// `name`, or its first characters and an ellipsis when it is longer than `maxNameCharacters`.
    static func shownName(_ name: String) -> String {
        fitsWhole(name) ? name : String(name.prefix(maxNameCharacters - 1)) + "…"
    }

    private static func fitsWhole(_ name: String) -> Bool {
        name.utf8.count <= maxNameCharacters || name.prefix(maxNameCharacters + 1).count <= maxNameCharacters
    }

    /// A cache's name, linked to its page when it is shown whole.
    private static func cacheLink(_ name: String) -> String {
        let shown = Markup.escape(shownName(name))
        return fitsWhole(name) ? "<a href=\"/cache?slab=\(Markup.queryValue(name))\">\(shown)</a>" : shown
    }

    private static func chartLink(_ name: String, kind: String) -> String? {
        fitsWhole(name) ? "/chart.svg?slab=\(Markup.queryValue(name))&kind=\(kind)" : nil
    }

    private static func aliasList(_ aliases: [String]) -> String {
        let shown = aliases.prefix(maxAliasesShown).map(shownName).joined(separator: ", ")
        return aliases.count > maxAliasesShown ? "\(shown) and \(aliases.count - maxAliasesShown) more" : shown
    }

    /// The finding's sentence, with its cache's name as the page shows it.
    private static func sentence(_ finding: Finding) -> String {
        fitsWhole(finding.slab) ? finding.message : finding.message.replacing(finding.slab, with: shownName(finding.slab))
    }

    static func shownFindings(_ inputs: Inputs) -> [Finding] {
        let newest = inputs.sample.timestampMilliseconds
        return inputs.report.findings.filter {
            $0.state == .open || Double(elapsedMilliseconds(newest, since: $0.lastSeenMilliseconds)) / 1000 <= recentSeconds
        }
    }

    private static func summary(_ inputs: Inputs) -> String {
        let s = inputs.sample, m = s.meminfo
        func bytes(_ v: UInt64?) -> String { v.map { Human.bytes(Double($0)) } ?? "?" }
        func count(_ v: UInt64?) -> String { v.map { Human.grouped(Double($0)) } ?? "?" }
        let down = Source.allCases.filter { !s.status(of: $0).up }
        let open = inputs.report.findings.filter { $0.state == .open }
        var cells: [(String, String, Bool)] = [
            ("Memory", "\(bytes(m?.availableBytes)) available of \(bytes(m?.totalBytes))", false),
            ("Slab", "\(bytes(m?.slabBytes)): \(bytes(m?.slabReclaimableBytes)) reclaimable, \(bytes(m?.slabUnreclaimableBytes)) unreclaimable", false),
            ("VFS", "\(count(s.inodes?.inodes)) inodes, \(count(s.dentries?.dentries)) dentries, \(count(s.fileHandles?.allocated)) open files", false),
            ("Sources", down.isEmpty ? "all \(Source.allCases.count) up" : "down: " + down.map(\.rawValue).joined(separator: ", "), !down.isEmpty),
            ("Sample", "\(RFC3339.format(unixMilliseconds: s.timestampMilliseconds)), \(Human.elapsed(inputs.sampleAgeSeconds)) ago, every \(TopView.interval(inputs.intervalSeconds))",
             inputs.sampleAgeSeconds > 3 * inputs.intervalSeconds + 1),
        ]
        cells.append(("Findings", open.isEmpty ? "none open" : "\(open.count) open", !open.isEmpty))
        var html = "<div class=\"summary\">\n"
        for (label, value, alarm) in cells {
            html += "<div class=\"cell\(alarm ? " alarm" : "")\"><span>\(Markup.escape(label))</span>\(Markup.escape(value))</div>\n"
        }
        return html + "</div>\n"
    }

    private static func section(for finding: Finding, _ inputs: Inputs) -> String {
        let badge = finding.state == .open ? finding.severity.rawValue : "resolved"
        var html = "<section class=\"finding \(badge)\">\n"
        html += "<h3><span class=\"badge\">\(Markup.escape(badge))</span> \(cacheLink(finding.slab))"
        html += " <small>\(Markup.escape(finding.phase.rawValue)), \(Markup.escape(finding.classification.rawValue))</small></h3>\n"
        html += "<p class=\"sentence\">\(Markup.escape(sentence(finding)))</p>\n<div class=\"charts\">\n"
        html += chartBlock(evidenceChart(finding), link: chartLink(finding.slab, kind: "evidence"))
        let points = inputs.history.points(slab: finding.slab, seconds: .infinity) ?? []
        html += chartBlock(historyChart(slab: finding.slab, points: points), link: chartLink(finding.slab, kind: "history"))
        return html + "</div>\n" + chargedTable(finding.charged) + "</section>\n"
    }

    /// Who is charged for the finding: the cgroups named, under its charts.
    static func chargedTable(_ charged: ChargedCgroups?) -> String {
        guard let charged, !charged.entries.isEmpty else { return "" }
        let source = switch charged.basis {
        case nil: "BPF attribution's net bytes"
        case .slabUnreclaimable: "unreclaimable slab rising with it"
        case .slabReclaimable: "reclaimable slab rising with it"
        case .kernel: "kernel memory rising with it"
        }
        var html = "<table class=\"charged\"><caption>Charged to (\(Markup.escape(source)), \(Human.duration(charged.windowSeconds)))</caption>\n"
        html += "<tr><th>cgroup</th><th>owner</th><th>share</th><th>rise</th><th>R²</th></tr>\n"
        for entry in charged.entries {
            html += "<tr><td>\(Markup.escape(TerminalText.printable(entry.cgroup)))</td>"
            html += "<td>\(Markup.escape(entry.owner.map { TerminalText.printable($0.phrase) } ?? "–"))</td>"
            html += "<td>\(Human.decimal(entry.share * 100, 0)) %</td><td>\(Human.bytes(entry.riseBytes))</td>"
            html += "<td>\(entry.rSquared.map { Human.decimal($0, 2) } ?? "–")</td></tr>\n"
        }
        if charged.otherShare >= 0.005 { html += "<tr><td>others</td><td>–</td><td>\(Human.decimal(charged.otherShare * 100, 0)) %</td><td>–</td><td>–</td></tr>\n" }
        return html + "</table>\n"
    }

    private static func chartBlock(_ chart: SVGChart, link: String?) -> String {
        let caption = link.map { "<figcaption><a href=\"\($0)\">SVG</a></figcaption>" } ?? ""
        return "<figure>\(chart.render())\(caption)</figure>\n"
    }

    private static func rows(_ inputs: Inputs, top: Int, by order: (TopView.Row, TopView.Row) -> Bool) -> [TopView.Row] {
        let open = Set(inputs.report.findings.filter { $0.state == .open }.map(\.slab))
        return inputs.sample.caches.map { cache in
            TopView.Row(cache: cache, perMinute1: nil, perMinute5: inputs.history.footprintPerMinute(cache.name, seconds: 300),
                        finding: nil, flagged: open.contains(cache.name))
        }.sorted { order($0, $1) || (!order($1, $0) && $0.cache.name < $1.cache.name) }.prefix(top).map { $0 }
    }

    private static func table(_ title: String, _ rows: [TopView.Row]) -> String {
        var html = "<table class=\"caches\"><caption>\(Markup.escape(title))</caption>\n"
        html += "<tr><th>cache</th><th>footprint</th><th>objects</th><th>size</th><th>+/min</th></tr>\n"
        for row in rows {
            let c = row.cache
            html += "<tr\(row.flagged ? " class=\"flagged\"" : "")><td>\(cacheLink(c.name))</td>"
            // A derived series (memory outside the caches, Percpu) has no objects and no size.
            let objects = c.isDerived ? "–" : Human.grouped(Double(c.objects)), size = c.isDerived ? "–" : Human.bytes(Double(c.objectSize))
            html += "<td>\(Human.bytes(Double(c.footprintBytes)))</td><td>\(objects)</td>"
            html += "<td>\(size)</td><td>\(Markup.escape(perMinute(row.perMinute5)))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    private static func perMinute(_ value: Double?) -> String { value.map(TopView.signed) ?? "–" }

    private static func head(title: String, refreshSeconds: Int) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(refreshSeconds)">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(Markup.escape(title))</title>
        <style>
        body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1340px;padding:0 1em;color:#222}
        h1 small{font-size:55%;color:#888;font-weight:normal} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
        a{color:#1f5fbf;text-decoration:none} a:hover{text-decoration:underline} .quiet{color:#777}
        .summary{display:flex;flex-wrap:wrap;gap:.6em}.cell{border:1px solid #ddd;border-radius:6px;padding:.45em .8em;background:#fafafa}
        .cell span{display:block;font-size:80%;color:#777;text-transform:uppercase;letter-spacing:.04em}.cell.alarm{border-color:#e03131;background:#fff5f5}
        .finding{border:1px solid #ddd;border-left:6px solid #f59f00;border-radius:6px;padding:.2em 1em 1em;margin:1em 0}
        .finding.critical{border-left-color:#e03131}.finding.info{border-left-color:#1c7ed6}.finding.resolved{border-left-color:#adb5bd}
        .badge{font-size:75%;text-transform:uppercase;padding:.1em .5em;border-radius:4px;background:#f59f00;color:#fff}
        .critical .badge{background:#e03131}.info .badge{background:#1c7ed6}.resolved .badge{background:#868e96}
        h3 small{color:#777;font-weight:normal}.sentence{font-size:105%;max-width:1100px}
        .charts{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figcaption{font-size:80%;text-align:right}
        .tables{display:flex;flex-wrap:wrap;gap:2em} table.caches{border-collapse:collapse} caption{text-align:left;font-weight:bold;padding:.3em 0}
        td,th{padding:.2em .7em;text-align:right;border-bottom:1px solid #eee} td:first-child,th:first-child{text-align:left}
        tr.flagged td{background:#fff5f5;font-weight:bold} table.facts th{text-align:left;color:#555;font-weight:normal}
        </style></head><body>

        """
    }
}
