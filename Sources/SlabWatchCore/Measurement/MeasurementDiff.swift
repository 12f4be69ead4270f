/// Two measurements side by side (`slabwatch diff BEFORE.json AFTER.json`):
/// per cache and for unreclaimable slab, the cost per unit, R² and what was
/// kept after exit, before → after, with notes where the runs cannot be
/// compared (their drivers differ, or moved by very different amounts).
public enum MeasurementDiff: Sendable {
    /// Runs whose driver moved by more than this factor apart are not the
    /// same workload: costs per unit still compare, kept bytes do not.
    public static let comparableDriverFactor = 2.0

    public static func text(before: Measurement, after: Measurement) -> String {
        var lines: [String] = []
        lines.append("before: `\(before.command.arguments.joined(separator: " "))`; after: `\(after.command.arguments.joined(separator: " "))`")
        let pairs = paired(before.caches, after.caches)
        for (name, a, b) in pairs { lines += compare(name, a, b) }
        if pairs.isEmpty { lines.append("no cache moved beyond noise in either run") }
        lines += compare("unreclaimable slab", before.slabUnreclaimable, after.slabUnreclaimable)
        // A change from next to nothing is no percentage anyone can use.
        let keptChange = before.keptBytes >= Double(before.noiseBytes) ? change(before.keptBytes, after.keptBytes) : ""
        lines.append("kept after exit, moved caches: \(Human.bytes(before.keptBytes)) → \(Human.bytes(after.keptBytes))\(keptChange)")
        lines += notes(before: before, after: after)
        return TerminalText.printable(lines: lines)  // a report is anyone's file: its names reach no terminal raw
    }

    /// Each cache of either run with its report in both: the before run's
    /// order, then the caches only the after run moved. Looked up by name
    /// (a report lists thousands of caches on a large machine; a search per
    /// name made 10,000 a side take seconds). A name listed twice pairs its first report.
    static func paired(_ before: [Measurement.CacheReport], _ after: [Measurement.CacheReport])
        -> [(name: String, before: Measurement.CacheReport?, after: Measurement.CacheReport?)]
    {
        let beforeByName = Dictionary(before.map { ($0.slab, $0) }, uniquingKeysWith: { first, _ in first })
        let afterByName = Dictionary(after.map { ($0.slab, $0) }, uniquingKeysWith: { first, _ in first })
        var seen = Set<String>()
        var pairs: [(name: String, before: Measurement.CacheReport?, after: Measurement.CacheReport?)] = []
        for name in before.map(\.slab) + after.map(\.slab) where seen.insert(name).inserted {
            pairs.append((name, beforeByName[name], afterByName[name]))
        }
        return pairs
    }

    /// "kmalloc-32: 32.0 KiB → 208 B per inode (−99.4 %), R² 0.999 → 0.998; kept 31.2 MiB → 200 KiB".
    static func compare(_ name: String, _ a: Measurement.CacheReport?, _ b: Measurement.CacheReport?) -> [String] {
        let costA = a?.cost, costB = b?.cost
        var line = "\(name): "
        switch (costA, costB) {
        case let (x?, y?) where x.driver == y.driver && x.inodeCache == y.inodeCache:
            line += "\(Human.bytes(x.bytesPerUnit)) → \(Human.bytes(y.bytesPerUnit)) \(MeasurementRenderer.perUnit(y.driver, y.inodeCache))"
                + change(x.bytesPerUnit, y.bytesPerUnit) + ", R² \(Human.decimal(x.rSquared, 3)) → \(Human.decimal(y.rSquared, 3))"
        case let (x?, y?):
            line += "\(Human.bytes(x.bytesPerUnit)) \(MeasurementRenderer.perUnit(x.driver, x.inodeCache)) → "
                + "\(Human.bytes(y.bytesPerUnit)) \(MeasurementRenderer.perUnit(y.driver, y.inodeCache)) (different drivers: not comparable)"
        case let (x?, nil):
            line += "\(Human.bytes(x.bytesPerUnit)) \(MeasurementRenderer.perUnit(x.driver, x.inodeCache)) → "
                + (b == nil ? "nothing (did not move)" : "not judged (\(b?.notJudged ?? ""))")
        case let (nil, y?):
            line += (a == nil ? "nothing (did not move)" : "not judged") + " → \(Human.bytes(y.bytesPerUnit)) "
                + "\(MeasurementRenderer.perUnit(y.driver, y.inodeCache)) (new)"
        case (nil, nil):
            line += "not judged in either run"
        }
        let keptA = a.map { $0.footprints.keptBytes } ?? 0, keptB = b.map { $0.footprints.keptBytes } ?? 0
        line += "; kept \(Human.bytes(keptA)) → \(Human.bytes(keptB))"
        return [line]
    }

    /// " (−99.4 %)"; empty when `from` is zero; " (+over 1,000,000 %)"
    /// beyond that, where a base next to nothing would print a number of
    /// hundreds of digits (or infinity).
    static func change(_ from: Double, _ to: Double) -> String {
        guard from != 0, from.isFinite, to.isFinite else { return "" }
        let percent = 100 * (to - from) / abs(from)
        let sign = percent < 0 ? "−" : "+"
        guard abs(percent) <= largestPercentage else { return " (\(sign)over \(Human.grouped(largestPercentage)) %)" }
        return " (\(sign)\(Human.decimal(abs(percent), 1)) %)"
    }

    static let largestPercentage = 1e6

    /// How far a cost's driver rose in its run (peak − before: a run that
    /// deletes its files ends where it began).
    static func rise(_ m: Measurement, _ cost: Measurement.Cost) -> Double {
        m.drivers.first { $0.driver == cost.driver && $0.inodeCache == cost.inodeCache }.map { $0.peak - $0.before } ?? abs(cost.driverChange)
    }

    /// Where the runs' drivers differ too much for their figures to compare.
    static func notes(before: Measurement, after: Measurement) -> [String] {
        var notes: [String] = []
        if let a = before.slabUnreclaimable?.cost, let b = after.slabUnreclaimable?.cost {
            if a.driver != b.driver || a.inodeCache != b.inodeCache {
                notes.append("note: unreclaimable slab follows \(MeasurementRenderer.perUnit(a.driver, a.inodeCache).dropFirst(4)) before and "
                             + "\(MeasurementRenderer.perUnit(b.driver, b.inodeCache).dropFirst(4)) after: the runs' drivers differ, the totals do not compare")
            } else {
                let riseA = rise(before, a), riseB = rise(after, b)
                let ratio = riseB / max(1, riseA)
                if ratio > comparableDriverFactor || ratio < 1 / comparableDriverFactor {
                    notes.append("note: the driver rose by \(Human.grouped(riseA)) \(a.driver.plural) before and "
                                 + "\(Human.grouped(riseB)) after: costs per unit compare, kept bytes do not")
                }
            }
        } else if (before.slabUnreclaimable?.cost == nil) != (after.slabUnreclaimable?.cost == nil) {
            notes.append("note: only one run's unreclaimable slab has a cost per unit: the runs do not compare")
        }
        return notes
    }
}
