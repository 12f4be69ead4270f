/// Bounded, tiered, in-memory history of samples: what the detector reads.
///
/// Two tiers share one layout: a **fine** tier with every sample for a recent
/// window, and a **coarse** tier with every `coarseEvery`-th sample for hours.
/// Each slot stores the sample's time, its drivers (VFS counters, slab totals)
/// and the footprint of every known cache. Caches are **series** with stable ids;
/// a cache that appears later gets a new series, one that vanishes reads as absent.
///
/// Memory is fixed by the configuration and the number of series:
/// `(fine + coarse) × (series + drivers) × 8` bytes (see `storageBytes`).
/// Appending allocates nothing unless a new cache name needs a series beyond
/// the current capacity. Not thread-safe: one owner (the sampler) mutates it.
public struct SampleRing: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Slots in the fine tier (every sample).
        public var fineCapacity: Int
        /// Slots in the coarse tier.
        public var coarseCapacity: Int
        /// Every how many samples one is also kept in the coarse tier.
        public var coarseEvery: Int

        public init(fineCapacity: Int = 720, coarseCapacity: Int = 720, coarseEvery: Int = 12) {
            self.fineCapacity = max(1, fineCapacity)
            self.coarseCapacity = max(1, coarseCapacity)
            self.coarseEvery = max(1, coarseEvery)
        }
    }

    /// The per-sample values the detector regresses against, besides time.
    public enum Driver: Int, CaseIterable, Sendable {
        case inodes, dentries, openFiles, slabBytes, slabUnreclaimableBytes, slabReclaimableBytes
    }

    /// Marks "not measured in this sample" (cache absent, source down).
    public static let absent = UInt64.max

    public let configuration: Configuration
    public private(set) var fine: Tier
    public private(set) var coarse: Tier
    public private(set) var seriesNames: [String] = []
    private var seriesIndex: [String: Int] = [:]
    private var appended = 0

    public init(configuration: Configuration = .init(), initialSeriesCapacity: Int = 256) {
        self.configuration = configuration
        let width = max(1, initialSeriesCapacity)
        fine = Tier(capacity: configuration.fineCapacity, seriesCapacity: width)
        coarse = Tier(capacity: configuration.coarseCapacity, seriesCapacity: width)
        seriesNames.reserveCapacity(width)
        seriesIndex.reserveCapacity(width)
    }

    /// Bytes held by the tiers' storage (excludes series names).
    public var storageBytes: Int { fine.storageBytes + coarse.storageBytes }

    public func series(named name: String) -> Int? { seriesIndex[name] }

    /// Records one sample in the fine tier and, every `coarseEvery` samples, in the coarse one.
    public mutating func append(_ sample: Sample) {
        for cache in sample.caches where seriesIndex[cache.name] == nil {
            register(cache.name, keeping: sample)
        }
        let drivers = (
            sample.inodes?.inodes ?? Self.absent,
            sample.dentries?.dentries ?? Self.absent,
            sample.fileHandles?.allocated ?? Self.absent,
            sample.meminfo?.slabBytes ?? Self.absent,
            sample.meminfo?.slabUnreclaimableBytes ?? Self.absent,
            sample.meminfo?.slabReclaimableBytes ?? Self.absent)
        let row = fine.beginRow(time: sample.timestampMilliseconds, drivers: drivers)
        for cache in sample.caches {
            fine.set(row: row, series: seriesIndex[cache.name]!, value: cache.memoryBytes)
        }
        if appended % configuration.coarseEvery == 0 {
            coarse.copyRow(row, from: fine)
        }
        appended += 1
    }

    private mutating func register(_ name: String, keeping sample: Sample) {
        if let reused = recyclableSeries(keeping: sample) {
            seriesIndex[seriesNames[reused]] = nil
            seriesNames[reused] = name
            seriesIndex[name] = reused
            return
        }
        let id = seriesNames.count
        if id >= fine.seriesCapacity {
            let wider = fine.seriesCapacity * 2
            fine.widen(to: wider)
            coarse.widen(to: wider)
        }
        seriesNames.append(name)
        seriesIndex[name] = id
    }

    /// A series whose cache is absent from every stored slot (a module loaded
    /// and unloaded long ago) can hold a new cache; this keeps memory bounded
    /// on hosts that churn cache names.
    /// Series of caches in the sample being appended are never recycled (they
    /// may be new and so not stored anywhere yet).
    private func recyclableSeries(keeping sample: Sample) -> Int? {
        guard seriesNames.count >= fine.seriesCapacity else { return nil }
        return seriesNames.indices.first { id in
            fine.isAbsentEverywhere(id) && coarse.isAbsentEverywhere(id)
                && !sample.caches.contains { $0.name == seriesNames[id] }
        }
    }
}

extension SampleRing {
    /// One tier: a circular buffer of slots, oldest overwritten first.
    public struct Tier: Sendable {
        public let capacity: Int
        public private(set) var seriesCapacity: Int
        /// Number of slots filled (at most `capacity`).
        public private(set) var count = 0
        private var head = 0  // next slot to write
        private var times: [Int64]
        private var drivers: [UInt64]  // capacity × Driver.allCases.count
        /// Series-major: each series' slots are contiguous, so the detector reads
        /// a cache's history sequentially (slot-major strided by the number of
        /// caches and thrashed the CPU caches at a few thousand of them).
        private var footprints: [UInt64]  // seriesCapacity × capacity

        init(capacity: Int, seriesCapacity: Int) {
            self.capacity = capacity
            self.seriesCapacity = seriesCapacity
            times = Array(repeating: 0, count: capacity)
            drivers = Array(repeating: SampleRing.absent, count: capacity * Driver.allCases.count)
            footprints = Array(repeating: SampleRing.absent, count: capacity * seriesCapacity)
        }

        var storageBytes: Int { (times.count + drivers.count + footprints.count) * 8 }

        /// Physical slot of the `age`-th oldest sample (0 = oldest).
        private func slot(_ position: Int) -> Int {
            (head - count + position + capacity) % capacity
        }

        /// Time of the sample at `position` (0 = oldest), Unix milliseconds.
        public func time(at position: Int) -> Int64 { times[slot(position)] }

        /// A driver's value at `position`, or nil when it was not measured.
        public func driver(_ driver: Driver, at position: Int) -> UInt64? {
            let value = drivers[slot(position) * Driver.allCases.count + driver.rawValue]
            return value == SampleRing.absent ? nil : value
        }

        /// A series' footprint at `position`, or nil when the cache was absent.
        public func footprint(series: Int, at position: Int) -> UInt64? {
            guard series < seriesCapacity else { return nil }
            let value = footprints[series * capacity + slot(position)]
            return value == SampleRing.absent ? nil : value
        }

        /// Copies a series' footprints at positions `start..<start+count` into
        /// `values` as Doubles. False (and `values` partly written) when the
        /// cache is absent anywhere in the range. One pass, no per-slot modulo.
        func copyFootprints(series: Int, start: Int, count: Int, into values: inout [Double]) -> Bool {
            guard series < seriesCapacity else { return false }
            var slot = self.slot(start)
            return footprints.withUnsafeBufferPointer { storage in
                values.withUnsafeMutableBufferPointer { out in
                    let base = series * capacity
                    for i in 0..<count {
                        let value = storage[base + slot]
                        if value == SampleRing.absent { return false }
                        out[i] = Double(value)
                        slot += 1
                        if slot == capacity { slot = 0 }
                    }
                    return true
                }
            }
        }

        mutating func beginRow(
            time: Int64, drivers values: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        ) -> Int {
            let row = head
            times[row] = time
            let base = row * Driver.allCases.count
            drivers[base] = values.0
            drivers[base + 1] = values.1
            drivers[base + 2] = values.2
            drivers[base + 3] = values.3
            drivers[base + 4] = values.4
            drivers[base + 5] = values.5
            footprints.withUnsafeMutableBufferPointer { buffer in
                for series in 0..<seriesCapacity { buffer[series * capacity + row] = SampleRing.absent }
            }
            head = (head + 1) % capacity
            count = min(count + 1, capacity)
            return row
        }

        mutating func set(row: Int, series: Int, value: UInt64) {
            footprints[series * capacity + row] = value
        }

        mutating func copyRow(_ row: Int, from other: Tier) {
            let target = beginRow(time: other.times[row], drivers: (0, 0, 0, 0, 0, 0))
            let width = Driver.allCases.count
            for d in 0..<width { drivers[target * width + d] = other.drivers[row * width + d] }
            let columns = min(seriesCapacity, other.seriesCapacity)
            for s in 0..<columns {
                footprints[s * capacity + target] = other.footprints[s * other.capacity + row]
            }
        }

        /// Adds room for more series; existing series keep their slots as they are.
        mutating func widen(to newCapacity: Int) {
            footprints.append(contentsOf: repeatElement(SampleRing.absent, count: (newCapacity - seriesCapacity) * capacity))
            seriesCapacity = newCapacity
        }

        func isAbsentEverywhere(_ series: Int) -> Bool {
            (0..<count).allSatisfy { footprint(series: series, at: $0) == nil }
        }
    }
}
