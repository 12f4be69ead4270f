/// Every key of the `/snapshot` document (also `slabwatch snapshot` and, for
/// `findings`, `slabwatch replay --json`): its path, JSON type and meaning.
/// The snapshot reference is generated from this table, and a test walks a
/// rendered snapshot to hold the renderer to it, so a key cannot be added,
/// renamed or dropped without the table (and the reference) saying so.
///
/// A path joins keys with `.`; `[]` stands for every element of an array and
/// `{source}` for every key of an object keyed by name. Immutable.
public enum SnapshotSchema: Sendable {
    public struct Field: Sendable, Equatable {
        public let path: String
        public let type: String
        public let meaning: String

        init(_ path: String, _ type: String, _ meaning: String) {
            self.path = path
            self.type = type
            self.meaning = meaning
        }
    }

    /// `memory`'s keys and the `/proc/meminfo` field each carries, in the
    /// document's order: the renderer writes them and the reader reads them
    /// from here.
    static let memory: [(key: String, meminfo: String)] = [
        ("total_bytes", "MemTotal"), ("available_bytes", "MemAvailable"), ("slab_bytes", "Slab"),
        ("slab_reclaimable_bytes", "SReclaimable"), ("slab_unreclaimable_bytes", "SUnreclaim"),
        ("kernel_reclaimable_bytes", "KReclaimable"), ("percpu_bytes", "Percpu"),
    ]

    /// `memory`'s keys for the derived series of slab memory outside the
    /// caches, after the meminfo ones: the key and the series' name.
    static let outsideCaches: [(key: String, series: String)] = [
        ("outside_caches_unreclaimable_bytes", DerivedSeries.outsideUnreclaimable.name),
        ("outside_caches_reclaimable_bytes", DerivedSeries.outsideReclaimable.name),
    ]

    public static let fields: [Field] = document + memoryFields + fs + kernelObjects + caches + sources + cgroups + findings + attribution + charged
        + trend

    private static let document: [Field] = [
        .init("timestamp", "string", "when the sample was taken: RFC 3339, UTC, milliseconds"),
        .init("interval_seconds", "number", "`sampler.interval`"),
        .init("memory", "object", "from `/proc/meminfo`, in bytes; a field the kernel did not report is `null`"),
    ]

    private static let memoryFields: [Field] = memory.map { .init("memory.\($0.key)", "integer or null", "`\($0.meminfo)`") } + [
        .init("memory.outside_caches_unreclaimable_bytes", "integer or null",
              "slab memory outside every cache: `SUnreclaim` less the footprints of every unreclaimable cache, at least 0 (allocations above the largest kmalloc cache, which SLUB takes from the page allocator); `null` when a side is unknown. Off by up to the vmstat error of `SUnreclaim`"),
        .init("memory.outside_caches_reclaimable_bytes", "integer or null",
              "`SReclaimable` less the footprints of every reclaimable cache, at least 0: within the vmstat error of 0 unless a cache is misread"),
        .init("memory.vmstat_error_bytes", "integer or null",
              "how far `SUnreclaim` and `SReclaimable` may lag the truth: the largest `vm stats threshold` of `/proc/zoneinfo` × CPUs × page size; `null` when zoneinfo was not read"),
    ]

    private static let fs: [Field] = [
        .init("fs", "object", "the VFS counters; a counter whose file could not be read is `null`"),
        .init("fs.inodes", "integer or null", "allocated inodes (`nr_inodes` of `/proc/sys/fs/inode-nr`)"),
        .init("fs.free_inodes", "integer or null", "free inodes (`nr_free_inodes`)"),
        .init("fs.dentries", "integer or null", "allocated dentries (`nr_dentry` of `/proc/sys/fs/dentry-state`)"),
        .init("fs.unused_dentries", "integer or null", "unused dentries (`nr_unused`)"),
        .init("fs.negative_dentries", "integer or null", "negative dentries, of names that do not exist (`nr_negative`; `null` before kernel 4.19)"),
        .init("fs.open_files", "integer or null", "allocated file handles (first field of `/proc/sys/fs/file-nr`)"),
        .init("fs.max_files", "integer or null", "`fs.file-max`"),
    ]

    private static let kernelObjects: [Field] = [
        .init("kernel_objects", "object", "counts of kernel objects user space creates beyond files (the drivers `sockets`, `tasks`, `memory_cgroups`, `dying_memory_cgroups`); one not known is `null`"),
        .init("kernel_objects.threads", "integer or null", "threads that exist, every namespace's (the total after `/` in `/proc/loadavg`)"),
        .init("kernel_objects.sockets", "integer or null", "sockets, every namespace's (`sock_inode_cache`'s objects; where that cache is merged, `namespace_sockets`): the `sockets` driver"),
        .init("kernel_objects.namespace_sockets", "integer or null", "sockets of the daemon's network namespace (`sockets: used` of `/proc/net/sockstat`)"),
        .init("kernel_objects.memory_cgroups", "integer or null", "memory cgroups, live or dying (`/proc/cgroups` memory `num_cgroups`)"),
        .init("kernel_objects.live_memory_cgroups", "integer or null", "directories of the memory hierarchy; `null` unless the whole hierarchy is visible"),
        .init("kernel_objects.dying_memory_cgroups", "integer or null", "removed memory cgroups still held (v1: all less live; v2: the root's `cgroup.stat`); `null` unless the whole hierarchy is visible"),
    ]

    private static let caches: [Field] = [
        .init("caches", "array of objects", "every cache of the sample (whatever `slab.*` exports to `/metrics`), largest footprint first, then by name"),
        .init("caches[].name", "string", "the cache's name; a second line of the same name is `name#2`"),
        .init("caches[].active_objects", "integer", "`active_objs`"),
        .init("caches[].objects", "integer", "`num_objs`"),
        .init("caches[].object_size_bytes", "integer", "`objsize`"),
        .init("caches[].objects_per_slab", "integer", "`objperslab`"),
        .init("caches[].pages_per_slab", "integer", "`pagesperslab`"),
        .init("caches[].slabs", "integer", "`num_slabs`"),
        .init("caches[].footprint_bytes", "integer", "footprint: slabs × pages per slab × page size"),
        .init("caches[].waste_bytes", "integer", "footprint − active objects × object size"),
        .init("caches[].reclaimable", "boolean or null", "accounted in `SReclaimable` (`/sys/kernel/slab/CACHE/reclaim_account`); `null` when unknown (no sysfs, or not SLUB)"),
        .init("caches[].aliases", "array of strings", "the other names the kernel merged into this cache (SLUB's symbolic links in `/sys/kernel/slab`)"),
        .init("caches[].name_source", "string", "who named the cache: `slabinfo` (the kernel's own name), `sysfs`, or `sysfs-first-alias` (sysfs does not say which alias the kernel calls a merged cache: the alphabetically first)"),
    ]

    private static let sources: [Field] = [
        .init("sources", "object", "every source, by name: " + Source.allCases.sorted().map { "`\($0.rawValue)`" }.joined(separator: ", ")),
        .init("sources.{source}", "object", "how the last sample read it"),
        .init("sources.{source}.up", "boolean", "read and parsed"),
        .init("sources.{source}.error", "string or null", "why it is down, or what was skipped"),
        .init("sources.{source}.malformed_lines", "integer", "lines skipped as malformed"),
    ]

    private static let findings: [Field] = [
        .init("findings", "array of objects", "open findings first (most severe, then largest `held_bytes`), then resolved ones, newest first (the newest \(SnapshotRenderer.resolvedInSnapshot) in `/snapshot`, all in `replay --json`)"),
        .init("findings[].slab", "string", "the cache"),
        .init("findings[].driver", "string", "what it grows with: `inodes`, `dentries`, `negative_dentries`, `open_files`, `sockets`, `tasks`, `memory_cgroups`, `dying_memory_cgroups` or `time`"),
        .init("findings[].inode_cache", "string or null", "for `inodes`: the inode cache whose object count drives it; `null` for the global count"),
        .init("findings[].filesystem", "string or null", "the filesystem that inode cache's name maps to (`tmpfs`, `ext4`, …); `null` for the global count and the generic `inode_cache`"),
        .init("findings[].bytes_per_unit", "number", "the rise's fit: slope, bytes per inode, dentry, open file, or second"),
        .init("findings[].r_squared", "number", "that fit's R²"),
        .init("findings[].window_seconds", "number", "that fit's window"),
        .init("findings[].growth_bytes", "number", "footprint change over that window"),
        .init("findings[].driver_change", "number", "driver change over that window"),
        .init("findings[].bytes_per_second", "number", "`growth_bytes / window_seconds`"),
        .init("findings[].reclaimable", "boolean or null", "as for the cache"),
        .init("findings[].classification", "string", "`tracks-eviction`, `leak-like` or `undetermined`"),
        .init("findings[].state", "string", "`open` or `resolved`"),
        .init("findings[].resolution", "string or null", "why it resolved: `memory-returned`, `cache-gone`, `stopped-growing` or `reboot`; `null` while open"),
        .init("findings[].severity", "string", "`info`, `warning` or `critical`"),
        .init("findings[].phase", "string", "where its memory stands: `rising`, `holding` or `falling`"),
        .init("findings[].floor_bytes", "integer", "the footprint before the rise (`baseline_bytes` in 0.1.0, see CHANGES.md)"),
        .init("findings[].peak_bytes", "integer", "the highest footprint since"),
        .init("findings[].held_bytes", "integer", "footprint now minus `floor_bytes` (at least 0)"),
        .init("findings[].first_seen", "string", "RFC 3339: when it opened"),
        .init("findings[].last_rise", "string", "RFC 3339: when the footprint last rose past its level"),
        .init("findings[].last_seen", "string", "RFC 3339: the newest sample that evaluated it (its resolution, once resolved)"),
        .init("findings[].other_drivers", "array of objects", "the other drivers whose fits also passed"),
        .init("findings[].other_drivers[].driver", "string", "as `driver`"),
        .init("findings[].other_drivers[].inode_cache", "string or null", "as `inode_cache`"),
        .init("findings[].other_drivers[].bytes_per_unit", "number", "its slope"),
        .init("findings[].other_drivers[].r_squared", "number", "its R²"),
        .init("findings[].other_drivers[].driver_change", "number", "how far it moved in the window"),
        .init("findings[].message", "string", "the sentence a person reads (also the journal's `MESSAGE`)"),
        .init("findings[].attribution", "object or null", "once a tracing session named who allocates the cache; `slabwatch attribute --json` prints the same object"),
        .init("findings[].evidence", "array of objects", "at most `DetectorSettings.evidencePoints` (\(DetectorSettings().evidencePoints)) points of footprint against the driver, to plot: the rise's window evenly spread, then the fall's from the driver's peak on"),
        .init("findings[].evidence[].timestamp", "string", "RFC 3339"),
        .init("findings[].evidence[].driver", "number", "the driver's value"),
        .init("findings[].evidence[].footprint_bytes", "integer", "the footprint then"),
        .init("findings[].evidence[].segment", "string", "`rise` or `fall`"),
    ]

    private static let attribution: [Field] = [
        .init("findings[].attribution.cache", "string", "the cache traced"),
        .init("findings[].attribution.source", "string", "what traced it: `bpf`, `hist`, `trace` or `allocinfo`"),
        .init("findings[].attribution.window_seconds", "number", "how long it traced"),
        .init("findings[].attribution.events", "integer", "events read"),
        .init("findings[].attribution.dropped", "integer", "events lost (the counts are then lower bounds)"),
        .init("findings[].attribution.stopped_by", "string", "`duration`, `max-events` or `interrupted`"),
        .init("findings[].attribution.malformed_lines", "integer", "trace lines that did not parse"),
        .init("findings[].attribution.ended", "string or null", "RFC 3339: when the session ended"),
        .init("findings[].attribution.fallback", "string or null", "why a better source did not run"),
        .init("findings[].attribution.larger_than_bytes", "integer or null", "for `(outside caches, unreclaimable)`: the session traced every kmalloc larger than this, the largest kmalloc cache; `null` for a cache"),
        .init("findings[].attribution.allocations", "integer", "allocations, summed over the call sites"),
        .init("findings[].attribution.frees", "integer", "frees matched to them"),
        .init("findings[].attribution.net_count", "number", "objects allocated and not freed in the window"),
        .init("findings[].attribution.net_bytes", "number", "their bytes"),
        .init("findings[].attribution.not_followed", "integer", "BPF: allocations beyond `attribution.max-live-objects`, counted but not followed to their free"),
        .init("findings[].attribution.stacks_lost", "integer", "BPF: stacks the stack map had no room for"),
        .init("findings[].attribution.sites_full", "integer", "BPF: allocations the call-site map had no room for"),
        .init("findings[].attribution.owners_full", "integer", "BPF: allocations the process map had no room for"),
        .init("findings[].attribution.frees_unseen", "integer", "addresses allocated again without a free seen (bulk frees): net is then an upper bound"),
        .init("findings[].attribution.call_sites", "array of objects", "the call sites, ranked by `net_bytes`"),
        .init("findings[].attribution.call_sites[].function", "string", "`function+offset`, or an address where `/proc/kallsyms` hides names"),
        .init("findings[].attribution.call_sites[].module", "string or null", "the module, `null` for the kernel itself"),
        .init("findings[].attribution.call_sites[].allocations", "integer", "allocations from it"),
        .init("findings[].attribution.call_sites[].frees", "integer", "frees of them"),
        .init("findings[].attribution.call_sites[].net_count", "number", "objects not freed"),
        .init("findings[].attribution.call_sites[].net_bytes", "number", "their bytes"),
        .init("findings[].attribution.call_sites[].share", "number", "its share of the net bytes (of the allocated bytes, for `hist`)"),
        .init("findings[].attribution.call_sites[].stacks", "array of objects", "stacks of its allocations (a session's first allocations take one)"),
        .init("findings[].attribution.call_sites[].stacks[].allocations", "integer", "allocations with this stack"),
        .init("findings[].attribution.call_sites[].stacks[].net", "integer", "of them not freed"),
        .init("findings[].attribution.call_sites[].stacks[].frames", "array of strings", "innermost first"),
        .init("findings[].attribution.call_sites[].processes", "array of objects", "BPF sessions: who allocated, by process and cgroup (empty for the others)"),
        .init("findings[].attribution.call_sites[].processes[].pid", "integer", "the process (thread group) id"),
        .init("findings[].attribution.call_sites[].processes[].comm", "string", "its name at its first allocation"),
        .init("findings[].attribution.call_sites[].processes[].cgroup", "string or null", "its cgroup's path, where slabwatch can see it"),
        .init("findings[].attribution.call_sites[].processes[].cgroup_id", "integer", "the cgroup's id"),
        .init("findings[].attribution.call_sites[].processes[].memory_cgroup", "string or null", "the memory cgroup the kernel charges its accounted allocations to (the v1 memory hierarchy's where memory is mounted there), where slabwatch can see it"),
        .init("findings[].attribution.call_sites[].processes[].memory_cgroup_id", "integer", "that memory cgroup's id (its directory's inode); the cgroup's own id on a kernel without the memory controller"),
        .init("findings[].attribution.call_sites[].processes[].owner", "object or null", "whom the memory cgroup (else the cgroup) belongs to, read from its path as the kubelet, the container runtimes and systemd name them; null for a path of no one in particular"),
        .init("findings[].attribution.call_sites[].processes[].owner.kind", "string", "`pod`, `container` (Docker or Podman outside Kubernetes) or `unit` (systemd)"),
        .init("findings[].attribution.call_sites[].processes[].owner.pod_uid", "string or null", "the pod's UID with dashes, as kube-state-metrics' `uid` label has it"),
        .init("findings[].attribution.call_sites[].processes[].owner.qos_class", "string or null", "the pod's QoS class: `guaranteed`, `burstable` or `besteffort`"),
        .init("findings[].attribution.call_sites[].processes[].owner.container_id", "string or null", "the container's id (64 hex digits); null for a pod's own cgroup"),
        .init("findings[].attribution.call_sites[].processes[].owner.runtime", "string or null", "`containerd`, `cri-o`, `docker`, `podman` (`… conmon` for their monitor processes); null where the path does not say (the cgroupfs driver)"),
        .init("findings[].attribution.call_sites[].processes[].owner.unit", "string or null", "the innermost systemd unit (`foo.service`, `session-3.scope`) of a `unit`"),
        .init("findings[].attribution.call_sites[].processes[].allocations", "integer", "its allocations"),
        .init("findings[].attribution.call_sites[].processes[].net_count", "number", "of them not freed"),
        .init("findings[].attribution.call_sites[].processes[].net_bytes", "number", "their bytes"),
    ]

    private static let cgroups: [Field] = [
        .init("cgroups", "object or null", "kernel memory per memory cgroup at the last walk (every `ProcReader.cgroupsEvery` samples); `null` where no memory cgroup hierarchy is visible"),
        .init("cgroups.version", "string", "`v1` (`memory.kmem.usage_in_bytes`) or `v2` (`memory.stat`)"),
        .init("cgroups.read_at", "string or null", "RFC 3339: when that walk was taken"),
        .init("cgroups.exported", "array of objects", "the largest `sampler.max-cgroups` leaves, largest first"),
        .init("cgroups.exported[].cgroup", "string", "the path in the memory hierarchy, as cAdvisor's `id`"),
        .init("cgroups.exported[].name", "string", "whom it belongs to as a person reads it (`pod 1d3a…-… (burstable), containerd container 3f2a1b9c8d7e`, `foo.service`), else its path"),
        .init("cgroups.exported[].owner", "object or null", "its owner read from the path, as `findings[].attribution.call_sites[].processes[].owner`; null for a path of no one in particular"),
        .init("cgroups.exported[].owner.kind", "string", "`pod`, `container` or `unit`"),
        .init("cgroups.exported[].owner.pod_uid", "string or null", "the pod's UID, as kube-state-metrics' `uid`"),
        .init("cgroups.exported[].owner.qos_class", "string or null", "the pod's QoS class"),
        .init("cgroups.exported[].owner.container_id", "string or null", "the container's id"),
        .init("cgroups.exported[].owner.runtime", "string or null", "the container runtime"),
        .init("cgroups.exported[].owner.unit", "string or null", "the systemd unit"),
        .init("cgroups.exported[].kernel_bytes", "integer", "v1 `memory.kmem.usage_in_bytes` (all kernel memory as one number); v2 `memory.stat` `kernel`, else its slab"),
        .init("cgroups.exported[].slab_reclaimable_bytes", "integer or null", "v2 `slab_reclaimable`; `null` on v1"),
        .init("cgroups.exported[].slab_unreclaimable_bytes", "integer or null", "v2 `slab_unreclaimable`; `null` on v1"),
        .init("cgroups.others", "integer", "leaves beyond `sampler.max-cgroups`"),
        .init("cgroups.other_kernel_bytes", "integer", "their kernel memory, summed"),
        .init("cgroups.unreadable", "integer", "leaves whose file could not be read (gone mid-walk, unreadable)"),
        .init("cgroups.truncated", "boolean", "whether the walk stopped at its bound on directories"),
    ]

    private static let charged: [Field] = [
        .init("findings[].charged", "object or null", "whose memory it is: the memory cgroups charged for the rise; `null` until ranked or where no memory cgroup hierarchy is read"),
        .init("findings[].charged.source", "string", "`bpf` (the attribution's net bytes per memory cgroup), `memcg-kmem` (v1: a cgroup's kernel memory as one number, not split by cache), `memcg-kernel` (v2 `kernel`, likewise), `memcg-slab-unreclaimable` / `memcg-slab-reclaimable` (v2: the cgroup's slab of the cache's own kind, not split by cache) or `not-accounted` (the cache's allocations are charged to no cgroup: plain, reclaimable, DMA kmalloc)"),
        .init("findings[].charged.basis", "string or null", "the cgroups' figure ranked by: `slab_unreclaimable` or `slab_reclaimable` (v2, a cache of that kind, or the memory outside the caches of that kind), `kernel` (v1; v2 for the per-CPU allocator and a cache of unknown reclaimability); null for `bpf` and `not-accounted`"),
        .init("findings[].charged.window_seconds", "number", "the window ranked over: the cgroup readings of the rise, or the BPF session"),
        .init("findings[].charged.cgroups", "array of objects", "at most 3 cgroups with at least 5 % each, largest share first; ranked by rise × r² of their `basis` figure against the footprint"),
        .init("findings[].charged.cgroups[].cgroup", "string", "the path in the memory hierarchy"),
        .init("findings[].charged.cgroups[].name", "string", "whom it belongs to as a person reads it (`pod 1d3a…-… (burstable), containerd container 3f2a1b9c8d7e`, `foo.service`), else its path"),
        .init("findings[].charged.cgroups[].owner", "object or null", "its owner read from the path, as `findings[].attribution.call_sites[].processes[].owner`; null for a path of no one in particular"),
        .init("findings[].charged.cgroups[].owner.kind", "string", "`pod`, `container` or `unit`"),
        .init("findings[].charged.cgroups[].owner.pod_uid", "string or null", "the pod's UID, as kube-state-metrics' `uid`"),
        .init("findings[].charged.cgroups[].owner.qos_class", "string or null", "the pod's QoS class"),
        .init("findings[].charged.cgroups[].owner.container_id", "string or null", "the container's id"),
        .init("findings[].charged.cgroups[].owner.runtime", "string or null", "the container runtime"),
        .init("findings[].charged.cgroups[].owner.unit", "string or null", "the systemd unit"),
        .init("findings[].charged.cgroups[].rise_bytes", "number", "its kernel memory's rise over the window (BPF: its net bytes)"),
        .init("findings[].charged.cgroups[].share", "number", "its share of what the cgroups rising with the finding gained (0 to 1)"),
        .init("findings[].charged.cgroups[].r_squared", "number or null", "how closely its kernel memory followed the footprint; `null` for BPF"),
        .init("findings[].charged.other_share", "number", "everyone else's share: smaller cgroups and those beyond the cgroup history's columns (the largest 64 exported)"),
    ]

    private static let trend: [Field] = [
        .init("trend", "object or null", "the global trend: `Slab` and `SUnreclaim` against each driver; `null` until a window is covered"),
        .init("trend.window_seconds", "number", "the window fitted: the longest of `detector.windows` the ring covers at least half of"),
        .init("trend.fits", "array of objects", "one per memory and driver"),
        .init("trend.fits[].memory", "string", "`slab` or `slab_unreclaimable`"),
        .init("trend.fits[].driver", "string", "as a finding's `driver`"),
        .init("trend.fits[].bytes_per_unit", "number", "slope"),
        .init("trend.fits[].r_squared", "number", "its R²"),
        .init("trend.limit_share", "number", "`detector.trend-limit-share`"),
        .init("trend.limit_bytes", "number or null", "that share of `MemTotal`"),
        .init("trend.seconds_to_limit", "number or null", "when `SUnreclaim` reaches it at its current rate; `null` when not rising"),
    ]
}
