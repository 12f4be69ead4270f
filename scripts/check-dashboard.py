#!/usr/bin/env python3
"""Checks Grafana dashboards against the models that grafana-foundation-sdk
(PyPI) generates from Grafana's own schema: every field the schema does not
know is dropped by a decode and re-encode, so a misspelt or invented key shows
as a difference. It checks names, not values or types: no validator of
Grafana's full schema is installable here (Grafana's CUE schemas live in its
AGPL repository; grafana/dashboard-linter is not released as a module).

usage: check-dashboard.py DASHBOARD.json...   Exits 1 naming each dropped field."""
import json
import sys

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard


def dropped(given, decoded, path=""):
    """Paths present in `given` that the schema's model did not keep."""
    if isinstance(given, dict) and isinstance(decoded, dict):
        for key, value in given.items():
            if key not in decoded:
                yield f"{path}/{key}"
            else:
                yield from dropped(value, decoded[key], f"{path}/{key}")
    elif isinstance(given, list) and isinstance(decoded, list):
        for index, (a, b) in enumerate(zip(given, decoded)):
            yield from dropped(a, b, f"{path}/{index}")


def main(paths):
    failures = 0
    for path in paths:
        with open(path) as f:
            given = json.load(f)
        decoded = json.loads(json.dumps(Dashboard.from_json(given), cls=JSONEncoder))
        for field in dropped(given, decoded):
            failures += 1
            print(f"{path}: {field} is not in Grafana's dashboard schema", file=sys.stderr)
    print(f"{len(paths)} dashboards checked, {failures} unknown fields")
    return 1 if failures or not paths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
