#!/usr/bin/env bash
# rtstream benchmark harness (`make bench`).  See test/bench/README.md.
#
# Installs the dependencies, builds and installs rtstream, starts a throwaway
# PostgreSQL 15 server (as user postgres when run as root) in a temporary
# directory on a private port, runs the workloads W1..W7, each with its
# baselines, prints a table, and writes test/bench/out/{results.csv,
# summary.csv, table.txt, chart.png}.
#
# Env: BENCH_RUNS (3) runs per figure, BENCH_SCALE (1.0) scales row counts
# and durations, BENCH_ONLY ("w1 w2 w3 w4 w5 w6 w7 w8 w9"; w8 restarts
# the server with -m immediate, w9 starts three more servers) picks workloads,
# BENCH_REV (unset) benchmarks a committed revision instead of the working
# tree, BENCH_PORT (54329), BENCH_TMP (/tmp) where the server and data files
# go, BENCH_KEEP=1 keeps the temporary directory, BENCH_SKIP_BUILD=1 uses
# the installed rtstream as it is.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export PATH="/usr/lib/postgresql/15/bin:$PATH"

export RUNS=${BENCH_RUNS:-3}
export SCALE=${BENCH_SCALE:-1.0}
export PORT=${BENCH_PORT:-54329}
ONLY=${BENCH_ONLY:-w1 w2 w3 w4 w5 w6 w7 w8 w9}
case $RUNS in '' | *[!0-9]* | 0) echo "BENCH_RUNS must be a positive integer" >&2; exit 2 ;; esac
awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0) }' || { echo "BENCH_SCALE must be > 0" >&2; exit 2; }

. "$HERE/lib.sh"
trap '[[ $- == *e* ]] && log "run.sh: failed at line $LINENO: $BASH_COMMAND (exit $?)"' ERR
T_START=$SECONDS

export OUT="$HERE/out"
mkdir -p "$OUT"
rm -f "$OUT"/results.csv "$OUT"/summary.csv "$OUT"/failures.csv "$OUT"/checks.csv "$OUT"/table.txt \
      "$OUT"/warnings.txt "$OUT"/revision.txt "$OUT"/settings.txt "$OUT"/load.txt \
      "$OUT"/chart.png "$OUT"/w3_probes.csv "$OUT"/wal_retained.csv "$OUT"/*.log "$OUT"/*.dat
echo 'workload,variant,run,rows,seconds,rows_per_s,extra_name,extra_value' >"$OUT/results.csv"
echo 'workload,reason' >"$OUT/failures.csv"
echo 'workload,check,status,detail' >"$OUT/checks.csv"

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/rtstream-bench.XXXXXX")
export WORK
export PGDATA="$WORK/data" SOCKDIR="$WORK" SERVERLOG="$WORK/server.log" FILES="$WORK/files"
export SYNC_TIMEOUT='5 min'
SAMPLER=
cleanup() {
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
  # W9's node servers, should its own cleanup not have stopped them (killed)
  for d in "$WORK"/w9_n*/data; do
    [ -f "$d/postmaster.pid" ] && { as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true; }
  done
  server_stop
  if [ -n "${BENCH_KEEP:-}" ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL and rtstream ---------------------------------------------------
# The server runs from a private copy of the PostgreSQL installation into
# which this run installs rtstream: a `make install` by someone else while
# the benchmark runs cannot swap the library under it.
[ -n "${BENCH_SKIP_BUILD:-}" ] || bash "$ROOT/scripts/install-deps.sh"
SYS_BIN=$(pg_config --bindir)
SYS_SHARE=$(pg_config --sharedir)
SYS_LIB=$(pg_config --pkglibdir)
PGHOME="$WORK/pg"
for d in "$(dirname "$SYS_BIN")" "$SYS_SHARE" "$SYS_LIB"; do
  if [ ! -d "$PGHOME$d" ]; then
    mkdir -p "$PGHOME$(dirname "$d")"
    cp -a "$d" "$PGHOME$d"
  fi
done
[ "$("$PGHOME$SYS_BIN/pg_config" --pkglibdir)" = "$PGHOME$SYS_LIB" ] ||
  { echo "run.sh: the copy of PostgreSQL in $PGHOME is not relocatable" >&2; exit 1; }

if [ -n "${BENCH_REV:-}" ]; then
  # a committed revision, built in the temporary directory
  REV=$(git -C "$ROOT" rev-parse --short "$BENCH_REV")
  mkdir -p "$WORK/src"
  git -C "$ROOT" archive "$BENCH_REV" | tar -x -C "$WORK/src"
  make -C "$WORK/src" -j"$(nproc)" PG_CONFIG="$SYS_BIN/pg_config" >"$WORK/build.log" 2>&1 ||
    { tail -n 30 "$WORK/build.log" >&2; exit 1; }
  make -C "$WORK/src" install DESTDIR="$PGHOME" PG_CONFIG="$SYS_BIN/pg_config" >>"$WORK/build.log" 2>&1
elif [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  # the working tree: `make install` (as root; else check the installed copy),
  # and the same build into the private copy
  REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$ROOT" status --porcelain -- src sql expected specs Makefile rtstream.control 'rtstream--*.sql' 2>/dev/null)" ]; then
    REV="$REV+uncommitted changes"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    make -C "$ROOT" -j"$(nproc)" PG_CONFIG="$SYS_BIN/pg_config" >"$WORK/build.log" 2>&1 ||
      { tail -n 30 "$WORK/build.log" >&2; exit 1; }
    make -C "$ROOT" install PG_CONFIG="$SYS_BIN/pg_config" >>"$WORK/build.log" 2>&1
  else
    bash "$ROOT/scripts/build-install.sh" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
  fi
  make -C "$ROOT" install DESTDIR="$PGHOME" PG_CONFIG="$SYS_BIN/pg_config" >>"$WORK/build.log" 2>&1
else
  REV="installed ($(md5sum "$PGHOME$SYS_LIB/rtstream.so" | cut -c1-8))"
fi
export PGBIN="$PGHOME$SYS_BIN"
echo "$REV" >"$OUT/revision.txt"
for tool in gnuplot "$PGBIN/pgbench"; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done

mkdir -p "$FILES"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$WORK"; fi
chmod 755 "$WORK"
log "rtstream bench: rtstream $REV, runs=$RUNS scale=$SCALE port=$PORT dir=$WORK"
# the machine's load during the run (this benchmark and anything else)
( while sleep 5; do echo "$(date +%s) $(cut -d' ' -f1 /proc/loadavg)"; done ) >"$OUT/load.txt" 2>/dev/null &
SAMPLER=$!
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), $(pg_config --version)"
server_init
server_start
as_pg "$PGBIN/createdb" -h "$SOCKDIR" -p "$PORT" "$DB"
as_pg "$PGBIN/createdb" -h "$SOCKDIR" -p "$PORT" "$BASEDB"
for d in "$DB" "$BASEDB"; do
  sqlf "$d" >/dev/null <<'SQL'
-- helpers of the checks: a column's sum and the window_start of a view
CREATE FUNCTION bench_sum(rel text, col text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE r numeric;
BEGIN EXECUTE format('SELECT sum(%I) FROM %I', col, rel) INTO r; RETURN r; END $$;
CREATE FUNCTION bench_window_start(rel text) RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE r timestamptz;
BEGIN EXECUTE format('SELECT min(window_start) FROM %I', rel) INTO r; RETURN r; END $$;
SQL
  exec_ms_sql | sqlf "$d" >/dev/null
done
sql "$DB" 'CREATE EXTENSION rtstream' >/dev/null
sqlf "$DB" >/dev/null <<'SQL'
-- drop a table, first unmaking it a stream (with its windows) if it is one
CREATE FUNCTION bench_drop_stream(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass(t) IS NULL THEN RETURN; END IF;
  IF EXISTS (SELECT 1 FROM rtstream.streams s WHERE s.stream = to_regclass(t)) THEN
    PERFORM rtstream.drop_stream(to_regclass(t), true);
  END IF;
  EXECUTE format('DROP TABLE %I', t);
END $$;
SQL
sql "$DB" "SELECT name || '=' || setting FROM pg_settings
            WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers',
                           'max_wal_size', 'checkpoint_timeout', 'work_mem', 'wal_level',
                           'rtstream.workers', 'rtstream.memory_limit', 'rtstream.batch_size',
                           'rtstream.queue_size', 'rtstream.checkpoint_interval',
                           'max_parallel_workers_per_gather')
            ORDER BY name" | paste -sd' ' >"$OUT/settings.txt"
log "settings: $(cat "$OUT/settings.txt")"

# Each workload runs in its own bash, under a time limit, after a restart of
# the server (a clean shared memory; a crash of an earlier one is behind us).
run_workload() {
  local w=$1 script=$2 limit=$3 mark rc crash
  log "=== $w ($script) ==="
  server_restart
  mark=$(log_mark)
  set +e
  timeout -k 10 "$limit" bash "$HERE/$script" 2> >(tee -a "$OUT/$w.log" >&2)
  rc=$?
  set -e
  crash=$(log_crashes "$mark")
  srverr=$(log_last_error "$mark" | cut -c1-300)
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "$w" "hang: no progress within the ${limit}s limit of the workload${srverr:+; server log: $srverr}"
  elif [ -n "$crash" ]; then
    crash=${crash%%$'\n'*}
    fail "$w" "crash: $(sed 's/^[-0-9:. ]*UTC \[[0-9]*\] //' <<<"$crash" | cut -c1-200)${srverr:+; server log: $srverr}"
  elif [ "$rc" -ne 0 ] && ! grep -q "^$w" "$OUT/failures.csv"; then
    fail "$w" "$(grep -E 'ERROR|FATAL|could not|psql:' "$OUT/$w.log" | tail -n 1 | cut -c1-200)${srverr:+; server log: $srverr}"
  fi
  # no client of ours outlives its workload
  sql postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" >/dev/null 2>&1 || true
  log "=== $w done (rc=$rc, $((SECONDS - T_START)) s so far) ==="
}

for w in $ONLY; do
  case $w in
    w1) run_workload W1 w1_ingest.sh 3600 ;;
    w2) run_workload W2 w2_writers.sh 1800 ;;
    w3) run_workload W3 w3_freshness.sh 1800 ;;
    w4) run_workload W4 w4_read.sh 3600 ;;
    w5) run_workload W5 w5_memory.sh 1800 ;;
    w6) run_workload W6 w6_nexmark.sh 3600 ;;
    w7) run_workload W7 w7_event_time.sh 1800 ;;
    w8) run_workload W8 w8_recovery.sh 1800 ;;
    w9) run_workload W9 w9_scale_out.sh 2400 ;;
    *) echo "unknown workload $w" >&2 ;;
  esac
done

bash "$HERE/report.sh"
log "total $((SECONDS - T_START)) s; results in $OUT"
