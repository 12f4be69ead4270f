import Testing
import TestSupport
@testable import SlabWatchCore

/// The journal catalog documents, under each MESSAGE_ID, exactly the fields
/// alerts of that id carry, and marks "only …" exactly those that some of
/// them lack. The fields come from the alerts the policy really makes, for
/// every kind: from a bare finding, and from one with every optional part
/// (attributed by BPF, with its process and cgroup; resolved when resolving).
struct JournalCatalogTests {
    /// Every event kind (the switch stops compiling when one is added, so this list is revisited).
    static let eventKinds: [GrowthDetector.Event.Kind] = {
        let kinds: [GrowthDetector.Event.Kind] = [.opened, .escalated, .reclassified, .resolved, .attributed]
        for kind in kinds {
            switch kind { case .opened, .escalated, .reclassified, .resolved, .attributed: break }
        }
        return kinds
    }()

    static let chargedVariants: [ChargedCgroups?] = [
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1d3a5b7c_9e0f_4a1b_8c2d_3e4f5a6b7c8d.slice/cri-containerd-3f2a1b9c8d7e3f2a1b9c8d7e3f2a1b9c8d7e3f2a1b9c8d7e3f2a1b9c8d7e3f2a.scope",
        "/system.slice/foo.service",
    ].map { ChargedCgroups(source: .memcgKmem, windowSeconds: 600, entries: [.init(cgroup: $0, riseBytes: 3e7, share: 0.92, rSquared: 0.99)], otherShare: 0.08) }

    /// Field names by MESSAGE_ID, of every alert made from findings with (`full`) or without their optional parts.
    static func sentFields(full: Bool) -> [String: Set<String>] {
        var sent: [String: Set<String>] = [:]
        for kind in eventKinds {
            // Charged to a pod's container, and to a systemd unit: each owner's own fields.
            for charged in full ? chargedVariants : [nil] {
                var finding = AlertPolicyTests.finding("kmalloc-32", firstSeen: 0, state: kind == .resolved ? .resolved : .open)
                if full { finding.attribution = AttributionCountsTests.attribution() }
                finding.charged = charged
                var policy = AlertPolicy()
                for alert in policy.alerts(for: AlertPolicyTests.report([(kind, finding)]), now: 0).alerts {
                    sent[alert.kind.messageID, default: []].formUnion(alert.fields.map(\.name))
                }
            }
        }
        var policy = AlertPolicy()
        let trend = GrowthDetector.Report(trend: SlabTrend(
            windowSeconds: 3600, fits: [.init(memory: .slabUnreclaimable, driver: .time, bytesPerUnit: 1e5, rSquared: 0.99)],
            limitShare: 0.5, limitBytes: 8e9, secondsToLimit: 50_000))
        for alert in policy.alerts(for: trend, now: 1).alerts {
            sent[alert.kind.messageID, default: []].formUnion(alert.fields.map(\.name))
        }
        return sent
    }

    @Test func everyKindOfAlertHasAnEntryAndNoEntryIsStray() throws {
        let catalog = try JournalCatalog.shipped()
        let kinds = Set(Alert.Kind.allCases.map(\.messageID))
        #expect(Set(Self.sentFields(full: true).keys) == kinds, "a kind of alert this test does not make")
        #expect(Set(catalog.fields.keys) == kinds)
    }

    @Test func everyFieldSentIsDocumentedAndNothingElse() throws {
        let catalog = try JournalCatalog.shipped()
        for (id, sent) in Self.sentFields(full: true) {
            #expect(sent.subtracting(catalog.names(id)).isEmpty, "\(id): sent, not documented: \(sent.subtracting(catalog.names(id)).sorted())")
            #expect(catalog.names(id).subtracting(sent).isEmpty, "\(id): documented, never sent: \(catalog.names(id).subtracting(sent).sorted())")
        }
    }

    /// What a bare finding's alert carries is what the catalog says every entry carries.
    @Test func fieldsDocumentedAsAlwaysThereAreThoseABareFindingCarries() throws {
        let catalog = try JournalCatalog.shipped()
        for (id, sent) in Self.sentFields(full: false) {
            #expect(sent == catalog.alwaysNames(id), "\(id): \(sent.symmetricDifference(catalog.alwaysNames(id)).sorted())")
        }
    }
}
