// Recording rules: the fleet's view of each cache's bytes per unit, and the
// per-node ratios the dashboard and alerts read.
{
  prometheusRules+:: {
    local sel = $._config.slabwatchSelector,
    groups+: [
      {
        name: 'slabwatch.rules',
        rules: [
          // Fleet view: the largest bytes-per-unit seen for each cache and
          // driver (and inode cache, for the per-filesystem inode drivers), so one query finds the nodes whose per-file cost is off.
          {
            record: 'slabwatch:finding_bytes_per_unit:max',
            expr: 'max by (slab, driver, inode_cache) (slabwatch_finding_bytes_per_unit{%(sel)s} and on (instance, slab, driver, inode_cache) slabwatch_finding_flagged{%(sel)s} == 1)' % { sel: sel },
          },
          {
            record: 'slabwatch:findings_open:sum',
            expr: 'sum by (severity) (slabwatch_findings_open{%(sel)s})' % { sel: sel },
          },
          // cgroup v2: a memory cgroup's kernel memory but its unreclaimable
          // slab (reclaimable slab, stacks, page tables, sockets, per-CPU,
          // vmalloc), which the kernel-memory alert reads there, since the
          // unreclaimable slab has an alert of its own. None on v1, whose
          // cgroups have no slab series.
          {
            record: 'cgroup:slabwatch_cgroup_kernel_memory_bytes:without_unreclaimable_slab',
            expr: 'slabwatch_cgroup_kernel_memory_bytes{%(sel)s,cgroup!="other"} - on (job, instance, cgroup) group_left () slabwatch_cgroup_slab_bytes{%(sel)s,memory="unreclaimable"}' % { sel: sel },
          },
          // Unreclaimable slab as a share of memory, per node.
          {
            record: 'instance:slabwatch_slab_unreclaimable:ratio',
            expr: 'slabwatch_memory_slab_unreclaimable_bytes{%(sel)s} / slabwatch_memory_total_bytes{%(sel)s}' % { sel: sel },
          },
          // The fleet's median bytes per unit of each cache and driver, over
          // the nodes that measured one (a finding open, or resolved and
          // still remembered) ...
          {
            record: 'slabwatch:finding_bytes_per_unit:median',
            expr: 'quantile by (slab, driver, inode_cache) (0.5, slabwatch_finding_bytes_per_unit{%(sel)s})' % { sel: sel },
          },
          // ... and the nodes whose cost per file for that cache is above it,
          // with their own bytes per unit as the value.
          {
            record: 'instance:slabwatch_finding_bytes_per_unit:above_fleet_median',
            expr: 'slabwatch_finding_bytes_per_unit{%(sel)s} > on (slab, driver, inode_cache) group_left () slabwatch:finding_bytes_per_unit:median' % { sel: sel },
          },
        ],
      },
    ],
  },
}
