// jsonnet -J . -m OUT dashboards.jsonnet: one file per dashboard.
local mixin = import 'mixin.libsonnet';
{ [name]: mixin.grafanaDashboards[name] for name in std.objectFields(mixin.grafanaDashboards) }
