/// Kernel memory per memory cgroup over time: the readings of `CgroupMemory`
/// (one every `ProcReader.cgroupsEvery` samples), so that a finding can say
/// whose kernel memory rose with it (`ChargeRanking`).
///
/// Bounded whatever the cgroups do: `capacity` readings, each with at most
/// `columns` cgroups (a reading's largest: `sampler.max-cgroups`, at most
/// `maxColumns`) and the rest summed in one "other" value. A cgroup keeps its
/// column while it is among them; one that is not (removed, or fallen out of
/// the largest) gives its column, and its history with it, to the next new one.
/// A churning pod population therefore reuses columns and memory stays
/// `capacity × (columns + 2) × 8` bytes plus the names on cgroup v1.
///
/// On cgroup v2 the kernel also tells each cgroup's slab, reclaimable and
/// unreclaimable (`memory.stat`), so a finding on a cache can be ranked by
/// the cgroups' slab of the cache's own kind rather than by all their kernel
/// memory (page tables, stacks, sockets, per-CPU). Those two planes, with
/// "other"'s sums of them, are allocated at the first v2 reading (a v1 node
/// pays nothing): memory is then `capacity × (3 × columns + 4) × 8` bytes.
///
/// Not thread-safe: one owner (the pipeline).
public struct CgroupHistory: Sendable, Equatable {
    /// Readings kept: 720, at one a minute (the sampler's default 5 s × 12),
    /// the 12 hours of the ring's coarse tier.
    public static let defaultCapacity = 720
    /// The most columns the pipeline gives it, whatever `sampler.max-cgroups`
    /// exports: a finding is charged to cgroups whose kernel memory rose by
    /// as much as the cache, which puts them among a node's largest, and each
    /// column costs `capacity` × 8 bytes in memory and more in the state file
    /// (docs/cgroups.md, "Cardinality", has the figures).
    public static let maxColumns = 64

    public let capacity: Int
    /// Cgroups kept per reading; more in one reading are summed into "other".
    public let columns: Int
    /// The cgroup version of the newest reading.
    public private(set) var version: CgroupMemory.Version?
    /// Columns given to another cgroup so far (their history dropped).
    public private(set) var reusedColumns = 0
    /// Readings held, oldest first from position 0.
    public private(set) var count = 0

    private var start = 0
    private var times: [Int64]
    /// Per slot and column, bytes; `absent` where the cgroup was not read.
    private var values: [UInt64]
    private var others: [UInt64]
    /// v2's slab, laid out as `values` and `others`; nil until a v2 reading.
    private var slab: SlabPlanes?
    /// Per column: its cgroup's path, nil while free.
    private var names: [String?]
    /// Per column: the newest reading that held it.
    private var lastRead: [Int64]
    private var index: [String: Int] = [:]
    private static let absent = UInt64.max

    /// Which part of a v2 cgroup's slab.
    public enum SlabKind: Sendable, CaseIterable {
        case reclaimable, unreclaimable
    }

    /// The two slab planes of v2, each as wide as `values`, and "other"'s
    /// sums of them (`absent` where not known).
    private struct SlabPlanes: Sendable, Equatable {
        var reclaimable: [UInt64]
        var unreclaimable: [UInt64]
        var otherReclaimable: [UInt64]
        var otherUnreclaimable: [UInt64]

        init(capacity: Int, columns: Int) {
            reclaimable = Array(repeating: CgroupHistory.absent, count: capacity * columns)
            unreclaimable = reclaimable
            otherReclaimable = Array(repeating: CgroupHistory.absent, count: capacity)
            otherUnreclaimable = otherReclaimable
        }

        func cells(_ kind: SlabKind) -> [UInt64] { kind == .reclaimable ? reclaimable : unreclaimable }
        func others(_ kind: SlabKind) -> [UInt64] { kind == .reclaimable ? otherReclaimable : otherUnreclaimable }

        var storageBytes: Int { (reclaimable.count + unreclaimable.count + otherReclaimable.count + otherUnreclaimable.count) * 8 }
    }

    public init(capacity: Int = defaultCapacity, columns: Int = 50) {
        self.capacity = max(2, capacity)
        self.columns = max(0, columns)
        times = Array(repeating: 0, count: self.capacity)
        values = Array(repeating: Self.absent, count: self.capacity * self.columns)
        others = Array(repeating: Self.absent, count: self.capacity)
        names = Array(repeating: nil, count: self.columns)
        lastRead = Array(repeating: .min, count: self.columns)
    }

    /// The time of the reading at `position` (0 the oldest).
    public func time(at position: Int) -> Int64 { times[slot(position)] }

    /// The newest reading's time; nil while empty.
    public var newestTime: Int64? { count == 0 ? nil : time(at: count - 1) }

    /// The cgroups that hold a column, by column.
    public var cgroupNames: [String?] { names }

    /// The column of the cgroup at `path`, while it holds one.
    public func column(of path: String) -> Int? { index[path] }

    /// `column`'s kernel memory at `position`; nil where it was not read then.
    public func kernelBytes(column: Int, at position: Int) -> UInt64? {
        let value = values[slot(position) * columns + column]
        return value == Self.absent ? nil : value
    }

    /// The cgroups beyond the kept ones, summed, at `position`.
    public func otherKernelBytes(at position: Int) -> UInt64? {
        let value = others[slot(position)]
        return value == Self.absent ? nil : value
    }

    /// Whether the history holds v2's slab planes (it has seen a v2 reading).
    public var hasSlab: Bool { slab != nil }

    /// Whether any kept cgroup told its slab in the reading at `position` (a
    /// v2 reading kept since the planes were). "Other" alone does not count:
    /// its sum is 0 when nobody is beyond the kept ones.
    public func hasSlab(at position: Int) -> Bool {
        guard let slab else { return false }
        let row = slot(position)
        return SlabKind.allCases.contains { kind in slab.cells(kind)[row * columns..<(row + 1) * columns].contains { $0 != Self.absent } }
    }

    /// `column`'s v2 slab of `kind` at `position`; nil where it was not read
    /// then, or on v1.
    public func slabBytes(_ kind: SlabKind, column: Int, at position: Int) -> UInt64? {
        guard let slab else { return nil }
        let value = slab.cells(kind)[slot(position) * columns + column]
        return value == Self.absent ? nil : value
    }

    /// The cgroups beyond the kept ones' v2 slab of `kind`, summed, at
    /// `position`; nil where any of them did not tell it, or on v1.
    public func otherSlabBytes(_ kind: SlabKind, at position: Int) -> UInt64? {
        guard let slab else { return nil }
        let value = slab.others(kind)[slot(position)]
        return value == Self.absent ? nil : value
    }

    /// The first position at or after `time` minus one: the reading just
    /// before a window that starts at `time` is its baseline. Nil when empty.
    public func firstPosition(coveringFrom time: Int64) -> Int? {
        guard count > 0 else { return nil }
        var (low, high) = (0, count)
        while low < high {
            let middle = (low + high) / 2
            if self.time(at: middle) < time { low = middle + 1 } else { high = middle }
        }
        return max(0, low - 1)
    }

    /// Keeps `reading`, taken at `time`; a reading no newer than the newest
    /// kept is the same walk carried forward by later samples and is ignored.
    /// Returns whether it was kept.
    @discardableResult
    public mutating func append(_ reading: CgroupMemory, at time: Int64) -> Bool {
        if let newest = newestTime, time <= newest { return false }
        let row: Int
        if count < capacity {
            row = slot(count)
            count += 1
        } else {
            row = start
            start = (start + 1) % capacity
        }
        times[row] = time
        let base = row * columns
        for column in 0..<columns { values[base + column] = Self.absent }
        version = reading.version
        if reading.version == .v2, slab == nil { slab = SlabPlanes(capacity: capacity, columns: columns) }
        clearSlab(row: row)
        // The reading's largest (it is largest first) are candidates for the
        // columns; a wider reading's rest is other, so a cgroup that falls
        // out of the largest frees its column for one that rose into them.
        let candidates = reading.entries.prefix(columns)
        var other = OtherSums(reading)
        for entry in reading.entries.dropFirst(candidates.count) { other.add(entry) }
        // Cgroups that hold a column first, so a new one never takes the
        // column of one read in this same reading.
        var newcomers: [CgroupMemory.Entry] = []
        for entry in candidates {
            guard let column = index[entry.path] else { newcomers.append(entry); continue }
            place(entry, row: row, column: column, at: time)
        }
        for entry in newcomers {
            // One path, one column: a reading naming a cgroup twice sums the second into other.
            guard index[entry.path] == nil, let column = claimColumn(for: entry.path, now: time) else {
                other.add(entry)
                continue
            }
            place(entry, row: row, column: column, at: time)
        }
        others[row] = other.kernel
        if slab != nil {
            slab?.otherReclaimable[row] = Self.stored(other.reclaimable)
            slab?.otherUnreclaimable[row] = Self.stored(other.unreclaimable)
        }
        return true
    }

    /// `entry`'s figures in `column` of `row`.
    private mutating func place(_ entry: CgroupMemory.Entry, row: Int, column: Int, at time: Int64) {
        let cell = row * columns + column
        values[cell] = entry.kernelBytes
        if slab != nil {
            slab?.reclaimable[cell] = entry.slabReclaimableBytes ?? Self.absent
            slab?.unreclaimable[cell] = entry.slabUnreclaimableBytes ?? Self.absent
        }
        lastRead[column] = time
    }

    /// `row`'s slab cells, before a reading fills them.
    private mutating func clearSlab(row: Int) {
        guard slab != nil else { return }
        for cell in row * columns..<(row + 1) * columns {
            slab?.reclaimable[cell] = Self.absent
            slab?.unreclaimable[cell] = Self.absent
        }
        slab?.otherReclaimable[row] = Self.absent
        slab?.otherUnreclaimable[row] = Self.absent
    }

    /// "Other"'s figures as the cgroups beyond the kept ones are added to
    /// it, without an array: a slab sum is unknown once any part is.
    private struct OtherSums {
        var kernel: UInt64
        var reclaimable: UInt64?
        var unreclaimable: UInt64?

        init(_ reading: CgroupMemory) {
            kernel = reading.otherKernelBytes
            reclaimable = reading.otherSlabReclaimableBytes
            unreclaimable = reading.otherSlabUnreclaimableBytes
        }

        mutating func add(_ entry: CgroupMemory.Entry) {
            kernel = kernel.addingSaturating(entry.kernelBytes)
            reclaimable = reclaimable.flatMap { total in entry.slabReclaimableBytes.map { total.addingSaturating($0) } }
            unreclaimable = unreclaimable.flatMap { total in entry.slabUnreclaimableBytes.map { total.addingSaturating($0) } }
        }
    }

    /// A figure as a cell holds it: `absent` when unknown, a known one never
    /// taken for `absent`.
    private static func stored(_ value: UInt64?) -> UInt64 {
        guard let value else { return absent }
        return value == absent ? absent - 1 : value
    }

    /// A free column, else the one read longest ago (not in this reading),
    /// cleared of its old cgroup's history.
    private mutating func claimColumn(for path: String, now: Int64) -> Int? {
        var chosen: Int?
        for column in 0..<columns {
            if names[column] == nil { chosen = column; break }
            if lastRead[column] < now, chosen.map({ lastRead[column] < lastRead[$0] }) ?? true { chosen = column }
        }
        guard let column = chosen else { return nil }
        if let old = names[column] {
            index[old] = nil
            reusedColumns += 1
            for position in 0..<capacity {
                values[position * columns + column] = Self.absent
                slab?.reclaimable[position * columns + column] = Self.absent
                slab?.unreclaimable[position * columns + column] = Self.absent
            }
        }
        names[column] = path
        index[path] = column
        return column
    }

    private func slot(_ position: Int) -> Int { (start + position) % capacity }

    /// The same readings of the same cgroups in the same columns, wherever the ring starts.
    public static func == (a: CgroupHistory, b: CgroupHistory) -> Bool {
        guard a.capacity == b.capacity, a.columns == b.columns, a.version == b.version, a.reusedColumns == b.reusedColumns,
              a.count == b.count, a.names == b.names, a.lastRead == b.lastRead, a.hasSlab == b.hasSlab
        else { return false }
        return (0..<a.count).allSatisfy { position in
            a.time(at: position) == b.time(at: position) && a.others[a.slot(position)] == b.others[b.slot(position)]
                && (0..<a.columns).allSatisfy { a.values[a.slot(position) * a.columns + $0] == b.values[b.slot(position) * b.columns + $0] }
                && SlabKind.allCases.allSatisfy { kind in
                    a.otherSlabBytes(kind, at: position) == b.otherSlabBytes(kind, at: position)
                        && (0..<a.columns).allSatisfy { a.slabBytes(kind, column: $0, at: position) == b.slabBytes(kind, column: $0, at: position) }
                }
        }
    }

    /// Bytes the history keeps in its arrays (names aside): what the bound promises.
    public var storageBytes: Int { (times.count + values.count + others.count + lastRead.count) * 8 + (slab?.storageBytes ?? 0) }
}

// MARK: state file

extension CgroupHistory: Codable {
    private enum CodingKeys: String, CodingKey {
        case capacity, columns, version, reusedColumns, times, values, others, names, lastRead
        case slabReclaimable, slabUnreclaimable, otherSlabReclaimable, otherSlabUnreclaimable
    }

    /// Readings oldest first; a free column's name is empty (a path starts
    /// with `/`); a cell not read is `UInt64.max`, which every version reads
    /// (a daemon rolled back keeps its history), and the format's null reads
    /// as not read too. v2's slab planes only where the history has them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(capacity, forKey: .capacity)
        try c.encode(columns, forKey: .columns)
        try c.encode(version?.rawValue ?? "", forKey: .version)
        try c.encode(reusedColumns, forKey: .reusedColumns)
        try c.encode((0..<count).map { time(at: $0) }, forKey: .times)
        try c.encode(cells(values), forKey: .values)
        try c.encode(perReading(others), forKey: .others)
        if let slab {
            try c.encode(cells(slab.reclaimable), forKey: .slabReclaimable)
            try c.encode(cells(slab.unreclaimable), forKey: .slabUnreclaimable)
            try c.encode(perReading(slab.otherReclaimable), forKey: .otherSlabReclaimable)
            try c.encode(perReading(slab.otherUnreclaimable), forKey: .otherSlabUnreclaimable)
        }
        try c.encode(names.map { $0 ?? "" }, forKey: .names)
        try c.encode(lastRead, forKey: .lastRead)
    }

    /// A plane's cells, readings oldest first, `UInt64.max` where not read.
    private func cells(_ plane: [UInt64]) -> [UInt64] {
        (0..<count).flatMap { position in plane[slot(position) * columns..<(slot(position) + 1) * columns] }
    }

    /// One value per reading, oldest first, `UInt64.max` where not known.
    private func perReading(_ plane: [UInt64]) -> [UInt64] { (0..<count).map { plane[slot($0)] } }

    /// Checks every size and name, so a file that decodes but lies cannot
    /// make a later append trap.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func check(_ condition: Bool, _ what: String) throws {
            guard condition else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "cgroup history: \(what)"))
            }
        }
        let capacity = try c.decode(Int.self, forKey: .capacity)
        let columns = try c.decode(Int.self, forKey: .columns)
        // The daemon's bounds (sampler.max-cgroups at most 10,000, 720 readings) are
        // within these; a larger file is not one it wrote, and is refused before
        // anything is allocated for it.
        try check((2...100_000).contains(capacity) && (0...10_000).contains(columns) && capacity * columns <= 8_000_000,
                  "capacity \(capacity) × columns \(columns) out of range")
        let times = try c.decode([Int64].self, forKey: .times)
        let values = try c.decode([UInt64?].self, forKey: .values)
        let others = try c.decode([UInt64?].self, forKey: .others)
        let names = try c.decode([String].self, forKey: .names)
        let lastRead = try c.decode([Int64].self, forKey: .lastRead)
        try check(times.count <= capacity && values.count == times.count * columns && others.count == times.count,
                  "sizes do not agree")
        // v2's slab: all four planes or none (a file written before they were kept has none).
        let slabKeys: [CodingKeys] = [.slabReclaimable, .slabUnreclaimable, .otherSlabReclaimable, .otherSlabUnreclaimable]
        let slabPlanes = try slabKeys.compactMap { try c.decodeIfPresent([UInt64?].self, forKey: $0) }
        try check(slabPlanes.isEmpty || slabPlanes.count == slabKeys.count, "slab planes incomplete")
        if slabPlanes.count == slabKeys.count {
            try check(slabPlanes[0].count == values.count && slabPlanes[1].count == values.count
                          && slabPlanes[2].count == times.count && slabPlanes[3].count == times.count, "slab sizes do not agree")
            // The planes are allocated whole: the bound on cells holds for all three.
            try check(3 * capacity * columns <= 8_000_000, "capacity \(capacity) × columns \(columns) out of range with slab")
        }
        try check(names.count == columns && lastRead.count == columns, "columns do not agree")
        self.init(capacity: capacity, columns: columns)
        version = CgroupMemory.Version(rawValue: try c.decode(String.self, forKey: .version))
        reusedColumns = try c.decode(Int.self, forKey: .reusedColumns)
        try check(zip(times, times.dropFirst()).allSatisfy { $0 < $1 }, "readings out of order")
        let kept = names.filter { !$0.isEmpty }
        try check(Set(kept).count == kept.count, "a cgroup holds two columns")
        count = times.count
        self.times.replaceSubrange(0..<count, with: times)
        self.values.replaceSubrange(0..<values.count, with: values.map(Self.cell))
        self.others.replaceSubrange(0..<count, with: others.map(Self.cell))
        if slabPlanes.count == slabKeys.count {
            var slab = SlabPlanes(capacity: capacity, columns: columns)
            slab.reclaimable.replaceSubrange(0..<values.count, with: slabPlanes[0].map(Self.cell))
            slab.unreclaimable.replaceSubrange(0..<values.count, with: slabPlanes[1].map(Self.cell))
            slab.otherReclaimable.replaceSubrange(0..<count, with: slabPlanes[2].map(Self.cell))
            slab.otherUnreclaimable.replaceSubrange(0..<count, with: slabPlanes[3].map(Self.cell))
            self.slab = slab
        }
        self.names = names.map { $0.isEmpty ? nil : $0 }
        self.lastRead = lastRead
        index = Dictionary(uniqueKeysWithValues: self.names.enumerated().compactMap { column, name in name.map { ($0, column) } })
    }
}

extension CgroupHistory {
    /// A decoded cell: null (or `UInt64.max`, which older files wrote) is not read.
    fileprivate static func cell(_ value: UInt64?) -> UInt64 { value ?? absent }
}
