// slabwatch's monitoring mixin: prometheusRules, prometheusAlerts and
// grafanaDashboards, configured in config.libsonnet.
(import 'config.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
