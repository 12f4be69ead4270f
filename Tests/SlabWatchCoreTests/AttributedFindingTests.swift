import Testing
import TestSupport
@testable import SlabWatchCore

/// An attribution attached to an open finding: in its sentence, its alerts,
/// its snapshot and its saved state.
struct AttributedFindingTests {
    static let attribution = Attribution(
        cache: "kmalloc-32", source: .trace,
        callSites: Attribution.ranked([
            .init(function: "foo_attach_inode+0x2a", module: "foo", allocations: 990, frees: 0, netCount: 990, netBytes: 31_680,
                  share: 0, stacks: [.init(frames: ["foo_attach_inode+0x2a [foo]", "foo_lookup+0x11 [foo]"], allocations: 990, net: 990)]),
            .init(function: "seq_open+0x3f", module: nil, allocations: 500, frees: 490, netCount: 10, netBytes: 320, share: 0, stacks: []),
        ]),
        events: 2470, dropped: 0, windowSeconds: 10, stopReason: .duration, endedMilliseconds: 1_795_671_600_000)

    static func attributedReport() throws -> (GrowthDetector.Memory, GrowthDetector.Event) {
        var pipeline = try #require(Self.pipelineWithAFinding())
        let event = pipeline.attach(Self.attribution, now: 5)
        return (try #require(pipeline.latest).memory, try #require(event))
    }

    /// kmalloc-32 grows 300 MB per 9,000 inodes for 75 samples: one open finding.
    static func pipelineWithAFinding() -> Pipeline? {
        var s = Scenario()
        for step in 0..<100 {
            s.add(inodes: 40_000 + Double(max(0, step - 24)) * 9000, caches: [("kmalloc-32", 200e6 + Double(max(0, step - 24)) * 300e6, false)])
        }
        let pipeline = s.run().pipeline
        return pipeline.latest?.memory.openFindings.isEmpty == false ? pipeline : nil
    }

    @Test func attachedAttributionShowsEverywhere() throws {
        let (memory, event) = try Self.attributedReport()
        #expect(event.kind == .attributed)
        let finding = try #require(memory.openFindings.first)
        #expect(finding.message.hasSuffix("Allocated mostly by foo_attach_inode+0x2a [foo] (99 % of net bytes)."))
        // The alert, and every later one of the finding, names the call site.
        var policy = AlertPolicy()
        let alert = try #require(policy.alerts(for: [event], now: 5).alerts.first)
        #expect(alert.kind == .findingAttributed && alert.priority == .notice)
        #expect(alert.value("SLABWATCH_CALL_SITE") == "foo_attach_inode+0x2a" && alert.value("SLABWATCH_MODULE") == "foo")
        #expect(alert.value("SLABWATCH_CALL_SITE_SHARE") == "0.990")
        // In the snapshot, ranked, with the stack.
        let json = try JSONValue.parse(SnapshotRenderer.renderFindings([finding]))
        let sites = try #require(json.array?.first?["attribution"]?["call_sites"]?.array)
        #expect(sites.first?["function"]?.string == "foo_attach_inode+0x2a" && sites.first?["module"]?.string == "foo")
        #expect(sites.last?["module"] == .null && sites.first?["stacks"]?.array?.first?["net"]?.number == 990)
        // And it survives a restart.
        let restored = try StateDecoder.decode(GrowthDetector.Memory.self, from: StateEncoder.encode(memory))
        #expect(restored.openFindings.first?.attribution == Self.attribution)
    }

    @Test func aGoneFindingTakesNoAttributionAndUnattributedFindingsSayNothing() throws {
        var pipeline = Pipeline()
        #expect(pipeline.attach(Self.attribution, now: 0) == nil)
        #expect(AlertPolicy.callSiteFields(nil).isEmpty)
        var churnOnly = Self.attribution
        churnOnly.callSites = [.init(function: "x+0x1", module: nil, allocations: 5, frees: 5, netCount: 0, netBytes: 0, share: 0, stacks: [])]
        #expect(AlertPolicy.callSiteFields(churnOnly).isEmpty && churnOnly.sentence == nil)
        let text = AttributionRenderer.text(Self.attribution)
        #expect(text.contains("foo_attach_inode+0x2a [foo]") && text.contains("99 %") && text.contains("990 net of 990: foo_attach_inode+0x2a [foo] < foo_lookup+0x11 [foo]"))
    }
}
