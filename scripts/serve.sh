#!/usr/bin/env bash
# Builds the components and serves the registry on http://127.0.0.1:3000 with the embedded
# defaults (SQLite metadata and key-value blobs under .spin/). Extra arguments go to
# `opsml-host up` (e.g. --listen 0.0.0.0:3000).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
cargo build
exec target/debug/opsml-host up --build --runtime-config-file runtime-config/dev.toml "$@"
