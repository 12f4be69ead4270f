/// One family `/metrics` may render: its name, type, the labels of its series
/// and its HELP text. `MetricsRenderer.families` lists every one and the
/// renderer writes each HELP and TYPE line from it, so the metrics reference
/// (generated from the same table) and the output cannot drift apart.
/// Immutable.
public struct MetricFamily: Sendable {
    public let name: StaticString
    public let type: PrometheusText.MetricType
    /// Names of the labels its series carry, in the order they are written
    /// (byte order); empty for a family of one unlabelled series.
    public let labels: [String]
    public let help: StaticString

    init(_ name: StaticString, _ type: PrometheusText.MetricType, labels: [String] = [], help: StaticString) {
        self.name = name
        self.type = type
        self.labels = labels
        self.help = help
    }
}

extension PrometheusText {
    /// The family's `# HELP` and `# TYPE` lines.
    mutating func family(_ family: MetricFamily) {
        self.family(family.name, family.type, help: family.help)
    }

    /// A family of one series without labels: its `# HELP` and `# TYPE` lines and that series.
    mutating func single(_ family: MetricFamily, _ value: UInt64) {
        self.family(family)
        sample(family.name, value)
    }

    /// A family of one series without labels, with a fractional value.
    mutating func single(_ family: MetricFamily, _ value: Double) {
        self.family(family)
        sample(family.name, value)
    }
}

extension MetricFamily {
    static let processCPUSeconds = MetricFamily("process_cpu_seconds_total", .counter, help: "Total user and system CPU time spent in seconds.")
    static let processMaxFDs = MetricFamily("process_max_fds", .gauge, help: "Maximum number of open file descriptors.")
    static let processOpenFDs = MetricFamily("process_open_fds", .gauge, help: "Number of open file descriptors.")
    static let processResidentMemory = MetricFamily("process_resident_memory_bytes", .gauge, help: "Resident memory size in bytes.")
    static let processStartTime = MetricFamily("process_start_time_seconds", .gauge, help: "Start time of the process since unix epoch in seconds.")
    static let processVirtualMemory = MetricFamily("process_virtual_memory_bytes", .gauge, help: "Virtual memory size in bytes.")

    static let alerts = MetricFamily("slabwatch_alerts_total", .counter, labels: ["result", "sink"],
                                     help: "Alerts by sink (journal, stderr) and result (sent, failed, suppressed by the per-cache cooldown).")
    static let buildInfo = MetricFamily("slabwatch_build_info", .gauge, labels: ["version"],
                                        help: "A metric with a constant '1' value labelled by the slabwatch version.")
    static let caches = MetricFamily("slabwatch_caches", .gauge, labels: ["state"],
                                     help: "Slab caches in the last sample: exported; filtered out by slab.include, slab.exclude or slab.min-memory-bytes; beyond_top, left out by the bound (slab.top-by-footprint, slab.top-by-growth; slab.export: all lists them); over_limit, beyond sampler.max-caches.")

    static let findingBytesPerUnit = MetricFamily(
        "slabwatch_finding_bytes_per_unit", .gauge, labels: ["driver", "inode_cache", "slab"],
        help: "Slope of the cache's footprint against the driver over the finding's window (bytes per inode, dentry, open file or second).")
    static let findingChargedShare = MetricFamily(
        "slabwatch_finding_charged_share", .gauge, labels: ["cgroup", "container_id", "pod_uid", "slab", "source", "unit"],
        help: "Share (0 to 1) of an open finding's rise charged to a memory cgroup, for the at most 3 cgroups it names; source is what ranked them (bpf; memcg-slab-unreclaimable or memcg-slab-reclaimable, v2's slab of the cache's kind; memcg-kmem or memcg-kernel, all kernel memory), as /snapshot findings[].charged.source.")
    static let findingFlagged = MetricFamily("slabwatch_finding_flagged", .gauge, labels: ["driver", "inode_cache", "slab"],
                                             help: "1 while the finding is open and this driver passes every threshold, else 0.")
    static let findingHeldBytes = MetricFamily("slabwatch_finding_held_bytes", .gauge, labels: ["slab"],
                                               help: "Footprint the finding's cache holds above its level before the rise.")
    static let findingInfo = MetricFamily(
        "slabwatch_finding_info", .gauge, labels: ["classification", "driver", "inode_cache", "severity", "slab", "state"],
        help: "1 per finding, labelled by its main driver (and inode cache), classification, severity and state.")
    static let findingPhase = MetricFamily("slabwatch_finding_phase", .gauge, labels: ["phase", "slab"],
                                           help: "1 for the phase the finding's memory is in (rising, holding, falling), else 0.")
    static let findingRSquared = MetricFamily("slabwatch_finding_r_squared", .gauge, labels: ["driver", "inode_cache", "slab"],
                                              help: "R squared of the footprint-against-driver fit.")
    static let findingsOpen = MetricFamily("slabwatch_findings_open", .gauge, labels: ["severity"], help: "Open findings by severity.")

    static let fsDentries = MetricFamily("slabwatch_fs_dentries", .gauge, help: "Allocated dentries (nr_dentry in /proc/sys/fs/dentry-state).")
    static let fsDentriesUnused = MetricFamily("slabwatch_fs_dentries_unused", .gauge, help: "Unused dentries kept in the dentry cache (nr_unused).")
    static let fsDentriesNegative = MetricFamily("slabwatch_fs_dentries_negative", .gauge,
                                                 help: "Negative dentries: lookups of names that do not exist (nr_negative; kernels 4.19 and later).")
    static let fsFileHandlesAllocated = MetricFamily("slabwatch_fs_file_handles_allocated", .gauge,
                                                     help: "Allocated file handles (first field of /proc/sys/fs/file-nr).")
    static let fsFileHandlesMax = MetricFamily("slabwatch_fs_file_handles_max", .gauge, help: "Maximum file handles (fs.file-max).")
    static let fsInodes = MetricFamily("slabwatch_fs_inodes", .gauge, help: "Allocated inodes (nr_inodes in /proc/sys/fs/inode-nr).")
    static let fsInodesFree = MetricFamily("slabwatch_fs_inodes_free", .gauge, help: "Free inodes (nr_free_inodes in /proc/sys/fs/inode-nr).")

    static let httpAcceptErrors = MetricFamily("slabwatch_http_accept_errors_total", .counter,
                                               help: "accept() failures, including running out of file descriptors.")
    static let httpAuthenticationFailures = MetricFamily("slabwatch_http_authentication_failures_total", .counter,
                                                         help: "Requests answered 401: basic-auth credentials missing or wrong.")
    static let httpBadRequests = MetricFamily("slabwatch_http_bad_requests_total", .counter, help: "Requests answered 400, 408, 413, 431 or 505.")
    static let httpConnectionsAccepted = MetricFamily("slabwatch_http_connections_accepted_total", .counter, help: "Connections accepted.")
    static let httpConnectionsRejected = MetricFamily(
        "slabwatch_http_connections_rejected_total", .counter,
        help: "Connections refused with 503 at web.max-connections because every open one was owed a response.")
    static let httpConnectionsShed = MetricFamily("slabwatch_http_connections_shed_total", .counter,
                                                  help: "Idle or head-less connections closed to make room at web.max-connections.")
    static let httpConnectionsTimedOut = MetricFamily("slabwatch_http_connections_timed_out_total", .counter,
                                                      help: "Connections closed at the header, idle or write deadline.")
    static let httpRequests = MetricFamily("slabwatch_http_requests_total", .counter, help: "Requests answered by a route.")
    static let httpTLSHandshakeFailures = MetricFamily(
        "slabwatch_http_tls_handshake_failures_total", .counter,
        help: "TLS handshakes that failed or did not finish in web.header-timeout, plain HTTP to the TLS port included.")

    static let cgroupKernelMemory = MetricFamily(
        "slabwatch_cgroup_kernel_memory_bytes", .gauge, labels: ["cgroup", "container_id", "pod_uid", "unit"],
        help: "Kernel memory charged to a memory cgroup (v1 memory.kmem.usage_in_bytes, v2 memory.stat kernel): the largest sampler.max-cgroups leaves and interior cgroups' own parts; cgroup=\"other\" sums the rest. cgroup is the path, as cAdvisor's id; pod_uid joins kube-state-metrics' uid.")
    static let cgroupSlab = MetricFamily(
        "slabwatch_cgroup_slab_bytes", .gauge, labels: ["cgroup", "memory"],
        help: "Slab charged to a memory cgroup, reclaimable or unreclaimable (cgroup v2 memory.stat), for the cgroups of slabwatch_cgroup_kernel_memory_bytes.")
    static let cgroups = MetricFamily(
        "slabwatch_cgroups", .gauge, labels: ["state"],
        help: "Memory cgroups at the last walk: leaves exported, summed as other beyond sampler.max-cgroups, or unreadable (gone mid-walk).")

    static let memoryCgroups = MetricFamily(
        "slabwatch_memory_cgroups", .gauge, labels: ["state"],
        help: "Memory cgroups: all (live or dying, /proc/cgroups num_cgroups), live (directories of the hierarchy) and dying (removed, still held), the last two only when the whole hierarchy is visible.")
    static let memoryAvailable = MetricFamily("slabwatch_memory_available_bytes", .gauge, help: "MemAvailable from /proc/meminfo, in bytes.")
    static let memoryKernelReclaimable = MetricFamily("slabwatch_memory_kernel_reclaimable_bytes", .gauge,
                                                      help: "KReclaimable from /proc/meminfo, in bytes.")
    static let memoryOutsideCaches = MetricFamily(
        "slabwatch_memory_outside_caches_bytes", .gauge, labels: ["memory"],
        help: "Slab memory no cache accounts for: SUnreclaim (memory=\"unreclaimable\") or SReclaimable (\"reclaimable\") less the footprints of every cache of that kind, at least 0; allocations above the largest kmalloc cache, from the page allocator, are unreclaimable ones.")
    static let memoryPercpu = MetricFamily("slabwatch_memory_percpu_bytes", .gauge, help: "Percpu from /proc/meminfo (the per-CPU allocator), in bytes.")
    static let memorySlab = MetricFamily("slabwatch_memory_slab_bytes", .gauge, help: "Slab from /proc/meminfo, in bytes.")
    static let memorySlabReclaimable = MetricFamily("slabwatch_memory_slab_reclaimable_bytes", .gauge,
                                                    help: "SReclaimable from /proc/meminfo, in bytes.")
    static let memorySlabUnreclaimable = MetricFamily("slabwatch_memory_slab_unreclaimable_bytes", .gauge,
                                                      help: "SUnreclaim from /proc/meminfo, in bytes.")
    static let memoryTotal = MetricFamily("slabwatch_memory_total_bytes", .gauge, help: "MemTotal from /proc/meminfo, in bytes.")
    static let memoryVmstatError = MetricFamily(
        "slabwatch_memory_vmstat_error_bytes", .gauge,
        help: "How far SUnreclaim and SReclaimable, and so the memory outside the caches, may lag the truth: the largest vm stats threshold of /proc/zoneinfo x CPUs x page size.")

    static let parseErrors = MetricFamily("slabwatch_parse_errors_total", .counter, labels: ["source"],
                                          help: "Malformed lines skipped while parsing, by source.")
    static let ringSeriesEvicted = MetricFamily("slabwatch_ring_series_evicted_total", .counter,
                                                help: "Caches whose history was dropped from the ring to make room for a new cache.")
    static let sampleDuration = MetricFamily(
        "slabwatch_sample_duration_seconds", .gauge,
        help: "Time the last tick took to read and parse all sources, store the sample and run the detector.")
    static let sampleTimestamp = MetricFamily("slabwatch_sample_timestamp_seconds", .gauge, help: "Unix time at which the last sample was taken.")
    static let samplesSkipped = MetricFamily("slabwatch_samples_skipped_total", .counter,
                                             help: "Sampler ticks skipped because the previous one overran the interval.")
    static let samples = MetricFamily("slabwatch_samples_total", .counter, help: "Samples taken since start.")

    static let slabFootprint = MetricFamily("slabwatch_slab_footprint_bytes", .gauge, labels: ["slab"],
                                            help: "Footprint of the cache: slabs x pages per slab x page size, in bytes.")
    static let slabObjectSize = MetricFamily("slabwatch_slab_object_size_bytes", .gauge, labels: ["slab"],
                                             help: "Size of one object in the cache, in bytes.")
    static let slabObjects = MetricFamily("slabwatch_slab_objects", .gauge, labels: ["slab"],
                                          help: "Objects allocated in the cache's slabs (num_objs).")
    static let slabObjectsActive = MetricFamily("slabwatch_slab_objects_active", .gauge, labels: ["slab"], help: "Objects in use (active_objs).")
    static let slabObjectsPerSlab = MetricFamily("slabwatch_slab_objects_per_slab", .gauge, labels: ["slab"], help: "Objects that fit in one slab.")
    static let slabPagesPerSlab = MetricFamily("slabwatch_slab_pages_per_slab", .gauge, labels: ["slab"], help: "Pages per slab.")
    static let slabReclaimable = MetricFamily(
        "slabwatch_slab_reclaimable", .gauge, labels: ["slab"],
        help: "1 if the cache is accounted as reclaimable (SReclaimable), 0 if not; absent when unknown.")
    static let slabSlabs = MetricFamily("slabwatch_slab_slabs", .gauge, labels: ["slab"], help: "Slabs allocated to the cache (num_slabs).")
    static let slabWaste = MetricFamily("slabwatch_slab_waste_bytes", .gauge, labels: ["slab"],
                                        help: "Footprint not used by active objects, in bytes.")
    static let sockets = MetricFamily(
        "slabwatch_sockets", .gauge, labels: ["scope"],
        help: "Sockets: scope kernel is every network namespace's (sock_inode_cache objects, when that cache is not merged), namespace the daemon's own (sockets: used of /proc/net/sockstat).")
    static let sockstatTCP = MetricFamily(
        "slabwatch_sockstat_tcp_sockets", .gauge, labels: ["state"],
        help: "TCP sockets of the daemon's network namespace by state (/proc/net/sockstat: alloc, inuse, orphan, timewait).")
    static let sourceUp = MetricFamily("slabwatch_source_up", .gauge, labels: ["source"],
                                       help: "Whether the last sample read and parsed this source (1) or not (0).")

    static let threads = MetricFamily("slabwatch_threads", .gauge, help: "Threads that exist, every namespace's (the total after / in /proc/loadavg).")
    static let stateCheckpointBytes = MetricFamily("slabwatch_state_checkpoint_bytes", .gauge, help: "Size of the last state file written, in bytes.")
    static let stateCheckpointDuration = MetricFamily("slabwatch_state_checkpoint_duration_seconds", .gauge,
                                                      help: "Time the last state checkpoint took to encode, compress and write.")
    static let stateCheckpoints = MetricFamily("slabwatch_state_checkpoints_total", .counter, labels: ["result"],
                                               help: "State checkpoints by result (written, failed).")
    static let stateEnabled = MetricFamily("slabwatch_state_enabled", .gauge,
                                           help: "Whether state is kept across restarts (0: state.directory empty or not writable).")
    static let stateLastCheckpoint = MetricFamily("slabwatch_state_last_checkpoint_timestamp_seconds", .gauge,
                                                  help: "Unix time of the last state checkpoint written (0: none yet).")
    static let stateRestored = MetricFamily("slabwatch_state_restored", .gauge, labels: ["outcome"],
                                            help: "What start-up did with the saved state: 1 for the outcome that applies.")

    static let trendBytesPerUnit = MetricFamily("slabwatch_trend_bytes_per_unit", .gauge, labels: ["driver", "memory"],
                                                help: "Slope of Slab / SUnreclaim against each driver over the longest window.")
    static let trendLimitSeconds = MetricFamily("slabwatch_trend_limit_seconds", .gauge,
                                                help: "Seconds until SUnreclaim reaches the configured share of MemTotal at its current rate.")
    static let trendRSquared = MetricFamily("slabwatch_trend_r_squared", .gauge, labels: ["driver", "memory"],
                                            help: "R squared of the Slab / SUnreclaim trend fits.")
}

extension MetricsRenderer {
    /// Every family `/metrics` may render, in the order it renders them (byte
    /// order of their names). A family with no series in a scrape is left out,
    /// HELP and TYPE included.
    public static let families: [MetricFamily] = [
        .processCPUSeconds, .processMaxFDs, .processOpenFDs, .processResidentMemory, .processStartTime, .processVirtualMemory,
        .alerts, .buildInfo, .caches, .cgroupKernelMemory, .cgroupSlab, .cgroups,
        .findingBytesPerUnit, .findingChargedShare, .findingFlagged, .findingHeldBytes, .findingInfo, .findingPhase, .findingRSquared, .findingsOpen,
        .fsDentries, .fsDentriesNegative, .fsDentriesUnused, .fsFileHandlesAllocated, .fsFileHandlesMax, .fsInodes, .fsInodesFree,
        .httpAcceptErrors, .httpAuthenticationFailures, .httpBadRequests, .httpConnectionsAccepted, .httpConnectionsRejected,
        .httpConnectionsShed, .httpConnectionsTimedOut, .httpRequests, .httpTLSHandshakeFailures,
        .memoryAvailable, .memoryCgroups, .memoryKernelReclaimable, .memoryOutsideCaches, .memoryPercpu, .memorySlab, .memorySlabReclaimable, .memorySlabUnreclaimable, .memoryTotal, .memoryVmstatError,
        .parseErrors, .ringSeriesEvicted, .sampleDuration, .sampleTimestamp, .samplesSkipped, .samples,
        .slabFootprint, .slabObjectSize, .slabObjects, .slabObjectsActive, .slabObjectsPerSlab, .slabPagesPerSlab,
        .slabReclaimable, .slabSlabs, .slabWaste, .sockets, .sockstatTCP, .sourceUp,
        .stateCheckpointBytes, .stateCheckpointDuration, .stateCheckpoints, .stateEnabled, .stateLastCheckpoint, .stateRestored,
        .threads,
        .trendBytesPerUnit, .trendLimitSeconds, .trendRSquared,
    ]
}
