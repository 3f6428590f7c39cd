#!/usr/bin/env bash
# Runs the pg_regress SQL files (setup, core, event_time_*, aggregates by default)
# against a throwaway server started under Valgrind memcheck, and fails if
# Valgrind reports an error with a frame in rtstream.so.  As root (installs
# valgrind, runs the server as postgres).  Slow: a few minutes.
#
# Debian's PostgreSQL is not built with USE_VALGRIND, so errors inside
# palloc'd chunks are not seen, and the DSA where windows live is shared
# memory, which memcheck does not track: this checks rtstream's own heap
# use, reads of uninitialised memory and jumps on them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PORT=${VALGRIND_PORT:-5479}
TESTS=${*:-setup core event_time_results event_time_lateness event_time_history event_time_sessions event_time_alter window_shapes key_classes aggregates distinct_topk nodes}
command -v valgrind >/dev/null || { apt-get update -q && apt-get install -y -q valgrind; }
bash "$ROOT/scripts/build-install.sh"

D=$(mktemp -d /tmp/rtstream-valgrind.XXXXXX)
chown postgres "$D"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$PGBIN/initdb" -D "$D/data" -A trust >/dev/null
cat >>"$D/data/postgresql.conf" <<CONF
shared_preload_libraries = 'rtstream'
wal_level = logical
max_worker_processes = 16
rtstream.databases = 'postgres'
port = $PORT
unix_socket_directories = '$D'
listen_addresses = ''
fsync = off
# transactions of more than 64kB of rows are applied while they run
rtstream.decoding_memory = '64kB'
CONF
as_pg bash -c "cd '$D' && valgrind --quiet --trace-children=yes --error-limit=no \
  --num-callers=30 --log-file='$D/vg.%p.log' $PGBIN/postgres -D '$D/data' >'$D/server.log' 2>&1 &"
for _ in $(seq 120); do "$PGBIN/psql" -h "$D" -p "$PORT" -U postgres -Xqc 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done

rc=0
for t in $TESTS; do
  if ! "$PGBIN/psql" -h "$D" -p "$PORT" -U postgres -X -a -f "$ROOT/sql/$t.sql" >"$D/$t.out" 2>&1; then
    echo "valgrind: $t.sql did not run through (see $D/$t.out)"; rc=1
  fi
  # the same statements fail as in pg_regress (psql -f prefixes errors)
  echo "valgrind: $t.sql: $(grep -c '^psql:.*ERROR:' "$D/$t.out" || true) statements failed," \
       "$(grep -c '^ERROR:' "$ROOT/expected/$t.out" || true) expected"
done
as_pg "$PGBIN/pg_ctl" -D "$D/data" stop -m fast >/dev/null || true
sleep 2

# errors whose stack goes through rtstream.so
bad=0
for f in "$D"/vg.*.log; do
  n=$(awk '/^==[0-9]+== [A-Z]/ { if (blk ~ /rtstream\.so/) c++; blk = "" } { blk = blk "\n" $0 }
           END { if (blk ~ /rtstream\.so/) c++; print c + 0 }' "$f")
  if [ "$n" -gt 0 ]; then bad=$((bad + n)); echo "valgrind: $n error(s) in rtstream.so: $f"; fi
done
echo "valgrind: $bad error(s) with a frame in rtstream.so; logs in $D"
[ "$bad" -eq 0 ] && [ "$rc" -eq 0 ]
