import Testing
@testable import SlabWatchCore

/// The tier keeps footprints and inode-cache counts packed in blocks; these
/// tests hold it to a plain model that keeps every value as it was set.
struct PackedTierTests {
    /// Every slot as set, oldest first: what a tier must read like.
    struct ReferenceTier {
        struct Slot {
            var time: Int64
            var counters: [UInt64?]
            var footprints: [UInt32?]
            var objects: [UInt32?]
        }

        let capacity: Int
        var seriesCapacity: Int
        var objectColumns = 0
        var slots: [Slot] = []

        mutating func begin(time: Int64) {
            slots.append(Slot(time: time, counters: Array(repeating: nil, count: SampleRing.Counter.allCases.count),
                              footprints: Array(repeating: nil, count: seriesCapacity),
                              objects: Array(repeating: nil, count: objectColumns)))
            if slots.count > capacity { slots.removeFirst() }
        }

        mutating func set(series: Int, bytes: UInt64) {
            let units = (bytes / 4096) + (bytes % 4096 == 0 ? 0 : 1)
            slots[slots.count - 1].footprints[series] = UInt32(min(units, UInt64(UInt32.max - 1)))
        }

        mutating func set(column: Int, objects: UInt64) {
            slots[slots.count - 1].objects[column] = UInt32(min(objects, UInt64(UInt32.max - 1)))
        }

        mutating func widen(to width: Int) {
            for i in slots.indices { slots[i].footprints += Array(repeating: nil, count: width - seriesCapacity) }
            seriesCapacity = width
        }

        mutating func clear(series: Int) {
            for i in slots.indices { slots[i].footprints[series] = nil }
        }

        mutating func widenObjects(to columns: Int) {
            guard columns > objectColumns else { return }
            for i in slots.indices { slots[i].objects += Array(repeating: nil, count: columns - objectColumns) }
            objectColumns = columns
        }

        mutating func clearObjects(column: Int) {
            for i in slots.indices where column < objectColumns { slots[i].objects[column] = nil }
        }

        mutating func clearObjects() {
            for i in slots.indices { slots[i].objects = [] }
            objectColumns = 0
        }

        mutating func keep(_ kept: [Int], width: Int) {
            for i in slots.indices {
                let old = slots[i].footprints
                slots[i].footprints = kept.map { old[$0] } + Array(repeating: nil, count: width - kept.count)
            }
            seriesCapacity = width
        }

        func bytes(_ units: UInt32?) -> UInt64? { units.map { UInt64($0) * 4096 } }
    }

    /// A deterministic source of the values a slab series takes: mostly the
    /// same as before, sometimes a small or a large move, sometimes absent,
    /// sometimes at the top of the 32-bit range (saturation, and the code
    /// just below the absent marker).
    struct Values {
        var state: UInt64

        mutating func next(_ bound: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 33) % bound
        }

        mutating func chance(_ percent: UInt64) -> Bool { next(100) < percent }

        /// The next footprint in bytes after `previous`, or nil for absent.
        mutating func footprint(after previous: UInt64) -> UInt64? {
            switch next(100) {
            case 0..<4: return nil
            case 4..<70: return previous
            case 70..<85: return previous + next(5) * 4096
            case 85..<90: return previous > 8192 ? previous - 4096 * next(2) : previous
            case 90..<94: return next(1 << 40)  // a jump anywhere
            case 94..<96: return (UInt64(UInt32.max) - 1 - next(3)) * 4096  // at the top of the range
            case 96..<98: return 16 << 40 + next(1 << 20)  // beyond it: saturates
            default: return next(4096) + 1  // not a whole unit: rounds up
            }
        }
    }

    /// A fine and a coarse tier and their models, driven by the same random
    /// operations as the ring drives its tiers: the coarse one takes every
    /// third fine row, and both are reshaped together.
    struct Tiers {
        var fine: SampleRing.Tier
        var coarse: SampleRing.Tier
        var fineModel: ReferenceTier
        var coarseModel: ReferenceTier
        var values: Values
        var last: [UInt64] = []
        var time: Int64 = 0
        var appended = 0

        init(capacity: Int, width: Int, seed: UInt64) {
            fine = SampleRing.Tier(capacity: capacity, seriesCapacity: width)
            coarse = SampleRing.Tier(capacity: max(1, capacity / 2), seriesCapacity: width)
            fineModel = ReferenceTier(capacity: capacity, seriesCapacity: width)
            coarseModel = ReferenceTier(capacity: max(1, capacity / 2), seriesCapacity: width)
            values = Values(state: seed)
            last = Array(repeating: 4096 * 100, count: width)
        }

        /// One sample: its counters, every series and inode column, or absent.
        mutating func append() {
            time += 1 + Int64(values.next(3))
            let row = fine.beginRow(time: time)
            fineModel.begin(time: time)
            for counter in SampleRing.Counter.allCases where values.chance(90) {
                let value = values.next(1 << 40)
                fine.set(row: row, counter, value: value)
                fineModel.slots[fineModel.slots.count - 1].counters[counter.rawValue] = value
            }
            for series in 0..<fine.seriesCapacity {
                guard let bytes = values.footprint(after: last[series]) else { continue }
                last[series] = bytes
                fine.set(row: row, series: series, value: bytes)
                fineModel.set(series: series, bytes: bytes)
            }
            for column in 0..<fine.objectColumns where values.chance(95) {
                let objects = values.chance(3) ? UInt64(UInt32.max) + values.next(3) : values.next(200)
                fine.setObjects(row: row, column: column, value: objects)
                fineModel.set(column: column, objects: objects)
            }
            if appended % 3 == 0 {
                coarse.copyRow(row, from: fine)
                coarseModel.begin(time: time)
                coarseModel.slots[coarseModel.slots.count - 1] = fineModel.slots[fineModel.slots.count - 1]
            }
            appended += 1
        }

        /// What the ring does besides appending: widen, evict a series,
        /// follow other inode caches, free a column, shrink after a burst,
        /// write and read back its state.
        mutating func reshape() {
            switch values.next(12) {
            case 0:
                let width = fine.seriesCapacity + 1 + Int(values.next(4))
                fine.widen(to: width)
                coarse.widen(to: width)
                fineModel.widen(to: width)
                coarseModel.widen(to: width)
                last += Array(repeating: 4096, count: width - last.count)
            case 1, 2:
                let series = Int(values.next(UInt64(fine.seriesCapacity)))
                fine.clear(series: series)
                coarse.clear(series: series)
                fineModel.clear(series: series)
                coarseModel.clear(series: series)
            case 3, 4:
                let columns = min(32, fine.objectColumns + 1 + Int(values.next(2)))
                fine.widenObjects(to: columns)
                coarse.widenObjects(to: columns)
                fineModel.widenObjects(to: columns)
                coarseModel.widenObjects(to: columns)
            case 5 where fine.objectColumns > 0:
                let column = Int(values.next(UInt64(fine.objectColumns)))
                fine.clearObjects(column: column)
                coarse.clearObjects(column: column)
                fineModel.clearObjects(column: column)
                coarseModel.clearObjects(column: column)
            case 6:
                fine.clearObjects()
                coarse.clearObjects()
                fineModel.clearObjects()
                coarseModel.clearObjects()
            case 7:
                let kept = (0..<fine.seriesCapacity).filter { _ in values.chance(60) }
                let width = max(1, kept.count + Int(values.next(3)))
                fine = fine.keeping(series: kept, width: width)
                coarse = coarse.keeping(series: kept, width: width)
                fineModel.keep(kept, width: width)
                coarseModel.keep(kept, width: width)
                last = kept.map { last[$0] } + Array(repeating: 4096, count: width - kept.count)
            default:
                // The state file: written and read back, the tiers go on from there.
                fine = try! StateDecoder.decode(SampleRing.Tier.self, from: StateEncoder.encode(fine))
                coarse = try! StateDecoder.decode(SampleRing.Tier.self, from: StateEncoder.encode(coarse))
            }
        }
    }

    /// Every read the tier offers, at every position, against the model.
    static func expectSame(_ tier: SampleRing.Tier, _ model: ReferenceTier, windows: Bool,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(tier.count == model.slots.count, sourceLocation: sourceLocation)
        #expect(tier.seriesCapacity == model.seriesCapacity && tier.objectColumns == model.objectColumns,
                sourceLocation: sourceLocation)
        guard tier.count == model.slots.count else { return }
        var mismatches: [String] = []
        for (position, slot) in model.slots.enumerated() {
            if tier.time(at: position) != slot.time { mismatches.append("time at \(position)") }
            for counter in SampleRing.Counter.allCases where tier.counter(counter, at: position) != slot.counters[counter.rawValue] {
                mismatches.append("\(counter) at \(position)")
            }
            for series in 0..<model.seriesCapacity where tier.footprint(series: series, at: position) != model.bytes(slot.footprints[series]) {
                mismatches.append("series \(series) at \(position): \(String(describing: tier.footprint(series: series, at: position))) for \(String(describing: model.bytes(slot.footprints[series])))")
            }
            for column in 0..<model.objectColumns
            where tier.inodeObjects(column: column, at: position) != slot.objects[column].map(UInt64.init) {
                mismatches.append("objects \(column) at \(position)")
            }
        }
        // The block floor the quick growth test reads: never above a present
        // value, absent only where the value is.
        for (position, slot) in model.slots.enumerated() {
            for series in 0..<model.seriesCapacity {
                let floor = tier.footprintFloor(series: series, at: position)
                switch (floor, model.bytes(slot.footprints[series])) {
                case (nil, nil): break
                case (let floor?, let value?) where floor <= value: break
                case (_?, nil): break  // an absent slot in a block that holds the series elsewhere
                default: mismatches.append("floor of series \(series) at \(position): \(String(describing: floor))")
                }
            }
        }
        // Beyond the stored columns everything reads as absent.
        if model.slots.count > 0 {
            if tier.footprint(series: model.seriesCapacity, at: 0) != nil { mismatches.append("series beyond the width") }
            if tier.inodeObjects(column: model.objectColumns, at: 0) != nil { mismatches.append("column beyond the width") }
        }
        // Windows: every suffix (what the detector fits) or the whole tier and one stretch.
        let starts = windows ? Array(0..<model.slots.count) : [0, model.slots.count / 3]
        var out = [Double](repeating: -1, count: tier.capacity)
        for start in starts where start < model.slots.count {
            let count = model.slots.count - start
            for series in 0..<model.seriesCapacity {
                let expected = model.slots[start...].map { $0.footprints[series].map { Double($0) * 4096 } }
                let copied = tier.copyFootprints(series: series, start: start, count: count, into: &out)
                if copied != !expected.contains(nil) || (copied && Array(out[0..<count]) != expected.map { $0! }) {
                    mismatches.append("copyFootprints series \(series) from \(start)")
                }
            }
            // The detector's quick test (floor, then first and last) against the
            // model's first and last footprints, at thresholds from none to all.
            let window = FittedWindow(kind: .fine, tier: tier, start: start, settings: DetectorSettings())
            for series in 0..<model.seriesCapacity {
                let first = model.bytes(model.slots[start].footprints[series])
                let last = model.bytes(model.slots[model.slots.count - 1].footprints[series])
                for bytes in [0, 4096, 5 * 4096, Double(1 << 30), Double(1 << 44)] as [Double] {
                    let expected = first.flatMap { first in last.map { Double($0) - Double(first) >= bytes } } ?? false
                    if window.grows(series: series, by: bytes) != expected {
                        mismatches.append("grows series \(series) from \(start) by \(bytes)")
                    }
                }
            }
            for column in 0..<model.objectColumns {
                let expected = model.slots[start...].map { $0.objects[column].map(Double.init) }
                let copied = tier.copyInodeObjects(column: column, start: start, count: count, into: &out)
                if copied != !expected.contains(nil) || (copied && Array(out[0..<count]) != expected.map { $0! }) {
                    mismatches.append("copyInodeObjects column \(column) from \(start)")
                }
            }
        }
        for column in 0..<model.objectColumns {
            let present = model.slots.enumerated().compactMap { position, slot in slot.objects[column].map { (position, UInt64($0)) } }
            let expected = present.first.map { first in
                (present.map(\.1).max()! - present.map(\.1).min()!, model.slots.count - first.0)
            }
            let movement = tier.objectMovement(column: column)
            if movement?.range != expected?.0 || movement?.slots != expected?.1 { mismatches.append("objectMovement \(column)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5)) (\(mismatches.count) in all)", sourceLocation: sourceLocation)
    }

    /// Capacities below, at and above a block (64 slots), odd ones that
    /// leave a partial block, and one slot: many block boundaries and
    /// wrap-arounds each, with every reshape the ring makes between appends.
    @Test(arguments: [(1, 11), (3, 12), (5, 13), (64, 14), (65, 15), (100, 16), (130, 17)] as [(Int, UInt64)])
    func readsLikeAPlainArray(capacity: Int, seed: UInt64) {
        var tiers = Tiers(capacity: capacity, width: 5, seed: seed)
        let steps = 6 * capacity + 150
        for step in 0..<steps {
            tiers.append()
            if tiers.values.chance(8) { tiers.reshape() }
            if step % 7 == 0 || step == steps - 1 {
                Self.expectSame(tiers.fine, tiers.fineModel, windows: step % 49 == 0)
                Self.expectSame(tiers.coarse, tiers.coarseModel, windows: step % 49 == 0)
            }
        }
    }
}

extension PackedTierTests {
    /// The state file keeps each tier's columns unpacked, laid out as every
    /// version before packing wrote and reads them: `series × capacity`
    /// 4 KiB units, a sample at its physical slot (the append's number
    /// modulo the capacity), absent where the cache was.
    @Test func theStateKeepsTheUnpackedLayoutEveryVersionReads() throws {
        var ring = SampleRing(configuration: .init(fineCapacity: 100, coarseCapacity: 4, coarseEvery: 50), initialSeriesCapacity: 2)
        for t in 0..<230 {
            let c = t % 3 == 0 ? [] : [SampleRingTests.cache("c", slabs: UInt64(t))]
            ring.append(SampleRingTests.sample(Int64(t), [SampleRingTests.cache("a", slabs: UInt64(t / 10)),
                                                          SampleRingTests.cache("b", slabs: 7)] + c))
        }
        guard case .object(let members) = try StateEncoder.encode(ring), case .object(let fine) = members["fine"],
              case .words32(let footprints) = fine["footprints"], case .integer(let head) = fine["head"]
        else { Issue.record("the ring's state has no fine tier with a footprint column"); return }
        #expect(head == 30 && footprints.count == 100 * 4)
        var expected = [UInt32](repeating: .max, count: 100 * 4)
        for t in 130..<230 {
            expected[0 * 100 + t % 100] = UInt32(t / 10)
            expected[1 * 100 + t % 100] = 7
            if t % 3 != 0 { expected[2 * 100 + t % 100] = UInt32(t) }
        }
        #expect(footprints == expected)
    }
}
