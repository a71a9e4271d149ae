"""Validates the documents of one rendered overlay; run by scripts/validate-deploy.sh.

Prints one line per document (PASS, FAIL or SKIP, then what was checked); exits 1 if any
document failed. Kubernetes' own kinds are checked with kubernetes-validate against the
Kubernetes JSON schemas it ships, unknown fields forbidden. A SpinApp or SpinAppExecutor is
checked with check-jsonschema against the openAPIV3Schema of spin-operator's CRD for its kind
(each given with --crd), converted to JSON Schema with unknown fields forbidden: the API server
would silently prune a misspelt field. Without its CRD, such a document is reported SKIP, or
FAIL with --crd-required. Every SpinApp is also checked against this repo: its variables must
be spin.toml variables, every ConfigMap/Secret key it names must be in the rendering, and its
probes must be routes of spin.toml.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

import kubernetes_validate.utils as kv
import yaml

SPINAPP_API = "core.spinkube.dev/v1alpha1"
INT32 = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def openapi_to_jsonschema(node):
    """OpenAPI v3 (structural CRD schema) to JSON Schema, unknown fields forbidden."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue  # CEL rules and list/map merge hints have no JSON Schema meaning
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        else:
            out[key] = openapi_to_jsonschema(value)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("format") in INT32:
        out["minimum"], out["maximum"] = INT32[out["format"]]
    open_object = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not open_object:
        out["additionalProperties"] = False
    return out


def crd_schema(crd_path):
    """The kind a CRD defines and its v1alpha1 schema as JSON Schema, unknown fields forbidden."""
    with open(crd_path) as f:
        crd = yaml.safe_load(f)
    if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
        raise SystemExit(f"{crd_path}: not a CustomResourceDefinition")
    kind = crd["spec"]["names"]["kind"]
    api = f"{crd['spec']['group']}/v1alpha1"
    if api != SPINAPP_API:
        raise SystemExit(f"{crd_path}: group {crd['spec']['group']}, expected {SPINAPP_API.split('/')[0]}")
    versions = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    if not versions:
        raise SystemExit(f"{crd_path}: no version v1alpha1")
    schema = openapi_to_jsonschema(versions[0]["schema"]["openAPIV3Schema"])
    # What the API server requires of any object, beyond the CRD's own schema.
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["properties"]["apiVersion"] = {"const": api}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
    }
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    return kind, schema


def spin_manifest(path):
    with open(path, "rb") as f:
        manifest = tomllib.load(f)
    routes = {t["route"] for t in manifest.get("trigger", {}).get("http", [])}
    return set(manifest.get("variables", {})), routes


def wiring_errors(app, docs, variables, routes):
    """What kustomize and the schema cannot see: does the SpinApp fit this app and its refs?"""
    errors = []
    by_name = {(d.get("kind"), d["metadata"]["name"]): d for d in docs}

    def has_key(kind, name, key):
        doc = by_name.get((kind, name))
        if doc is None:
            return f"{kind} {name} is not in the rendering"
        keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        return None if key in keys else f"{kind} {name} has no key {key!r}"

    spec = app.get("spec") or {}
    seen = set()
    for var in spec.get("variables") or []:
        name = var.get("name")
        if name in seen:
            errors.append(f"variable {name!r} is bound twice")
        seen.add(name)
        if name not in variables:
            errors.append(
                f"variable {name!r} is not a spin.toml variable: the pod would get "
                f"SPIN_VARIABLE_{str(name).upper()}, which nothing reads"
            )
        source = var.get("valueFrom") or {}
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = source.get(field)
            if ref and not ref.get("optional"):
                problem = has_key(kind, ref.get("name"), ref.get("key"))
                if problem:
                    errors.append(f"variable {name!r}: {problem}")
    secret = (spec.get("runtimeConfig") or {}).get("loadFromSecret")
    if secret:
        problem = has_key("Secret", secret, "runtime-config.toml")
        if problem:
            errors.append(f"runtimeConfig.loadFromSecret: {problem}")
    for probe, check in (spec.get("checks") or {}).items():
        path = ((check or {}).get("httpGet") or {}).get("path")
        if path not in routes:
            errors.append(f"checks.{probe}: {path!r} is not a route of spin.toml")
    return errors


def check_custom_resource(doc, schema_file):
    """check-jsonschema on one document; its error text, or None."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    try:
        tool = os.path.join(os.path.dirname(sys.executable), "check-jsonschema")
        run = subprocess.run(
            [tool, "--schemafile", schema_file, f.name], capture_output=True, text=True
        )
    finally:
        os.unlink(f.name)
    if run.returncode == 0:
        return None
    return (run.stdout + run.stderr).replace(f.name, "document").strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rendered")
    parser.add_argument("--overlay", required=True)
    parser.add_argument("--spin-toml", required=True)
    parser.add_argument(
        "--crd", action="append", default=[], help="a spin-operator CRD (core.spinkube.dev_*.yaml)"
    )
    parser.add_argument(
        "--crd-required", action="store_true", help="a custom resource without its CRD fails"
    )
    parser.add_argument("--k8s-version", action="append", required=True)
    args = parser.parse_args()

    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    variables, routes = spin_manifest(args.spin_toml)
    # kind -> (schema file, what the PASS line names)
    crds = {}
    for path in args.crd:
        kind, schema = crd_schema(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        handle, schema_file = tempfile.mkstemp(suffix=".schema.json")
        with os.fdopen(handle, "w") as f:
            json.dump(schema, f)
        crds[kind] = (schema_file, f"CRD {os.path.basename(path)} (sha256 {digest}…) v1alpha1")

    failed = False

    def report(status, doc, what, detail=None):
        nonlocal failed
        failed |= status == "FAIL"
        kind = doc.get("kind", "?")
        name = (doc.get("metadata") or {}).get("name", "?")
        print(f"{status:4}  {args.overlay:10}  {kind}/{name}: {what}")
        for line in (detail or "").splitlines():
            print(f"        {line}")

    for doc in docs:
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            report("FAIL", {}, "not a Kubernetes object", repr(doc)[:200])
        elif doc["apiVersion"].split("/")[0] == SPINAPP_API.split("/")[0]:
            problems, checked = [], []
            if doc["kind"] == "SpinApp":
                problems = wiring_errors(doc, docs, variables, routes)
                n = len((doc.get("spec") or {}).get("variables") or [])
                checked.append(f"{n} variables against spin.toml, their ConfigMap/Secret keys, probe routes")
            if doc["kind"] in crds:
                schema_file, crd_note = crds[doc["kind"]]
                error = check_custom_resource(doc, schema_file)
                if error:
                    problems.insert(0, error)
                checked.insert(0, f"{crd_note} (check-jsonschema), unknown fields forbidden")
                report("FAIL" if problems else "PASS", doc, "; ".join(checked), "\n".join(problems))
            else:
                missing = f"no CRD for {doc['kind']} given, so its schema was not checked"
                if args.crd_required:
                    report("FAIL", doc, missing, "\n".join(problems))
                elif problems:
                    report("FAIL", doc, "; ".join(checked), "\n".join(problems))
                else:
                    report("SKIP", doc, f"{missing}; passed: {'; '.join(checked) or 'nothing'}")
        else:
            errors, passed = [], []
            for version in args.k8s_version:
                try:
                    passed.append(kv.validate(doc, version, strict=True))
                except kv.ValidationError as e:
                    path = ".".join(str(p) for p in e.path) or "(top level)"
                    errors.append(f"Kubernetes {e.version}: {path}: {e.message}")
                except (kv.SchemaNotFoundError, kv.VersionNotSupportedError) as e:
                    errors.append(e.message if hasattr(e, "message") else str(e))
            versions = ", ".join(args.k8s_version)
            what = f"Kubernetes {versions} schema (kubernetes-validate), unknown fields forbidden"
            report("FAIL" if errors else "PASS", doc, what, "\n".join(errors))
    for schema_file, _ in crds.values():
        os.unlink(schema_file)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
