#!/usr/bin/env bash
# Runs every test: domain core, store, host and the end-to-end suites (which build the
# components and start opsml-host on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
# Every folder under components/ is a component package.
components=()
for dir in components/*/; do components+=(-p "$(basename "$dir")"); done
cargo build --target wasm32-wasip2 --release "${components[@]}"
cargo build -p opsml-host
cargo test
