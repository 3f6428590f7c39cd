#!/usr/bin/env bash
# Live demo: builds and installs rtstream, starts a throwaway PostgreSQL 15
# server, feeds a "clicks" stream and shows a sliding window every second.
# Ctrl-C ends it. DEMO_SECONDS=N stops after N s; DEMO_PORT sets the port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
PORT=${DEMO_PORT:-5499}
DB=rtstream_demo

bash scripts/install-deps.sh
bash scripts/build-install.sh

# The server must not run as root: use postgres when we are root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DIR=$(mktemp -d /tmp/rtstream-demo.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi
GEN=
cleanup() {
  if [ -n "$GEN" ]; then kill "$GEN" 2>/dev/null || true; fi
  if [ -f "$DIR/data/postmaster.pid" ]; then
    as_pg pg_ctl -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_pg initdb -D "$DIR/data" -A trust --no-sync >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log"; exit 1; }
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'rtstream'
wal_level = logical
max_replication_slots = 10
max_worker_processes = 16
rtstream.workers = 2
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
CONF
as_pg pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null || { cat "$DIR/server.log"; exit 1; }
export PGHOST=$DIR PGPORT=$PORT
as_pg createdb "$DB"
psql_db() { as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
for _ in $(seq 30); do psql_db -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done

psql_db >/dev/null <<'SQL'
CREATE EXTENSION rtstream;
CREATE TABLE clicks (ts timestamptz NOT NULL DEFAULT now(), page text, user_id bigint, latency_ms float8);
SELECT rtstream.create_stream('clicks', partition_by => 'page');
SELECT rtstream.create_window('clicks_1m',
  $$SELECT page, count(*) AS hits, sum(latency_ms) AS total_ms, avg(latency_ms) AS avg_ms,
           min(latency_ms) AS min_ms, max(latency_ms) AS max_ms
      FROM clicks GROUP BY page$$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
-- closed 10-second windows are appended, once each, to clicks_10s_history
SELECT rtstream.create_window('clicks_10s',
  $$SELECT count(*) AS hits, avg(latency_ms) AS avg_ms FROM clicks$$,
  size => '10 seconds', time_column => 'ts', allowed_lateness => '2 seconds',
  idle_timeout => '5 seconds', history => true);
SQL

# Generator: 500 rows every 0.2 s, for at most an hour or until this script exits.
INSERT="INSERT INTO clicks (page, user_id, latency_ms)
  SELECT '/page/' || (random()*20)::int, (random()*1000)::bigint,
         round((random()*200)::numeric, 1)::float8 FROM generate_series(1, 500);"
(
  end=$((SECONDS + 3600))
  while [ "$SECONDS" -lt "$end" ] && kill -0 $$ 2>/dev/null; do
    psql_db -c "$INSERT" >/dev/null 2>&1 || true
    sleep 0.2
  done
) &
GEN=$!

# Display loop, once a second.
start=$SECONDS
while [ -z "${DEMO_SECONDS:-}" ] || [ $((SECONDS - start)) -lt "$DEMO_SECONDS" ]; do
  if [ -t 1 ]; then clear; fi
  echo "rtstream demo ($((SECONDS - start)) s; Ctrl-C stops it). Connect to it with:"
  echo "  psql -h $DIR -p $PORT -d $DB"
  psql_db <<'SQL'
SELECT rtstream.sync() \g /dev/null
\pset footer off
\pset title 'clicks_1m: the last minute per page, sliding every 10 seconds (top 10 pages)'
SELECT to_char(window_start, 'HH24:MI:SS') AS "from", to_char(window_end, 'HH24:MI:SS') AS "to",
       page, hits, round(avg_ms::numeric, 1) AS avg_ms, round(min_ms::numeric, 1) AS min_ms,
       round(max_ms::numeric, 1) AS max_ms
  FROM clicks_1m ORDER BY hits DESC, page LIMIT 10;
\pset title 'clicks_10s_history: closed 10-second windows, appended once each (newest 5)'
SELECT to_char(window_start, 'HH24:MI:SS') AS "from", to_char(window_end, 'HH24:MI:SS') AS "to",
       hits, round(avg_ms::numeric, 1) AS avg_ms
  FROM clicks_10s_history ORDER BY window_end DESC LIMIT 5;
\pset title 'rtstream.stats: the router and the workers'
SELECT process, rows, batches, late_rows AS late, groups,
       pg_size_pretty(memory_bytes) AS memory, pg_size_pretty(behind_bytes) AS behind,
       date_trunc('second', checkpoint_age) AS checkpoint_age,
       pg_size_pretty(wal_retained_bytes) AS wal_held
  FROM rtstream.stats;
SQL
  sleep 1
done
