#!/usr/bin/env bash
# Download speed of `opsml-registry pull` / `download-model` against opsml-cli 0.4.x's
# download-model, the opsml 2.2.4 Python client's download (storage_client.get, what
# ModelCard.download_model calls) and curl, on the same registry and the same files:
#   - a 1 GiB model file (BENCH_BIG_MIB to change the size);
#   - a model made of many small files (BENCH_SMALL_FILES of BENCH_SMALL_KIB KiB each).
# Our registry runs on opsml-host, on loopback, sharing the machine's cores with the clients,
# with the embedded backend (SQLite + key-value chunks), or with BENCH_BACKEND=postgres-s3 on
# PostgreSQL + s3s-fs started by scripts/services.sh (runtime-config/staging.toml), as in the tests. Prints seconds (best of BENCH_RUNS),
# MiB/s and peak RSS. No assertions: it fails only when a download fails or differs.
#
#   crates/opsml-registry/bench.sh
#
# Uses the venv of crates/opsml-registry/tests/run.sh (opsml 2.2.4 and opsml-cli 0.4.x),
# installing it when missing, and builds the workspace's default members first
# (E2E_SKIP_BUILD=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${OPSML_CLI_PY_VENV:-$HOME/.cache/opsml-on-spin/registry-cli-venv}"
. scripts/venv.sh
opsml_venv "$venv" crates/opsml-registry/tests/python
big_mib="${BENCH_BIG_MIB:-1024}"
small_files="${BENCH_SMALL_FILES:-500}"
small_kib="${BENCH_SMALL_KIB:-16}"
runs="${BENCH_RUNS:-3}"
backend="${BENCH_BACKEND:-embedded}"
case "$backend" in
  embedded|postgres-s3) ;;
  *) echo "bench.sh: BENCH_BACKEND=$backend: expected embedded or postgres-s3" >&2; exit 2 ;;
esac

if [ "${E2E_SKIP_BUILD:-0}" = 0 ]; then scripts/build.sh --quiet; fi
cli="$PWD/target/debug/opsml-registry"

work="$(mktemp -d /tmp/opsml-registry-bench.XXXXXX)"
host_pid=""
services=""
cleanup() {
  if [ -n "$host_pid" ]; then kill "$host_pid" 2>/dev/null || true; wait "$host_pid" 2>/dev/null || true; fi
  if [ -n "$services" ]; then opsml_services_stop; fi
  rm -rf "$work"
}
trap cleanup EXIT

runtime_config=runtime-config/dev.toml
backend_env=()
if [ "$backend" = postgres-s3 ]; then
  . scripts/services.sh
  services=1
  opsml_services_start s3 postgres
  runtime_config=runtime-config/staging.toml
  backend_env=(APP_ENV=staging "OPSML_DATABASE_URL=$OPSML_TEST_POSTGRES_URL/postgres"
    "OPSML_STORAGE_URI=s3://$OPSML_TEST_S3_BUCKET/cli-bench" "OPSML_S3_ENDPOINT=$OPSML_TEST_S3_ENDPOINT"
    "OPSML_S3_ACCESS_KEY_ID=$OPSML_TEST_S3_ACCESS_KEY_ID" "OPSML_S3_SECRET_ACCESS_KEY=$OPSML_TEST_S3_SECRET_ACCESS_KEY")
fi

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$work/state"
env -u OPSML_TRACKING_URI "${backend_env[@]}" target/debug/opsml-host up -f spin.toml --listen "127.0.0.1:$port" \
  --state-dir "$work/state" --runtime-config-file "$runtime_config" > "$work/host.log" 2>&1 &
host_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  curl -sf "$url/opsml/healthcheck" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$url/opsml/healthcheck" >/dev/null || { echo "bench.sh: the host did not start" >&2; tail -20 "$work/host.log" >&2; exit 1; }

echo "seeding: a ${big_mib} MiB model and a model of ${small_files} files of ${small_kib} KiB ..." >&2
head -c "$((big_mib << 20))" /dev/urandom > "$work/big.bin"
"$venv/bin/python" - "$url" "$work/big.bin" "$small_files" "$small_kib" <<'EOF'
import json, os, sys
import httpx

url, big, count, kib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = httpx.Client(base_url=f"{url}/opsml", timeout=600)

def upload(path, stream, name):
    r = client.post("/files/upload", headers={"write_path": path}, files={"file": (name, stream)})
    r.raise_for_status()

def model(name, model_uri):
    root = f"opsml-root:/OPSML_MODEL_REGISTRY/bench/{name}/v1.0.0"
    meta = {"model_name": name, "model_class": "SklearnEstimator", "model_type": "LinearRegression",
            "model_interface": "SklearnModel", "onnx_uri": None, "onnx_version": None,
            "model_uri": f"{root}/{model_uri}", "model_version": "1.0.0", "model_repository": "bench",
            "sample_data_uri": f"{root}/sample.joblib", "opsml_version": "2.2.4",
            "data_schema": {"data_type": None, "input_features": None, "output_features": None,
                            "onnx_input_features": None, "onnx_output_features": None,
                            "onnx_data_type": None, "onnx_version": None}}
    upload(f"{root}/model-metadata.json", json.dumps(meta).encode(), "model-metadata.json")
    card = {"name": name, "repository": "bench", "version": "1.0.0", "contact": "bench", "model_type": "LinearRegression"}
    client.post("/cards/create", json={"registry_type": "model", "card": card}).raise_for_status()
    return root

root = model("big", "trained-model.bin")
with open(big, "rb") as f:
    upload(f"{root}/trained-model.bin", f, "trained-model.bin")
root = model("small", "model")
for i in range(count):
    upload(f"{root}/model/shard-{i:05}.bin", os.urandom(kib << 10), f"shard-{i:05}.bin")
EOF

big_path="opsml-root:/OPSML_MODEL_REGISTRY/bench/big/v1.0.0/trained-model.bin"
small_root="opsml-root:/OPSML_MODEL_REGISTRY/bench/small/v1.0.0/model"
# A curl config naming every small file's URL and output name: one curl process fetches them all.
curl -s -G "$url/opsml/files/list" --data-urlencode "path=$small_root" \
  | "$venv/bin/python" -c '
import json, sys, urllib.parse
base = sys.argv[1]
for path in json.load(sys.stdin)["files"]:
    name = path.rsplit("/", 1)[1]
    print("url = \"%s/opsml/files/download?path=%s\"" % (base, urllib.parse.quote(path, safe="")))
    print("output = \"%s\"" % name)
' "$url" > "$work/small.curl"

# One timed run: "<seconds> <peak RSS KiB>" of a command, in a fresh output folder.
measure() {
  local out="$1"; shift
  rm -rf "$out"; mkdir -p "$out"
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.log" 2>&1 || {
    echo "bench.sh: failed: $*" >&2; tail -20 "$work/out.log" >&2; exit 1; }
  cat "$work/time"
}

export OPSML_TRACKING_URI="$url"
py_get='import sys; from pathlib import Path; from opsml.storage.client import storage_client; storage_client.get(Path(sys.argv[1]), Path(sys.argv[2]))'
declare -A best rss
run_case() {
  local label="$1" out="$2"; shift 2
  local i line secs mem
  for i in $(seq 1 "$runs"); do
    line="$(measure "$out" "$@")"
    secs="${line% *}"; mem="${line#* }"
    if [ -z "${best[$label]:-}" ] || awk "BEGIN{exit !($secs < ${best[$label]})}"; then best[$label]="$secs"; fi
    rss[$label]="$mem"
  done
}

o="$work/out"
run_case "big: opsml-registry pull" "$o" "$cli" pull --name big --repository bench --write-dir "$o" -q
run_case "big: opsml-registry pull --jobs 1" "$o" "$cli" pull --name big --repository bench --write-dir "$o" -q --jobs 1
run_case "big: opsml-registry download-model" "$o" "$cli" download-model --name big --repository bench --version 1.0.0 --write-dir "$o" -q
run_case "big: opsml-cli 0.4 download-model" "$o" "$venv/bin/opsml-cli" download-model --name big --repository bench --version 1.0.0 --write-dir "$o"
run_case "big: python client storage_client.get" "$o" "$venv/bin/python" -c "$py_get" "$big_path" "$o/trained-model.bin"
run_case "big: curl" "$o" curl -sf -o "$o/trained-model.bin" -G "$url/opsml/files/download" --data-urlencode "path=$big_path"
cmp -s "$work/big.bin" "$o/trained-model.bin" || { echo "bench.sh: curl's copy differs" >&2; exit 1; }
# Idempotence: a second pull into a full folder (verifies by hashing, downloads nothing).
rm -rf "$o"; "$cli" pull --name big --repository bench --write-dir "$o" -q
/usr/bin/time -f "%e %M" -o "$work/time" "$cli" pull --name big --repository bench --write-dir "$o" -q
again="$(cat "$work/time")"

run_case "small: opsml-registry pull" "$o" "$cli" pull --name small --repository bench --write-dir "$o" -q
run_case "small: opsml-registry download-model" "$o" "$cli" download-model --name small --repository bench --version 1.0.0 --write-dir "$o" -q
run_case "small: opsml-cli 0.4 download-model" "$o" "$venv/bin/opsml-cli" download-model --name small --repository bench --version 1.0.0 --write-dir "$o"
run_case "small: python client storage_client.get" "$o" "$venv/bin/python" -c "$py_get" "$small_root" "$o/model"
run_case "small: curl (one process, every URL)" "$o" bash -c "cd '$o' && curl -sf -K '$work/small.curl'"

small_mib="$(awk "BEGIN{print $small_files * $small_kib / 1024}")"
printf '\n%-44s %9s %10s %12s\n' "case (best of $runs)" "seconds" "MiB/s" "peak RSS"
for label in "big: opsml-registry pull" "big: opsml-registry pull --jobs 1" "big: opsml-registry download-model" \
  "big: opsml-cli 0.4 download-model" "big: python client storage_client.get" "big: curl" \
  "small: opsml-registry pull" "small: opsml-registry download-model" "small: opsml-cli 0.4 download-model" \
  "small: python client storage_client.get" "small: curl (one process, every URL)"; do
  size="$big_mib"; case "$label" in small*) size="$small_mib";; esac
  printf '%-44s %9s %10.0f %9s KiB\n' "$label" "${best[$label]}" "$(awk "BEGIN{print $size / ${best[$label]}}")" "${rss[$label]}"
done
printf '%-44s %9s %10s %9s KiB\n' "big: second pull (verify only, no bytes)" "${again% *}" "-" "${again#* }"
echo "(${big_mib} MiB file; ${small_files} files of ${small_kib} KiB; opsml-host, $backend backend, loopback, $(nproc) cores)"
