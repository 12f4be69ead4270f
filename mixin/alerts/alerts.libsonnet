// Alerts: a cache growing per file, a critical finding, unreclaimable slab
// heading for its limit, a source slabwatch cannot read, a node not scraped.
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
