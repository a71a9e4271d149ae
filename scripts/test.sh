#!/usr/bin/env bash
# Runs every test: domain core, store, host, then the end-to-end suites (which start the app on
# free loopback ports) and the opsml-client conformance suite (Python, installs its own venv),
# on each runtime — opsml-host, and the real Spin CLI when scripts/find-spin finds one — and on
# each backend: the embedded ones (SQLite + key-value), then the production ones (PostgreSQL +
# S3, MySQL + S3), which scripts/services.sh starts on loopback for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
# The docs first (seconds): every relative link and #heading resolves, the README keeps its
# main sections.
scripts/check-docs.py
rustup target add wasm32-wasip2 >/dev/null
# The components and the default members (scripts/build.sh).
scripts/build.sh
# The SpinKube manifests, rendered with kubectl and validated (deploy/README.md).
scripts/validate-deploy.sh

# The runtimes every suite runs on: opsml-host, then each real Spin that production uses:
# 3.6.3 (SpinKube's shim) and 4.0.2 (`spin up`). OPSML_REQUIRE_SPIN=1 (CI) makes a missing
# Spin a failure; elsewhere the suites run without it and say so at the start and the end.
runtimes=(opsml-host)
declare -A spin_cli
spin_missing=()
for major in 3 4; do
  if cli="$(scripts/find-spin "$major")"; then
    runtimes+=("spin$major")
    spin_cli["spin$major"]="$cli"
    echo "test.sh: real Spin: $("$cli" --version) ($cli)" >&2
  else
    spin_missing+=("Spin $major.x")
  fi
done
if [ "${#spin_missing[@]}" -gt 0 ]; then
  spin_note="test.sh: NOT RUN on ${spin_missing[*]}: scripts/find-spin found no such CLI (above)"
  if [ "${OPSML_REQUIRE_SPIN:-0}" = 1 ]; then
    echo "$spin_note, and OPSML_REQUIRE_SPIN=1" >&2
    exit 1
  fi
  echo "$spin_note" >&2
fi

# The end-to-end and client suites on one runtime (the backend comes from the environment).
suites() {
  if [ "$1" = opsml-host ]; then
    export OPSML_TEST_RUNTIME=opsml-host
  else
    export OPSML_TEST_RUNTIME=spin OPSML_TEST_SPIN="${spin_cli[$1]}"
  fi
  cargo test -p e2e
  tests/python/run.sh
  # The command-line client against this runtime (Spin 4 runs the server suites only).
  if [ "$1" != spin4 ]; then
    cargo test -p opsml-registry
    E2E_SKIP_BUILD=1 crates/opsml-registry/tests/run.sh
  fi
  local name="opsml-host"
  if [ "$1" != opsml-host ]; then name="$("${spin_cli[$1]}" --version)"; fi
  echo "test.sh: suites passed on $name, backend ${OPSML_TEST_BACKEND:-embedded}" >&2
}

# Unit tests, then the end-to-end suites on opsml-host (all of `cargo test`), on the embedded
# backends.
cargo test
OPSML_TEST_RUNTIME=opsml-host tests/python/run.sh
OPSML_TEST_RUNTIME=opsml-host E2E_SKIP_BUILD=1 crates/opsml-registry/tests/run.sh
for runtime in "${runtimes[@]:1}"; do (suites "$runtime"); done

# The same suites on PostgreSQL + S3 and MySQL + S3 (the unit tests have no backend), and the S3
# ones over HTTPS. The legs run side by side: the suites mostly wait on servers and the network
# (every host gets its own database and bucket prefix). Each leg's output is printed as a whole
# when it ends.
. scripts/services.sh
trap opsml_services_stop EXIT
opsml_services_start s3 postgres mariadb s3_tls
# Only the HTTPS leg talks to the store through TLS.
s3_tls_endpoint="$OPSML_TEST_S3_TLS_ENDPOINT" s3_ca="$OPSML_TEST_S3_CA"
unset OPSML_TEST_S3_TLS_ENDPOINT OPSML_TEST_S3_CA
logs="$(mktemp -d /tmp/opsml-test-legs.XXXXXX)"
# postgres-s3-https: the S3 suites (files, hardening, backends, replicas) over HTTPS, the store's
# certificate from a private CA that the runtime-config's [[client_tls]] names.
legs=(postgres-s3 mysql-s3 postgres-s3-https)
pids=()
for leg in "${legs[@]}"; do
  (
    if [ "$leg" = postgres-s3-https ]; then
      export OPSML_TEST_BACKEND=postgres-s3 OPSML_TEST_S3_ENDPOINT="$s3_tls_endpoint" OPSML_TEST_S3_CA="$s3_ca"
      for runtime in "${runtimes[@]}"; do
        (
          if [ "$runtime" = opsml-host ]; then export OPSML_TEST_RUNTIME=opsml-host
          else export OPSML_TEST_RUNTIME=spin OPSML_TEST_SPIN="${spin_cli[$runtime]}"; fi
          cargo test -p e2e --test files --test hardening --test backends --test replicas
          echo "test.sh: the S3 suites passed over HTTPS on $runtime" >&2
        )
      done
    else
      export OPSML_TEST_BACKEND="$leg"
      for runtime in "${runtimes[@]}"; do (suites "$runtime"); done
    fi
  ) >"$logs/$leg.log" 2>&1 &
  pids+=($!)
done
failed=()
for i in "${!legs[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  echo "===== test.sh: the ${legs[$i]} leg ($([ "$status" = 0 ] && echo passed || echo "FAILED, exit $status")) =====" >&2
  cat "$logs/${legs[$i]}.log" >&2
  [ "$status" = 0 ] || failed+=("${legs[$i]}")
done
rm -rf "$logs"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: FAILED on ${failed[*]} (output above)" >&2
  exit 1
fi

echo "test.sh: passed on ${runtimes[*]}, on embedded, postgres-s3, mysql-s3 and postgres-s3 over HTTPS" >&2
if [ -n "${spin_note:-}" ]; then echo "$spin_note" >&2; fi
