/// A limit a measurement must stay within (`slabwatch measure --budget`):
/// `CACHE=SIZE/UNIT` (a cache's cost per inode, dentry or open file),
/// `unreclaimable=SIZE/UNIT` (unreclaimable slab as a whole), or
/// `kept=SIZE` (what the run left behind, summed over the moved caches).
/// SIZE is bytes with an optional unit (`256B`, `2KiB`, `1.5MiB`, `16MB`).
public struct Budget: Sendable, Equatable {
    public enum Subject: Sendable, Equatable {
        case cache(String)
        /// meminfo SUnreclaim.
        case unreclaimable
        /// `Measurement.keptBytes`.
        case kept
    }

    public var subject: Subject
    public var limitBytes: Double
    /// The driver a per-unit limit is per; nil for `kept`.
    public var unit: GrowthDriver?
    /// As the user wrote it, for the verdict.
    public var text: String

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// - Throws: `ParseError` saying what the form is when `text` is not one of them.
    public static func parse(_ text: String) throws(ParseError) -> Budget {
        let form = "'\(text)' is not CACHE=SIZE/UNIT, unreclaimable=SIZE/UNIT or kept=SIZE (UNIT: inode, dentry or open_file; e.g. kmalloc-32=256B/inode)"
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else { throw ParseError(description: form) }
        let name = String(text[..<equals])
        let value = text[text.index(after: equals)...]
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.bytes(parts[0]) else { throw ParseError(description: form) }
        if name == "kept" {
            guard parts.count == 1 else { throw ParseError(description: "'\(text)': kept is a size, not per unit (e.g. kept=16MiB)") }
            return Budget(subject: .kept, limitBytes: bytes, unit: nil, text: text)
        }
        guard parts.count == 2, let unit = Self.units[String(parts[1])] else { throw ParseError(description: form) }
        return Budget(subject: name == "unreclaimable" ? .unreclaimable : .cache(name), limitBytes: bytes, unit: unit, text: text)
    }

    /// The budget of the cache the kernel merged `subject` into, when it
    /// names an alias (SLUB merges caches of one size and flags; the report
    /// names only the merged cache); itself otherwise.
    public func resolvingAlias(in caches: [SlabCache]) -> Budget {
        guard case .cache(let name) = subject, !caches.contains(where: { $0.name == name }),
              let merged = caches.first(where: { $0.aliases.contains(name) })
        else { return self }
        var resolved = self
        resolved.subject = .cache(merged.name)
        return resolved
    }

    /// How a budget fared.
    public enum Verdict: Sendable, Equatable {
        case within(measuredBytes: Double)
        case exceeded(measuredBytes: Double)
        /// The measurement cannot say (the driver did not move enough, a noisy fit): why.
        case cannotJudge(String)
    }

    /// Judges `measurement`. A per-unit budget reads the fit of its own unit
    /// (an inode cache's count before the global inode count, as the detector
    /// prefers), which must have passed; a cache that did not move beyond
    /// noise costs nothing, provided the unit's driver moved.
    public func judge(_ measurement: Measurement) -> Verdict {
        guard let unit else {
            let kept = measurement.keptBytes
            return kept > limitBytes ? .exceeded(measuredBytes: kept) : .within(measuredBytes: kept)
        }
        let report: Measurement.CacheReport?
        switch subject {
        case .cache(let name): report = measurement.caches.first { $0.slab == name }
        case .unreclaimable:
            guard let total = measurement.unreclaimable else { return .cannotJudge("meminfo has no SUnreclaim") }
            report = total
        case .kept: report = nil
        }
        guard let report else {
            let moved = measurement.drivers.filter { $0.driver == unit }.map { $0.peak - $0.before }.max() ?? 0
            guard moved >= Self.minimumDriverMove else {
                return .cannotJudge("\(unit.plural) moved by \(Human.grouped(moved)), too little to judge a cost per \(unit.singular)")
            }
            return .within(measuredBytes: 0)
        }
        let fits = report.fits.filter { $0.driver == unit && $0.flagged }
        guard let fit = fits.first(where: { $0.inodeCache != nil && $0.inodeCache == report.cost?.inodeCache })
            ?? fits.first(where: { $0.inodeCache != nil }) ?? fits.first
        else {
            return .cannotJudge("no fit of \(report.slab) per \(unit.singular) passed: \(report.notJudged ?? "its best driver is \(report.cost?.driver.plural ?? "none")")")
        }
        return fit.bytesPerUnit > limitBytes ? .exceeded(measuredBytes: fit.bytesPerUnit) : .within(measuredBytes: fit.bytesPerUnit)
    }

    /// A unit's driver moved enough to say a cache that did not move costs nothing per unit.
    static let minimumDriverMove = MeasurementSettings().detector.minDriverChange

    /// One line: "kmalloc-32=256B/inode: exceeded, 512 B per inode is 256 B (100 %) over".
    public func sentence(_ verdict: Verdict) -> String {
        let per = unit.map { " per \($0.singular)" } ?? ""
        switch verdict {
        case .within(let measured):
            return "budget \(text): within, \(Human.bytes(measured))\(per)"
        case .exceeded(let measured):
            let over = measured - limitBytes
            let share = limitBytes > 0 ? " (\(Human.decimal(100 * over / limitBytes, 1)) %)" : ""
            return "budget \(text): exceeded, \(Human.bytes(measured))\(per) is \(Human.bytes(over))\(share) over"
        case .cannotJudge(let why):
            return "budget \(text): cannot judge, \(why)"
        }
    }

    static let units: [String: GrowthDriver] = [
        "inode": .inodes, "inodes": .inodes, "dentry": .dentries, "dentries": .dentries,
        "open_file": .openFiles, "open_files": .openFiles,
    ]

    /// `256`, `256B`, `2KiB`, `1.5MiB`, `16MB`: bytes, nil for anything else or a negative size.
    static func bytes(_ text: Substring) -> Double? {
        let suffixes: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("kB", 1000), ("KB", 1000), ("MB", 1e6), ("GB", 1e9), ("B", 1),
        ]
        var number = text, scale = 1.0
        for (suffix, factor) in suffixes where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite else { return nil }
        return value * scale
    }
}
