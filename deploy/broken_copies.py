"""Breaks copies of the overlays, one mistake each, and checks that validation catches it.

Run by scripts/validate-deploy.sh (argument: that script's path). Each case copies
deploy/kustomize into a temporary folder, makes one edit (the text it replaces must be there,
so a change to the manifests cannot silently turn a case into a no-op), validates the broken
overlay with the same script, and passes only if the validation fails and its FAIL lines name
what was broken. Prints one line per case; exits 1 if any case was not caught.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

DEPLOY = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Case:
    name: str
    overlay: str
    file: str  # relative to deploy/kustomize
    old: str
    new: str
    expected: str  # must appear in the FAIL lines of the validation

    @property
    def needs_crd(self):
        """Caught by the CRD's schema (an unexpected field, a wrong type), not by our checks."""
        return "was unexpected" in self.expected or self.expected.startswith("$.")


PRODUCTION_PATCH = "overlays/production/kustomization.yaml"
EXECUTOR = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata:
  name: containerd-shim-spin
spec:
  createDeployment: true
  deploymentConfig:
    runtimeClasName: wasmtime-spin-v2
"""

CASES = [
    Case(
        "a misspelt probe field",
        "dev",
        "base/spinapp.yaml",
        "        path: /opsml/readyz",
        "        pth: /opsml/readyz",
        "'pth' was unexpected",
    ),
    Case(
        "replica for replicas",
        "dev",
        "base/spinapp.yaml",
        "  replicas: 1\n",
        "  replica: 1\n",
        "'replica' was unexpected",
    ),
    Case(
        "replicas as a string",
        "production",
        PRODUCTION_PATCH,
        "path: /spec/replicas, value: 3}",
        'path: /spec/replicas, value: "3"}',
        "$.spec.replicas: '3' is not of type 'integer'",
    ),
    Case(
        "a memory quantity with a space",
        "production",
        PRODUCTION_PATCH,
        "limits: {memory: 2Gi}",
        "limits: {memory: 512 MB}",
        "$.spec.resources.limits.memory",
    ),
    Case(
        "an unknown spec field",
        "staging",
        "base/spinapp.yaml",
        "  executor: containerd-shim-spin\n",
        "  executor: containerd-shim-spin\n  replicaCount: 2\n",
        "'replicaCount' was unexpected",
    ),
    Case(
        "a drifted runtime-config copy",
        "staging",
        "overlays/staging/runtime-config.toml",
        '[[variables_provider]]\ntype = "env"\nprefix = "OPSML"',
        '[[variables_provider]]\ntype = "env"\nprefix = "OPSML_"',
        "runtime-config.toml: differs from runtime-config/staging.toml",
    ),
    Case(
        "an environment variable name for a Spin variable",
        "production",
        PRODUCTION_PATCH,
        "value: {name: prod_token, valueFrom",
        "value: {name: opsml_prod_token, valueFrom",
        "variable 'opsml_prod_token' is not a spin.toml variable",
    ),
    Case(
        "a Secret key the SpinApp names but the Secret lacks",
        "production",
        PRODUCTION_PATCH,
        "      - prod_token=\n",
        "",
        "has no key 'prod_token'",
    ),
    Case(
        "a probe on a route the app does not have",
        "dev",
        "base/spinapp.yaml",
        "        path: /opsml/readyz",
        "        path: /opsml/ready",
        "checks.readiness: '/opsml/ready' is not a route of spin.toml",
    ),
    Case(
        "a SpinAppExecutor with a misspelt field",
        "dev",
        "overlays/dev/kustomization.yaml",
        "resources:\n  - ../../base\n",
        "resources:\n  - ../../base\n  - executor.yaml\n",
        "'runtimeClasName' was unexpected",
    ),
]


def run_case(script, case, work):
    tree = os.path.join(work, "kustomize")
    shutil.copytree(os.path.join(DEPLOY, "kustomize"), tree)
    path = os.path.join(tree, case.file)
    with open(path) as f:
        text = f.read()
    if text.count(case.old) != 1:
        return f"the text to break is not in {case.file} exactly once: {case.old!r}"
    with open(path, "w") as f:
        f.write(text.replace(case.old, case.new))
    if case.name.startswith("a SpinAppExecutor"):
        with open(os.path.join(tree, "overlays", case.overlay, "executor.yaml"), "w") as f:
            f.write(EXECUTOR)
    run = subprocess.run(
        [script, os.path.join(tree, "overlays", case.overlay)], capture_output=True, text=True
    )
    output = run.stdout + run.stderr
    if run.returncode == 0:
        return "validation passed:\n" + output
    # The FAIL line and the detail lines indented under it.
    failing, keep = [], False
    for line in output.splitlines():
        if line.startswith("FAIL"):
            keep = True
        elif not line.startswith(" "):
            keep = False
        if keep:
            failing.append(line)
    if case.expected not in "\n".join(failing):
        return f"validation failed without naming {case.expected!r}:\n" + output
    return None


def main():
    script = os.path.abspath(sys.argv[1])
    have_crd = "--no-crd" not in sys.argv[2:]
    missed = 0
    for case in CASES:
        if case.needs_crd and not have_crd:
            print(f"SKIP  broken copy ({case.overlay}): {case.name}: needs the CRD, which is missing")
            continue
        with tempfile.TemporaryDirectory() as work:
            problem = run_case(script, case, work)
        if problem:
            missed += 1
            print(f"FAIL  broken copy ({case.overlay}): {case.name}: {problem}")
        else:
            print(f"PASS  broken copy ({case.overlay}): {case.name}: refused, naming {case.expected!r}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
