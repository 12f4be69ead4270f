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
        /// Within the limit: as measured, or, where the figure was not
        /// measured (below the noise floor) or not wholly, no more than
        /// `atMostBytes`, which is within; `reason` says why it is a bound.
        case within(measuredBytes: Double?, atMostBytes: Double, reason: String?)
        case exceeded(measuredBytes: Double)
        /// The measurement cannot say: why, and what would decide it.
        case cannotJudge(String)
    }

    /// What a measurement says of a budget's figure: measured, and the most it can be.
    struct Figure: Equatable {
        /// As measured: a fit's slope, the bytes the moved caches kept; nil when not measured.
        var measuredBytes: Double?
        /// The most it can be; nil when nothing bounds it.
        var atMostBytes: Double?
        /// The least it can be, where it was not measured whole (a size class
        /// whose copies did not all move); nil otherwise.
        var atLeastBytes: Double?
        /// Why it is not known exactly (said when it cannot be judged, and beside a bound).
        var uncertainty: String?
        /// What would settle it, for a budget that cannot be judged; nil when the uncertainty says.
        var decider: String?

        static func measured(_ bytes: Double) -> Figure { Figure(measuredBytes: bytes, atMostBytes: bytes) }
        static func unknown(_ why: String, decider: String? = nil) -> Figure { Figure(uncertainty: why, decider: decider) }
    }

    /// Judges `measurement`: exceeded only on a measured figure above the
    /// limit, within only when the most the figure can be is within it,
    /// and cannot judge otherwise. This is the one place that decides, for
    /// every kind of budget; `figure(in:)` says what each knows.
    public func judge(_ measurement: Measurement) -> Verdict {
        let figure = figure(in: measurement)
        if let measured = figure.measuredBytes, measured > limitBytes { return .exceeded(measuredBytes: measured) }
        if let atLeast = figure.atLeastBytes, atLeast > limitBytes { return .exceeded(measuredBytes: atLeast) }
        if let atMost = figure.atMostBytes, atMost <= limitBytes {
            return .within(measuredBytes: figure.measuredBytes, atMostBytes: atMost, reason: atMost == figure.measuredBytes ? nil : figure.uncertainty)
        }
        var why = figure.uncertainty ?? "not measured"
        if let atMost = figure.atMostBytes { why += " (at most \(Human.bytes(atMost)), the limit is \(Human.bytes(limitBytes)))" }
        if let decider = figure.decider { why += "; \(decider) would decide it" }
        return .cannotJudge(why)
    }

    /// What `measurement` says of this budget's figure. A per-unit budget
    /// reads the fit of its own unit (an inode cache's count before the
    /// global inode count, as the detector prefers), which must have passed.
    /// Below the noise floor a cost is not zero but unknown: a cache that
    /// moved less than its floor F costs at most F / N per unit, N the least
    /// any driver of the unit rose by (the global count, or an inode cache's;
    /// the cost may follow any of them, and unrelated inodes coming in
    /// their thousands must not shrink the bound); unreclaimable slab
    /// likewise with `--noise`. Kept bytes count the moved caches, and at
    /// most what the quiet ones kept too.
    func figure(in measurement: Measurement) -> Figure {
        guard let unit else { return keptFigure(measurement) }
        let drivers = measurement.drivers.filter { $0.driver == unit }
        switch subject {
        case .unreclaimable:
            guard let total = measurement.slabUnreclaimable else { return .unknown("meminfo has no SUnreclaim") }
            if total.footprints.movedBytes < Double(measurement.noiseBytes) {
                return belowNoise("unreclaimable slab", floorBytes: measurement.noiseBytes, isNoiseFlag: true, unit: unit, drivers: drivers)
            }
            return fitFigure(total, unit: unit)
        case .cache(let name):
            let copies = KmallocCache.randomCopies(of: name, in: measurement.caches.map(\.slab) + measurement.quietCaches.map(\.slab))
            if !copies.isEmpty { return sizeClassFigure(name, copies: copies, measurement, unit: unit, drivers: drivers) }
            return cacheFigure(name, measurement, unit: unit, drivers: drivers)
        case .kept:
            return keptFigure(measurement)
        }
    }

    /// One cache's cost per `unit`: its fit, or a bound below its noise floor.
    private func cacheFigure(_ name: String, _ measurement: Measurement, unit: GrowthDriver, drivers: [Measurement.DriverMovement]) -> Figure {
        if let report = measurement.caches.first(where: { $0.slab == name }) { return fitFigure(report, unit: unit) }
        guard let quiet = measurement.quietCaches.first(where: { $0.slab == name }) else {
            return .unknown("the report has no cache \(name)")
        }
        return belowNoise(name, floorBytes: quiet.noiseFloorBytes, isNoiseFlag: quiet.noiseFloorBytes == measurement.noiseBytes,
                          unit: unit, drivers: drivers)
    }

    /// A kmalloc size class the kernel serves from random copies (see
    /// `KmallocCache.randomCopies`): the cost is the copies' together, since
    /// which copy a workload's call sites use changes at every boot. The
    /// copies that moved are measured, each quiet one costs between minus and
    /// plus its bound: exceeded when the least it can be is over, within when the most is within.
    private func sizeClassFigure(_ name: String, copies: [String], _ measurement: Measurement, unit: GrowthDriver,
                                 drivers: [Measurement.DriverMovement]) -> Figure {
        let parts = ([name] + copies).map { cacheFigure($0, measurement, unit: unit, drivers: drivers) }
        let together = "\(name) and its \(copies.count) random copies (the kernel picks one per call site at boot)"
        if let unknown = parts.first(where: { $0.measuredBytes == nil && $0.atMostBytes == nil }) {
            return .unknown("\(together): \(unknown.uncertainty ?? "not measured")", decider: unknown.decider)
        }
        let measured = parts.compactMap(\.measuredBytes).reduce(0, +)
        let slack = parts.filter { $0.measuredBytes == nil }.compactMap(\.atMostBytes).reduce(0, +)
        let moved = parts.count { $0.measuredBytes != nil }
        return Figure(measuredBytes: slack == 0 ? measured : nil, atMostBytes: measured + slack, atLeastBytes: measured - slack,
                      uncertainty: "\(together): \(moved) moved, \(Human.bytes(measured)) per \(unit.singular); the other "
                          + "\(parts.count - moved) moved less than their noise floors, up to \(Human.bytes(slack)) per \(unit.singular) together",
                      decider: parts.first { $0.measuredBytes == nil }?.decider)
    }

    /// A fit of `unit` that passed, or why none did.
    private func fitFigure(_ report: Measurement.CacheReport, unit: GrowthDriver) -> Figure {
        let fits = report.fits.filter { $0.driver == unit && $0.flagged }
        guard let fit = fits.first(where: { $0.inodeCache != nil && $0.inodeCache == report.cost?.inodeCache })
            ?? fits.first(where: { $0.inodeCache != nil }) ?? fits.first
        else {
            return .unknown("no fit of \(report.slab) per \(unit.singular) passed: \(report.notJudged ?? "its best driver is \(report.cost?.driver.plural ?? "none")")")
        }
        return .measured(fit.bytesPerUnit)
    }

    /// The bound of a cost below the noise floor: `floorBytes` / the least
    /// rise of the unit's drivers that rose by `minimumDriverMove(for:)`.
    private func belowNoise(_ subject: String, floorBytes: UInt64, isNoiseFlag: Bool, unit: GrowthDriver,
                            drivers: [Measurement.DriverMovement]) -> Figure {
        let floor = Double(floorBytes)
        func rise(of driver: Measurement.DriverMovement) -> Double { driver.peak - driver.before }
        guard let fewest = drivers.filter({ rise(of: $0) >= Self.minimumDriverMove(for: unit) }).min(by: { rise(of: $0) < rise(of: $1) }) else {
            return .unknown("\(subject) moved less than the noise floor (\(Human.bytes(floor))) and \(unit.plural) rose by "
                            + "\(Human.grouped(drivers.map { rise(of: $0) }.max() ?? 0)), too little to bound a cost per \(unit.singular)",
                            decider: "a run that makes at least \(Human.grouped(Self.minimumDriverMove(for: unit))) \(unit.plural)")
        }
        let fewestRise = rise(of: fewest)
        let risen = fewest.inodeCache.map { "\($0) objects" } ?? unit.plural
        let atMost = floor / fewestRise
        var decider: String?
        if limitBytes > 0 {
            let units = (floor / limitBytes).rounded(.up)
            decider = "a run of at least \(Human.grouped(units)) \(unit.plural)"
                + (isNoiseFlag ? ", or a --noise below \(Human.bytes(limitBytes * fewestRise))," : "")
        }
        return Figure(atMostBytes: atMost,
                      uncertainty: "\(subject) moved less than its noise floor (\(Human.bytes(floor))) while \(risen) rose by "
                          + "\(Human.grouped(fewestRise)): its cost is unknown up to \(Human.bytes(atMost)) per \(unit.singular)",
                      decider: decider)
    }

    /// What the moved caches kept, and at most that plus what the quiet ones kept.
    private func keptFigure(_ measurement: Measurement) -> Figure {
        let kept = measurement.keptBytes, quiet = measurement.quietKeptBytes
        return Figure(measuredBytes: kept, atMostBytes: kept + quiet,
                      uncertainty: "caches that moved less than the noise floor kept \(Human.bytes(quiet)) more, which may be the run's",
                      decider: "a quieter machine, or a limit above what every cache kept,")
    }

    /// A unit's driver moved enough to bound the cost of a cache that did not move.
    static func minimumDriverMove(for unit: GrowthDriver) -> Double { MeasurementSettings().detector.minimumChange(for: unit) }

    /// One line: "kmalloc-32=256B/inode: exceeded, 512 B per inode is 256 B (100 %) over".
    public func sentence(_ verdict: Verdict) -> String {
        let per = unit.map { " per \($0.singular)" } ?? ""
        switch verdict {
        case .within(let measured?, let atMost, _) where measured == atMost:
            return "budget \(text): within, \(Human.bytes(measured))\(per)"
        case .within(let measured?, let atMost, let reason):
            return "budget \(text): within, \(Human.bytes(measured))\(per), at most \(Human.bytes(atMost)): \(reason ?? "")"
        case .within(nil, let atMost, let reason):
            return "budget \(text): within, at most \(Human.bytes(atMost))\(per): \(reason ?? "")"
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
        "negative_dentry": .negativeDentries, "negative_dentries": .negativeDentries,
        "open_file": .openFiles, "open_files": .openFiles,
        "socket": .sockets, "sockets": .sockets, "task": .tasks, "tasks": .tasks, "thread": .tasks, "threads": .tasks,
        "memory_cgroup": .memoryCgroups, "memory_cgroups": .memoryCgroups,
        "dying_memory_cgroup": .dyingMemoryCgroups, "dying_memory_cgroups": .dyingMemoryCgroups,
    ]

    /// `256`, `256B`, `2KiB`, `1.5MiB`, `16MB`: bytes, nil for anything else, a negative size or one beyond 2⁶⁴.
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
              let value = Double(number), value.isFinite, value * scale <= largestBytes else { return nil }
        return value * scale
    }

    /// No cache, and no machine, holds more than 2⁶⁴ bytes: a larger limit is a typo, not a budget.
    static let largestBytes = 1.8e19
}
