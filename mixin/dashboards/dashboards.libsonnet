{
  grafanaDashboards+:: {
    'slabwatch.json': (import 'slabwatch.libsonnet').new($._config),
  },
}
