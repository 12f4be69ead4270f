import Testing
@testable import SlabWatchCore

/// What `slabwatch top --url` reads: JSON, timestamps, and a snapshot back
/// into the screen's figures.
struct SnapshotReaderTests {
    @Test func snapshotReadsBackToTheSameScreen() throws {
        let (sample, history, report) = TopViewTests.story()
        let bytes = SnapshotRenderer.render(sample, intervalSeconds: 5, report: report)
        let read = try SnapshotReader.parse(bytes)
        #expect(read.sample.timestampMilliseconds == sample.timestampMilliseconds)
        // The snapshot's caches are the kernel's; the derived series come back from `memory`, as no cache.
        #expect(Set(read.sample.caches.map(\.name)) == Set(sample.caches.map(\.name)))
        #expect(read.sample.caches.filter(\.isDerived).map(\.name) == sample.caches.filter(\.isDerived).map(\.name))
        for cache in read.sample.caches {
            let original = try #require(sample.caches.first { $0.name == cache.name })
            #expect(cache.footprintBytes == original.footprintBytes && cache.objects == original.objects && cache.isDerived == original.isDerived
                    && cache.objectSize == original.objectSize && cache.reclaimable == original.reclaimable
                    && cache.wasteBytes == original.wasteBytes)
        }
        #expect(read.sample.meminfo?.totalBytes == sample.meminfo?.totalBytes)
        #expect(read.sample.inodes?.inodes == sample.inodes?.inodes)
        let finding = try #require(read.findings.first { $0.slab == "kmalloc-32" })
        let original = try #require(report.findings.first { $0.slab == "kmalloc-32" })
        #expect(finding.bytesPerUnit == original.bytesPerUnit && finding.rSquared == original.rSquared)
        #expect(finding.phase == original.phase && finding.classification == original.classification && finding.state == original.state)
        #expect(finding.footprintFloor == original.footprintFloor && finding.heldBytes == original.heldBytes)
        // The screen drawn from the snapshot shows the finding's row as the local one does.
        var options = TopView.Options()
        options.width = 200
        let local = TopViewTests.rows(TopView.render(sample: sample, history: history, report: report, options: options))[0]
        let remote = TopViewTests.rows(TopView.render(sample: read.sample, history: .empty, report: .init(findings: read.findings), options: options))[0]
        #expect(remote.prefix(60) == local.prefix(60), "\(remote)\n\(local)")
        #expect(remote.contains("/inode R² \(Human.decimal(original.rSquared, 2)) \(original.phase.rawValue)"))
    }

    /// A finding on the memory outside the caches shows in `top --url` as in
    /// the local top: its row is there, flagged, with the daemon's figure.
    @Test func aFindingOutsideTheCachesShowsInTheRemoteScreen() throws {
        var pipeline = Pipeline()
        for sample in OutsideCachesStoryTests.story(culprit: true).samples { _ = pipeline.step(sample) }
        let latest = try #require(pipeline.latest)
        let read = try SnapshotReader.parse(SnapshotRenderer.render(latest.sample, intervalSeconds: 5, report: latest.report))
        let outside = try #require(read.sample.caches.first { $0.name == Attribution.outsideCaches })
        #expect(outside.isDerived && outside.footprintBytes == latest.sample.caches.first { $0.name == Attribution.outsideCaches }?.footprintBytes)
        var options = TopView.Options()
        options.width = 200
        let rows = TopViewTests.rows(TopView.render(sample: read.sample, history: .empty, report: .init(findings: read.findings), options: options))
        #expect(rows[0].hasPrefix("!(outside caches, unreclaimable) ") && rows[0].contains("/tmpfs inode"), "\(rows.prefix(2))")
    }

    /// A daemon of 0.1.0 wrote a finding's floor as `baseline_bytes`; the
    /// reader takes either key, so `top --url` across an upgrade shows what
    /// the finding holds, not its whole footprint.
    @Test(arguments: ["floor_bytes", "baseline_bytes"])
    func theFloorIsReadUnderEitherName(_ key: String) throws {
        let (sample, _, report) = TopViewTests.story()
        let rendered = String(decoding: SnapshotRenderer.render(sample, intervalSeconds: 5, report: report), as: UTF8.self)
        #expect(rendered.contains("\"floor_bytes\":") && !rendered.contains("baseline_bytes"))
        let read = try SnapshotReader.parse(Array(rendered.replacing("\"floor_bytes\":", with: "\"\(key)\":").utf8))
        let original = try #require(report.findings.first { $0.slab == "kmalloc-32" })
        #expect(original.footprintFloor > 0)
        #expect(read.findings.first { $0.slab == "kmalloc-32" }?.footprintFloor == original.footprintFloor)
    }

    @Test func notASnapshotIsAClearError() {
        #expect(throws: SnapshotReader.Failure.self) { try SnapshotReader.parse(Array("{\"metrics\": 1}".utf8)) }
        #expect(throws: SnapshotReader.Failure.self) { try SnapshotReader.parse(Array("<html>".utf8)) }
    }

    @Test(arguments: [
        ("{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"]}", true),
        ("[]", true), ("  {}  ", true), ("0", true),
        ("{\"a\": 1,}", false), ("[1 2]", false), ("01", false), ("1.", false), ("-", false), ("\"\\ud83d\"", false),
        ("\"a\u{1}\"", false), ("{\"a\" 1}", false), ("[1] x", false), ("1e999", false), ("", false),
        (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), false),
    ])
    func jsonIsStrict(_ text: String, _ valid: Bool) {
        #expect(((try? JSONValue.parse(Array(text.utf8))) != nil) == valid, "\(text)")
    }

    /// Width is bounded as depth is: a flat array of a million and one
    /// values is refused (it held 1.36 GB when 60 MB of `[0],` was read).
    @Test func jsonRefusesMoreValuesThanItsLimit() throws {
        let atLimit = "[" + Array(repeating: "0", count: JSONValue.maxValues - 1).joined(separator: ",") + "]"
        #expect(try JSONValue.parse(Array(atLimit.utf8)).array?.count == JSONValue.maxValues - 1)
        let over = "[" + Array(repeating: "0", count: JSONValue.maxValues).joined(separator: ",") + "]"
        var reason: String?
        do { _ = try JSONValue.parse(Array(over.utf8)) } catch { reason = error.reason }
        #expect(reason == "more than \(JSONValue.maxValues) values")
    }

    @Test func jsonValuesAreRead() throws {
        let value = try JSONValue.parse(Array("{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\ud83d\\ude00\"], \"n\": 18446744073709549568}".utf8))
        #expect(value["a"]?.array?.count == 5)
        #expect(value["a"]?.array?[1].number == -2500)
        #expect(value["a"]?.array?[4].string == "xé😀")
        #expect(value["n"]?.unsigned == 18_446_744_073_709_549_568)
        #expect(JSONValue.number(-1).unsigned == nil && JSONValue.number(1.5).unsigned == nil)
    }

    @Test func rfc3339ReadsBackWhatItWrites() {
        for ms: Int64 in [0, 1_795_671_600_123, 951_782_400_000 /* 2000-02-29 */, -86_400_000, 4_102_444_799_999] {
            #expect(RFC3339.parse(RFC3339.format(unixMilliseconds: ms)) == ms, "\(ms)")
        }
        for bad in ["2026-11-26T05:40:00Z", "2026-13-26T05:40:00.000Z", "2026-11-26 05:40:00.000Z", "x"] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }
}
