#!/usr/bin/env bash
# Python venvs for the test suites. Source it (`. scripts/venv.sh`), then:
#   opsml_python            sets $opsml_python to $PYTHON, else python3.11, else python3
#   opsml_venv VENV DIR     (re)installs VENV from DIR/requirements.txt with DIR/constraints.txt,
#                           only when VENV is missing or those two files changed since
# Both exit 2 with the reason when they cannot.

opsml_python() {
  opsml_python="${PYTHON:-}"
  if [ -z "$opsml_python" ]; then
    for candidate in python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1; then opsml_python="$candidate"; break; fi
    done
  fi
  if [ -z "$opsml_python" ]; then
    echo "venv: no python3.11 (or python3) found; set PYTHON=/path/to/python3.11" >&2
    exit 2
  fi
}

opsml_venv() {
  local venv="$1" dir="$2"
  local stamp="$venv/.opsml-on-spin-requirements" want started
  opsml_python
  want="$(cat "$dir/requirements.txt" "$dir/constraints.txt" | sha256sum | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    return 0
  fi
  echo "venv: installing $dir's requirements in $venv" >&2
  started=$(date +%s)
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$opsml_python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$dir/requirements.txt" -c "$dir/constraints.txt" || {
    echo "venv: pip could not install $dir/requirements.txt in $venv" >&2
    exit 2
  }
  echo "$want" > "$stamp"
  echo "venv: $venv installed in $(( $(date +%s) - started )) s" >&2
}
