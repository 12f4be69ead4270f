// Alerts: a cache growing per file, a critical finding, unreclaimable slab
// heading for its limit, a cgroup whose kernel memory keeps rising, a source
// slabwatch cannot read, a node not scraped.
{
  prometheusAlerts+:: {
    local sel = $._config.slabwatchSelector,
    groups+: [
      {
        name: 'slabwatch.alerts',
        rules: [
          {
            alert: 'SlabCacheGrowsPerFile',
            expr: 'slabwatch_finding_flagged{%(sel)s} == 1' % { sel: sel },
            'for': $._config.growsPerFileFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.slab }} on {{ $labels.instance }} grows with {{ $labels.driver }}',
              description: 'Slab cache {{ $labels.slab }} grows by {{ with printf "slabwatch_finding_bytes_per_unit{instance=\'%s\',slab=\'%s\',driver=\'%s\',inode_cache=\'%s\'}" $labels.instance $labels.slab $labels.driver $labels.inode_cache | query }}{{ . | first | value | humanize1024 }}B{{ end }} per unit of {{ $labels.driver }}. See journalctl -x SYSLOG_IDENTIFIER=slabwatch on the node, or its /snapshot.',
              // The raw figure, for receivers that sort or compare (a webhook, a ticket).
              bytes_per_unit: '{{ with printf "slabwatch_finding_bytes_per_unit{instance=\'%s\',slab=\'%s\',driver=\'%s\',inode_cache=\'%s\'}" $labels.instance $labels.slab $labels.driver $labels.inode_cache | query }}{{ . | first | value }}{{ end }}',
            },
          },
          {
            alert: 'SlabFindingCritical',
            expr: 'slabwatch_findings_open{%(sel)s,severity="critical"} > 0' % { sel: sel },
            labels: { severity: 'critical' },
            annotations: {
              summary: '{{ $labels.instance }} has {{ $value }} critical slab growth finding(s)',
            },
          },
          {
            alert: 'UnreclaimableSlabNearLimit',
            expr: 'slabwatch_trend_limit_seconds{%(sel)s} < %(limit)s' % { sel: sel, limit: $._config.unreclaimableLimitSeconds },
            'for': $._config.unreclaimableLimitFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Unreclaimable slab on {{ $labels.instance }} reaches its limit in {{ $value | humanizeDuration }}',
            },
          },
          {
            // cgroup v2: a service's or a pod's unreclaimable slab (memory.stat
            // slab_unreclaimable) that keeps rising, by the threshold over the
            // window and in each step of it, so a sawtooth does not fire. The
            // slab series has only the cgroup: its owner's labels are joined
            // from the kernel-memory series of the same cgroup.
            alert: 'CgroupUnreclaimableSlabKeepsRising',
            expr: |||
              (
                delta(slabwatch_cgroup_slab_bytes{%(sel)s,memory="unreclaimable",cgroup!="other"}[%(window)s]) > %(bytes)d
                and
                min_over_time(deriv(slabwatch_cgroup_slab_bytes{%(sel)s,memory="unreclaimable",cgroup!="other"}[%(step)s])[%(window)s:%(step)s]) > 0
              )
              + on (job, instance, cgroup) group_left (container_id, pod_uid, unit)
                0 * slabwatch_cgroup_kernel_memory_bytes{%(sel)s,cgroup!="other"}
            ||| % { sel: sel, window: $._config.cgroupRiseWindow, step: $._config.cgroupRiseStep, bytes: $._config.cgroupRiseBytes },
            'for': $._config.cgroupRiseFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.unit }}{{ $labels.pod_uid }} on {{ $labels.instance }}: unreclaimable slab +{{ $value | humanize1024 }}B in %(window)s, still rising' % { window: $._config.cgroupRiseWindow },
              description: 'The unreclaimable slab charged to memory cgroup {{ $labels.cgroup }} (cgroup v2 slab_unreclaimable; pod_uid joins kube-state-metrics uid; container_id its containers) rose in every %(step)s of %(window)s: memory the kernel does not give back under pressure. The slab findings on {{ $labels.instance }} say which cache it is (/snapshot findings[].charged).' % { window: $._config.cgroupRiseWindow, step: $._config.cgroupRiseStep },
            },
          },
          {
            // A service's or a pod's kernel memory that keeps rising, likewise:
            // on cgroup v1 all of it (no slab per cgroup there); on v2 all but
            // its unreclaimable slab, which CgroupUnreclaimableSlabKeepsRising
            // reads (reclaimable slab such as a dentry or inode leak; stacks,
            // page tables, sockets: a thread or socket leak), and not for a
            // cgroup that alert is about: an inode leak grows both kinds of
            // slab, and one alert says it. So no cgroup fires both, and
            // nothing rising steadily is missed. The
            // cgroups beyond sampler.max-cgroups, summed as cgroup="other", are no one's.
            alert: 'CgroupKernelMemoryKeepsRising',
            expr: |||
              (
                delta(slabwatch_cgroup_kernel_memory_bytes{%(sel)s,cgroup!="other"}[%(window)s]) > %(bytes)d
                and
                min_over_time(deriv(slabwatch_cgroup_kernel_memory_bytes{%(sel)s,cgroup!="other"}[%(step)s])[%(window)s:%(step)s]) > 0
                unless on (job, instance, cgroup)
                slabwatch_cgroup_slab_bytes{%(sel)s}
              )
              or
              (
                delta(cgroup:slabwatch_cgroup_kernel_memory_bytes:without_unreclaimable_slab{%(sel)s}[%(window)s]) > %(bytes)d
                and
                min_over_time(deriv(cgroup:slabwatch_cgroup_kernel_memory_bytes:without_unreclaimable_slab{%(sel)s}[%(step)s])[%(window)s:%(step)s]) > 0
                unless on (job, instance, cgroup)
                (
                  delta(slabwatch_cgroup_slab_bytes{%(sel)s,memory="unreclaimable",cgroup!="other"}[%(window)s]) > %(bytes)d
                  and
                  min_over_time(deriv(slabwatch_cgroup_slab_bytes{%(sel)s,memory="unreclaimable",cgroup!="other"}[%(step)s])[%(window)s:%(step)s]) > 0
                )
              )
            ||| % { sel: sel, window: $._config.cgroupRiseWindow, step: $._config.cgroupRiseStep, bytes: $._config.cgroupRiseBytes },
            'for': $._config.cgroupRiseFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.unit }}{{ $labels.pod_uid }} on {{ $labels.instance }}: kernel memory +{{ $value | humanize1024 }}B in %(window)s, still rising' % { window: $._config.cgroupRiseWindow },
              description: 'The kernel memory charged to memory cgroup {{ $labels.cgroup }} (pod_uid joins kube-state-metrics uid; container_id its containers) rose in every %(step)s of %(window)s. On cgroup v1 it is all kernel memory, reclaimable slab included, and the slab findings on {{ $labels.instance }} say which cache it is (/snapshot findings[].charged); on cgroup v2 it is all but its unreclaimable slab (reclaimable slab, kernel stacks, page tables, sockets, per-CPU, vmalloc: memory.stat of the cgroup says which).' % { window: $._config.cgroupRiseWindow, step: $._config.cgroupRiseStep },
            },
          },
          {
            alert: 'SlabwatchSourceDown',
            expr: 'slabwatch_source_up{%(sel)s} == 0' % { sel: sel },
            'for': $._config.sourceDownFor,
            labels: { severity: 'info' },
            annotations: {
              summary: 'slabwatch on {{ $labels.instance }} cannot read {{ $labels.source }}',
              description: 'See /snapshot sources.{{ $labels.source }}.error; /proc/slabinfo needs root or CAP_DAC_READ_SEARCH.',
            },
          },
          {
            alert: 'SlabwatchDown',
            expr: 'up{%(sel)s} == 0' % { sel: sel },
            'for': $._config.slabwatchDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'slabwatch on {{ $labels.instance }} is not being scraped',
              description: 'Prometheus cannot scrape {{ $labels.instance }}: no slab findings or alerts from that node until it is back.',
            },
          },
        ],
      },
    ],
  },
}
