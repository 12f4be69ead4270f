public import LinearRegex

/// `slabwatch top`: one screen of text from the latest sample, its history and
/// the detector's report — slabtop's table with what slabwatch knows on top:
/// growth per minute over the last 1 and 5 minutes, and for caches with a
/// finding its bytes per unit, R² and phase. Findings float to the top.
///
/// Pure: the terminal handling lives with the command. Lines never exceed
/// `width` (counted in characters; cache names are ASCII in practice, and any
/// control character in one is shown as `?` so it cannot move the cursor).
public enum TopView: Sendable {
    public enum SortKey: String, CaseIterable, Sendable {
        case footprint, growth, objects, size, name

        /// The key after this one (`s` in the interactive view).
        public var next: SortKey {
            let all = Self.allCases
            return all[(all.firstIndex(of: self)! + 1) % all.count]
        }
    }

    public struct Options: Sendable {
        public var sort = SortKey.footprint
        /// Only caches whose name matches (RE2 syntax, anywhere in the name).
        public var filterText = "" {
            didSet { filter = filterText.isEmpty ? nil : try? LinearRegex(".*(\(filterText)).*") }
        }
        /// Nil while `filterText` is empty or not a valid pattern (then nothing is filtered).
        public private(set) var filter: LinearRegex?
        public var width = 80
        /// Lines available; nil: every cache (`--once`).
        public var height: Int?
        /// ANSI colour and bold (a TTY without NO_COLOR).
        public var color = false
        public var intervalSeconds = 2.0
        /// Where the figures come from when not this kernel (`--url`).
        public var source: String?

        public init() {}
    }

    /// One table row before formatting.
    struct Row {
        var cache: SlabCache
        var perMinute1: Double?
        var perMinute5: Double?
        var finding: Finding?
        /// An open finding names this cache (the web page marks the row).
        var flagged = false
    }

    public static func render(sample: Sample, history: History, report: GrowthDetector.Report, options: Options) -> [String] {
        let open = Dictionary(report.findings.filter { $0.state == .open }.map { ($0.slab, $0) }, uniquingKeysWith: { a, _ in a })
        var rows = sample.caches.filter { options.filter?.wholeMatch($0.name) ?? true }.map { cache in
            Row(cache: cache, perMinute1: history.footprintPerMinute(cache.name, seconds: 60),
                perMinute5: history.footprintPerMinute(cache.name, seconds: 300), finding: open[cache.name])
        }
        rows.sort { a, b in
            if (a.finding != nil) != (b.finding != nil) { return a.finding != nil }
            return ordered(a, b, by: options.sort)
        }
        var lines = header(sample: sample, history: history, report: report, options: options, shown: rows.count)
        let layout = Layout(width: options.width, longestName: rows.map { clean($0.cache.name).count + 1 }.max() ?? 8)
        lines.append(style(fit(layout.header, options.width), bold: true, options))
        let room = options.height.map { max(0, $0 - lines.count) } ?? rows.count
        for row in rows.prefix(room) {
            let text = fit(layout.format(row), options.width)
            lines.append(row.finding != nil ? style(text, bold: true, options, color: "31") : text)
        }
        return lines
    }

    // MARK: figures

    private static func ordered(_ a: Row, _ b: Row, by key: SortKey) -> Bool {
        func tie() -> Bool { a.cache.name < b.cache.name }
        switch key {
        case .footprint: return a.cache.footprintBytes != b.cache.footprintBytes ? a.cache.footprintBytes > b.cache.footprintBytes : tie()
        case .growth:
            let x = a.perMinute5 ?? a.perMinute1 ?? -.infinity, y = b.perMinute5 ?? b.perMinute1 ?? -.infinity
            return x != y ? x > y : tie()
        case .objects: return a.cache.objects != b.cache.objects ? a.cache.objects > b.cache.objects : tie()
        case .size: return a.cache.objectSize != b.cache.objectSize ? a.cache.objectSize > b.cache.objectSize : tie()
        case .name: return tie()
        }
    }

    // MARK: text

    private static func header(sample: Sample, history: History, report: GrowthDetector.Report, options: Options, shown: Int) -> [String] {
        let m = sample.meminfo
        func bytes(_ value: UInt64?) -> String { value.map { Human.bytes(Double($0)) } ?? "?" }
        func count(_ value: UInt64?) -> String { value.map { Human.grouped(Double($0)) } ?? "?" }
        let slabTrend = history.counterPerMinute(.slabBytes, seconds: 300).map { " \(signed($0))/min" } ?? ""
        let unreclaimableTrend = history.counterPerMinute(.slabUnreclaimableBytes, seconds: 300).map { " \(signed($0))/min" } ?? ""
        let open = report.findings.filter { $0.state == .open }
        let critical = open.filter { $0.severity == .critical }.count
        let filter = options.filterText.isEmpty ? "" : "  filter: /\(clean(options.filterText))/"
        let source = options.source.map { " from \(clean($0))" } ?? ""
        let lines = [
            "slabwatch top\(source): \(shown) of \(sample.caches.count) caches, every \(interval(options.intervalSeconds)), \(String(RFC3339.format(unixMilliseconds: sample.timestampMilliseconds).dropFirst(11).prefix(8))) UTC  sort: \(options.sort.rawValue)\(filter)",
            "Mem \(bytes(m?.totalBytes)) total, \(bytes(m?.availableBytes)) available | Slab \(bytes(m?.slabBytes))\(slabTrend): reclaimable \(bytes(m?.slabReclaimableBytes)), unreclaimable \(bytes(m?.slabUnreclaimableBytes))\(unreclaimableTrend)",
            "Inodes \(count(sample.inodes?.inodes))  dentries \(count(sample.dentries?.dentries))  open files \(count(sample.fileHandles?.allocated)) | findings: \(open.count) open\(critical > 0 ? " (\(critical) critical)" : "")",
            "",
        ]
        return lines.map { fit($0, options.width) }
    }

    /// Which columns fit: all of them from 110 columns, else the essentials
    /// (an 80×24 terminal over ssh still shows the finding).
    struct Layout {
        var wide: Bool
        var nameWidth: Int

        init(width: Int, longestName: Int) {
            wide = width >= 110
            let fixed = wide ? 78 : 33
            nameWidth = max(12, min(longestName + 1, width - fixed - 30))  // 30: room for the finding
        }

        var header: String {
            pad("CACHE", nameWidth) + (wide ? right("OBJS ACT/TOTAL", 15) : "") + right("OBJSIZE", 9) + right("FOOTPRINT", 11)
                + (wide ? right("WASTE", 10) : "") + " R" + (wide ? right("+/min 1m", 11) : "") + right("+/min 5m", 11) + "  FINDING"
        }

        func format(_ row: Row) -> String {
            let c = row.cache
            var text = pad((row.finding != nil ? "!" : "") + clean(c.name), nameWidth)
            if wide { text += right("\(compact(c.activeObjects))/\(compact(c.objects))", 15) }
            text += right(Human.bytes(Double(c.objectSize)), 9) + right(Human.bytes(Double(c.footprintBytes)), 11)
            if wide { text += right(Human.bytes(Double(c.wasteBytes)), 10) }
            text += " " + (c.reclaimable.map { $0 ? "y" : "n" } ?? "?")
            if wide { text += right(row.perMinute1.map(signed) ?? "-", 11) }
            text += right(row.perMinute5.map(signed) ?? "-", 11)
            if let f = row.finding {
                text += "  \(Human.bytes(f.bytesPerUnit))/\(f.filesystem.map { "\($0) " } ?? "")\(f.driver.singular) R² \(Human.decimal(f.rSquared, 2)) \(f.phase.rawValue)"
                    + (f.classification == .undetermined ? "" : " \(f.classification.rawValue)")
            }
            return text
        }
    }

    // MARK: helpers

    /// 0.5 → "500 ms", 2 → "2 s", 90 → "1 min 30 s".
    static func interval(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : Human.duration(seconds)
    }

    static func signed(_ bytes: Double) -> String {
        if bytes.magnitude < 1 { return "0 B" }
        return (bytes > 0 ? "+" : "-") + Human.bytes(bytes.magnitude)
    }

    /// 1234567 → 1.2M: object counts in a fixed width.
    static func compact(_ value: UInt64) -> String {
        switch value {
        case ..<10_000: "\(value)"
        case ..<10_000_000: "\(value / 1000)k"
        default: "\(value / 1_000_000)M"
        }
    }

    /// Control characters (C0, DEL, C1) in a kernel-supplied name become `?`.
    static func clean(_ text: String) -> String { TerminalText.printable(text) }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width - 1)) + " " : text + String(repeating: " ", count: width - text.count)
    }

    static func right(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }

    public static func fit(_ text: String, _ width: Int) -> String { text.count > width ? String(text.prefix(width)) : text }

    private static func style(_ text: String, bold: Bool, _ options: Options, color: String? = nil) -> String {
        guard options.color else { return text }
        let codes = ([bold ? "1" : nil, color].compactMap { $0 }).joined(separator: ";")
        return "\u{1b}[\(codes)m\(text)\u{1b}[0m"
    }
}
