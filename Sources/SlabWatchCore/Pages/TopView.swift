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
        // Derived series (memory outside the caches, Percpu) get rows too: a finding on one must show, and
        // their rows say they are no cache (no objects, no size, no waste).
        var rows = sample.caches.filter { options.filter?.wholeMatch($0.name) ?? true }.map { cache in
            Row(cache: cache, perMinute1: history.footprintPerMinute(cache.name, seconds: 60),
                perMinute5: history.footprintPerMinute(cache.name, seconds: 300), finding: open[cache.name])
        }
        rows.sort { a, b in
            if (a.finding != nil) != (b.finding != nil) { return a.finding != nil }
            return ordered(a, b, by: options.sort)
        }
        var lines = header(sample: sample, history: history, report: report, options: options, shown: rows.count { !$0.cache.isDerived })
        let room = options.height.map { max(0, $0 - lines.count - 1) } ?? rows.count
        let shown = rows.prefix(room)
        let layout = Layout(width: options.width, rows: shown)
        lines.append(style(fit(layout.header, options.width), bold: true, options))
        for row in shown {
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
            "slabwatch top\(source): \(shown) of \(sample.caches.count { !$0.isDerived }) caches, every \(interval(options.intervalSeconds)), \(String(RFC3339.format(unixMilliseconds: sample.timestampMilliseconds).dropFirst(11).prefix(8))) UTC  sort: \(options.sort.rawValue)\(filter)",
            "Mem \(bytes(m?.totalBytes)) total, \(bytes(m?.availableBytes)) available | Slab \(bytes(m?.slabBytes))\(slabTrend): reclaimable \(bytes(m?.slabReclaimableBytes)), unreclaimable \(bytes(m?.slabUnreclaimableBytes))\(unreclaimableTrend)",
            "Inodes \(count(sample.inodes?.inodes))  dentries \(count(sample.dentries?.dentries))  open files \(count(sample.fileHandles?.allocated)) | findings: \(open.count) open\(critical > 0 ? " (\(critical) critical)" : "")",
            "",
        ]
        return lines.map { fit($0, options.width) }
    }

    /// Which columns a screen of `width` holds, and how wide the names are.
    ///
    /// Names get their room first: the longest shown, up to `nameCap`, so a
    /// narrow terminal does not cut `kmalloc-cg-512` to `kmalloc-cg-`.
    /// A flagged row's `!` has a column of its own, so it never takes a
    /// character of a name, and a flagged name is never cut to the cap. Then
    /// the finding, then the other columns in `priority` order while they
    /// fit; last, the finding's R², then who is charged for it (`→ foo.service
    /// 92 %`). A finding too long for its room loses who is charged first,
    /// then its R², and only then its end.
    struct Layout {
        /// The columns between the name and the finding, in screen order.
        enum Column: CaseIterable {
            case objects, size, footprint, waste, reclaimable, growth1, growth5

            var width: Int {
                switch self {
                case .objects: 15
                case .size: 9
                case .footprint, .growth1, .growth5: 11
                case .waste: 10
                case .reclaimable: 2
                }
            }

            var title: String {
                switch self {
                case .objects: "OBJS ACT/TOTAL"
                case .size: "OBJSIZE"
                case .footprint: "FOOTPRINT"
                case .waste: "WASTE"
                case .reclaimable: "R"
                case .growth1: "+/min 1m"
                case .growth5: "+/min 5m"
                }
            }
        }

        /// Which columns get room first, after the names and the finding.
        static let priority: [Column] = [.growth5, .footprint, .reclaimable, .size, .growth1, .objects, .waste]
        /// Between the finding and the column before it.
        static let findingGap = 2

        /// 1 when a shown row is flagged (the `!` column), else 0: its room
        /// is kept either way (after the name), so no column moves when a finding opens.
        let flagWidth: Int
        let nameWidth: Int
        let columns: [Column]
        /// Room for the finding text; 0 without the column.
        let findingWidth: Int

        /// The most a name gets unless it is flagged: a third of the line, and
        /// never fewer than 32 characters (longer than the kernel's own names).
        static func nameCap(_ width: Int) -> Int { max(32, width / 3) }

        init(width: Int, rows: some Collection<Row>) {
            let findings = rows.compactMap(\.finding)
            flagWidth = findings.isEmpty ? 0 : 1
            nameWidth = Self.nameWidth(rows, width: width)
            var left = width - nameWidth - 2  // the name, a space, and the flag's room (before the name when drawn, else after it)
            var finding = 0
            if !findings.isEmpty {
                finding = min(max(Self.longest(findings, rSquared: false), "FINDING".count), max(0, left - Self.findingGap))
                if finding > 0 { left -= Self.findingGap + finding }
            }
            var chosen: Set<Column> = []
            for column in Self.priority where column.width <= left {
                chosen.insert(column)
                left -= column.width
            }
            if finding > 0 {
                let full = Self.longest(findings, rSquared: true)
                if full > finding, full - finding <= left { finding = full }  // R² last, when it fits
                let charged = Self.longest(findings, rSquared: true, charged: true)
                if finding == full, charged > finding, charged - finding <= left { finding = charged }  // then who is charged
            } else if findings.isEmpty, left >= Self.findingGap + "FINDING".count {
                finding = "FINDING".count  // the title of an empty column, where there is room
            }
            columns = Column.allCases.filter(chosen.contains)
            findingWidth = finding
        }

        /// The longest name shown, up to the cap; a flagged name whole; never wider than the line.
        private static func nameWidth(_ rows: some Collection<Row>, width: Int) -> Int {
            let longest = rows.map { clean($0.cache.name).count }.max() ?? 0
            let flagged = rows.filter { $0.finding != nil }.map { clean($0.cache.name).count }.max() ?? 0
            return max(1, min(max(min(longest, nameCap(width)), flagged), width - 2))
        }

        private static func longest(_ findings: [Finding], rSquared: Bool, charged: Bool = false) -> Int {
            findings.map { findingText($0, rSquared: rSquared, charged: charged).count }.max() ?? 0
        }

        var header: String {
            var text = pad("CACHE", nameWidth + 2)
            for column in columns { text += right(column.title, column.width) }
            return findingWidth > 0 ? text + String(repeating: " ", count: Self.findingGap) + "FINDING" : text
        }

        func format(_ row: Row) -> String {
            let c = row.cache
            var text = flagWidth == 0 ? "" : row.finding != nil ? "!" : " "
            text += pad(Self.shortened(clean(c.name), to: nameWidth), nameWidth + 2 - flagWidth)
            for column in columns {
                let cell: String =
                    switch column {
                    // No cache: no objects to count or size. (A `where` binds to one pattern only.)
                    case .objects where c.isDerived, .size where c.isDerived, .waste where c.isDerived: "-"
                    case .objects: "\(compact(c.activeObjects))/\(compact(c.objects))"
                    case .size: Human.bytes(Double(c.objectSize))
                    case .footprint: Human.bytes(Double(c.footprintBytes))
                    case .waste: Human.bytes(Double(c.wasteBytes))
                    case .reclaimable where c.isDerived: c.reclaimable.map { $0 ? "y" : "n" } ?? "-"  // Percpu: in neither counter
                    case .reclaimable: c.reclaimable.map { $0 ? "y" : "n" } ?? "?"
                    case .growth1: row.perMinute1.map(signed) ?? "-"
                    case .growth5: row.perMinute5.map(signed) ?? "-"
                    }
                text += right(cell, column.width)
            }
            if let f = row.finding, findingWidth > 0 {
                let shown = [Self.findingText(f, rSquared: true, charged: true), Self.findingText(f, rSquared: true)].first { $0.count <= findingWidth }
                    ?? String(Self.findingText(f, rSquared: false).prefix(findingWidth))
                text += String(repeating: " ", count: Self.findingGap) + shown
            }
            return text
        }

        /// `512 B/tmpfs inode R² 0.99 falling tracks-eviction`; without R² when
        /// asked, and with the cgroup charged most when asked and known
        /// (`… → foo.service 92 %`).
        static func findingText(_ f: Finding, rSquared: Bool, charged: Bool = false) -> String {
            "\(Human.bytes(f.bytesPerUnit))/\(f.filesystem.map { "\($0) " } ?? "")\(f.driver.singular)"
                + (rSquared ? " R² \(Human.decimal(f.rSquared, 2))" : "") + " \(f.phase.rawValue)"
                + (f.classification == .undetermined ? "" : " \(f.classification.rawValue)")
                + (charged ? chargedText(f.charged) : "")
        }

        /// ` → foo.service 92 %`, ` → pod 1d3a8e2c 92 %`: the cgroup charged
        /// most by the name its owner knows (a unit, a pod by its UID's start,
        /// a container by its short id, else the path's last part); empty
        /// where nobody is named.
        static func chargedText(_ charged: ChargedCgroups?) -> String {
            guard let charged, charged.source != .notAccounted, let top = charged.top else { return "" }
            let owner = top.owner
            let name = owner?.unit ?? owner?.podUID.map { "pod \($0.prefix(8))" }
                ?? owner?.containerID.map { "\(owner?.runtime ?? "container") \($0.prefix(12))" }
                ?? String(top.cgroup.split(separator: "/").last ?? "/")
            return " → \(clean(name)) \(Human.decimal(top.share * 100, 0)) %"
        }

        /// A name longer than `width` keeps its start and its end, joined by
        /// `~`: caches that differ only at the end (`kmalloc-cg-192`,
        /// `kmalloc-cg-512`) stay apart.
        static func shortened(_ name: String, to width: Int) -> String {
            guard name.count > width else { return name }
            guard width >= 3 else { return String(name.prefix(width)) }
            let tail = (width - 1) / 2
            return String(name.prefix(width - 1 - tail)) + "~" + String(name.suffix(tail))
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
