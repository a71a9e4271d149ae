#!/usr/bin/env bash
# The Python conformance suite: the real opsml 2.2.4 client against our host, and the same raw
# requests side by side with the opsml 2.2.4 reference server. See tests/python/README.md.
#
# Needs the Rust workspace built first (./scripts/test.sh builds target/debug/opsml-host and the
# components under target/wasm32-wasip2/release/) and Python 3.11.
#
#   tests/python/run.sh                 # the whole suite
#   tests/python/run.sh -k compare -x   # extra arguments go to pytest
#
# The venv lives in ${OPSML_PY_VENV:-$HOME/.cache/opsml-on-spin/venv}; it is (re)installed only
# when it is missing or requirements.txt / constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

here=tests/python
venv="${OPSML_PY_VENV:-$HOME/.cache/opsml-on-spin/venv}"
. scripts/venv.sh
opsml_venv "$venv" "$here"

# OPSML_TEST_RUNTIME=spin serves the same components with real Spin instead of opsml-host.
needed=(target/wasm32-wasip2/release/get_card.wasm)
if [ "${OPSML_TEST_RUNTIME:-opsml-host}" = opsml-host ]; then needed+=(target/debug/opsml-host); fi
for built in "${needed[@]}"; do
  if [ ! -e "$built" ]; then
    echo "run.sh: $built is missing: build the workspace first (./scripts/test.sh)" >&2
    exit 2
  fi
done

# The web UI's browser tests drive Debian's headless Chromium through its ChromeDriver.
. scripts/services.sh
opsml_ensure_package chromium command -v chromium
opsml_ensure_package chromium-driver command -v chromedriver

export PYTHONDONTWRITEBYTECODE=1
status=0
"$venv/bin/python" -m pytest "$here" -q "$@" || status=$?
exit "$status"
