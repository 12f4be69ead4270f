/// One journal entry to send: the fields journald stores, in order.
public struct Alert: Sendable, Equatable {
    /// Alert kinds; each has a fixed MESSAGE_ID (documented in docs/operating/journal.md and the catalog).
    public enum Kind: String, Sendable, CaseIterable {
        case findingOpened = "finding-opened"
        case findingEscalated = "finding-escalated"
        case findingReclassified = "finding-reclassified"
        case findingResolved = "finding-resolved"
        case findingAttributed = "finding-attributed"
        case unreclaimableTrend = "unreclaimable-trend"

        /// Made once with `systemd-id128 new`; never change them: operators
        /// search by them (`journalctl MESSAGE_ID=…`) on every host.
        public var messageID: String {
            switch self {
            case .findingOpened: "aaecc68b8b2e4066a6955852ef5fcbf7"
            case .findingEscalated: "1ef0c3ca9b25410b8fd813f02d3e36b3"
            case .findingReclassified: "5a41cb2d46fb436d87c8fd0c56d4de21"
            case .findingResolved: "658cdcdd33714f8e9e921425b5c7783a"
            case .findingAttributed: "ecfc041e121a42ac9decc0aa0fcfb3c1"
            case .unreclaimableTrend: "5354dd2fca384fc8939a5d9d754e1486"
            }
        }
    }

    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    /// The syslog priorities alerts use; the raw value is journald's `PRIORITY`.
    public enum Priority: Int, Sendable, CaseIterable {
        case critical = 2
        case warning = 4
        case notice = 5
        case info = 6

        /// The priority of a finding's severity.
        init(_ severity: Finding.Severity) {
            switch severity {
            case .critical: self = .critical
            case .warning: self = .warning
            case .info: self = .info
            }
        }
    }

    public var kind: Kind
    public var priority: Priority
    public var message: String
    /// Every field, MESSAGE, MESSAGE_ID and PRIORITY included.
    public var fields: [Field]
    /// The cache the alert is about (nil for the global trend).
    public var slab: String?

    public func value(_ name: String) -> String? { fields.first { $0.name == name }?.value }
}

/// Turns detector transitions into alerts: one per finding transition and one
/// when the unreclaimable-slab trend comes within the horizon, never one per
/// tick, and at most one new finding per cache per cooldown so a flapping
/// cache cannot flood the journal. Pure; owned by the sampler side.
public struct AlertPolicy: Sendable {
    public struct Settings: Sendable, Equatable {
        /// A cache whose finding opened less than this ago does not alert again.
        public var cooldownSeconds: Double = 600
        /// Alert when SUnreclaim would reach its limit within this long.
        public var trendHorizonSeconds: Double = 24 * 3600
        /// The trend's time fit must be at least this good to alert.
        public var trendMinRSquared: Double = 0.9

        public init() {}
    }

    public var settings: Settings
    private var lastOpenedAlert: [String: Int64] = [:]
    private var suppressedFindings: Set<FindingID> = []
    private var trendArmed = true
    public private(set) var suppressedCount = 0

    fileprivate struct FindingID: Hashable, Sendable, Codable {
        var slab: String
        var firstSeen: Int64
    }

    public init(settings: Settings = .init()) { self.settings = settings }

    /// What the policy remembers between reports — cooldowns, findings already
    /// held back — kept across a restart so a finding that alerted is not
    /// announced again.
    public struct Memory: Sendable, Equatable, Codable {
        fileprivate var lastOpenedAlert: [String: Int64]
        fileprivate var suppressedFindings: Set<FindingID>
        fileprivate var trendArmed: Bool
        fileprivate var suppressedCount: Int
    }

    public var memory: Memory {
        get { Memory(lastOpenedAlert: lastOpenedAlert, suppressedFindings: suppressedFindings,
                     trendArmed: trendArmed, suppressedCount: suppressedCount) }
        set {
            lastOpenedAlert = newValue.lastOpenedAlert
            suppressedFindings = newValue.suppressedFindings
            trendArmed = newValue.trendArmed
            suppressedCount = newValue.suppressedCount
        }
    }

    /// The alerts one detector report calls for; `suppressed` counts those held back.
    public mutating func alerts(for report: GrowthDetector.Report, now: Int64) -> (alerts: [Alert], suppressed: Int) {
        var (alerts, suppressed) = alerts(for: report.events, now: now)
        if let trend = trendAlert(report.trend) { alerts.append(trend) }
        return (alerts, suppressed)
    }

    /// The alerts for finding transitions alone (an attribution arriving between ticks).
    public mutating func alerts(for events: [GrowthDetector.Event], now: Int64) -> (alerts: [Alert], suppressed: Int) {
        var alerts: [Alert] = []
        var suppressed = 0
        for event in events {
            let id = FindingID(slab: event.finding.slab, firstSeen: event.finding.firstSeenMilliseconds)
            if event.kind == .opened {
                if let last = lastOpenedAlert[id.slab], Double(elapsedMilliseconds(now, since: last)) / 1000 < settings.cooldownSeconds {
                    suppressedFindings.insert(id)
                } else {
                    lastOpenedAlert[id.slab] = now
                }
            }
            if suppressedFindings.contains(id) {
                suppressed += 1
                if event.kind == .resolved { suppressedFindings.remove(id) }
                continue
            }
            alerts.append(Self.alert(event))
        }
        suppressedCount += suppressed
        return (alerts, suppressed)
    }

    static func alert(_ event: GrowthDetector.Event) -> Alert {
        let f = event.finding
        let kind: Alert.Kind
        let priority: Alert.Priority
        switch event.kind {
        case .opened:
            kind = .findingOpened
            priority = Alert.Priority(f.severity)
        case .escalated:
            // To warning when memory that had come back is held again; to critical otherwise.
            kind = .findingEscalated
            priority = Alert.Priority(f.severity)
        case .reclassified:
            kind = .findingReclassified
            priority = f.classification == .leakLike ? .warning : .notice
        case .resolved:
            kind = .findingResolved
            priority = .info
        case .attributed:
            kind = .findingAttributed
            priority = .notice
        }
        let message = event.kind == .resolved ? "Resolved: \(f.message)" : f.message
        let fields: [Alert.Field] = [
            .init(name: "MESSAGE", value: message),
            .init(name: "MESSAGE_ID", value: kind.messageID),
            .init(name: "PRIORITY", value: String(priority.rawValue)),
            .init(name: "SYSLOG_IDENTIFIER", value: "slabwatch"),
            .init(name: "SLABWATCH_ALERT", value: kind.rawValue),
            .init(name: "SLABWATCH_SLAB", value: f.slab),
            .init(name: "SLABWATCH_DRIVER", value: f.driver.rawValue),
            .init(name: "SLABWATCH_INODE_CACHE", value: f.inodeCache ?? ""),
            .init(name: "SLABWATCH_BYTES_PER_UNIT", value: Human.decimal(f.bytesPerUnit, 1)),
            .init(name: "SLABWATCH_R_SQUARED", value: Human.decimal(f.rSquared, 4)),
            .init(name: "SLABWATCH_GROWTH_BYTES", value: Human.decimal(f.growthBytes, 0)),
            .init(name: "SLABWATCH_DRIVER_CHANGE", value: Human.decimal(f.driverChange, 0)),
            .init(name: "SLABWATCH_WINDOW_SECONDS", value: Human.decimal(f.windowSeconds, 0)),
            .init(name: "SLABWATCH_RECLAIMABLE", value: f.reclaimable.map { $0 ? "true" : "false" } ?? "unknown"),
            .init(name: "SLABWATCH_CLASSIFICATION", value: f.classification.rawValue),
            .init(name: "SLABWATCH_PHASE", value: f.phase.rawValue),
            .init(name: "SLABWATCH_HELD_BYTES", value: String(f.heldBytes)),
            .init(name: "SLABWATCH_PEAK_BYTES", value: String(f.footprintPeak)),
            .init(name: "SLABWATCH_STATE", value: f.state.rawValue),
            .init(name: "SLABWATCH_SEVERITY", value: f.severity.rawValue),
            .init(name: "SLABWATCH_FIRST_SEEN", value: RFC3339.format(unixMilliseconds: f.firstSeenMilliseconds)),
        ] + (f.resolution.map { [.init(name: "SLABWATCH_RESOLUTION", value: $0.rawValue)] } ?? [])
            + attributionFields(f)
        return Alert(kind: kind, priority: priority, message: message, fields: fields, slab: f.slab)
    }

    /// The call site's fields and who is charged. `SLABWATCH_CGROUP` names one
    /// cgroup per entry: the memory cgroup charged most for the rise where the
    /// finding was ranked (with BPF first, that is where the attribution's net
    /// bytes were charged), else the attributed process's cgroup.
    static func attributionFields(_ finding: Finding) -> [Alert.Field] {
        let charged = chargedFields(finding.charged)
        let callSite = callSiteFields(finding.attribution)
        guard charged.contains(where: { $0.name == "SLABWATCH_CGROUP" }) else { return callSite + charged }
        return callSite.filter { $0.name != "SLABWATCH_CGROUP" } + charged
    }

    /// The top charged cgroup, its share, what ranked it, and its owner's
    /// labels where the path says (as in `/metrics`); only the source for a
    /// cache not accounted.
    static func chargedFields(_ charged: ChargedCgroups?) -> [Alert.Field] {
        guard let charged else { return [] }
        var fields: [Alert.Field] = [.init(name: "SLABWATCH_CGROUP_SOURCE", value: charged.source.rawValue)]
        guard let top = charged.top else { return fields }
        fields += [.init(name: "SLABWATCH_CGROUP", value: top.cgroup), .init(name: "SLABWATCH_CGROUP_SHARE", value: Human.decimal(top.share, 3))]
        let owner = top.owner
        if let uid = owner?.podUID { fields.append(.init(name: "SLABWATCH_POD_UID", value: uid)) }
        if let id = owner?.containerID { fields.append(.init(name: "SLABWATCH_CONTAINER_ID", value: id)) }
        if let unit = owner?.unit { fields.append(.init(name: "SLABWATCH_UNIT", value: unit)) }
        return fields
    }

    /// Once per approach: fires when the projection comes within the horizon,
    /// re-arms when it recedes past twice the horizon or the trend stops rising.
    /// The top call site of an attribution with net bytes; `vmlinux` for
    /// code built into the kernel (perf's name for it). With the process and
    /// cgroup that hold most of its net bytes, where the session knew them (BPF).
    static func callSiteFields(_ attribution: Attribution?) -> [Alert.Field] {
        guard let top = attribution?.callSites.first, top.netBytes > 0 else { return [] }
        var fields: [Alert.Field] = [.init(name: "SLABWATCH_CALL_SITE", value: top.function), .init(name: "SLABWATCH_MODULE", value: top.module ?? "vmlinux"),
                                     .init(name: "SLABWATCH_CALL_SITE_SHARE", value: Human.decimal(top.share, 3))]
        if let owner = top.processes?.first(where: { $0.netBytes > 0 }) {
            fields.append(.init(name: "SLABWATCH_PID", value: "\(owner.pid)"))
            if let comm = owner.comm { fields.append(.init(name: "SLABWATCH_COMM", value: comm)) }
            if let cgroup = owner.cgroup { fields.append(.init(name: "SLABWATCH_CGROUP", value: cgroup)) }
        }
        return fields
    }

    private mutating func trendAlert(_ trend: SlabTrend?) -> Alert? {
        guard let trend, let fit = trend.fits.first(where: { $0.memory == .slabUnreclaimable && $0.driver == .time }),
              let seconds = trend.secondsToLimit, fit.rSquared >= settings.trendMinRSquared
        else {
            trendArmed = true
            return nil
        }
        if seconds > 2 * settings.trendHorizonSeconds { trendArmed = true }
        guard trendArmed, seconds <= settings.trendHorizonSeconds else { return nil }
        trendArmed = false
        let limit = trend.limitBytes.map { Human.bytes($0) } ?? "the limit"
        let message = "Unreclaimable slab grows \(Human.bytes(fit.bytesPerUnit * 3600)) per hour (R² \(Human.decimal(fit.rSquared, 3)) over \(Human.duration(trend.windowSeconds))); at this rate it reaches \(limit) (\(Human.decimal(trend.limitShare * 100, 0)) % of MemTotal) in \(Human.duration(seconds))."
        let kind = Alert.Kind.unreclaimableTrend
        let priority = Alert.Priority.warning
        return Alert(kind: kind, priority: priority, message: message, fields: [
            .init(name: "MESSAGE", value: message),
            .init(name: "MESSAGE_ID", value: kind.messageID),
            .init(name: "PRIORITY", value: String(priority.rawValue)),
            .init(name: "SYSLOG_IDENTIFIER", value: "slabwatch"),
            .init(name: "SLABWATCH_ALERT", value: kind.rawValue),
            .init(name: "SLABWATCH_BYTES_PER_SECOND", value: Human.decimal(fit.bytesPerUnit, 1)),
            .init(name: "SLABWATCH_R_SQUARED", value: Human.decimal(fit.rSquared, 4)),
            .init(name: "SLABWATCH_SECONDS_TO_LIMIT", value: Human.decimal(seconds, 0)),
            .init(name: "SLABWATCH_LIMIT_BYTES", value: trend.limitBytes.map { Human.decimal($0, 0) } ?? ""),
            .init(name: "SLABWATCH_WINDOW_SECONDS", value: Human.decimal(trend.windowSeconds, 0)),
        ], slab: nil)
    }
}
