// What a deployment changes: which scrape job is slabwatch, how long a
// condition must hold before it pages, and the dashboard's names. Override
// with `(import 'mixin.libsonnet') + { _config+:: { slabwatchSelector: 'job="node-slab"' } }`.
{
  _config+:: {
    // Selects slabwatch's series in every rule, alert and panel. The
    // Kubernetes PodMonitor in deploy/kubernetes sets job="slabwatch" too.
    slabwatchSelector: 'job="slabwatch"',

    // SlabCacheGrowsPerFile: a finding stays flagged this long (the detector
    // has already required detector.open-after consecutive passing samples).
    growsPerFileFor: '5m',
    // UnreclaimableSlabNearLimit: SUnreclaim reaches detector.trend-limit-share
    // of MemTotal within this many seconds at its current rate, for this long.
    unreclaimableLimitSeconds: '6 * 3600',
    unreclaimableLimitFor: '10m',
    // SlabwatchSourceDown: a source (slabinfo, meminfo, ...) unreadable this long.
    sourceDownFor: '15m',
    // SlabwatchDown: Prometheus cannot scrape a node's slabwatch this long.
    slabwatchDownFor: '5m',
    // CgroupUnreclaimableSlabKeepsRising (cgroup v2: slabwatch_cgroup_slab_bytes
    // {memory="unreclaimable"}) and CgroupKernelMemoryKeepsRising (v1:
    // slabwatch_cgroup_kernel_memory_bytes): a memory cgroup's figure rose by
    // cgroupRiseBytes over cgroupRiseWindow and in every cgroupRiseStep of it,
    // for cgroupRiseFor.
    // PromQL has no byte units: jsonnet writes the number.
    cgroupRiseBytes: 512 * 1024 * 1024,
    cgroupRiseWindow: '6h',
    cgroupRiseStep: '30m',
    cgroupRiseFor: '30m',

    // The Grafana dashboard.
    dashboardUid: 'slabwatch',
    dashboardTitle: 'slabwatch / Slab memory',
    dashboardTags: ['slabwatch'],
    // How a browser reaches a node's page at / (the instance label is host:port).
    nodePageScheme: 'http',
  },
}
