#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests offline: built-in kinds against the
Kubernetes schemas (kubernetes-validate, strict: unknown fields are errors),
custom resources against the openAPIV3Schema of the CRDs given with --crd,
where unknown fields are errors too (the API server would drop them silently).

usage: check-kubernetes.py [--crd CRD.yaml]... MANIFEST.yaml...
Exits 1 and names each object that fails; 0 when every object validates."""
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30"


def closed(schema):
    """The schema with additionalProperties: false wherever it lists properties
    and does not preserve unknown fields, so a misspelt key fails."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    if isinstance(schema, str) and schema.startswith("^(?i)"):
        return "(?i)^" + schema[5:]  # Go's RE2 takes the flag anywhere; Python only first
    return schema


def crd_schemas(paths):
    schemas = {}
    for path in paths:
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = closed(version["schema"]["openAPIV3Schema"])
                    # metadata is the API server's ObjectMeta, not the CRD's to describe.
                    schema["properties"]["metadata"] = {"type": "object"}
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def main(argv):
    crds, manifests = [], []
    while argv:
        arg = argv.pop(0)
        (crds.append(argv.pop(0)) if arg == "--crd" else manifests.append(arg))
    custom = crd_schemas(crds)
    failures = checked = 0
    for path in manifests:
        with open(path) as f:
            for obj in yaml.safe_load_all(f):
                if not obj:
                    continue
                name = f"{path}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
                checked += 1
                try:
                    key = (obj.get("apiVersion"), obj.get("kind"))
                    if key in custom:
                        jsonschema.validate(obj, custom[key])
                    else:
                        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
                except Exception as error:  # every kind of failure names its object
                    failures += 1
                    print(f"{name}: {str(error).splitlines()[0]}", file=sys.stderr)
    print(f"{checked} objects checked, {failures} failed")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
