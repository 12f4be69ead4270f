import Foundation
import Glibc
import Testing
import TestSupport

/// What a fleet pays per node: by default `/metrics` lists the top caches
/// (here the recorded machine's 20 largest: it has no finding and, with one
/// static sample, no growth), lint-clean; `slab.export: all`, applied by a
/// reload, lists all 235 again.
extension EndToEndTests {
    @Test func defaultMetricsAreBoundedAndExportAllRestoresEveryCache() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("slabwatch.yml")
        try replaceFile(config, with: "slab:\n  include: \"\"\n")
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments + ["--config", config.path])

        let bounded = try daemon.get("/metrics").body
        try Self.expectLintClean(bounded)
        let largest = try Self.largestRecordedCaches(20)
        let perCache = Self.perCacheSeries(bounded)
        #expect(Set(perCache.values.flatMap { $0 }) == Set(largest), "\(perCache)")
        #expect(perCache.values.allSatisfy { Set($0).count == 20 }, "\(perCache.mapValues(\.count))")
        let counts = samples(bounded)
        #expect(counts["slabwatch_caches{state=\"exported\"}"] == 20)
        #expect(counts["slabwatch_caches{state=\"beyond_top\"}"] == 215)
        #expect(counts["slabwatch_caches{state=\"filtered\"}"] == 0)

        try replaceFile(config, with: "slab:\n  export: all\n")
        daemon.signal(SIGHUP)
        try daemon.waitFor("every cache after the reload") {
            samples(try daemon.get("/metrics").body)["slabwatch_caches{state=\"exported\"}"] == 235
        }
        let all = try daemon.get("/metrics").body
        try Self.expectLintClean(all)
        let every = Self.perCacheSeries(all)
        #expect(every.keys == perCache.keys)
        #expect(every.values.allSatisfy { Set($0).count == 235 }, "\(every.mapValues(\.count))")
        #expect(samples(all)["slabwatch_caches{state=\"beyond_top\"}"] == 0)
        #expect(daemon.terminate().isClean)
    }

    /// `promtool check metrics` finds nothing to say.
    static func expectLintClean(_ body: String) throws {
        let lint = try DaemonProcess.run(Paths.promtool, ["check", "metrics"], input: Data(body.utf8))
        #expect(lint.status == 0 && lint.output.isEmpty && lint.error.isEmpty, "\(lint.output)\(lint.error)")
    }

    /// The cache names of each `slabwatch_slab_*` family's series.
    static func perCacheSeries(_ body: String) -> [String: [String]] {
        var families: [String: [String]] = [:]
        for line in body.split(separator: "\n") where line.hasPrefix("slabwatch_slab_") {
            guard let open = line.firstIndex(of: "{"), let close = line.firstIndex(of: "}") else { continue }
            let labels = line[line.index(after: open)..<close]
            guard labels.hasPrefix("slab=\"") else { continue }
            families[String(line[..<open]), default: []].append(String(labels.dropFirst(6).dropLast()))
        }
        return families
    }

    /// The `count` largest footprints of the recorded /proc/slabinfo (slabs ×
    /// pages per slab × 4 KiB), ties by name, as the daemon ranks them.
    static func largestRecordedCaches(_ count: Int) throws -> [String] {
        let slabinfo = try String(contentsOf: Paths.localCapture.appendingPathComponent("proc/slabinfo"), encoding: .utf8)
        let footprints = slabinfo.split(separator: "\n").dropFirst(2).compactMap { line -> (String, Double)? in
            let fields = line.split(separator: " ")
            guard fields.count > 14, let pages = Double(fields[5]), let slabs = Double(fields[14]) else { return nil }
            return (String(fields[0]), slabs * pages * 4096)
        }
        return footprints.sorted { ($0.1, $1.0) > ($1.1, $0.0) }.prefix(count).map(\.0)
    }
}
