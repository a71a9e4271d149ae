#!/usr/bin/env bash
# What the stand-in row costs on PostgreSQL: every row query of the components is wrapped so
# that it returns at least one row (registry_store::sql::with_stand_in_row; Spin 4.0.x hangs on
# a query that matches none). Seeds a registry through opsml-host (20 names x 10 versions, as
# bench/run.py), then runs the components' own statements with pgbench, each plain and
# wrapped, alternating, in one run, and prints each one's latency and the ratio.
#
#   bench/pg_stand_in.sh [seconds-per-run]     (default 5; 1 connection, extended protocol)
#
# Needs the workspace built (target/debug/opsml-host and the components) and a PostgreSQL:
# $OPSML_TEST_POSTGRES_URL, else a throwaway one from scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
. scripts/services.sh
started_services=
if [ -z "${OPSML_TEST_POSTGRES_URL:-}" ]; then
  opsml_services_start postgres
  started_services=1
fi
pg_bin="$(opsml_postgres_bin)"
database="bench_stand_in_$$"
server="$OPSML_TEST_POSTGRES_URL"
"$pg_bin/psql" -q "$server/postgres" -c "CREATE DATABASE $database"
url="$server/$database"
work="$(mktemp -d)"
cleanup_host() {
  [ -n "${host_pid:-}" ] && kill "$host_pid" 2>/dev/null || true
  "$pg_bin/psql" -q "$server/postgres" -c "DROP DATABASE IF EXISTS $database" || true
  rm -rf "$work"
}
trap 'cleanup_host; [ -z "$started_services" ] || opsml_services_stop' EXIT

port="$(opsml_free_port)"
OPSML_DATABASE_URL="$url" OPSML_DATABASE_HOST="127.0.0.1:*" target/debug/opsml-host up \
  -f spin.toml --runtime-config-file runtime-config/dev.toml --state-dir "$work" \
  --listen "127.0.0.1:$port" >"$work/host.log" 2>&1 &
host_pid=$!
for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$port/opsml/healthcheck" >/dev/null && break
  sleep 0.1
done
echo "seeding 200 cards through opsml-host on 127.0.0.1:$port" >&2
for n in $(seq 0 19); do
  for v in $(seq 0 9); do
    curl -sf -X POST "http://127.0.0.1:$port/opsml/cards/create" -H 'content-type: application/json' \
      -d "{\"registry_type\":\"model\",\"card\":{\"name\":\"model-$n\",\"repository\":\"bench\",\"version\":\"1.$v.0\",\"uid\":\"uid-$n-$v\",\"contact\":\"bench\"}}" >/dev/null
  done
done
kill "$host_pid"; wait "$host_pid" 2>/dev/null || true; host_pid=

# The statements as the components send them (registry_store::cards), placeholders numbered.
order="ORDER BY major DESC, minor DESC, patch DESC, precedence DESC, timestamp DESC, uid"
declare -A statements=(
  ["get by uid"]="SELECT card, version FROM opsml_cards WHERE registry = 'model' AND uid = :uid ORDER BY uid"
  ["list by name"]="SELECT card, version FROM opsml_cards WHERE registry = 'model' AND name = :name AND repository = 'bench' $order"
  ["get, no such uid"]="SELECT card, version FROM opsml_cards WHERE registry = 'model' AND uid = 'none' ORDER BY uid"
  ["names of a registry"]="SELECT DISTINCT name FROM opsml_cards WHERE registry = 'model' ORDER BY name"
)
wrap() {
  echo "SELECT opsml_rows.* FROM (SELECT) AS opsml_one LEFT JOIN LATERAL (SELECT TRUE AS opsml_row, opsml_statement.* FROM ($1) AS opsml_statement) AS opsml_rows ON TRUE"
}
# Average latency in ms of one pgbench run of `statement`.
latency() {
  {
    echo '\set n random(0, 19)'
    echo '\set v random(0, 9)'
    echo "$1" | sed "s/:uid/'uid-' || :n || '-' || :v/; s/:name/'model-' || :n/"
  } >"$work/script.sql"
  "$pg_bin/pgbench" -n -M extended -c 1 -T "$seconds" -f "$work/script.sql" "$url" 2>/dev/null |
    sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}

echo "| statement | plain ms | with stand-in ms | ratio |"
echo "| --- | ---: | ---: | ---: |"
for name in "get by uid" "list by name" "get, no such uid" "names of a registry"; do
  plain=() wrapped=()
  for _ in 1 2; do
    plain+=("$(latency "${statements[$name]}")")
    wrapped+=("$(latency "$(wrap "${statements[$name]}")")")
  done
  python3 - "$name" "${plain[@]}" "${wrapped[@]}" <<'EOF'
import sys
name, p1, p2, w1, w2 = sys.argv[1], *map(float, sys.argv[2:])
plain, wrapped = min(p1, p2), min(w1, w2)
print(f"| {name} | {plain:.3f} | {wrapped:.3f} | {wrapped / plain:.2f}x |")
EOF
done
