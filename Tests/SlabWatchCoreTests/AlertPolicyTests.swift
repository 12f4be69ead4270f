import Testing
@testable import SlabWatchCore

struct AlertPolicyTests {
    static func finding(_ slab: String, firstSeen: Int64, state: Finding.State = .open) -> Finding {
        let fit = Finding.RiseFit(
            bytesPerUnit: 32768, rSquared: 0.998, windowSeconds: 600, growthBytes: 33e9, driverChange: 1e6,
            fits: [], points: [], footprintFloor: 200_000_000, driverFloor: 40_000, driverPeak: 1_040_000,
            driverPeakAt: firstSeen, footprintAtDriverPeak: 33_200_000_000)
        let cache = SlabCache(name: slab, activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 33_200_000_000 / 4096, pageSize: 4096, reclaimable: false)
        var f = Finding(slab: slab, driver: .inodes, fit: fit, cache: cache, now: firstSeen, settings: .init())
        if state == .resolved { f.resolve(.memoryReturned, now: firstSeen) }
        return f
    }

    static func report(_ events: [(GrowthDetector.Event.Kind, Finding)]) -> GrowthDetector.Report {
        GrowthDetector.Report(findings: [], events: events.map { .init(kind: $0.0, finding: $0.1, timestampMilliseconds: $0.1.lastSeenMilliseconds) })
    }

    @Test func findingAlertCarriesEveryField() throws {
        var policy = AlertPolicy()
        let (alerts, _) = policy.alerts(for: Self.report([(.opened, Self.finding("kmalloc-32", firstSeen: 0))]), now: 0)
        let alert = try #require(alerts.first)
        #expect(alert.kind == .findingOpened && alert.priority == .warning)
        #expect(alert.value("MESSAGE_ID") == "aaecc68b8b2e4066a6955852ef5fcbf7")
        #expect(alert.value("SYSLOG_IDENTIFIER") == "slabwatch")
        #expect(alert.value("SLABWATCH_SLAB") == "kmalloc-32")
        #expect(alert.value("SLABWATCH_BYTES_PER_UNIT") == "32768.0")
        #expect(alert.value("SLABWATCH_R_SQUARED") == "0.9980")
        #expect(alert.value("SLABWATCH_RECLAIMABLE") == "false")
        #expect(alert.value("MESSAGE")?.hasPrefix("kmalloc-32 grows 32.0 KiB per cached inode") == true)
        #expect(alert.value("SLABWATCH_PHASE") == "rising")
        #expect(alert.value("SLABWATCH_RESOLUTION") == nil)  // only on resolved entries
        for name in ["SLABWATCH_DRIVER", "SLABWATCH_GROWTH_BYTES", "SLABWATCH_CLASSIFICATION", "SLABWATCH_STATE", "SLABWATCH_SEVERITY",
                     "SLABWATCH_HELD_BYTES", "SLABWATCH_PEAK_BYTES"] {
            #expect(alert.value(name) != nil, "\(name)")
        }
        #expect(Set(Alert.Kind.allCases.map(\.messageID)).count == Alert.Kind.allCases.count)
    }

    @Test func flappingCacheAlertsOncePerCooldown() {
        var policy = AlertPolicy()  // 10 min cooldown
        var sent = 0, suppressed = 0
        for cycle in 0..<5 {  // opens and resolves every 2 minutes
            let t = Int64(cycle) * 120_000
            let f = Self.finding("flappy", firstSeen: t)
            let a = policy.alerts(for: Self.report([(.opened, f)]), now: t)
            let b = policy.alerts(for: Self.report([(.resolved, Self.finding("flappy", firstSeen: t, state: .resolved))]), now: t + 60_000)
            sent += a.alerts.count + b.alerts.count
            suppressed += a.suppressed + b.suppressed
        }
        #expect(sent == 2)  // the first opening and its resolution
        #expect(suppressed == 8)
        let later = policy.alerts(for: Self.report([(.opened, Self.finding("flappy", firstSeen: 700_000))]), now: 700_000)
        #expect(later.alerts.count == 1)
        let other = policy.alerts(for: Self.report([(.opened, Self.finding("other", firstSeen: 700_000))]), now: 700_000)
        #expect(other.alerts.count == 1)  // per cache, not global
    }

    /// journald reads PRIORITY; the log line on stderr reads `priority`: for
    /// every kind of alert the two say the same, in syslog's numbers.
    @Test(arguments: [.opened, .escalated, .reclassified, .resolved, .attributed] as [GrowthDetector.Event.Kind])
    func priorityFieldIsThePriority(kind: GrowthDetector.Event.Kind) throws {
        var policy = AlertPolicy()
        let alert = try #require(Alert.from(kind, policy: &policy))
        #expect(alert.value("PRIORITY") == String(alert.priority.rawValue))
        #expect(Alert.Priority.allCases.map(\.rawValue) == [2, 4, 5, 6])  // syslog's crit, warning, notice, info
    }

    @Test func trendAlertPriorityFieldIsThePriority() throws {
        var policy = AlertPolicy()
        let trend = GrowthDetector.Report(trend: SlabTrend(
            windowSeconds: 3600, fits: [.init(memory: .slabUnreclaimable, driver: .time, bytesPerUnit: 1e5, rSquared: 0.99)],
            limitShare: 0.5, limitBytes: 8e9, secondsToLimit: 50_000))
        let alert = try #require(policy.alerts(for: trend, now: 1).alerts.first)
        #expect(alert.priority == .warning && alert.value("PRIORITY") == "4")
    }

    @Test func trendAlertsOnceUntilItRecedes() {
        var policy = AlertPolicy()
        func trend(_ seconds: Double?) -> GrowthDetector.Report {
            GrowthDetector.Report(trend: SlabTrend(
                windowSeconds: 3600, fits: [.init(memory: .slabUnreclaimable, driver: .time, bytesPerUnit: 1e5, rSquared: 0.99)],
                limitShare: 0.5, limitBytes: 8e9, secondsToLimit: seconds))
        }
        #expect(policy.alerts(for: trend(200_000), now: 0).alerts.isEmpty)  // beyond the 24 h horizon
        let first = policy.alerts(for: trend(50_000), now: 1).alerts
        #expect(first.map(\.kind) == [.unreclaimableTrend])
        #expect(first[0].value("MESSAGE_ID") == "5354dd2fca384fc8939a5d9d754e1486")
        #expect(first[0].message.contains("reaches 7.5 GiB (50 % of MemTotal)"))
        #expect(policy.alerts(for: trend(40_000), now: 2).alerts.isEmpty)  // still approaching: once only
        #expect(policy.alerts(for: trend(nil), now: 3).alerts.isEmpty)  // stopped rising: re-armed
        #expect(policy.alerts(for: trend(30_000), now: 4).alerts.count == 1)
    }
}

struct SnapshotFindingsTests {
    @Test func openFindingsAndTheNewest32ResolvedOnes() throws {
        let resolved = (0..<40).map { AlertPolicyTests.finding("cache\($0)", firstSeen: Int64($0), state: .resolved) }
        let open = AlertPolicyTests.finding("growing", firstSeen: 100)
        let shown = SnapshotRenderer.snapshotFindings([open] + resolved)
        #expect(shown.count == 33)
        #expect(shown.first?.slab == "growing")
        #expect(shown.last?.slab == "cache31")  // the report lists resolved ones newest first
    }
}

extension Alert {
    /// The alert `policy` sends for one event of `kind` on a fresh finding.
    static func from(_ kind: GrowthDetector.Event.Kind, policy: inout AlertPolicy) -> Alert? {
        let finding = AlertPolicyTests.finding("kmalloc-32", firstSeen: 0, state: kind == .resolved ? .resolved : .open)
        return policy.alerts(for: AlertPolicyTests.report([(kind, finding)]), now: 0).alerts.first
    }
}
