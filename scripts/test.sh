#!/usr/bin/env bash
# Runs every test: domain core, store, host, the end-to-end suites (which start opsml-host on
# free loopback ports) and the opsml-client conformance suite (Python, installs its own venv),
# first on the embedded backends (SQLite + key-value), then again on the production ones
# (PostgreSQL + S3), which scripts/services.sh starts on loopback for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
# Every folder under components/ is a component package.
components=()
for dir in components/*/; do components+=(-p "$(basename "$dir")"); done
cargo build --target wasm32-wasip2 --release "${components[@]}"
# The default members, as `cargo test` selects them: one feature unification, one wasmtime build.
cargo build
cargo test
# The real opsml 2.2.4 client against our host, and side by side with the reference server.
tests/python/run.sh

# The same end-to-end and client suites on PostgreSQL + S3 (the unit tests have no backend).
. scripts/services.sh
trap opsml_services_stop EXIT
opsml_services_start
export OPSML_TEST_BACKEND=postgres-s3
cargo test -p e2e
tests/python/run.sh
