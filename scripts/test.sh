#!/usr/bin/env bash
# Runs every test: domain core, store, host, the end-to-end suites (which start opsml-host on
# free loopback ports) and the opsml-client conformance suite (Python, installs its own venv).
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
