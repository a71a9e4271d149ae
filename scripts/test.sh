#!/usr/bin/env bash
# Runs every test: domain core, store, host, then the end-to-end suites (which start the app on
# free loopback ports) and the opsml-client conformance suite (Python, installs its own venv),
# on each runtime — opsml-host, and the real Spin CLI when scripts/find-spin finds one — and on
# each backend: the embedded ones (SQLite + key-value), then the production ones (PostgreSQL +
# S3, MySQL + S3), which scripts/services.sh starts on loopback for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
# Every folder under components/ is a component package.
components=()
for dir in components/*/; do components+=(-p "$(basename "$dir")"); done
cargo build --target wasm32-wasip2 --release "${components[@]}"
# The default members, as `cargo test` selects them: one feature unification, one wasmtime build.
cargo build

runtimes=(opsml-host)
if spin="$(scripts/find-spin)"; then
  export OPSML_TEST_SPIN="$spin"
  runtimes+=(spin)
  echo "test.sh: real Spin: $("$spin" --version) ($spin)" >&2
else
  spin_missing="test.sh: NOT RUN on real Spin: scripts/find-spin found no Spin CLI (above); the suites run on opsml-host only"
  echo "$spin_missing" >&2
fi

# The end-to-end and client suites on one runtime (the backend comes from the environment).
suites() {
  OPSML_TEST_RUNTIME="$1" cargo test -p e2e
  OPSML_TEST_RUNTIME="$1" tests/python/run.sh
}

# Unit tests, then the end-to-end suites on opsml-host (all of `cargo test`), on the embedded
# backends.
cargo test
OPSML_TEST_RUNTIME=opsml-host tests/python/run.sh
for runtime in "${runtimes[@]:1}"; do suites "$runtime"; done

# The same suites on PostgreSQL + S3 and MySQL + S3 (the unit tests have no backend).
. scripts/services.sh
trap opsml_services_stop EXIT
opsml_services_start
for backend in postgres-s3 mysql-s3; do
  export OPSML_TEST_BACKEND="$backend"
  for runtime in "${runtimes[@]}"; do suites "$runtime"; done
done

echo "test.sh: passed on ${runtimes[*]}, on embedded, postgres-s3 and mysql-s3" >&2
if [ -n "${spin_missing:-}" ]; then echo "$spin_missing" >&2; fi
