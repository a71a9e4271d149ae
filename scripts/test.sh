#!/usr/bin/env bash
# Runs every test: domain core, store, host and the end-to-end suites (which build the
# components and start opsml-host on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
cargo build --target wasm32-wasip2 --release -p create-card -p get-card -p upload -p download
cargo build -p opsml-host
cargo test --workspace --exclude create-card --exclude get-card --exclude upload --exclude download
