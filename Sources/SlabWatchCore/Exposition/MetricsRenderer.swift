/// Renders one sample as the `/metrics` body.
///
/// Families come in byte order of their names and series in byte order of
/// their labels, so the same input renders byte for byte the same output
/// (the golden test holds this). A source that is down omits its families and
/// shows as `slabwatch_source_up{source="…"} 0`; it never fails the scrape.
public enum MetricsRenderer: Sendable {
    public struct Input: Sendable {
        public var sample: Sample
        /// Caches that passed the filter, sorted by name.
        public var exportedCaches: [SlabCache]
        public var version: String
        public var report: GrowthDetector.Report
        /// slabwatch's figures about itself.
        public var own: SelfStatistics

        public init(sample: Sample, exportedCaches: [SlabCache], version: String,
                    report: GrowthDetector.Report = .init(), own: SelfStatistics = .init()) {
            self.sample = sample
            self.exportedCaches = exportedCaches
            self.version = version
            self.report = report
            self.own = own
        }
    }

    public static func render(_ input: Input, sizeHint: Int = 64 * 1024) -> [UInt8] {
        var out = PrometheusText(reservingCapacity: sizeHint)
        if let process = input.own.process { renderProcess(process, &out) }
        renderAlerts(input.own.alerts, &out)
        out.family("slabwatch_build_info", .gauge, help: "A metric with a constant '1' value labelled by the slabwatch version.")
        out.sample("slabwatch_build_info", label: "version", input.version, 1 as UInt64)
        renderCacheCounts(input, &out)
        renderFindings(input.report, &out)
        renderFS(input.sample, &out)
        if let server = input.own.server { renderServer(server, &out) }
        renderMemory(input.sample.meminfo, &out)
        renderSampler(input, &out)
        renderCaches(input.exportedCaches, &out)
        out.family("slabwatch_source_up", .gauge, help: "Whether the last sample read and parsed this source (1) or not (0).")
        for source in Source.allCases.sorted() {
            out.sample("slabwatch_source_up", label: "source", source.rawValue,
                       input.sample.status(of: source).up ? 1 as UInt64 : 0)
        }
        if let persistence = input.own.persistence { renderPersistence(persistence, &out) }
        renderTrend(input.report.trend, &out)
        return out.bytes
    }

    private static func renderPersistence(_ p: PersistenceStatistics, _ out: inout PrometheusText) {
        out.family("slabwatch_state_checkpoint_bytes", .gauge, help: "Size of the last state file written, in bytes.")
        out.sample("slabwatch_state_checkpoint_bytes", UInt64(p.lastCheckpointBytes))
        out.family("slabwatch_state_checkpoint_duration_seconds", .gauge, help: "Time the last state checkpoint took to encode, compress and write.")
        out.sample("slabwatch_state_checkpoint_duration_seconds", p.lastCheckpointDurationSeconds)
        out.family("slabwatch_state_checkpoints_total", .counter, help: "State checkpoints by result (written, failed).")
        out.sample("slabwatch_state_checkpoints_total", label: "result", "failed", p.checkpointsFailed)
        out.sample("slabwatch_state_checkpoints_total", label: "result", "written", p.checkpointsWritten)
        out.family("slabwatch_state_enabled", .gauge, help: "Whether state is kept across restarts (0: state.directory empty or not writable).")
        out.sample("slabwatch_state_enabled", p.enabled ? 1 as UInt64 : 0)
        out.family("slabwatch_state_last_checkpoint_timestamp_seconds", .gauge, help: "Unix time of the last state checkpoint written (0: none yet).")
        out.sample("slabwatch_state_last_checkpoint_timestamp_seconds", p.lastCheckpointSeconds ?? 0)
        out.family("slabwatch_state_restored", .gauge, help: "What start-up did with the saved state: 1 for the outcome that applies.")
        for outcome in PersistenceStatistics.Restore.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
            out.sample("slabwatch_state_restored", label: "outcome", outcome.rawValue, outcome == p.restore ? 1 as UInt64 : 0)
        }
    }

    private static func renderProcess(_ p: ProcessStatistics, _ out: inout PrometheusText) {
        out.family("process_cpu_seconds_total", .counter, help: "Total user and system CPU time spent in seconds.")
        out.sample("process_cpu_seconds_total", p.cpuSeconds)
        out.family("process_max_fds", .gauge, help: "Maximum number of open file descriptors.")
        out.sample("process_max_fds", p.maxFileDescriptors)
        out.family("process_open_fds", .gauge, help: "Number of open file descriptors.")
        out.sample("process_open_fds", p.openFileDescriptors)
        out.family("process_resident_memory_bytes", .gauge, help: "Resident memory size in bytes.")
        out.sample("process_resident_memory_bytes", p.residentBytes)
        out.family("process_start_time_seconds", .gauge, help: "Start time of the process since unix epoch in seconds.")
        out.sample("process_start_time_seconds", p.startTimeSeconds)
        out.family("process_virtual_memory_bytes", .gauge, help: "Virtual memory size in bytes.")
        out.sample("process_virtual_memory_bytes", p.virtualBytes)
    }

    /// Every sink × result, zeros included, so rate() works from the first alert.
    private static func renderAlerts(_ alerts: [AlertOutcome: UInt64], _ out: inout PrometheusText) {
        out.family("slabwatch_alerts_total", .counter, help: "Alerts by sink (journal, stderr) and result (sent, failed, suppressed by the per-cache cooldown).")
        for result in AlertOutcome.Result.allCases {
            for sink in AlertOutcome.Sink.allCases {
                out.sample("slabwatch_alerts_total", labels: ["result": result.rawValue, "sink": sink.rawValue],
                           alerts[AlertOutcome(sink: sink, result: result)] ?? 0)
            }
        }
    }

    private static func renderCacheCounts(_ input: Input, _ out: inout PrometheusText) {
        out.family("slabwatch_caches", .gauge, help: "Slab caches in the last sample: exported, filtered out by slab.*, or left out beyond sampler.max-caches.")
        let exported = UInt64(input.exportedCaches.count)
        let total = UInt64(input.sample.caches.count)
        out.sample("slabwatch_caches", label: "state", "exported", exported)
        out.sample("slabwatch_caches", label: "state", "filtered", total - min(total, exported))
        out.sample("slabwatch_caches", label: "state", "over_limit", UInt64(input.sample.cachesOverLimit))
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
        func family(_ name: StaticString, _ help: StaticString, _ value: (Finding, Finding.DriverFit) -> Double) {
            guard !findings.isEmpty else { return }
            out.family(name, .gauge, help: help)
            for finding in findings {
                for fit in finding.fits {
                    out.sample(name, labels: ["driver": fit.driver.rawValue, "inode_cache": fit.inodeCache ?? "", "slab": finding.slab],
                               value(finding, fit))
                }
            }
        }
        family("slabwatch_finding_bytes_per_unit", "Slope of the cache's footprint against the driver over the finding's window (bytes per inode, dentry, open file or second).") { $1.bytesPerUnit }
        family("slabwatch_finding_flagged", "1 while the finding is open and this driver passes every threshold, else 0.") { $0.state == .open && $1.flagged ? 1 : 0 }
        if !findings.isEmpty {
            out.family("slabwatch_finding_held_bytes", .gauge, help: "Footprint the finding's cache holds above its level before the rise.")
            for finding in findings { out.sample("slabwatch_finding_held_bytes", label: "slab", finding.slab, finding.heldBytes) }
            // Classification and severity as labels of a constant 1, so a
            // dashboard's table can join them to the finding's main driver.
            out.family("slabwatch_finding_info", .gauge, help: "1 per finding, labelled by its main driver (and inode cache), classification, severity and state.")
            for finding in findings {
                out.sample("slabwatch_finding_info", labels: ["classification": finding.classification.rawValue, "driver": finding.driver.rawValue,
                                                               "inode_cache": finding.inodeCache ?? "", "severity": finding.severity.rawValue,
                                                               "slab": finding.slab, "state": finding.state.rawValue],
                           1 as UInt64)
            }
            out.family("slabwatch_finding_phase", .gauge, help: "1 for the phase the finding's memory is in (rising, holding, falling), else 0.")
            for finding in findings {
                for phase in Finding.Phase.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
                    out.sample("slabwatch_finding_phase", labels: ["phase": phase.rawValue, "slab": finding.slab],
                               UInt64(finding.phase == phase ? 1 : 0))
                }
            }
        }
        family("slabwatch_finding_r_squared", "R squared of the footprint-against-driver fit.") { $1.rSquared }
        let counts = report.openCounts
        out.family("slabwatch_findings_open", .gauge, help: "Open findings by severity.")
        for severity in Finding.Severity.allCases.map(\.rawValue).sorted() {
            out.sample("slabwatch_findings_open", label: "severity", severity,
                       UInt64(counts[Finding.Severity(rawValue: severity)!] ?? 0))
        }
    }

    private static func renderTrend(_ trend: SlabTrend?, _ out: inout PrometheusText) {
        guard let trend else { return }
        let fits = trend.fits.sorted { ($0.driver.rawValue, $0.memory) < ($1.driver.rawValue, $1.memory) }
        out.family("slabwatch_trend_bytes_per_unit", .gauge, help: "Slope of Slab / SUnreclaim against each driver over the longest window.")
        for fit in fits {
            out.sample("slabwatch_trend_bytes_per_unit", labels: ["driver": fit.driver.rawValue, "memory": fit.memory.rawValue], fit.bytesPerUnit)
        }
        if let seconds = trend.secondsToLimit {
            out.family("slabwatch_trend_limit_seconds", .gauge, help: "Seconds until SUnreclaim reaches the configured share of MemTotal at its current rate.")
            out.sample("slabwatch_trend_limit_seconds", seconds)
        }
        out.family("slabwatch_trend_r_squared", .gauge, help: "R squared of the Slab / SUnreclaim trend fits.")
        for fit in fits {
            out.sample("slabwatch_trend_r_squared", labels: ["driver": fit.driver.rawValue, "memory": fit.memory.rawValue], fit.rSquared)
        }
    }

    private static func renderFS(_ sample: Sample, _ out: inout PrometheusText) {
        if let d = sample.dentries {
            out.family("slabwatch_fs_dentries", .gauge, help: "Allocated dentries (nr_dentry in /proc/sys/fs/dentry-state).")
            out.sample("slabwatch_fs_dentries", d.dentries)
            out.family("slabwatch_fs_dentries_unused", .gauge, help: "Unused dentries kept in the dentry cache (nr_unused).")
            out.sample("slabwatch_fs_dentries_unused", d.unusedDentries)
        }
        if let f = sample.fileHandles {
            out.family("slabwatch_fs_file_handles_allocated", .gauge, help: "Allocated file handles (first field of /proc/sys/fs/file-nr).")
            out.sample("slabwatch_fs_file_handles_allocated", f.allocated)
            out.family("slabwatch_fs_file_handles_max", .gauge, help: "Maximum file handles (fs.file-max).")
            out.sample("slabwatch_fs_file_handles_max", f.maximum)
        }
        if let i = sample.inodes {
            out.family("slabwatch_fs_inodes", .gauge, help: "Allocated inodes (nr_inodes in /proc/sys/fs/inode-nr).")
            out.sample("slabwatch_fs_inodes", i.inodes)
            out.family("slabwatch_fs_inodes_free", .gauge, help: "Free inodes (nr_free_inodes in /proc/sys/fs/inode-nr).")
            out.sample("slabwatch_fs_inodes_free", i.freeInodes)
        }
    }

    private static func renderServer(_ s: ServerStatistics, _ out: inout PrometheusText) {
        func counter(_ name: StaticString, _ help: StaticString, _ value: UInt64) {
            out.family(name, .counter, help: help)
            out.sample(name, value)
        }
        counter("slabwatch_http_accept_errors_total", "accept() failures, including running out of file descriptors.", s.acceptErrors)
        counter("slabwatch_http_authentication_failures_total", "Requests answered 401: basic-auth credentials missing or wrong.", s.authenticationFailures)
        counter("slabwatch_http_bad_requests_total", "Requests answered 400, 408, 413, 431 or 505.", s.badRequests)
        counter("slabwatch_http_connections_accepted_total", "Connections accepted.", s.connectionsAccepted)
        counter("slabwatch_http_connections_rejected_total", "Connections refused with 503 at web.max-connections because every open one was owed a response.", s.connectionsRejected)
        counter("slabwatch_http_connections_shed_total", "Idle or head-less connections closed to make room at web.max-connections.", s.connectionsShed)
        counter("slabwatch_http_connections_timed_out_total", "Connections closed at the header, idle or write deadline.", s.connectionsTimedOut)
        counter("slabwatch_http_requests_total", "Requests answered by a route.", s.requests)
        counter("slabwatch_http_tls_handshake_failures_total", "TLS handshakes that failed or did not finish in web.header-timeout, plain HTTP to the TLS port included.", s.tlsHandshakeFailures)
    }

    private static func renderMemory(_ meminfo: Meminfo?, _ out: inout PrometheusText) {
        guard let m = meminfo else { return }
        func gauge(_ name: StaticString, _ help: StaticString, _ value: UInt64?) {
            guard let value else { return }
            out.family(name, .gauge, help: help)
            out.sample(name, value)
        }
        gauge("slabwatch_memory_available_bytes", "MemAvailable from /proc/meminfo, in bytes.", m.availableBytes)
        gauge("slabwatch_memory_kernel_reclaimable_bytes", "KReclaimable from /proc/meminfo, in bytes.", m.kernelReclaimableBytes)
        gauge("slabwatch_memory_slab_bytes", "Slab from /proc/meminfo, in bytes.", m.slabBytes)
        gauge("slabwatch_memory_slab_reclaimable_bytes", "SReclaimable from /proc/meminfo, in bytes.", m.slabReclaimableBytes)
        gauge("slabwatch_memory_slab_unreclaimable_bytes", "SUnreclaim from /proc/meminfo, in bytes.", m.slabUnreclaimableBytes)
        gauge("slabwatch_memory_total_bytes", "MemTotal from /proc/meminfo, in bytes.", m.totalBytes)
    }

    private static func renderSampler(_ input: Input, _ out: inout PrometheusText) {
        let stats = input.own.sampler
        out.family("slabwatch_parse_errors_total", .counter, help: "Malformed lines skipped while parsing, by source.")
        for source in Source.allCases.sorted() {
            out.sample("slabwatch_parse_errors_total", label: "source", source.rawValue, stats.parseErrors[source] ?? 0)
        }
        out.family("slabwatch_ring_series_evicted_total", .counter, help: "Caches whose history was dropped from the ring to make room for a new cache.")
        out.sample("slabwatch_ring_series_evicted_total", stats.seriesEvicted)
        out.family("slabwatch_sample_duration_seconds", .gauge, help: "Time the last tick took to read and parse all sources, store the sample and run the detector.")
        out.sample("slabwatch_sample_duration_seconds", stats.lastDurationSeconds)
        out.family("slabwatch_sample_timestamp_seconds", .gauge, help: "Unix time at which the last sample was taken.")
        out.sample("slabwatch_sample_timestamp_seconds", Double(input.sample.timestampMilliseconds) / 1000)
        out.family("slabwatch_samples_skipped_total", .counter, help: "Sampler ticks skipped because the previous one overran the interval.")
        out.sample("slabwatch_samples_skipped_total", stats.samplesSkipped)
        out.family("slabwatch_samples_total", .counter, help: "Samples taken since start.")
        out.sample("slabwatch_samples_total", stats.samplesTotal)
    }

    /// Families with no series are left out (HELP and TYPE too), as README says
    /// of a source that is down.
    private static func renderCaches(_ caches: [SlabCache], _ out: inout PrometheusText) {
        guard !caches.isEmpty else { return }
        func family(_ name: StaticString, _ help: StaticString, _ value: (SlabCache) -> UInt64) {
            out.family(name, .gauge, help: help)
            for cache in caches { out.sample(name, label: "slab", cache.name, value(cache)) }
        }
        family("slabwatch_slab_memory_bytes", "Footprint of the cache: slabs x pages per slab x page size, in bytes.") { $0.footprintBytes }
        family("slabwatch_slab_object_size_bytes", "Size of one object in the cache, in bytes.") { $0.objectSize }
        family("slabwatch_slab_objects", "Objects allocated in the cache's slabs (num_objs).") { $0.objects }
        family("slabwatch_slab_objects_active", "Objects in use (active_objs).") { $0.activeObjects }
        family("slabwatch_slab_objects_per_slab", "Objects that fit in one slab.") { $0.objectsPerSlab }
        family("slabwatch_slab_pages_per_slab", "Pages per slab.") { $0.pagesPerSlab }
        if caches.contains(where: { $0.reclaimable != nil }) {
            out.family("slabwatch_slab_reclaimable", .gauge, help: "1 if the cache is accounted as reclaimable (SReclaimable), 0 if not; absent when unknown.")
        }
        for cache in caches {
            if let reclaimable = cache.reclaimable {
                out.sample("slabwatch_slab_reclaimable", label: "slab", cache.name, reclaimable ? 1 as UInt64 : 0)
            }
        }
        family("slabwatch_slab_slabs", "Slabs allocated to the cache (num_slabs).") { $0.slabs }
        family("slabwatch_slab_waste_bytes", "Footprint not used by active objects, in bytes.") { $0.wasteBytes }
    }
}
