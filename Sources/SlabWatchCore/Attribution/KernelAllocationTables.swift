/// The two places a kernel keeps allocation totals by call site itself, so
/// no event has to be streamed: a hist trigger on `kmem/kmem_cache_alloc` or
/// `kmem/kmalloc` (CONFIG_HIST_TRIGGERS), and /proc/allocinfo
/// (CONFIG_MEM_ALLOC_PROFILING, Linux 6.10 and later).
public enum KernelAllocationTables: Sendable {
    /// One row of a hist trigger keyed on `call_site.sym-offset` with
    /// `bytes_alloc` as a value:
    /// `{ call_site: [ffffffffa00bf6fe] hidraw_send_report+0x2a/0x60 [hid] } hitcount: 1  bytes_alloc: 8`
    public struct HistRow: Sendable, Equatable {
        public var function: String
        public var module: String?
        public var hits: UInt64
        public var bytes: UInt64
    }

    public struct HistTable: Sendable, Equatable {
        public var rows: [HistRow]
        /// `Dropped:` in the totals: entries the table had no room for.
        public var dropped: UInt64
        public var malformedLines: Int

        public init(rows: [HistRow], dropped: UInt64, malformedLines: Int) {
            self.rows = rows
            self.dropped = dropped
            self.malformedLines = malformedLines
        }
    }

    public static func parseHist(_ text: Substring) -> HistTable {
        var table = HistTable(rows: [], dropped: 0, malformedLines: 0)
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("Dropped:") {
                table.dropped = UInt64(trimmed.dropFirst(8).filter { $0 != " " }) ?? 0
                continue
            }
            guard trimmed.hasPrefix("{ call_site:") else { continue }
            guard let row = histRow(trimmed) else { table.malformedLines += 1; continue }
            table.rows.append(row)
        }
        return table
    }

    static func histRow(_ line: Substring) -> HistRow? {
        guard let close = line.firstIndex(of: "}") else { return nil }
        let key = line[line.index(line.startIndex, offsetBy: 12)..<close].split(separator: " ", omittingEmptySubsequences: true)
        // [address] symbol [module]
        guard key.count >= 2, key[0].hasPrefix("[") else { return nil }
        let symbol = Attribution.symbol(key[1], module: key.count > 2 && key[2].hasPrefix("[") ? key[2] : nil)
        var values: [Substring: UInt64] = [:]
        let tokens = line[line.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        var index = 0
        while index + 1 < tokens.count {
            if tokens[index].hasSuffix(":"), let value = UInt64(tokens[index + 1]) { values[tokens[index].dropLast()] = value; index += 2 } else { index += 1 }
        }
        guard let hits = values["hitcount"] else { return nil }
        return HistRow(function: symbol.function, module: symbol.module, hits: hits, bytes: values["bytes_alloc"] ?? values["bytes_req"] ?? 0)
    }

    /// A hist table as an attribution: gross allocations by call site (a
    /// trigger cannot match frees to allocations, so net is what was allocated).
    public static func attribution(cache: String, hist: HistTable, windowSeconds: Double) -> Attribution {
        let sites = hist.rows.map {
            Attribution.CallSite(function: $0.function, module: $0.module, allocations: $0.hits, frees: 0, netCount: Int64($0.hits),
                                 netBytes: Int64($0.bytes), share: 0, stacks: [])
        }
        return Attribution(cache: cache, source: .hist, callSites: Attribution.ranked(sites),
                           events: hist.rows.reduce(0) { $0 + $1.hits }, dropped: hist.dropped, windowSeconds: windowSeconds,
                           stopReason: .duration, malformedLines: UInt64(hist.malformedLines))
    }

    /// One line of /proc/allocinfo: `  72768  1137 fs/foo/bar.c:123 [foo] func:foo_attach_inode`
    /// (version 2.0 marks inaccurate counters with `*` or ` accurate:no`).
    public struct AllocInfoRow: Sendable, Equatable, Hashable {
        public var bytes: Int64
        public var calls: UInt64
        public var location: String
        public var module: String?
        public var function: String
    }

    public static func parseAllocInfo(_ text: Substring) -> (rows: [AllocInfoRow], malformedLines: Int)? {
        let lines = text.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("allocinfo - version: ") else { return nil }
        var rows: [AllocInfoRow] = []
        var malformed = 0
        for line in lines.dropFirst() where !line.hasPrefix("#") && !line.hasPrefix("<size>") {
            guard let row = allocInfoRow(line) else { malformed += 1; continue }
            rows.append(row)
        }
        return (rows, malformed)
    }

    static func allocInfoRow(_ line: Substring) -> AllocInfoRow? {
        let tokens = line.split(separator: " ", omittingEmptySubsequences: true)
        guard tokens.count >= 4, let bytes = Int64(tokens[0].filter { $0 != "*" }), let calls = UInt64(tokens[1].filter { $0 != "*" }),
              let function = tokens.first(where: { $0.hasPrefix("func:") })?.dropFirst(5), !function.isEmpty else { return nil }
        let module = tokens[3].hasPrefix("[") && tokens[3].hasSuffix("]") ? String(tokens[3].dropFirst().dropLast()) : nil
        return AllocInfoRow(bytes: bytes, calls: calls, location: String(tokens[2]), module: module, function: String(function))
    }

    /// Call sites ranked by how much their bytes grew between two reads.
    public static func attribution(cache: String, from before: [AllocInfoRow], to after: [AllocInfoRow],
                                   windowSeconds: Double, top: Int = 20) -> Attribution {
        struct Key: Hashable { var location: String; var function: String; var module: String? }
        var earlier: [Key: AllocInfoRow] = [:]
        for row in before { earlier[Key(location: row.location, function: row.function, module: row.module)] = row }
        let sites = after.compactMap { row -> Attribution.CallSite? in
            let old = earlier[Key(location: row.location, function: row.function, module: row.module)]
            let grown = row.bytes - (old?.bytes ?? 0)
            guard grown > 0 else { return nil }
            let calls = row.calls >= (old?.calls ?? 0) ? row.calls - (old?.calls ?? 0) : 0
            return Attribution.CallSite(function: "\(row.function) (\(row.location))", module: row.module, allocations: calls, frees: 0,
                                        netCount: Int64(calls), netBytes: grown, share: 0, stacks: [])
        }
        return Attribution(cache: cache, source: .allocinfo, callSites: Array(Attribution.ranked(sites).prefix(top)),
                           events: 0, dropped: 0, windowSeconds: windowSeconds, stopReason: .duration)
    }
}
