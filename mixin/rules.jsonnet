// The recording and alerting rules in one Prometheus rule file, as shipped in
// config/prometheus/slabwatch-rules.yml (scripts/mixin.sh writes it).
local mixin = import 'mixin.libsonnet';
{ groups: mixin.prometheusRules.groups + mixin.prometheusAlerts.groups }
