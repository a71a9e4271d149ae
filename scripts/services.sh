#!/usr/bin/env bash
# Starts the production backends on loopback for the shared-backend test legs, and exports what
# the suites read (tests/src/backend.rs):
#   - PostgreSQL (the machine's initdb/pg_ctl, found by opsml_postgres_bin), a throwaway
#     cluster with password auth, for `postgres-s3`;
#   - MariaDB (the machine's mariadb-install-db/mariadbd), a throwaway server with a password
#     user, for `mysql-s3`;
#   - s3s-fs, an S3-compatible server from crates.io that speaks SigV4 and multipart uploads
#     and stores objects as plain files (installed once into the tools cache), for both.
# A database server missing from the machine is installed with apt-get when running as root.
# Source it (`. scripts/services.sh`); `opsml_services_start [s3|postgres|mariadb|s3_tls]…` starts
# them (the first three by default), `opsml_services_stop` stops them all. As root, the
# database servers run as their own users (initdb refuses root).

opsml_tools="${OPSML_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opsml-on-spin/tools}"
opsml_services_password=opsml-test-password

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

# Succeeds when `check` (a command) does, installing the Debian package first if needed and
# possible (root, apt-get).
opsml_ensure_package() {
  local package="$1"; shift
  "$@" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "services: installing $package (apt-get install $package)" >&2
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$package"; } >&2 || return 1
    "$@" >/dev/null 2>&1 && return 0
  fi
  echo "services: $package is not installed; on Debian or Ubuntu: apt-get install $package" >&2
  return 1
}

opsml_start_postgres() {
  opsml_ensure_package postgresql opsml_postgres_bin || return 1
  local pg_bin run_as=() port dir="$opsml_services_dir/pg"
  pg_bin="$(opsml_postgres_bin)"
  if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); fi
  port="$(opsml_free_port)"
  mkdir -p "$dir"
  echo "$opsml_services_password" > "$dir/password"
  if [ "${#run_as[@]}" -gt 0 ]; then chown -R postgres "$dir"; fi
  "${run_as[@]}" "$pg_bin/initdb" -D "$dir/data" -U opsml \
    --pwfile="$dir/password" --auth=scram-sha-256 -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
    -w start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  OPSML_SERVICES_PG=("${run_as[@]}" "$pg_bin/pg_ctl" -D "$dir/data")
  export OPSML_TEST_POSTGRES_URL="postgres://opsml:$opsml_services_password@127.0.0.1:$port"
  echo "services: PostgreSQL on 127.0.0.1:$port" >&2
}

# MariaDB's server programs (mariadbd lives in /usr/sbin, which a user's PATH may lack).
opsml_mariadb_found() {
  PATH="$PATH:/usr/sbin" command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null
}

opsml_start_mariadb() {
  opsml_ensure_package mariadb-server opsml_mariadb_found || return 1
  local as_user=() port dir="$opsml_services_dir/mysql"
  if [ "$(id -u)" = 0 ]; then as_user=(--user=mysql); fi
  port="$(opsml_free_port)"
  mkdir -p "$dir"
  if [ "${#as_user[@]}" -gt 0 ]; then chown -R mysql "$dir"; fi
  mariadb-install-db --no-defaults "${as_user[@]}" --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
    || { cat "$dir/install.log" >&2; return 1; }
  # Durability off (a throwaway server), names not resolved, enough connections for the
  # racing tests.
  PATH="$PATH:/usr/sbin" mariadbd --no-defaults "${as_user[@]}" --datadir="$dir/data" \
    --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
    --skip-name-resolve --max-connections=300 --innodb-flush-log-at-trx-commit=0 \
    --skip-log-bin --innodb-doublewrite=0 >"$dir/server.log" 2>&1 &
  echo $! > "$dir/server.pid"
  local ready=""
  for _ in $(seq 100); do
    if mariadb --no-defaults --socket="$dir/mysqld.sock" -u root -e 'SELECT 1' >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "services: MariaDB did not start:" >&2; cat "$dir/server.log" >&2; return 1; }
  mariadb --no-defaults --socket="$dir/mysqld.sock" -u root -e "
    CREATE USER 'opsml'@'%' IDENTIFIED BY '$opsml_services_password';
    GRANT ALL PRIVILEGES ON *.* TO 'opsml'@'%';" \
    || return 1
  export OPSML_TEST_MYSQL_URL="mysql://opsml:$opsml_services_password@127.0.0.1:$port"
  echo "services: MariaDB $(mariadb --version | grep -o '[0-9][0-9.]*-MariaDB' | head -n 1) on 127.0.0.1:$port" >&2
}

opsml_start_s3() {
  local s3s="$opsml_tools/bin/s3s-fs" port
  if [ ! -x "$s3s" ]; then
    echo "services: installing s3s-fs 0.14.1 into $opsml_tools (once)" >&2
    # 0.14.1 is the newest release that builds with Rust 1.95.
    cargo install s3s-fs@0.14.1 --locked --features binary --root "$opsml_tools" >&2 || return 1
  fi
  port="$(opsml_free_port)"
  mkdir -p "$opsml_services_dir/s3/opsml-test"
  "$s3s" --host 127.0.0.1 --port "$port" --access-key opsml-test-key --secret-key opsml-test-secret \
    "$opsml_services_dir/s3" >"$opsml_services_dir/s3.log" 2>&1 &
  echo $! > "$opsml_services_dir/s3.pid"
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
  done
  export OPSML_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  export OPSML_TEST_S3_BUCKET=opsml-test
  export OPSML_TEST_S3_ACCESS_KEY_ID=opsml-test-key
  export OPSML_TEST_S3_SECRET_ACCESS_KEY=opsml-test-secret
  export OPSML_TEST_S3_ROOT="$opsml_services_dir/s3"
  echo "services: s3s-fs on 127.0.0.1:$port" >&2
}

# The S3 server over HTTPS, as deployments reach theirs: haproxy (from apt) terminates TLS on a
# loopback port with a certificate for `localhost` from a throwaway CA made here, and passes the
# bytes on to s3s-fs (start s3 first). Exports OPSML_TEST_S3_TLS_ENDPOINT (https://localhost:PORT)
# and OPSML_TEST_S3_CA (the CA's PEM, for a runtime-config's [[client_tls]] ca_roots_file).
opsml_start_s3_tls() {
  [ -n "${OPSML_TEST_S3_ENDPOINT:-}" ] || { echo "services: start s3 before s3_tls" >&2; return 1; }
  opsml_ensure_package haproxy command -v haproxy || return 1
  local dir="$opsml_services_dir/tls" port plain
  mkdir -p "$dir"
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=opsml test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=localhost" &&
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > "$dir/server.ext" &&
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem"
  } >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
  cat "$dir/server.pem" "$dir/server.key" > "$dir/haproxy.pem"
  port="$(opsml_free_port)"
  plain="${OPSML_TEST_S3_ENDPOINT#http://}"
  cat > "$dir/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 5m
  timeout server 5m
frontend s3_tls
  bind 127.0.0.1:$port ssl crt $dir/haproxy.pem alpn http/1.1
  default_backend s3
backend s3
  server s3s_fs $plain
CFG
  haproxy -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid" >"$dir/haproxy.log" 2>&1 \
    || { cat "$dir/haproxy.log" >&2; return 1; }
  for _ in $(seq 50); do
    curl -s -o /dev/null --cacert "$dir/ca.pem" "https://localhost:$port/" && break
    sleep 0.1
  done
  export OPSML_TEST_S3_TLS_ENDPOINT="https://localhost:$port"
  export OPSML_TEST_S3_CA="$dir/ca.pem"
  echo "services: s3s-fs over HTTPS (haproxy) on localhost:$port, CA $dir/ca.pem" >&2
}

# Starts the named services (s3, postgres, mariadb; default all three) under a fresh directory.
opsml_services_start() {
  local service services=("$@")
  [ "${#services[@]}" -gt 0 ] || services=(s3 postgres mariadb)
  opsml_services_dir="$(mktemp -d /tmp/opsml-services.XXXXXX)"
  chmod 755 "$opsml_services_dir"
  for service in "${services[@]}"; do "opsml_start_$service" || return 1; done
  echo "services: running under $opsml_services_dir" >&2
}

opsml_services_stop() {
  if [ -n "${OPSML_SERVICES_PG+x}" ]; then "${OPSML_SERVICES_PG[@]}" -m immediate stop >/dev/null 2>&1 || true; fi
  [ -n "${opsml_services_dir:-}" ] || return 0
  local pid
  for pid in "$opsml_services_dir/s3.pid" "$opsml_services_dir/mysql/server.pid" "$opsml_services_dir/tls/haproxy.pid"; do
    if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
  done
  # MariaDB flushes on SIGTERM; wait for it before removing its files.
  for _ in $(seq 50); do
    [ -f "$opsml_services_dir/mysql/server.pid" ] && kill -0 "$(cat "$opsml_services_dir/mysql/server.pid")" 2>/dev/null || break
    sleep 0.1
  done
  rm -rf "$opsml_services_dir"
}
