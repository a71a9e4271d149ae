#!/usr/bin/env bash
# Builds what the suites and benchmarks run: every component under components/ (wasm32-wasip2,
# release) and the workspace's default members together, as `cargo test` selects them (one
# feature unification, so wasmtime is compiled once). Extra arguments (e.g. --quiet) go to both
# cargo builds.
set -euo pipefail
cd "$(dirname "$0")/.."
components=()
for dir in components/*/; do
  [ -f "$dir/Cargo.toml" ] && components+=(-p "$(basename "$dir")")
done
cargo build "$@" --target wasm32-wasip2 --release "${components[@]}"
cargo build "$@"
