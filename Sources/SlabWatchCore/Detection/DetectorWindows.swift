/// One stretch of the ring the detector fits: a tier, the suffix of its slots
/// newer than `now − window`, and each driver's values there, centred once
/// and shared by every cache. Besides the global counters and time, every
/// inode cache whose object count moved by `minDriverChange` in the window is
/// a driver (`inodes`, of that cache), added only once some cache grew enough
/// in the window to be fitted (`addInodeCaches`): one that did not move cannot
/// pass, and a quiet machine's evaluation never reads their columns.
struct FittedWindow: Sendable {
    enum TierKind: Sendable { case fine, coarse }

    struct DriverColumn: Sendable {
        var driver: GrowthDriver
        /// The inode cache whose objects these are; nil for the global counters and time.
        var inodeCache: String?
        var centred: [Double]
        var values: [Double]
        var mean: Double
        var sxx: Double
        /// max − min over the window.
        var range: Double
        /// last − first.
        var change: Double
        /// Whether the driver rose like time here (`DetectorSettings.timeLikeRSquared`).
        var followsTime = false
    }

    let kind: TierKind
    let tier: SampleRing.Tier
    let start: Int
    let count: Int
    /// Span actually covered, first to last slot.
    let seconds: Double
    private(set) var drivers: [DriverColumn] = []
    private var driversAdded = false
    private var inodeCachesAdded = false

    /// The window with its drivers' columns (`addDrivers`), or without them
    /// until asked when `fitsDriversNow` is false.
    init(kind: TierKind, tier: SampleRing.Tier, start: Int, settings: DetectorSettings, fitsDriversNow: Bool = true) {
        self.kind = kind
        self.tier = tier
        self.start = start
        count = tier.count - start
        seconds = Double(elapsedMilliseconds(tier.time(at: tier.count - 1), since: tier.time(at: start))) / 1000
        timeLikeRSquared = settings.timeLikeRSquared
        if fitsDriversNow { addDrivers(settings) }
    }

    /// Reads the global drivers' columns here, once. A driver that
    /// `entersWhenMoved` gets a column only when it moved by its
    /// `minimumChange` here: it could not pass otherwise, and a quiet machine
    /// then fits only the file counts and time.
    mutating func addDrivers(_ settings: DetectorSettings) {
        guard !driversAdded else { return }
        driversAdded = true
        var columns: [DriverColumn] = []
        for driver in GrowthDriver.allCases {
            var values: [Double] = []
            values.reserveCapacity(count)
            for i in 0..<count {
                let position = start + i
                if let column = driver.ringCounter {
                    guard let value = tier.counter(column, at: position) else { break }
                    values.append(Double(value))
                } else {
                    values.append(Double(elapsedMilliseconds(tier.time(at: position), since: tier.time(at: start))) / 1000)
                }
            }
            guard let column = Self.column(driver, nil, values, count),
                  !driver.entersWhenMoved || column.range >= settings.minimumChange(for: driver)
            else { continue }
            columns.append(column)
        }
        drivers = columns
        for index in drivers.indices where drivers[index].driver != .time { markFollowsTime(&drivers[index]) }
    }

    private let timeLikeRSquared: Double

    /// Sets `followsTime`: the driver's R² against the window's time column.
    private func markFollowsTime(_ column: inout DriverColumn) {
        guard let time = drivers.last(where: { $0.driver == .time }), time.sxx > 0, column.sxx > 0 else { return }
        var sxt = 0.0
        for i in 0..<min(count, column.centred.count, time.centred.count) { sxt += column.centred[i] * time.centred[i] }
        column.followsTime = sxt > 0 && sxt * sxt / (column.sxx * time.sxx) >= timeLikeRSquared
    }

    /// Adds the inode caches (the ring's columns, by name; nil for a free
    /// column) whose object count moved by `minDriverChange` here and was
    /// present in every slot. Once.
    mutating func addInodeCaches(_ names: [String?], minDriverChange: Double) {
        guard !inodeCachesAdded else { return }
        inodeCachesAdded = true
        var values = [Double](repeating: 0, count: count)
        for (index, name) in names.enumerated() {
            guard let name, tier.copyInodeObjects(column: index, start: start, count: count, into: &values),
                  let low = values.min(), let high = values.max(), high - low >= minDriverChange,
                  var column = Self.column(.inodes, name, values, count)
            else { continue }
            markFollowsTime(&column)
            drivers.append(column)
        }
    }

    private static func column(_ driver: GrowthDriver, _ inodeCache: String?, _ values: [Double], _ count: Int) -> DriverColumn? {
        guard values.count == count, count >= 2 else { return nil }
        let mean = values.reduce(0, +) / Double(count)
        let centred = values.map { $0 - mean }
        let sxx = centred.reduce(0) { $0 + $1 * $1 }
        return DriverColumn(
            driver: driver, inodeCache: inodeCache, centred: centred, values: values, mean: mean, sxx: sxx,
            range: (values.max() ?? 0) - (values.min() ?? 0), change: values[count - 1] - values[0])
    }

    func time(_ index: Int) -> Int64 { tier.time(at: start + index) }

    /// Whether a series' last footprint is at least `bytes` above its first.
    func grows(series: Int, by bytes: Double) -> Bool {
        // The first footprint is at least its block's minimum, which the
        // block's header holds: a series that did not rise that far from the
        // minimum fails without its payload being read (a cache miss a
        // window at thousands of caches), and the answer is the same.
        guard let last = footprint(series: series, at: count - 1),
              let floor = tier.footprintFloor(series: series, at: start), Double(last) - Double(floor) >= bytes,
              let first = footprint(series: series, at: 0)
        else { return false }
        return Double(last) - Double(first) >= bytes
    }

    func footprint(series: Int, at index: Int) -> UInt64? { tier.footprint(series: series, at: start + index) }

    func driverValue(_ driver: GrowthDriver, inodeCache: String? = nil, at index: Int) -> Double {
        if driver == .time { return Double(time(index)) / 1000 }
        return drivers.first { $0.driver == driver && $0.inodeCache == inodeCache }?.values[index] ?? 0
    }

    func memory(_ column: SampleRing.Counter) -> [Double]? {
        var values: [Double] = []
        for i in 0..<count {
            guard let value = tier.counter(column, at: start + i) else { return nil }
            values.append(Double(value))
        }
        return values
    }
}

/// The windows one evaluation fits, shortest first, without duplicates.
///
/// A window reads the fine tier when that covers it, else the coarse tier;
/// a window covered less than half by either is skipped (a two-minute-old
/// daemon has no one-hour trend to report).
struct WindowSet: Sendable {
    /// The windows, their drivers not read until asked (`withDrivers`).
    private(set) var windows: [FittedWindow]
    private let inodeCaches: [String?]
    private let minDriverChange: Double
    private let settings: DetectorSettings

    /// Whether window `index` starts after `notBefore` and at or after
    /// `historyStart`, and `series` grows there by `bytes`
    /// (`FittedWindow.grows`): the quick test every cache takes in every
    /// window, read in place. Through `windows[index]` each of its three
    /// reads copied the whole window out of the array (perf: the detector's
    /// largest cost on a quiet machine).
    func quickTest(_ index: Int, series: Int, grows bytes: Double, after notBefore: Int64, from historyStart: Int64) -> Bool {
        windows.withUnsafeBufferPointer { windows in
            let start = windows[index].time(0)
            return start > notBefore && start >= historyStart && windows[index].grows(series: series, by: bytes)
        }
    }

    /// The window at `index` with its drivers. They are read on first use:
    /// an evaluation where no cache grows reads only the trend's window's,
    /// and reading every window's was most of a quiet evaluation's time.
    mutating func withDrivers(_ index: Int) -> FittedWindow {
        windows[index].addDrivers(settings)
        return windows[index]
    }

    /// The window at `index`, with its drivers and the inode caches' drivers added.
    mutating func withInodeCaches(_ index: Int) -> FittedWindow {
        windows[index].addDrivers(settings)
        windows[index].addInodeCaches(inodeCaches, minDriverChange: minDriverChange)
        return windows[index]
    }

    init(ring: SampleRing, now: Int64, settings: DetectorSettings) {
        inodeCaches = ring.inodeCacheNames
        minDriverChange = settings.minimumChange(for: .inodes)
        self.settings = settings
        var chosen: [FittedWindow] = []
        // Sorted only when configured out of order: a sorted copy is a heap allocation every evaluation.
        let configured = settings.windowsSeconds
        let inOrder = zip(configured, configured.dropFirst()).allSatisfy { $0 <= $1 }
        for seconds in inOrder ? configured : configured.sorted() {
            guard let (kind, tier) = Self.tier(for: seconds, ring: ring, now: now) else { continue }
            let cutoff = earlier(now, by: saturatingMilliseconds(seconds))
            var start = 0
            while start < tier.count && tier.time(at: start) < cutoff { start += 1 }
            guard tier.count - start >= settings.minPoints else { continue }
            if chosen.contains(where: { $0.kind == kind && $0.start == start }) { continue }
            chosen.append(FittedWindow(kind: kind, tier: tier, start: start, settings: settings, fitsDriversNow: false))
        }
        windows = chosen
    }

    private static func tier(for seconds: Double, ring: SampleRing, now: Int64)
        -> (FittedWindow.TierKind, SampleRing.Tier)?
    {
        // Two tiers, compared directly: an array of them would be a heap allocation a window every evaluation.
        func span(_ tier: SampleRing.Tier) -> Double {
            tier.count == 0 ? 0 : Double(elapsedMilliseconds(now, since: tier.time(at: 0))) / 1000
        }
        let (fine, coarse) = (span(ring.fine), span(ring.coarse))
        if fine >= 0.9 * seconds { return (.fine, ring.fine) }
        if coarse >= 0.9 * seconds { return (.coarse, ring.coarse) }
        // The wider, the fine tier on a tie (as `max` kept the first of equals).
        let widest: (FittedWindow.TierKind, SampleRing.Tier) = coarse > fine ? (.coarse, ring.coarse) : (.fine, ring.fine)
        guard WindowCoverage.covers(spanSeconds: max(fine, coarse), windowSeconds: seconds) else { return nil }
        return widest
    }
}

/// Where slab memory as a whole is heading: SUnreclaim and Slab against time
/// and each file driver over the longest window, and when SUnreclaim would
/// reach a share of MemTotal at its current rate (the `predict_linear` idea).
public struct SlabTrend: Sendable, Equatable {
    /// Which slab total a fit is of; the raw value is the `memory` label.
    public enum Memory: String, Sendable, CaseIterable, Comparable {
        case slab
        case slabUnreclaimable = "slab_unreclaimable"

        /// The ring column holding it.
        var counter: SampleRing.Counter {
            switch self {
            case .slab: .slabBytes
            case .slabUnreclaimable: .slabUnreclaimableBytes
            }
        }

        public static func < (a: Memory, b: Memory) -> Bool { a.rawValue < b.rawValue }
    }

    public struct Fit: Sendable, Equatable {
        public var memory: Memory
        public var driver: GrowthDriver
        public var bytesPerUnit: Double
        public var rSquared: Double
    }

    public var windowSeconds: Double
    public var fits: [Fit]
    /// SUnreclaim share of MemTotal the projection aims at, and that amount in bytes.
    public var limitShare: Double
    public var limitBytes: Double?
    /// Seconds until SUnreclaim reaches `limitBytes` at the current rate; nil when it is not rising.
    public var secondsToLimit: Double?

    static func fit(_ window: FittedWindow?, latest: Sample, limitShare: Double) -> SlabTrend? {
        guard let window else { return nil }
        var fits: [Fit] = []
        for memory in Memory.allCases {
            guard let y = window.memory(memory.counter) else { continue }
            for driver in window.drivers where driver.inodeCache == nil {
                guard let fit = LinearFit.fit(driver.values, y) else { continue }
                fits.append(Fit(memory: memory, driver: driver.driver, bytesPerUnit: fit.slope, rSquared: fit.rSquared))
            }
        }
        let limit = latest.meminfo?.totalBytes.map { Double($0) * limitShare }
        var seconds: Double?
        if let limit, let current = latest.meminfo?.slabUnreclaimableBytes,
           let rate = fits.first(where: { $0.memory == .slabUnreclaimable && $0.driver == .time }),
           rate.bytesPerUnit > 0 {
            seconds = max(0, (limit - Double(current)) / rate.bytesPerUnit)
        }
        return SlabTrend(windowSeconds: window.seconds, fits: fits, limitShare: limitShare,
                         limitBytes: limit, secondsToLimit: seconds)
    }
}
