// One node's slab memory and the fleet's findings, in plain jsonnet (Grafana
// dashboard schema 39; no grafonnet). Every target's expr is run, with the
// variables filled in, against a Prometheus scraping real daemons by the
// fleet test, so a renamed metric breaks a test, not a dashboard.
local datasource = { type: 'prometheus', uid: '${datasource}' };

local target(expr, legend='', refId='A', instant=false) = {
  datasource: datasource,
  expr: expr,
  refId: refId,
  legendFormat: legend,
} + (if instant then { instant: true, range: false, format: 'table' } else { range: true });

local panel(id, type, title, description, gridPos, targets, unit='bytes') = {
  id: id,
  type: type,
  title: title,
  description: description,
  datasource: datasource,
  gridPos: gridPos,
  targets: targets,
  fieldConfig: { defaults: { unit: unit }, overrides: [] },
  options: {},
};

local timeseries(id, title, description, gridPos, targets, unit='bytes') =
  panel(id, 'timeseries', title, description, gridPos, targets, unit) + {
    options: { legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  };

local table(id, title, description, gridPos, targets, transformations) =
  panel(id, 'table', title, description, gridPos, targets, 'none') + {
    transformations: transformations,
    options: { showHeader: true, cellHeight: 'sm' },
  };

// A column's unit, by the field name the merge transformation gives it.
local columnUnit(name, unit) = {
  matcher: { id: 'byName', options: name },
  properties: [{ id: 'unit', value: unit }],
};

local variable(name, label, query, multi=true, includeAll=true) = {
  name: name,
  label: label,
  type: 'query',
  datasource: datasource,
  query: { query: query, refId: name },
  refresh: 2,  // on time range change: nodes come and go
  sort: 1,
  multi: multi,
  includeAll: includeAll,
  current: {},
  options: [],
};

{
  new(config):: {
    local sel = config.slabwatchSelector,
    local node = '%s, instance=~"$instance"' % sel,
    // Findings are joined to their classification and severity on the
    // finding's main driver and inode cache (slabwatch_finding_info carries both).
    local openFinding = 'on (instance, slab, driver, inode_cache) group_left (classification, severity) slabwatch_finding_info{%s, state="open"}' % node,

    uid: config.dashboardUid,
    title: config.dashboardTitle,
    tags: config.dashboardTags,
    description: 'Slab memory per node and slab caches whose footprint grows with inodes, dentries or open files, from slabwatch.',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: '1m',
    timezone: '',
    links: [],
    annotations: { list: [] },
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
        },
        variable('instance', 'Node', 'label_values(slabwatch_build_info{%s}, instance)' % sel),
        variable('slab', 'Cache (fleet panels)', 'label_values(slabwatch_finding_bytes_per_unit{%s}, slab)' % sel),
      ],
    },
    panels: [
      timeseries(
        1, 'Slab memory against MemTotal',
        'Slab (reclaimable and unreclaimable) and SUnreclaim from /proc/meminfo, with MemTotal as the ceiling. Unreclaimable slab only comes back when its objects are freed; reclaimable slab comes back under memory pressure.',
        { x: 0, y: 0, w: 12, h: 8 },
        [
          target('slabwatch_memory_total_bytes{%s}' % node, '{{instance}} MemTotal', 'A'),
          target('slabwatch_memory_slab_bytes{%s}' % node, '{{instance}} Slab', 'B'),
          target('slabwatch_memory_slab_unreclaimable_bytes{%s}' % node, '{{instance}} SUnreclaim', 'C'),
        ],
      ),
      timeseries(
        2, 'Unreclaimable slab, share of memory',
        'SUnreclaim / MemTotal per node (the recording rule instance:slabwatch_slab_unreclaimable:ratio).',
        { x: 12, y: 0, w: 12, h: 8 },
        [target('instance:slabwatch_slab_unreclaimable:ratio{%s}' % node, '{{instance}}')],
        'percentunit',
      ),
      timeseries(
        3, 'Largest caches by footprint',
        'The ten caches holding the most memory (num_slabs x pages per slab x page size) on the chosen nodes.',
        { x: 0, y: 8, w: 12, h: 9 },
        [target('topk(10, slabwatch_slab_footprint_bytes{%s})' % node, '{{instance}} {{slab}}')],
      ),
      timeseries(
        4, 'Largest caches by growth',
        'The ten caches whose footprint grew most over the dashboard time range, among those the nodes export: by default each node\'s largest, those that grew most in an hour and every cache with a finding (slab.export: all exports every cache).',
        { x: 12, y: 8, w: 12, h: 9 },
        [target('topk(10, delta(slabwatch_slab_footprint_bytes{%s}[$__range]))' % node, '{{instance}} {{slab}}')],
      ),
      table(
        5, 'Open findings',
        'Caches whose footprint rises linearly with a driver (inodes, dentries, open files, an inode cache, or time). Bytes per unit is the slope; R² the fit of the rise; held bytes what the cache holds above its level before the rise. tracks-eviction: it fell with its driver (not a leak); leak-like: its driver fell and it did not.',
        { x: 0, y: 17, w: 24, h: 8 },
        [
          target('slabwatch_finding_bytes_per_unit{%s} * %s' % [node, openFinding], '', 'A', true),
          target('slabwatch_finding_r_squared{%s} * %s' % [node, openFinding], '', 'B', true),
          target('slabwatch_finding_held_bytes{%s} * on (instance, slab) group_left () slabwatch_finding_info{%s, state="open"}' % [node, node], '', 'C', true),
          target('max by (instance, slab, phase) (slabwatch_finding_phase{%s} == 1)' % node, '', 'D', true),
        ],
        [
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, job: true, 'Value #D': true },
              indexByName: { instance: 0, slab: 1, driver: 2, inode_cache: 3, 'Value #A': 4, 'Value #B': 5, phase: 6, classification: 7, 'Value #C': 8, severity: 9 },
              renameByName: { slab: 'cache', inode_cache: 'inode cache', 'Value #A': 'bytes per unit', 'Value #B': 'R²', 'Value #C': 'held bytes' },
            },
          },
        ],
      ) + {
        fieldConfig+: { overrides: [columnUnit('bytes per unit', 'bytes'), columnUnit('held bytes', 'bytes'), columnUnit('R²', 'none')] },
      },
      timeseries(
        6, 'Bytes per unit across the fleet: $slab',
        "Each node's slope for the chosen cache and driver, with the fleet's median (slabwatch:finding_bytes_per_unit:median). A node far above the median runs something the others do not: a module version, a workload, a kernel.",
        { x: 0, y: 25, w: 16, h: 9 },
        [
          target('slabwatch_finding_bytes_per_unit{%s, slab=~"$slab"}' % sel, '{{instance}} {{slab}} per {{driver}} {{inode_cache}}', 'A'),
          target('slabwatch:finding_bytes_per_unit:median{slab=~"$slab"}', 'fleet median {{slab}} per {{driver}} {{inode_cache}}', 'B'),
        ],
      ),
      table(
        7, 'Nodes above the fleet median',
        'Nodes whose bytes per unit for a cache is above the fleet median (instance:slabwatch_finding_bytes_per_unit:above_fleet_median).',
        { x: 16, y: 25, w: 8, h: 9 },
        [target('instance:slabwatch_finding_bytes_per_unit:above_fleet_median{slab=~"$slab"}', '', 'A', true)],
        [{ id: 'organize', options: { excludeByName: { Time: true, __name__: true, job: true }, renameByName: { slab: 'cache', Value: 'bytes per unit' } } }],
      ) + {
        fieldConfig+: { overrides: [columnUnit('bytes per unit', 'bytes')] },
      },
      table(
        8, 'Nodes',
        "Every node's slabwatch: version, open findings, and a link to its own page at / (the live view of one node's caches and findings).",
        { x: 0, y: 34, w: 24, h: 8 },
        [
          target('max by (instance, version) (slabwatch_build_info{%s})' % node, '', 'A', true),
          target('sum by (instance) (slabwatch_findings_open{%s})' % node, '', 'B', true),
        ],
        [
          { id: 'merge', options: {} },
          { id: 'organize', options: { excludeByName: { Time: true, 'Value #A': true }, renameByName: { 'Value #B': 'open findings' } } },
        ],
      ) + {
        fieldConfig+: {
          overrides: [{
            matcher: { id: 'byName', options: 'instance' },
            properties: [{
              id: 'links',
              value: [{ title: "Open this node's slabwatch page", url: '%s://${__value.raw}/' % config.nodePageScheme, targetBlank: true }],
            }],
          }],
        },
      },
      timeseries(
        9, 'Kernel memory by pod/service',
        'The ten memory cgroups (systemd services, pods, containers) holding the most kernel memory on the chosen nodes: slabwatch_cgroup_kernel_memory_bytes, cgroup v1 memory.kmem.usage_in_bytes or v2 memory.stat kernel. On v1 it is all kernel memory as one number, not split by cache; a finding says which cache and whose it is (/snapshot findings[].charged). pod_uid joins kube-state-metrics uid, cgroup cAdvisor id.',
        { x: 0, y: 42, w: 16, h: 9 },
        [target('topk(10, slabwatch_cgroup_kernel_memory_bytes{%s, cgroup!="other"})' % node, '{{instance}} {{unit}}{{pod_uid}} {{container_id}}')],
      ),
      table(
        10, 'Kernel memory rise by pod/service',
        'How far each memory cgroup\'s kernel memory rose over the dashboard time range, largest first (the cgroups beyond sampler.max-cgroups are summed as cgroup="other" and left out).',
        { x: 16, y: 42, w: 8, h: 9 },
        [target('topk(20, delta(slabwatch_cgroup_kernel_memory_bytes{%s, cgroup!="other"}[$__range]))' % node, '', 'A', true)],
        [{ id: 'organize', options: { excludeByName: { Time: true, job: true }, renameByName: { pod_uid: 'pod uid', container_id: 'container', Value: 'rise' } } }],
      ) + {
        fieldConfig+: { overrides: [columnUnit('rise', 'bytes')] },
      },
    ],
  },
}
