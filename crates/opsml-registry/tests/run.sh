#!/usr/bin/env bash
# The opsml-registry CLI against what users run: the opsml 2.2.4 reference server with cards the
# real Python client registered (copy from it to our registry, then load every card back from
# ours with the same client), and opsml-cli 0.4.x's download-model beside ours.
#
#   crates/opsml-registry/tests/run.sh            # builds what it needs, then runs pytest
#   crates/opsml-registry/tests/run.sh -k copy    # extra arguments go to pytest
#
# Its venv (${OPSML_CLI_PY_VENV:-$HOME/.cache/opsml-on-spin/registry-cli-venv}) is not the one
# tests/python/run.sh makes: registering an ONNX model needs opsml's sklearn-onnx extra, which
# needs NumPy 1.x (see tests/python/requirements.txt here). It is (re)installed only when missing
# or when requirements.txt / constraints.txt change.
set -euo pipefail
cd "$(dirname "$0")/../../.."

here=crates/opsml-registry/tests/python
venv="${OPSML_CLI_PY_VENV:-$HOME/.cache/opsml-on-spin/registry-cli-venv}"
. scripts/venv.sh
opsml_venv "$venv" "$here"

# opsml-cli 0.7.1, the newest on PyPI, in a venv of its own (opsml 2.2.4 pins opsml-cli < 0.5):
# it downloads through files/presigned.
cli07="${OPSML_CLI_071_VENV:-$HOME/.cache/opsml-on-spin/opsml-cli-0.7.1-venv}"
if [ ! -x "$cli07/bin/opsml-cli" ]; then
  echo "run.sh: installing opsml-cli 0.7.1 in $cli07" >&2
  rm -rf "$cli07"
  "$opsml_python" -m venv "$cli07"
  "$cli07/bin/python" -m pip install --quiet --disable-pip-version-check "opsml-cli==0.7.1"
fi
export OPSML_CLI_071="$cli07/bin/opsml-cli"

# The CLI, the host and the components, built as the Rust end-to-end harness builds them (the
# default members together, so wasmtime is compiled once). E2E_SKIP_BUILD=1 skips this.
if [ "${E2E_SKIP_BUILD:-0}" = 0 ]; then scripts/build.sh --quiet; fi

export PYTHONDONTWRITEBYTECODE=1
status=0
"$venv/bin/python" -m pytest "$here" -q -p no:cacheprovider "$@" || status=$?
exit "$status"
