/// Renders one sample as the `/metrics` body; every family it may write is in
/// `families` (MetricFamily.swift), whose HELP and TYPE it writes.
///
/// Families come in byte order of their names and series in byte order of
/// their labels, so the same input renders byte for byte the same output
/// (the golden test holds this). A source that is down omits its families and
/// shows as `slabwatch_source_up{source="…"} 0`; it never fails the scrape.
public enum MetricsRenderer: Sendable {
    public struct Input: Sendable {
        public var sample: Sample
        /// Caches that passed the filter and the bound, sorted by name.
        public var exportedCaches: [SlabCache]
        /// Caches the filter admitted that the bound left out (`CacheSelection.Choice`).
        public var cachesBeyondTop: Int
        public var version: String
        public var report: GrowthDetector.Report
        /// slabwatch's figures about itself.
        public var own: SelfStatistics

        public init(sample: Sample, exportedCaches: [SlabCache], cachesBeyondTop: Int = 0, version: String,
                    report: GrowthDetector.Report = .init(), own: SelfStatistics = .init()) {
            self.sample = sample
            self.exportedCaches = exportedCaches
            self.cachesBeyondTop = cachesBeyondTop
            self.version = version
            self.report = report
            self.own = own
        }
    }

    public static func render(_ input: Input, sizeHint: Int = 64 * 1024) -> [UInt8] {
        var out = PrometheusText(reservingCapacity: sizeHint)
        if let process = input.own.process { renderProcess(process, &out) }
        renderAlerts(input.own.alerts, &out)
        out.family(.buildInfo)
        out.sample(MetricFamily.buildInfo.name, label: "version", input.version, 1 as UInt64)
        renderCacheCounts(input, &out)
        if let cgroups = input.sample.cgroupMemory { renderCgroups(cgroups, &out) }
        renderFindings(input.report, &out)
        renderFS(input.sample, &out)
        if let server = input.own.server { renderServer(server, &out) }
        renderMemory(input.sample, &out)
        renderSampler(input, &out)
        renderCaches(input.exportedCaches, &out)
        renderSockets(input.sample, &out)
        out.family(.sourceUp)
        for source in Source.allCases.sorted() {
            out.sample(MetricFamily.sourceUp.name, label: "source", source.rawValue,
                       input.sample.status(of: source).up ? 1 as UInt64 : 0)
        }
        if let persistence = input.own.persistence { renderPersistence(persistence, &out) }
        if let tasks = input.sample.tasks { out.single(.threads, tasks.threads) }
        renderTrend(input.report.trend, &out)
        return out.bytes
    }

    /// Memory cgroups by state: `all` always, `live` and `dying` only where
    /// they are known (`MemoryCgroupCounts`), never a guess.
    private static func renderMemoryCgroups(_ cgroups: MemoryCgroupCounts, _ out: inout PrometheusText) {
        out.family(.memoryCgroups)
        out.sample(MetricFamily.memoryCgroups.name, label: "state", "all", cgroups.total)
        if let dying = cgroups.dying { out.sample(MetricFamily.memoryCgroups.name, label: "state", "dying", dying) }
        if let live = cgroups.live { out.sample(MetricFamily.memoryCgroups.name, label: "state", "live", live) }
    }

    /// Sockets of every namespace (`sock_inode_cache`'s objects, when that
    /// cache is listed on its own) and of the daemon's (`sockets: used`),
    /// then the daemon's namespace's TCP counts.
    private static func renderSockets(_ sample: Sample, _ out: inout PrometheusText) {
        let kernel = sample.caches.first { $0.name == SampleRing.Counter.socketCache && $0.aliases.isEmpty }?.activeObjects
        if kernel != nil || sample.sockets != nil {
            out.family(.sockets)
            if let kernel { out.sample(MetricFamily.sockets.name, label: "scope", "kernel", kernel) }
            if let used = sample.sockets?.used { out.sample(MetricFamily.sockets.name, label: "scope", "namespace", used) }
        }
        guard let s = sample.sockets, s.tcpInUse != nil else { return }
        out.family(.sockstatTCP)
        for (state, value) in [("alloc", s.tcpAllocated), ("inuse", s.tcpInUse), ("orphan", s.tcpOrphan), ("timewait", s.tcpTimeWait)] {
            if let value { out.sample(MetricFamily.sockstatTCP.name, label: "state", state, value) }
        }
    }

    private static func renderPersistence(_ p: PersistenceStatistics, _ out: inout PrometheusText) {
        out.single(.stateCheckpointBytes, UInt64(p.lastCheckpointBytes))
        out.single(.stateCheckpointDuration, p.lastCheckpointDurationSeconds)
        out.family(.stateCheckpoints)
        out.sample(MetricFamily.stateCheckpoints.name, label: "result", "failed", p.checkpointsFailed)
        out.sample(MetricFamily.stateCheckpoints.name, label: "result", "written", p.checkpointsWritten)
        out.single(.stateEnabled, p.enabled ? 1 as UInt64 : 0)
        out.single(.stateLastCheckpoint, p.lastCheckpointSeconds ?? 0)
        out.family(.stateRestored)
        for outcome in PersistenceStatistics.Restore.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
            out.sample(MetricFamily.stateRestored.name, label: "outcome", outcome.rawValue, outcome == p.restore ? 1 as UInt64 : 0)
        }
    }

    private static func renderProcess(_ p: ProcessStatistics, _ out: inout PrometheusText) {
        out.single(.processCPUSeconds, p.cpuSeconds)
        out.single(.processMaxFDs, p.maxFileDescriptors)
        out.single(.processOpenFDs, p.openFileDescriptors)
        out.single(.processResidentMemory, p.residentBytes)
        out.single(.processStartTime, p.startTimeSeconds)
        out.single(.processVirtualMemory, p.virtualBytes)
    }

    /// Every sink × result, zeros included, so rate() works from the first alert.
    private static func renderAlerts(_ alerts: [AlertOutcome: UInt64], _ out: inout PrometheusText) {
        out.family(.alerts)
        for result in AlertOutcome.Result.allCases {
            for sink in AlertOutcome.Sink.allCases {
                out.sample(MetricFamily.alerts.name, labels: ["result": result.rawValue, "sink": sink.rawValue],
                           alerts[AlertOutcome(sink: sink, result: result)] ?? 0)
            }
        }
    }

    /// Every cache of the sample is in one state: exported, left out by the
    /// bound (`beyond_top`), or by the filters (`filtered`); `over_limit` are
    /// the ones the sample itself left out.
    private static func renderCacheCounts(_ input: Input, _ out: inout PrometheusText) {
        out.family(.caches)
        let exported = UInt64(input.exportedCaches.count), beyondTop = UInt64(input.cachesBeyondTop)
        let total = UInt64(input.sample.caches.count { !$0.isDerived })
        out.sample(MetricFamily.caches.name, label: "state", "beyond_top", beyondTop)
        out.sample(MetricFamily.caches.name, label: "state", "exported", exported)
        out.sample(MetricFamily.caches.name, label: "state", "filtered", total - min(total, exported + beyondTop))
        out.sample(MetricFamily.caches.name, label: "state", "over_limit", UInt64(input.sample.cachesOverLimit))
    }

    /// Per finding (open, or resolved and still remembered) and driver: slope,
    /// R² and whether that driver passed. Bounded by the findings kept, not by
    /// the number of caches.
    private static func renderFindings(_ report: GrowthDetector.Report, _ out: inout PrometheusText) {
        var latest: [String: Finding] = [:]  // one entry per cache: its newest finding
        for finding in report.findings where latest[finding.slab] == nil || finding.state == .open {
            latest[finding.slab] = finding
        }
        let findings = latest.values.sorted { $0.slab < $1.slab }
        func family(_ family: MetricFamily, _ value: (Finding, Finding.DriverFit) -> Double) {
            guard !findings.isEmpty else { return }
            out.family(family)
            for finding in findings {
                for fit in finding.fits {
                    out.sample(family.name, labels: ["driver": fit.driver.rawValue, "inode_cache": fit.inodeCache ?? "", "slab": finding.slab],
                               value(finding, fit))
                }
            }
        }
        family(.findingBytesPerUnit) { $1.bytesPerUnit }
        renderCharged(findings.filter { $0.state == .open }, &out)
        family(.findingFlagged) { $0.state == .open && $1.flagged ? 1 : 0 }
        if !findings.isEmpty {
            out.family(.findingHeldBytes)
            for finding in findings { out.sample(MetricFamily.findingHeldBytes.name, label: "slab", finding.slab, finding.heldBytes) }
            // Classification and severity as labels of a constant 1, so a
            // dashboard's table can join them to the finding's main driver.
            out.family(.findingInfo)
            for finding in findings {
                out.sample(MetricFamily.findingInfo.name, labels: ["classification": finding.classification.rawValue, "driver": finding.driver.rawValue,
                                                               "inode_cache": finding.inodeCache ?? "", "severity": finding.severity.rawValue,
                                                               "slab": finding.slab, "state": finding.state.rawValue],
                           1 as UInt64)
            }
            out.family(.findingPhase)
            for finding in findings {
                for phase in Finding.Phase.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
                    out.sample(MetricFamily.findingPhase.name, labels: ["phase": phase.rawValue, "slab": finding.slab],
                               UInt64(finding.phase == phase ? 1 : 0))
                }
            }
        }
        family(.findingRSquared) { $1.rSquared }
        let counts = report.openCounts
        out.family(.findingsOpen)
        for severity in Finding.Severity.allCases.map(\.rawValue).sorted() {
            out.sample(MetricFamily.findingsOpen.name, label: "severity", severity,
                       UInt64(counts[Finding.Severity(rawValue: severity)!] ?? 0))
        }
    }

    private static func renderTrend(_ trend: SlabTrend?, _ out: inout PrometheusText) {
        guard let trend else { return }
        let fits = trend.fits.sorted { ($0.driver.rawValue, $0.memory) < ($1.driver.rawValue, $1.memory) }
        out.family(.trendBytesPerUnit)
        for fit in fits {
            out.sample(MetricFamily.trendBytesPerUnit.name, labels: ["driver": fit.driver.rawValue, "memory": fit.memory.rawValue], fit.bytesPerUnit)
        }
        if let seconds = trend.secondsToLimit {
            out.single(.trendLimitSeconds, seconds)
        }
        out.family(.trendRSquared)
        for fit in fits {
            out.sample(MetricFamily.trendRSquared.name, labels: ["driver": fit.driver.rawValue, "memory": fit.memory.rawValue], fit.rSquared)
        }
    }

    private static func renderFS(_ sample: Sample, _ out: inout PrometheusText) {
        if let d = sample.dentries {
            out.single(.fsDentries, d.dentries)
            if let negative = d.negativeDentries { out.single(.fsDentriesNegative, negative) }
            out.single(.fsDentriesUnused, d.unusedDentries)
        }
        if let f = sample.fileHandles {
            out.single(.fsFileHandlesAllocated, f.allocated)
            out.single(.fsFileHandlesMax, f.maximum)
        }
        if let i = sample.inodes {
            out.single(.fsInodes, i.inodes)
            out.single(.fsInodesFree, i.freeInodes)
        }
    }

    private static func renderServer(_ s: ServerStatistics, _ out: inout PrometheusText) {
        out.single(.httpAcceptErrors, s.acceptErrors)
        out.single(.httpAuthenticationFailures, s.authenticationFailures)
        out.single(.httpBadRequests, s.badRequests)
        out.single(.httpConnectionsAccepted, s.connectionsAccepted)
        out.single(.httpConnectionsRejected, s.connectionsRejected)
        out.single(.httpConnectionsShed, s.connectionsShed)
        out.single(.httpConnectionsTimedOut, s.connectionsTimedOut)
        out.single(.httpRequests, s.requests)
        out.single(.httpTLSHandshakeFailures, s.tlsHandshakeFailures)
    }

    private static func renderMemory(_ sample: Sample, _ out: inout PrometheusText) {
        func gauge(_ family: MetricFamily, _ value: UInt64?) {
            if let value { out.single(family, value) }
        }
        gauge(.memoryAvailable, sample.meminfo?.availableBytes)
        if let cgroups = sample.memoryCgroups { renderMemoryCgroups(cgroups, &out) }
        guard let m = sample.meminfo else { return }
        gauge(.memoryKernelReclaimable, m.kernelReclaimableBytes)
        renderOutsideCaches(sample, &out)
        gauge(.memoryPercpu, m.percpuBytes)
        gauge(.memorySlab, m.slabBytes)
        gauge(.memorySlabReclaimable, m.slabReclaimableBytes)
        gauge(.memorySlabUnreclaimable, m.slabUnreclaimableBytes)
        gauge(.memoryTotal, m.totalBytes)
        gauge(.memoryVmstatError, sample.vmstat?.errorBytes)
    }

    /// The cgroups each open finding names (`Finding.charged`) and their
    /// shares: at most `ChargeRanking.named` series per open finding.
    private static func renderCharged(_ open: [Finding], _ out: inout PrometheusText) {
        let named = open.compactMap { finding in finding.charged.map { (finding.slab, $0) } }.filter { !$0.1.entries.isEmpty }
        guard !named.isEmpty else { return }
        out.family(.findingChargedShare)
        for (slab, charged) in named {
            for entry in charged.entries {
                let owner = entry.owner
                out.sample(MetricFamily.findingChargedShare.name, labels: [
                    "cgroup": entry.cgroup, "container_id": owner?.containerID ?? "", "pod_uid": owner?.podUID ?? "", "slab": slab,
                    "source": charged.source.rawValue, "unit": owner?.unit ?? "",
                ], entry.share)
            }
        }
    }

    /// The largest memory cgroups' kernel memory, the rest as `other`, and
    /// how many there were: at most `sampler.max-cgroups` + 1 series a family.
    private static func renderCgroups(_ cgroups: CgroupMemory, _ out: inout PrometheusText) {
        let entries = cgroups.entries.sorted { $0.path < $1.path }
        out.family(.cgroupKernelMemory)
        for entry in entries {
            let owner = CgroupOwner.of(entry.path)
            out.sample(MetricFamily.cgroupKernelMemory.name, labels: [
                "cgroup": entry.path, "container_id": owner?.containerID ?? "", "pod_uid": owner?.podUID ?? "", "unit": owner?.unit ?? "",
            ], entry.kernelBytes)
        }
        if cgroups.others > 0 {
            out.sample(MetricFamily.cgroupKernelMemory.name, labels: ["cgroup": "other", "container_id": "", "pod_uid": "", "unit": ""],
                       cgroups.otherKernelBytes)
        }
        let slab = entries.filter { $0.slabReclaimableBytes != nil || $0.slabUnreclaimableBytes != nil }
        if !slab.isEmpty {
            out.family(.cgroupSlab)
            for entry in slab {
                if let bytes = entry.slabReclaimableBytes { out.sample(MetricFamily.cgroupSlab.name, labels: ["cgroup": entry.path, "memory": "reclaimable"], bytes) }
                if let bytes = entry.slabUnreclaimableBytes { out.sample(MetricFamily.cgroupSlab.name, labels: ["cgroup": entry.path, "memory": "unreclaimable"], bytes) }
            }
        }
        out.family(.cgroups)
        out.sample(MetricFamily.cgroups.name, label: "state", "exported", UInt64(cgroups.entries.count))
        out.sample(MetricFamily.cgroups.name, label: "state", "other", UInt64(cgroups.others))
        out.sample(MetricFamily.cgroups.name, label: "state", "unreadable", UInt64(cgroups.unreadable))
    }

    /// The outside series as the sample recorded them (`Pipeline.recorded`);
    /// a series absent from the sample (a source down) has no line.
    private static func renderOutsideCaches(_ sample: Sample, _ out: inout PrometheusText) {
        let kinds = [("reclaimable", DerivedSeries.outsideReclaimable.name), ("unreclaimable", DerivedSeries.outsideUnreclaimable.name)]
        let series = kinds.compactMap { kind, name in sample.caches.last { $0.isDerived && $0.name == name }.map { (kind, $0.footprintBytes) } }
        guard !series.isEmpty else { return }
        out.family(.memoryOutsideCaches)
        for (kind, bytes) in series { out.sample(MetricFamily.memoryOutsideCaches.name, label: "memory", kind, bytes) }
    }

    private static func renderSampler(_ input: Input, _ out: inout PrometheusText) {
        let stats = input.own.sampler
        out.family(.parseErrors)
        for source in Source.allCases.sorted() {
            out.sample(MetricFamily.parseErrors.name, label: "source", source.rawValue, stats.parseErrors[source] ?? 0)
        }
        out.single(.ringSeriesEvicted, stats.seriesEvicted)
        out.single(.sampleDuration, stats.lastDurationSeconds)
        out.single(.sampleTimestamp, Double(input.sample.timestampMilliseconds) / 1000)
        out.single(.samplesSkipped, stats.samplesSkipped)
        out.single(.samples, stats.samplesTotal)
    }

    /// Families with no series are left out (HELP and TYPE too), as the metrics
    /// reference says of a source that is down.
    private static func renderCaches(_ caches: [SlabCache], _ out: inout PrometheusText) {
        guard !caches.isEmpty else { return }
        func family(_ family: MetricFamily, _ value: (SlabCache) -> UInt64) {
            out.family(family)
            for cache in caches { out.sample(family.name, label: "slab", cache.name, value(cache)) }
        }
        family(.slabFootprint) { $0.footprintBytes }
        family(.slabObjectSize) { $0.objectSize }
        family(.slabObjects) { $0.objects }
        family(.slabObjectsActive) { $0.activeObjects }
        family(.slabObjectsPerSlab) { $0.objectsPerSlab }
        family(.slabPagesPerSlab) { $0.pagesPerSlab }
        if caches.contains(where: { $0.reclaimable != nil }) {
            out.family(.slabReclaimable)
        }
        for cache in caches {
            if let reclaimable = cache.reclaimable {
                out.sample(MetricFamily.slabReclaimable.name, label: "slab", cache.name, reclaimable ? 1 as UInt64 : 0)
            }
        }
        family(.slabSlabs) { $0.slabs }
        family(.slabWaste) { $0.wasteBytes }
    }
}
