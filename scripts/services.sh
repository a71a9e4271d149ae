#!/usr/bin/env bash
# Starts the production backends on loopback for the `postgres-s3` test leg, and exports what
# the suites read (tests/src/backend.rs):
#   - PostgreSQL (the machine's initdb/pg_ctl, found by opsml_postgres_bin; installed with
#     apt-get when missing and run as root), a throwaway cluster with password auth;
#   - s3s-fs, an S3-compatible server from crates.io that speaks SigV4 and multipart uploads
#     and stores objects as plain files (installed once into the tools cache).
# Source it (`. scripts/services.sh`); `opsml_services_stop` stops both. Needs to run as root
# or as a user allowed to run PostgreSQL (initdb refuses root: as root, the server runs as the
# `postgres` user).

opsml_tools="${OPSML_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opsml-on-spin/tools}"

opsml_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The directory of PostgreSQL's initdb and pg_ctl: on the PATH, else Debian's newest
# /usr/lib/postgresql/<version>/bin.
opsml_postgres_bin() {
  local initdb
  initdb="$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$initdb" ] && [ -x "$initdb" ] || return 1
  dirname "$(readlink -f "$initdb")"
}

opsml_services_start() {
  local s3s="$opsml_tools/bin/s3s-fs"
  if [ ! -x "$s3s" ]; then
    echo "services: installing s3s-fs 0.14.1 into $opsml_tools (once)" >&2
    # 0.14.1 is the newest release that builds with Rust 1.95.
    cargo install s3s-fs@0.14.1 --locked --features binary --root "$opsml_tools" >&2
  fi
  opsml_services_dir="$(mktemp -d /tmp/opsml-services.XXXXXX)"
  chmod 755 "$opsml_services_dir"
  local pg_bin
  if ! pg_bin="$(opsml_postgres_bin)" && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "services: installing PostgreSQL's server programs (apt-get install postgresql)" >&2
    apt-get update >&2 && apt-get install -y postgresql >&2
    pg_bin="$(opsml_postgres_bin)" || true
  fi
  [ -n "$pg_bin" ] || {
    echo "services: PostgreSQL's server programs (initdb, pg_ctl) are not installed;" \
      "on Debian or Ubuntu: apt-get install postgresql" >&2
    return 1
  }
  local run_as=()
  if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); fi

  local pg_port s3_port password=opsml-test-password
  pg_port="$(opsml_free_port)"
  s3_port="$(opsml_free_port)"
  mkdir -p "$opsml_services_dir/pg" "$opsml_services_dir/s3/opsml-test"
  echo "$password" > "$opsml_services_dir/pg/password"
  if [ "${#run_as[@]}" -gt 0 ]; then chown -R postgres "$opsml_services_dir/pg"; fi
  "${run_as[@]}" "$pg_bin/initdb" -D "$opsml_services_dir/pg/data" -U opsml \
    --pwfile="$opsml_services_dir/pg/password" --auth=scram-sha-256 -E UTF8 >"$opsml_services_dir/pg/initdb.log" 2>&1 \
    || { cat "$opsml_services_dir/pg/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$opsml_services_dir/pg/data" -l "$opsml_services_dir/pg/server.log" \
    -o "-p $pg_port -k $opsml_services_dir/pg -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
    -w start >/dev/null || { cat "$opsml_services_dir/pg/server.log" >&2; return 1; }

  "$s3s" --host 127.0.0.1 --port "$s3_port" --access-key opsml-test-key --secret-key opsml-test-secret \
    "$opsml_services_dir/s3" >"$opsml_services_dir/s3.log" 2>&1 &
  echo $! > "$opsml_services_dir/s3.pid"
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break
    sleep 0.1
  done

  export OPSML_TEST_POSTGRES_URL="postgres://opsml:$password@127.0.0.1:$pg_port"
  export OPSML_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
  export OPSML_TEST_S3_BUCKET=opsml-test
  export OPSML_TEST_S3_ACCESS_KEY_ID=opsml-test-key
  export OPSML_TEST_S3_SECRET_ACCESS_KEY=opsml-test-secret
  export OPSML_TEST_S3_ROOT="$opsml_services_dir/s3"
  OPSML_SERVICES_PG=("${run_as[@]}" "$pg_bin/pg_ctl" -D "$opsml_services_dir/pg/data")
  echo "services: PostgreSQL on 127.0.0.1:$pg_port, s3s-fs on 127.0.0.1:$s3_port ($opsml_services_dir)" >&2
}

opsml_services_stop() {
  if [ -n "${OPSML_SERVICES_PG+x}" ]; then "${OPSML_SERVICES_PG[@]}" -m immediate stop >/dev/null 2>&1 || true; fi
  [ -n "${opsml_services_dir:-}" ] || return 0
  if [ -f "$opsml_services_dir/s3.pid" ]; then kill "$(cat "$opsml_services_dir/s3.pid")" 2>/dev/null || true; fi
  rm -rf "$opsml_services_dir"
}
