/// Bounded, tiered, in-memory history of samples: what the detector reads.
///
/// Two tiers share one layout: a **fine** tier with every sample for a recent
/// window, and a **coarse** tier with every `coarseEvery`-th sample for hours.
/// Each slot stores the sample's time, its counters (VFS counters, slab totals),
/// the footprint of every known cache, and the active objects of up to 32
/// inode caches (`inodeCaches`): those counts are drivers too, one per
/// filesystem (InodeCacheColumns.swift says which caches hold them).
/// Caches are **series** with stable ids; a cache that appears later gets a
/// new series, one that vanishes reads as absent.
///
/// Memory follows the configuration, the number of series and how much they
/// move (see `storageBytes`): each slot's time and counters raw; per series,
/// each tier's newest block of up to 64 slots raw (4 bytes a slot) and every
/// older block packed (`PackedColumns`: 8 bytes, plus the bits the range the
/// series moved in that block needs, 0 for one that did not move).
/// Appending allocates nothing in the steady state unless a new cache name
/// needs a series beyond the current capacity, or a block moves more than
/// the one it replaces. Not thread-safe: one owner (the sampler) mutates it.
public struct SampleRing: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Slots in the fine tier (every sample).
        public var fineCapacity: Int
        /// Slots in the coarse tier.
        public var coarseCapacity: Int
        /// Every how many samples one is also kept in the coarse tier.
        public var coarseEvery: Int
        /// At most this many series: beyond it, a new cache takes the series of
        /// the cache seen longest ago, whose history is dropped. At most
        /// `maximumSeries` (the packed blocks' bound; `sampler.max-caches`
        /// allows 1.25 million).
        public var maxSeries: Int
        public static let maximumSeries = 2_000_000

        public init(fineCapacity: Int = 720, coarseCapacity: Int = 720, coarseEvery: Int = 12, maxSeries: Int = 2560) {
            self.fineCapacity = max(1, fineCapacity)
            self.coarseCapacity = max(1, coarseCapacity)
            self.coarseEvery = max(1, coarseEvery)
            self.maxSeries = min(max(1, maxSeries), Self.maximumSeries)
        }
    }

    /// System-wide values stored per slot: the file counters (inodes, dentries,
    /// open files, negative dentries), the slab totals the trend fits
    /// (Slab, SUnreclaim, SReclaimable), and the counts of sockets, threads
    /// and memory cgroups (all, and dying). New counters go last: a state file
    /// finds its columns by name, but the order is the slot's layout.
    public enum Counter: Int, CaseIterable, Sendable {
        case inodes, dentries, openFiles, slabBytes, slabUnreclaimableBytes, slabReclaimableBytes, negativeDentries,
             sockets, tasks, memoryCgroups, dyingMemoryCgroups

        /// The column's name in a state file, which keeps the counters by
        /// name: a counter added later reads as absent from an older file.
        var stateKey: String {
            switch self {
            case .inodes: "inodes"
            case .dentries: "dentries"
            case .openFiles: "openFiles"
            case .slabBytes: "slabBytes"
            case .slabUnreclaimableBytes: "slabUnreclaimableBytes"
            case .slabReclaimableBytes: "slabReclaimableBytes"
            case .negativeDentries: "negativeDentries"
            case .sockets: "sockets"
            case .tasks: "tasks"
            case .memoryCgroups: "memoryCgroups"
            case .dyingMemoryCgroups: "dyingMemoryCgroups"
            }
        }

        /// The columns of a state file that names none (written before the
        /// names were): these six, in this order.
        static let unnamedStateOrder: [Counter] =
            [.inodes, .dentries, .openFiles, .slabBytes, .slabUnreclaimableBytes, .slabReclaimableBytes]

        /// The counter's value in one sample; nil when its source was down.
        /// The one place that says which field of a sample each column holds
        /// (the detector's drivers read their values through it too).
        public func value(in sample: Sample) -> UInt64? {
            switch self {
            case .inodes: sample.inodes?.inodes
            case .dentries: sample.dentries?.dentries
            case .openFiles: sample.fileHandles?.allocated
            case .slabBytes: sample.meminfo?.slabBytes
            case .slabUnreclaimableBytes: sample.meminfo?.slabUnreclaimableBytes
            case .slabReclaimableBytes: sample.meminfo?.slabReclaimableBytes
            case .negativeDentries: sample.dentries?.negativeDentries
            case .sockets: Self.sockets(in: sample)
            case .tasks: sample.tasks?.threads
            case .memoryCgroups: sample.memoryCgroups?.total
            case .dyingMemoryCgroups: sample.memoryCgroups?.dying
            }
        }

        /// The cache with one object per socket, in every network namespace.
        public static let socketCache = "sock_inode_cache"

        /// Every socket of the kernel: `sock_inode_cache`'s objects (one
        /// `socket_alloc` each, whatever the namespace) when that cache is
        /// listed on its own; merged with others its count is theirs too, and
        /// the daemon's namespace's `sockets: used` is the best left.
        static func sockets(in sample: Sample) -> UInt64? {
            if let cache = sample.caches.first(where: { $0.name == socketCache }), cache.aliases.isEmpty {
                return cache.activeObjects
            }
            return sample.sockets?.used
        }
    }

    /// Marks "not measured in this sample" (cache absent, source down).
    public static let absent = UInt64.max
    /// Footprints are whole pages, and every Linux page size is a multiple of
    /// 4 KiB, so the ring stores them in 4 KiB units in 32 bits (up to 16 TiB
    /// per cache): half the memory of bytes in 64 bits.
    static let footprintUnit: UInt64 = 4096
    static let absentFootprint = UInt32.max

    public let configuration: Configuration
    public internal(set) var fine: Tier
    public internal(set) var coarse: Tier
    public private(set) var seriesNames: [String] = []
    private(set) var seriesIndex: [String: Int] = [:]
    /// The append at which each series' cache was last present, and the
    /// coarse copy it was last present in (`Int.min` for none): together they
    /// say in O(1) whether any stored slot still holds the series.
    private var lastSeen: [Int] = []
    private var lastCoarse: [Int] = []
    private(set) var appended = 0
    private var coarseCopies = 0
    private let initialWidth: Int
    /// Series whose history was dropped to make room (`maxSeries`).
    public private(set) var evictedSeries = 0
    /// The series of each cache of the last append, by its position in that
    /// sample (`findSeries`); a hint checked on use, never saved.
    private var seriesByPosition: [Int] = []
    private static let noSeries = -1
    // The inode-cache columns' bookkeeping; their rules are in InodeCacheColumns.swift.
    /// Each series' inode-cache column: `undecided` until the series' cache
    /// is next appended, then a column, `notInodeCache`, or `waiting` (an
    /// inode cache that no column has been given yet). Deciding once per
    /// name keeps the regex off the per-tick path.
    var inodeColumn: [Int] = []
    static let undecided = -2
    static let notInodeCache = -1
    static let waiting = -3
    /// The inode caches whose object counts the tiers keep, by column; nil
    /// where a column is free (its cache vanished).
    public internal(set) var inodeCacheNames: [String?] = []
    var inodeCacheIndex: [String: Int] = [:]
    /// Inode caches waiting for a column, by name: since which append, and
    /// the range their count moved meanwhile. Only caches of the latest
    /// sample: one that vanishes stops waiting (its count starts afresh).
    var waitingInodeCaches: [String: WaitingInodeCache] = [:]
    /// The waiting caches present in the sample being appended (reused).
    var waitingNow: [WaitingCandidate] = []
    /// Which caches count inodes: `Pipeline.Settings.detector.inodeCaches`,
    /// which the ring follows (`follow`). Changing it forgets the counts kept
    /// so far: a column means one cache for as long as the ring holds it.
    public internal(set) var inodeCaches = InodeCacheSelector.standard {
        didSet {
            guard inodeCaches != oldValue else { return }
            inodeCacheNames = []
            inodeCacheIndex = [:]
            waitingInodeCaches = [:]
            inodeColumn = Array(repeating: Self.undecided, count: seriesNames.count)
            fine.clearObjects()
            coarse.clearObjects()
        }
    }
    /// How far an inode cache's count must move to count as moving when
    /// columns are scarce (`DetectorSettings.minDriverChange`, see `follow`).
    public private(set) var inodeCacheMinimumMove = DetectorSettings().minDriverChange

    /// Takes what the detector's settings say about inode caches: which
    /// caches count inodes, and how far a count must move before it can
    /// drive a finding (and so deserves a column more than one that did not).
    /// `Pipeline` is the one caller, so the ring never follows other rules
    /// than its detector's.
    mutating func follow(_ settings: DetectorSettings) {
        inodeCaches = settings.inodeCaches
        inodeCacheMinimumMove = settings.minimumChange(for: .inodes)
    }

    public init(configuration: Configuration = .init(), initialSeriesCapacity: Int = 256) {
        self.configuration = configuration
        let width = max(1, min(initialSeriesCapacity, configuration.maxSeries))
        initialWidth = width
        fine = Tier(capacity: configuration.fineCapacity, seriesCapacity: width)
        coarse = Tier(capacity: configuration.coarseCapacity, seriesCapacity: width)
        seriesNames.reserveCapacity(width)
        seriesIndex.reserveCapacity(width)
    }

    /// Bytes held by the tiers' storage (excludes series names).
    public var storageBytes: Int { fine.storageBytes + coarse.storageBytes }

    public func series(named name: String) -> Int? { seriesIndex[name] }

    /// The series of the cache at `position` of the last appended sample,
    /// which is `name`: taken from where `append` found it, without hashing
    /// the name, when that series is the name's; else as `series(named:)`.
    public func series(ofCacheAt position: Int, named name: String) -> Int? {
        if position < seriesByPosition.count {
            let guess = seriesByPosition[position]
            if guess >= 0 && guess < seriesNames.count && seriesNames[guess] == name { return guess }
        }
        return seriesIndex[name]
    }

    /// Records one sample in the fine tier and, every `coarseEvery` samples, in the coarse one.
    public mutating func append(_ sample: Sample) {
        shrinkIfSparse()
        // Caches of this sample are present now: none of them may give its series away.
        findSeries(of: sample.caches)
        for (position, cache) in sample.caches.enumerated() where seriesByPosition[position] == Self.noSeries {
            // Once one cache finds no room, none after it can: every series
            // left belongs to this sample. Stopping keeps an oversized sample
            // from scanning every series for each cache over the limit.
            // A name listed twice (not by the parser) has its series after the first.
            if seriesIndex[cache.name] == nil, !register(cache.name) { break }
            seriesByPosition[position] = seriesIndex[cache.name] ?? Self.noSeries
        }
        let row = fine.beginRow(time: sample.timestampMilliseconds)
        for counter in Counter.allCases { fine.set(row: row, counter, value: counter.value(in: sample) ?? Self.absent) }
        let toCoarse = appended % configuration.coarseEvery == 0
        for (position, cache) in sample.caches.enumerated() {
            let series = seriesByPosition[position]
            guard series != Self.noSeries else { continue }  // over maxSeries in this very sample
            fine.set(row: row, series: series, value: cache.footprintBytes)
            lastSeen[series] = appended
            if toCoarse { lastCoarse[series] = coarseCopies }
            if inodeColumn[series] == Self.undecided { inodeColumn[series] = decideInodeColumn(cache) }
            if inodeColumn[series] >= 0 {
                fine.setObjects(row: row, column: inodeColumn[series], value: cache.activeObjects)
            } else if inodeColumn[series] == Self.waiting {
                noteWaiting(cache, series: series)
            }
        }
        // No cache at all means the cache sources are down, not that every cache vanished.
        if !sample.caches.isEmpty {
            freeVanishedColumns(toCoarse: toCoarse)
            if !waitingInodeCaches.isEmpty { giveColumnsToWaiting(row: row) }
        }
        waitingNow.removeAll(keepingCapacity: true)
        if toCoarse {
            coarse.copyRow(row, from: fine)
            coarseCopies += 1
        }
        appended += 1
    }

    /// Sets `seriesByPosition` to each cache's series (`noSeries` for none
    /// yet) and marks each as seen now. A cache at the position it held in
    /// the last append is checked against that series' name, the same string
    /// on a steady tick (one pointer compare), and hashed only when it moved
    /// or is new: `seriesNames` and `seriesIndex` map each other one to one,
    /// so a name that matches is that series whatever happened in between
    /// (a shrink, a restore, an eviction).
    private mutating func findSeries(of caches: [SlabCache]) {
        let known = min(seriesByPosition.count, caches.count)
        seriesByPosition.removeLast(seriesByPosition.count - known)
        for position in caches.indices {
            let name = caches[position].name
            let guess = position < known ? seriesByPosition[position] : Self.noSeries
            let series = guess >= 0 && guess < seriesNames.count && seriesNames[guess] == name
                ? guess : seriesIndex[name] ?? Self.noSeries
            if position < known { seriesByPosition[position] = series } else { seriesByPosition.append(series) }
            if series != Self.noSeries { lastSeen[series] = appended }
        }
    }

    /// A series whose cache has left both tiers is reused first; at
    /// `maxSeries`, the series seen longest ago is evicted (its history
    /// dropped); otherwise the tiers widen. A cache of the sample being
    /// appended never loses its series.
    /// Returns false when there is no room: every series is this sample's.
    private mutating func register(_ name: String) -> Bool {
        let full = seriesNames.count >= min(fine.seriesCapacity, configuration.maxSeries)
        let (stored, gone) = full ? reusableSeries() : (nil, nil)
        if let reused = gone ?? (seriesNames.count >= configuration.maxSeries ? stored : nil) {
            if gone == nil {
                fine.clear(series: reused)
                coarse.clear(series: reused)
                evictedSeries += 1
            }
            seriesIndex[seriesNames[reused]] = nil
            seriesNames[reused] = name
            seriesIndex[name] = reused
            lastSeen[reused] = appended
            lastCoarse[reused] = .min
            inodeColumn[reused] = Self.undecided
            return true
        }
        guard seriesNames.count < configuration.maxSeries else { return false }
        let id = seriesNames.count
        if id >= fine.seriesCapacity {
            let wider = min(fine.seriesCapacity * 2, max(configuration.maxSeries, fine.seriesCapacity + 1))
            fine.widen(to: wider)
            coarse.widen(to: wider)
        }
        seriesNames.append(name)
        seriesIndex[name] = id
        lastSeen.append(appended)
        lastCoarse.append(.min)
        inodeColumn.append(Self.undecided)
        return true
    }

    /// The series not in the sample under way that was seen longest ago, among
    /// those still stored somewhere and among those stored nowhere.
    private func reusableSeries() -> (stored: Int?, gone: Int?) {
        var stored: Int?, gone: Int?
        for series in lastSeen.indices where lastSeen[series] < appended {
            if isLive(series) {
                if stored.map({ lastSeen[series] < lastSeen[$0] }) ?? true { stored = series }
            } else if gone.map({ lastSeen[series] < lastSeen[$0] }) ?? true {
                gone = series
            }
        }
        return (stored, gone)
    }

    /// Whether a stored slot (after the append under way) may still hold the series.
    private func isLive(_ series: Int) -> Bool {
        appended - lastSeen[series] < configuration.fineCapacity
            || (lastCoarse[series] != .min && coarseCopies - lastCoarse[series] <= configuration.coarseCapacity)
    }

    /// Gives memory back after a burst of short-lived caches: when at most a
    /// quarter of a widened ring's series are live, the tiers are rebuilt at
    /// half the width with the live series only.
    private mutating func shrinkIfSparse() {
        let width = fine.seriesCapacity
        guard width > initialWidth, appended % 64 == 0 else { return }
        let live = seriesNames.indices.filter(isLive)
        guard live.count <= width / 4 else { return }
        let newWidth = max(initialWidth, width / 2)
        fine = fine.keeping(series: live, width: newWidth)
        coarse = coarse.keeping(series: live, width: newWidth)
        seriesNames = live.map { seriesNames[$0] }
        lastSeen = live.map { lastSeen[$0] }
        lastCoarse = live.map { lastCoarse[$0] }
        inodeColumn = live.map { inodeColumn[$0] }
        seriesIndex = Dictionary(uniqueKeysWithValues: seriesNames.enumerated().map { ($1, $0) })
    }
}

extension SampleRing {
    /// One tier: a circular buffer of slots, oldest dropped first. Times and
    /// counters are kept raw; footprints and inode-cache counts are kept
    /// packed in blocks (`PackedColumns`), which hold a few more slots than
    /// `capacity` between two evictions: every read sees exactly the newest
    /// `count` (at most `capacity`), whatever the blocks still hold.
    public struct Tier: Sendable {
        public let capacity: Int
        public var seriesCapacity: Int { footprints.columns }
        /// Number of slots filled (at most `capacity`).
        public private(set) var count = 0
        private var head = 0  // next slot to write
        private var times: [Int64]
        private var counters: [UInt64]  // capacity × Counter.allCases.count
        /// Each series' footprint in footprintUnits, a column per series: the
        /// detector reads a cache's history a block at a time.
        private var footprints: PackedColumns
        /// Active objects of each inode cache, a column each like `footprints`
        /// (saturating just below the absent marker: 4 billion inodes).
        private var objects: PackedColumns
        public var objectColumns: Int { objects.columns }

        init(capacity: Int, seriesCapacity: Int) {
            self.capacity = capacity
            times = Array(repeating: 0, count: capacity)
            counters = Array(repeating: SampleRing.absent, count: capacity * Counter.allCases.count)
            footprints = PackedColumns(columns: seriesCapacity, capacity: capacity)
            objects = PackedColumns(columns: 0, capacity: capacity)
        }

        /// Bytes held: the raw times and counters, and the packed columns as they are now.
        var storageBytes: Int {
            heapBytes(times.count, of: Int64.self) + heapBytes(counters.count, of: UInt64.self)
                + footprints.storageBytes + objects.storageBytes
        }

        /// The packed footprint blocks' bytes and the footprint values they
        /// hold (the newest block, kept raw, left out): what a value costs
        /// packed, as the bench reports it.
        public var packedFootprints: (bytes: Int, values: Int) { footprints.packedSize }

        /// Physical slot of the `age`-th oldest sample (0 = oldest).
        private func slot(_ position: Int) -> Int {
            (head - count + position + capacity) % capacity
        }

        /// The packed columns' sequence number of the sample at `position`.
        private func sequence(_ position: Int) -> Int { footprints.end - count + position }

        /// Time of the sample at `position` (0 = oldest), Unix milliseconds.
        public func time(at position: Int) -> Int64 { times[slot(position)] }

        /// A driver's value at `position`, or nil when it was not measured.
        public func counter(_ counter: Counter, at position: Int) -> UInt64? {
            let value = counters[slot(position) * Counter.allCases.count + counter.rawValue]
            return value == SampleRing.absent ? nil : value
        }

        /// A series' footprint at `position`, or nil when the cache was absent.
        @inline(__always)
        public func footprint(series: Int, at position: Int) -> UInt64? {
            guard (0..<count).contains(position) else { return nil }
            let value = footprints.value(column: series, at: sequence(position))
            return value == SampleRing.absentFootprint ? nil : UInt64(value) * SampleRing.footprintUnit
        }

        /// A footprint no present footprint of the series at `position` is
        /// below (its packed block's minimum), nil when it is absent for
        /// certain: a cheap bound that never unpacks.
        @inline(__always)
        func footprintFloor(series: Int, at position: Int) -> UInt64? {
            guard (0..<count).contains(position) else { return nil }
            let value = footprints.floor(column: series, at: sequence(position))
            return value == SampleRing.absentFootprint ? nil : UInt64(value) * SampleRing.footprintUnit
        }

        /// An inode cache's active objects at `position`, or nil when it was absent.
        public func inodeObjects(column: Int, at position: Int) -> UInt64? {
            guard (0..<count).contains(position) else { return nil }
            let value = objects.value(column: column, at: sequence(position))
            return value == SampleRing.absentFootprint ? nil : UInt64(value)
        }

        /// Copies an inode cache's object counts at positions
        /// `start..<start+count` into `values`; false when absent anywhere there.
        func copyInodeObjects(column: Int, start: Int, count: Int, into values: inout [Double]) -> Bool {
            copy(objects, column: column, start: start, count: count, scale: 1, into: &values)
        }

        /// Copies a series' footprints at positions `start..<start+count` into
        /// `values` as Doubles. False (and `values` partly written) when the
        /// cache is absent anywhere in the range.
        func copyFootprints(series: Int, start: Int, count: Int, into values: inout [Double]) -> Bool {
            copy(footprints, column: series, start: start, count: count, scale: Double(SampleRing.footprintUnit), into: &values)
        }

        private func copy(_ columns: PackedColumns, column: Int, start: Int, count: Int, scale: Double,
                          into values: inout [Double]) -> Bool {
            guard start >= 0, count >= 0, start + count <= self.count, count <= values.count else { return false }
            return values.withUnsafeMutableBufferPointer { out in
                columns.copy(column: column, from: sequence(start), count: count, scale: scale, into: out)
            }
        }

        /// Takes the oldest slot (or a free one) for a sample at `time`:
        /// every counter, footprint and inode-cache count in it absent until set.
        /// The row it returns is the newest: only the newest row can be set.
        mutating func beginRow(time: Int64) -> Int {
            let row = head
            times[row] = time
            let width = Counter.allCases.count
            for counter in 0..<width { counters[row * width + counter] = SampleRing.absent }
            footprints.beginSlot()
            objects.beginSlot()
            head = (head + 1) % capacity
            count = min(count + 1, capacity)
            return row
        }

        mutating func set(row: Int, _ counter: Counter, value: UInt64) {
            counters[row * Counter.allCases.count + counter.rawValue] = value
        }

        /// Stores a footprint in bytes (rounded up to whole 4 KiB units; a
        /// footprint beyond 16 TiB saturates just below the absent marker)
        /// in the newest row, the one `beginRow` returned.
        mutating func set(row: Int, series: Int, value: UInt64) {
            assert(row == newestRow, "only the newest row is written")
            let units = value / SampleRing.footprintUnit + (value % SampleRing.footprintUnit == 0 ? 0 : 1)
            footprints.setNewest(column: series, UInt32(min(units, UInt64(SampleRing.absentFootprint - 1))))
        }

        /// Stores an inode cache's object count in the newest row.
        mutating func setObjects(row: Int, column: Int, value: UInt64) {
            assert(row == newestRow, "only the newest row is written")
            objects.setNewest(column: column, UInt32(min(value, UInt64(SampleRing.absentFootprint - 1))))
        }

        private var newestRow: Int { (head - 1 + capacity) % capacity }

        /// Appends `other`'s row `row` (a stored one) as this tier's newest.
        mutating func copyRow(_ row: Int, from other: Tier) {
            let target = beginRow(time: other.times[row])
            let width = Counter.allCases.count
            for d in 0..<width { counters[target * width + d] = other.counters[row * width + d] }
            let source = other.sequence((row - (other.head - other.count) + 2 * other.capacity) % other.capacity)
            for s in 0..<min(seriesCapacity, other.seriesCapacity) {
                footprints.setNewest(column: s, other.footprints.value(column: s, at: source))
            }
            for c in 0..<min(objectColumns, other.objectColumns) {
                objects.setNewest(column: c, other.objects.value(column: c, at: source))
            }
        }

        /// Adds inode-cache columns, absent in every slot so far.
        mutating func widenObjects(to columns: Int) {
            objects.widen(to: columns)
        }

        mutating func clearObjects() {
            objects = PackedColumns(columns: 0, capacity: capacity, start: footprints.end)
        }

        /// Marks one inode-cache column absent in every slot.
        mutating func clearObjects(column: Int) {
            objects.clear(column: column)
        }

        /// How far an inode cache's count moved (highest − lowest) over the
        /// slots that hold it, and how many slots there are from the oldest
        /// of them to the newest slot; nil when none holds it.
        func objectMovement(column: Int) -> (range: UInt64, slots: Int)? {
            var low = UInt64.max, high = UInt64.min, first: Int?
            for position in 0..<count {
                guard let value = inodeObjects(column: column, at: position) else { continue }
                first = first ?? position
                low = min(low, value)
                high = max(high, value)
            }
            return first.map { (high - low, count - $0) }
        }

        /// Adds room for more series; existing series keep their slots as they are.
        mutating func widen(to newCapacity: Int) {
            footprints.widen(to: newCapacity)
        }

        mutating func clear(series: Int) {
            footprints.clear(column: series)
        }

        /// A copy holding only `series` (renumbered 0, 1, … in that order), `width` wide.
        func keeping(series: [Int], width: Int) -> Tier {
            var copy = self
            copy.footprints = footprints.keeping(series, width: width, from: sequence(0), capacity: capacity)
            return copy
        }
    }
}

// MARK: state file

extension SampleRing.Configuration: Codable {}

extension SampleRing: Codable {
    private enum CodingKeys: String, CodingKey {
        case configuration, fine, coarse, seriesNames, lastSeen, lastCoarse, appended, coarseCopies, initialWidth, evictedSeries
        case inodeColumn, inodeCacheNames, inodeCachesPattern, inodeCachesExclude
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(fine, forKey: .fine)
        try c.encode(coarse, forKey: .coarse)
        try c.encode(seriesNames, forKey: .seriesNames)
        try c.encode(lastSeen, forKey: .lastSeen)
        try c.encode(lastCoarse, forKey: .lastCoarse)
        try c.encode(appended, forKey: .appended)
        try c.encode(coarseCopies, forKey: .coarseCopies)
        try c.encode(initialWidth, forKey: .initialWidth)
        try c.encode(evictedSeries, forKey: .evictedSeries)
        // A waiting cache is decided again after a restore (older readers know no `waiting`).
        try c.encode(inodeColumn.map { $0 == Self.waiting ? Self.undecided : $0 }, forKey: .inodeColumn)
        try c.encode(inodeCacheNames, forKey: .inodeCacheNames)
        try c.encode(inodeCaches.pattern, forKey: .inodeCachesPattern)
        try c.encode(inodeCaches.excludePattern, forKey: .inodeCachesExclude)
    }

    /// Checks every invariant the ring's index arithmetic relies on, so a
    /// state file that decodes but lies cannot make a later append trap.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        fine = try c.decode(Tier.self, forKey: .fine)
        coarse = try c.decode(Tier.self, forKey: .coarse)
        seriesNames = try c.decode([String].self, forKey: .seriesNames)
        lastSeen = try c.decode([Int].self, forKey: .lastSeen)
        lastCoarse = try c.decode([Int].self, forKey: .lastCoarse)
        appended = try c.decode(Int.self, forKey: .appended)
        coarseCopies = try c.decode(Int.self, forKey: .coarseCopies)
        initialWidth = try c.decode(Int.self, forKey: .initialWidth)
        evictedSeries = try c.decode(Int.self, forKey: .evictedSeries)
        // State written before inode caches were followed has neither: every series is undecided.
        inodeColumn = try c.decodeIfPresent([Int].self, forKey: .inodeColumn)
            ?? Array(repeating: Self.undecided, count: seriesNames.count)
        inodeCacheNames = try c.decodeIfPresent([String?].self, forKey: .inodeCacheNames) ?? []
        let followed = inodeCacheNames.enumerated().compactMap { column, name in name.map { ($0, column) } }
        inodeCacheIndex = Dictionary(followed, uniquingKeysWith: { first, _ in first })
        // Before columns were freed, an inode cache that found all 32 taken
        // was marked as none: with every column taken, each such mark is decided again.
        if inodeCacheNames.count == InodeCacheSelector.maximumCaches && !inodeCacheNames.contains(nil) {
            inodeColumn = inodeColumn.map { $0 == Self.notInodeCache ? Self.undecided : $0 }
        }
        // The selector that chose these columns, so a restart with the same
        // configuration keeps them (an owner with another one starts afresh).
        if let pattern = try c.decodeIfPresent(String.self, forKey: .inodeCachesPattern),
           let exclude = try c.decodeIfPresent(String.self, forKey: .inodeCachesExclude) {
            do { inodeCaches = try InodeCacheSelector(pattern: pattern, excludePattern: exclude) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "ring: \(error)"))
            }
        }
        seriesIndex = Dictionary(seriesNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        func check(_ condition: Bool, _ what: String) throws {
            guard condition else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "ring: \(what)")) }
        }
        try check(fine.capacity == configuration.fineCapacity && coarse.capacity == configuration.coarseCapacity, "tier capacity differs from its configuration")
        try check(fine.seriesCapacity == coarse.seriesCapacity, "tiers of different widths")
        try check(seriesNames.count <= fine.seriesCapacity && seriesNames.count <= configuration.maxSeries, "more series than room")
        try check(seriesIndex.count == seriesNames.count, "duplicate series names")
        try check(lastSeen.count == seriesNames.count && lastCoarse.count == seriesNames.count, "series bookkeeping of the wrong length")
        try check(appended >= 0 && coarseCopies >= 0 && lastSeen.allSatisfy { $0 <= appended }, "appends out of order")
        try check(initialWidth >= 1 && initialWidth <= fine.seriesCapacity, "initial width out of range")
        try check(inodeColumn.count == seriesNames.count
                  && inodeColumn.allSatisfy { $0 >= Self.undecided && $0 < inodeCacheNames.count }, "inode-cache columns out of range")
        try check(inodeColumn.indices.allSatisfy { inodeColumn[$0] < 0 || inodeCacheNames[inodeColumn[$0]] == seriesNames[$0] },
                  "a series' inode-cache column holds another cache")
        try check(inodeCacheIndex.count == followed.count && inodeCacheNames.count <= InodeCacheSelector.maximumCaches,
                  "duplicate or too many inode caches")
        try check(fine.objectColumns == inodeCacheNames.count && coarse.objectColumns == inodeCacheNames.count,
                  "inode-cache columns differ from the tiers'")
        // The counters follow from the number of appends; a file that says
        // otherwise (or says Int.max, which the next append would overflow) lies.
        try check(configuration.coarseEvery >= 1 && (1...Configuration.maximumSeries).contains(configuration.maxSeries),
                  "configuration out of range")
        try check(appended <= Self.maximumAppends, "\(appended) appends")
        try check(coarseCopies == (appended + configuration.coarseEvery - 1) / configuration.coarseEvery, "coarse copies disagree with the appends")
        try check(fine.count == min(appended, fine.capacity), "fine tier disagrees with the appends")
        try check(coarse.count == min(coarseCopies, coarse.capacity), "coarse tier disagrees with the appends")
        try check(lastSeen.allSatisfy { $0 >= 0 } && lastCoarse.allSatisfy { $0 == .min || (0...coarseCopies).contains($0) },
                  "series seen outside the appends")
        let evictable = appended.multipliedReportingOverflow(by: configuration.maxSeries)
        try check(evictedSeries >= 0 && (evictable.overflow || evictedSeries <= evictable.partialValue), "\(evictedSeries) evicted series")
    }

    /// More appends than one a millisecond since 2000 for a century: a
    /// restored count beyond it is damage, and below it the count never overflows.
    static let maximumAppends = 1 << 42
}

extension SampleRing.Tier: Codable {
    private enum CodingKeys: String, CodingKey {
        case capacity, seriesCapacity, count, head, times, counters, counterNames, footprints, objectColumns, objects
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(capacity, forKey: .capacity)
        try c.encode(seriesCapacity, forKey: .seriesCapacity)
        try c.encode(count, forKey: .count)
        try c.encode(head, forKey: .head)
        try c.encode(StateColumn(times.map { UInt64(bitPattern: $0) }), forKey: .times)
        try c.encode(StateColumn(counters), forKey: .counters)
        try c.encode(SampleRing.Counter.allCases.map(\.stateKey), forKey: .counterNames)
        // Raw, slot-major per column as before the columns were packed, so
        // a state file reads the same in either version.
        try c.encode(StateColumn(raw(footprints)), forKey: .footprints)
        try c.encode(objectColumns, forKey: .objectColumns)
        try c.encode(StateColumn(raw(objects)), forKey: .objects)
    }

    /// `columns` unpacked: `columns × capacity` values, each column's
    /// stored slots at their physical slot, absent in slots not yet filled.
    private func raw(_ columns: PackedColumns) -> [UInt32] {
        var raw = [UInt32](repeating: SampleRing.absentFootprint, count: columns.columns * capacity)
        // Positions 0..<count sit at slots oldest…capacity−1, then 0…: two runs a column.
        let oldest = slot(0), firstRun = min(count, capacity - oldest)
        raw.withUnsafeMutableBufferPointer { raw in
            for column in 0..<columns.columns {
                let base = raw.baseAddress! + column * capacity
                columns.copyRaw(column: column, from: sequence(0), count: firstRun,
                                into: UnsafeMutableBufferPointer(start: base + oldest, count: firstRun))
                columns.copyRaw(column: column, from: sequence(firstRun), count: count - firstRun,
                                into: UnsafeMutableBufferPointer(start: base, count: count - firstRun))
            }
        }
        return raw
    }

    /// Packed columns holding `raw` (as `raw(_:)` lays it out) for the stored slots.
    private static func packed(_ raw: [UInt32], columns: Int, capacity: Int, count: Int, head: Int) -> PackedColumns {
        var packed = PackedColumns(columns: columns, capacity: capacity)
        for position in 0..<count {
            let slot = (head - count + position + capacity) % capacity
            packed.beginSlot()
            for column in 0..<columns { packed.setNewest(column: column, raw[column * capacity + slot]) }
        }
        return packed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        capacity = try c.decode(Int.self, forKey: .capacity)
        let seriesCapacity = try c.decode(Int.self, forKey: .seriesCapacity)
        count = try c.decode(Int.self, forKey: .count)
        head = try c.decode(Int.self, forKey: .head)
        times = try c.decode(StateColumn<UInt64>.self, forKey: .times).words.map { Int64(bitPattern: $0) }
        let names = try c.decodeIfPresent([String].self, forKey: .counterNames)
            ?? SampleRing.Counter.unnamedStateOrder.map(\.stateKey)
        let saved = try c.decode(StateColumn<UInt64>.self, forKey: .counters).words
        let footprints = try c.decode(StateColumn<UInt32>.self, forKey: .footprints).words
        let objectColumns = try c.decodeIfPresent(Int.self, forKey: .objectColumns) ?? 0
        let objects = try c.decodeIfPresent(StateColumn<UInt32>.self, forKey: .objects)?.words ?? []
        let counterCells = capacity.multipliedReportingOverflow(by: names.count)
        guard capacity >= 1, seriesCapacity >= 1, (0...capacity).contains(count), (0..<capacity).contains(head),
              times.count == capacity, !counterCells.overflow, saved.count == counterCells.partialValue,
              Set(names).count == names.count,
              footprints.count == capacity * seriesCapacity,
              (0...InodeCacheSelector.maximumCaches).contains(objectColumns), objects.count == capacity * objectColumns
        else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "ring tier: sizes do not agree")) }
        counters = Self.counters(saved, named: names, slots: capacity)
        self.footprints = Self.packed(footprints, columns: seriesCapacity, capacity: capacity, count: count, head: head)
        self.objects = Self.packed(objects, columns: objectColumns, capacity: capacity, count: count, head: head)
    }

    /// A file's counter columns (slot-major, `names.count` a slot) in this
    /// version's layout: each counter from the column of its name, absent
    /// where the file has none; columns this version does not know are dropped.
    private static func counters(_ saved: [UInt64], named names: [String], slots: Int) -> [UInt64] {
        let current = SampleRing.Counter.allCases.map(\.stateKey)
        if names == current { return saved }
        let source = current.map { names.firstIndex(of: $0) }
        var counters: [UInt64] = []
        counters.reserveCapacity(slots * current.count)
        for slot in 0..<slots {
            for column in source { counters.append(column.map { saved[slot * names.count + $0] } ?? SampleRing.absent) }
        }
        return counters
    }
}
