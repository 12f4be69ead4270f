import Foundation
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// The blocks of the documentation that are generated from the code: each
/// sits between `<!-- generated: NAME -->` and `<!-- end generated: NAME -->`
/// in its file. `DocsTests` fails when a block differs from what the code
/// says, and rewrites every block with `UPDATE_DOCS=1` (as the golden
/// /metrics test does with `UPDATE_GOLDEN=1`). Test code: nothing here ships.
enum DocsGenerator {
    struct Block: Sendable {
        let file: String
        let name: String
        let text: @Sendable () throws -> String
    }

    static let blocks: [Block] = [
        Block(file: "docs/operating/configuration.md", name: "key-table") { Configuration.markdownTable() },
        Block(file: "docs/operating/configuration.md", name: "exit-codes") { "**Exit codes:** \(ExitStatus.summary)." },
        Block(file: "docs/operating/configuration.md", name: "ring-sizing") { ringSizing() },
        Block(file: "docs/reference/metrics.md", name: "metric-families") { metricFamilies() },
        Block(file: "docs/reference/snapshot.md", name: "snapshot-schema") { snapshotSchema() },
        Block(file: "docs/detector.md", name: "detector-rules") { try detectorRules() },
    ]

    static func begin(_ name: String) -> String { "<!-- generated: \(name) -->" }
    static func end(_ name: String) -> String { "<!-- end generated: \(name) -->" }

    /// What stands between the block's markers in `document`; nil when the
    /// markers are missing.
    static func current(_ name: String, in document: String) -> String? {
        guard let start = document.range(of: begin(name) + "\n"),
              let stop = document.range(of: "\n" + end(name), range: start.upperBound..<document.endIndex) else { return nil }
        return String(document[start.upperBound..<stop.lowerBound])
    }

    /// `document` with the block's content replaced by `text`.
    static func replacing(_ name: String, with text: String, in document: String) -> String? {
        guard let start = document.range(of: begin(name) + "\n"),
              let stop = document.range(of: "\n" + end(name), range: start.upperBound..<document.endIndex) else { return nil }
        return document.replacingCharacters(in: start.upperBound..<stop.lowerBound, with: text)
    }

    // MARK: metrics and the snapshot

    static func metricFamilies() -> String {
        var lines = ["| metric | type | meaning |", "|---|---|---|"]
        for family in MetricsRenderer.families {
            let labels = family.labels.isEmpty ? "" : "{" + family.labels.joined(separator: ",") + "}"
            lines.append("| `\(family.name)\(labels)` | \(family.type) | \(escaped("\(family.help)")) |")
        }
        return lines.joined(separator: "\n")
    }

    static func snapshotSchema() -> String {
        var lines = ["| key | type | meaning |", "|---|---|---|"]
        for field in SnapshotSchema.fields {
            lines.append("| `\(field.path)` | \(field.type) | \(escaped(field.meaning)) |")
        }
        return lines.joined(separator: "\n")
    }

    /// A table cell's text: a `|` would end the cell.
    static func escaped(_ text: String) -> String {
        text.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")
    }

    // MARK: the ring

    /// The ring's storage at the default configuration, measured on real
    /// rings filled to the brim rather than restated: what a slot's time and
    /// counters take, what a series (or a followed inode cache) adds when its
    /// footprint holds still and when every value needs all 32 bits, and
    /// those at the first width and at the bound.
    static func ringSizing() -> String {
        let configuration = Configuration()
        let tiers = configuration.pipeline.ring
        let slots = tiers.fineCapacity + tiers.coarseCapacity
        /// A full ring `width` series wide, every series in every sample.
        func full(width: Int, worst: Bool) -> Int {
            var ring = SampleRing(configuration: tiers, initialSeriesCapacity: width)
            var state: UInt64 = 1
            // A block more than the coarse tier holds: every closed block of both tiers is in use.
            for step in 0..<((tiers.coarseCapacity + 64) * tiers.coarseEvery) {
                let caches = (0..<width).map { index in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let slabs = worst ? (state >> 32) % (UInt64(UInt32.max) - 1) : 100
                    return SlabCache(name: "cache\(index)", activeObjects: 1, objects: 1, objectSize: 64, objectsPerSlab: 64,
                                     pagesPerSlab: 1, activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: false)
                }
                ring.append(Sample(timestampMilliseconds: Int64(step) * 5000, caches: caches))
            }
            return ring.storageBytes
        }
        let (quiet16, quiet32) = (full(width: 16, worst: false), full(width: 32, worst: false))
        let (worst16, worst32) = (full(width: 16, worst: true), full(width: 32, worst: true))
        let quiet = (quiet32 - quiet16) / 16, worst = (worst32 - worst16) / 16
        let fixed = quiet16 - 16 * quiet
        let firstWidth = SampleRing(configuration: tiers).fine.seriesCapacity
        let bound = tiers.maxSeries + InodeCacheSelector.maximumCaches
        return """
            Each of the \(Human.grouped(Double(slots))) slots (`ring.fine-samples` + `ring.coarse-samples`) takes \(fixed / slots) \
            bytes for its time and system-wide counters. A series (a cache's footprint, or a followed inode cache's \
            count) takes \(Human.grouped(Double(quiet))) bytes over both tiers when it holds still, and \
            \(Human.grouped(Double(worst))) when every value needs all 32 bits. At the defaults that is \
            \(megabytes(fixed + firstWidth * quiet)) to \(megabytes(fixed + firstWidth * worst)) for the first \
            \(Human.grouped(Double(firstWidth))) caches, and \(megabytes(fixed + bound * quiet)) to \
            \(megabytes(fixed + bound * worst)) at the ring's bound: \(Human.grouped(Double(tiers.maxSeries))) series, \
            for the \(Human.grouped(Double(configuration.sampler.limits.maxCaches))) caches `sampler.max-caches` keeps \
            and names that come and go, with \(InodeCacheSelector.maximumCaches) inode caches followed.
            """
    }

    static func megabytes(_ bytes: Int) -> String { "**\(Human.decimal(Double(bytes) / 1_000_000, 1)) MB**" }

    // MARK: the detector's rules

    static let detectorSource = "Sources/SlabWatchCore/Detection/DetectorSettings.swift"

    /// Named constants of other types that bound what the detector keeps and
    /// shows: their doc comments are read from their files.
    static let constants: [(file: String, type: String, name: String, value: Int)] = [
        ("Sources/SlabWatchCore/Detection/InodeCaches.swift", "InodeCacheSelector", "maximumCaches", InodeCacheSelector.maximumCaches),
        ("Sources/SlabWatchCore/Detection/GrowthDetector.swift", "GrowthDetector", "resolvedKept", GrowthDetector.resolvedKept),
        ("Sources/SlabWatchCore/Exposition/SnapshotRenderer.swift", "SnapshotRenderer", "resolvedInSnapshot", SnapshotRenderer.resolvedInSnapshot),
    ]

    /// The `///` comment above each `var`/`let` named in `source`, joined into
    /// one line, by name; a declaration without one maps to "".
    static func docComments(_ source: String) -> [String: String] {
        var comments: [String: String] = [:]
        var pending: [String] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("///") {
                pending.append(String(trimmed.dropFirst(3).drop { $0 == " " }))
                continue
            }
            let words = trimmed.split(separator: " ")
            if let keyword = words.firstIndex(where: { $0 == "var" || $0 == "let" }), keyword + 1 < words.count {
                let name = String(words[keyword + 1].prefix { $0.isLetter || $0.isNumber })
                comments[name] = pending.joined(separator: " ")
            }
            pending = []
        }
        return comments
    }

    /// For each `DetectorSettings` property a `detector.*` key sets: the key,
    /// found by setting the key to another value and seeing which property changed.
    static func detectorKeys() -> [String: [String]] {
        var keys: [String: [String]] = [:]
        let standard = Dictionary(uniqueKeysWithValues: Mirror(reflecting: DetectorSettings()).children.map { ($0.label ?? "", "\($0.value)") })
        for key in Configuration.keys where key.name.hasPrefix("detector.") {
            guard let changed = ConfigurationKeyUseTests.changed(key) else { continue }
            for child in Mirror(reflecting: changed.sampler.detector).children where standard[child.label ?? ""] != "\(child.value)" {
                keys[child.label ?? "", default: []].append(key.name)
            }
        }
        return keys
    }

    /// Every rule of the detector: name, key, default and its doc comment.
    static func detectorRules() throws -> String {
        let source = try String(contentsOf: RepositoryPaths.root.appendingPathComponent(detectorSource), encoding: .utf8)
        let comments = docComments(source)
        let keys = detectorKeys()
        var lines = ["| rule | key | default | what it does |", "|---|---|---|---|"]
        for child in Mirror(reflecting: DetectorSettings()).children {
            let name = child.label ?? ""
            let key = keys[name].map { $0.map { "`\($0)`" }.joined(separator: ", ") } ?? "–"
            lines.append("| `\(name)` | \(key) | \(value(child.value, named: name)) | \(escaped(comments[name] ?? "")) |")
        }
        for constant in constants {
            let file = try String(contentsOf: RepositoryPaths.root.appendingPathComponent(constant.file), encoding: .utf8)
            lines.append("| `\(constant.type).\(constant.name)` | – | \(Human.grouped(Double(constant.value))) | "
                         + "\(escaped(docComments(file)[constant.name] ?? "")) |")
        }
        return lines.joined(separator: "\n")
    }

    /// A default as a person reads it, by what the name says it holds.
    static func value(_ value: Any, named name: String) -> String {
        switch value {
        case let seconds as [Double]: return seconds.map { Units.durationText($0) }.joined(separator: ", ")
        case let selector as InodeCacheSelector: return "`\(escaped(selector.pattern))`, not `\(escaped(selector.excludePattern))`"
        case let flag as Bool: return "\(flag)"
        case let count as Int: return Human.grouped(Double(count))
        case let number as Double where name.hasSuffix("Seconds"): return Units.durationText(number)
        case let number as Double where name.hasSuffix("Bytes"): return Human.bytes(number)
        case let number as Double where name.hasSuffix("Share"): return "\(Human.decimal(number * 100, number * 100 == (number * 100).rounded() ? 0 : 1)) %"
        case let number as Double where number == number.rounded() && abs(number) >= 1000: return Human.grouped(number)
        case let number as Double: return "\(number)".hasSuffix(".0") ? String("\(number)".dropLast(2)) : "\(number)"
        default: return "\(value)"
        }
    }
}
