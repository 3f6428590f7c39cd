# Helpers of the rtstream benchmark harness; sourced by run.sh.
# shellcheck shell=bash

# an error in a $(...) is an error of the script, as anywhere else
shopt -s inherit_errexit

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=rtsbench        # rtstream runs here (rtstream.databases)
BASEDB=rtsbase     # baselines: plain tables, triggers, raw history

# Run a command as the server's owner: postgres when we are root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
AS_PG=()
[ "$(id -u)" -eq 0 ] && AS_PG=(runuser -u postgres --)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Scale a count by BENCH_SCALE, at least $2 (default 1).
scaled() { awk -v n="$1" -v s="$SCALE" -v m="${2:-1}" 'BEGIN { v = int(n * s + 0.5); if (v < m) v = m; print v }'; }

# Human-readable count: 5000000 -> 5M, 10000 -> 10k.
hnum() {
  awk -v n="$1" 'BEGIN {
    if (n >= 1000000 && n % 100000 == 0) { printf "%gM", n / 1000000 }
    else if (n >= 1000 && n % 100 == 0) { printf "%gk", n / 1000 }
    else printf "%d", n }'
}

# psql on database $1; the rest are psql arguments. Unaligned, tuples only.
pq() {
  local db=$1; shift
  as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -d "$db" "$@"
}

# One SQL command (or several) on database $1, output on stdout.
sql() { pq "$1" -c "$2" "${@:3}"; }

# A script on stdin, run on database $1; psql variables may be passed as -v.
sqlf() { local db=$1; shift; pq "$db" "$@" -f -; }

# Record one measured figure: workload variant run rows seconds rows_per_s extra_name extra_value
rec() {
  printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$@" >>"$OUT/results.csv"
  log "  $1 | $2 | run $3: rows=$4 s=$5 rows/s=$6 $7=$8"
}

# COPY file into table on db; with sync=1 also wait for rtstream.sync(); with
# a query, also run it after the COPY (same session, timed together).
# Prints: epoch when COPY returned|seconds until it returned|seconds until done.
timed_copy() {
  local db=$1 table=$2 file=$3 sync=$4 after=${5:-} syncsql=''
  [ "$sync" = 1 ] && syncsql="SELECT rtstream.sync('$SYNC_TIMEOUT') \\g /dev/null"
  sqlf "$db" <<SQL
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
COPY $table FROM '$file';
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
$after
$syncsql
SELECT extract(epoch FROM clock_timestamp()) AS t2 \gset
SELECT :t1, round((:t1 - :t0)::numeric, 4), round((:t2 - :t0)::numeric, 4);
SQL
}

# rows per second
rps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }

# Mark a workload (or one of its variants) as failed; the workload stops.
fail() {
  local w=$1 reason=$2
  printf '%s,"%s"\n' "$w" "${reason//\"/\'}" >>"$OUT/failures.csv"
  log "FAILED $w: $reason"
}

# Busy CPU jiffies of the machine, from /proc/stat.
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Server lifecycle ----------------------------------------------------------

# The benchmark servers' settings, on a port and socket directory
server_settings() {  # port sockdir
  cat <<CONF
port = $1
listen_addresses = ''
unix_socket_directories = '$2'
shared_preload_libraries = 'rtstream'
wal_level = logical
max_replication_slots = 8
max_wal_senders = 8
max_worker_processes = 16
rtstream.databases = '$DB'
rtstream.workers = 2
rtstream.memory_limit = '4GB'
shared_buffers = 1GB
max_wal_size = 8GB
max_connections = 50
timezone = 'UTC'
log_min_messages = warning
log_line_prefix = '%m [%p] '
# fsync, synchronous_commit, full_page_writes, checkpoint_timeout,
# work_mem, max_parallel_workers_per_gather: PostgreSQL defaults.
CONF
}

# SQL of bench_exec_times(q, reps): the execution times (ms, EXPLAIN
# ANALYZE's) of reps runs of a query, after one warm-up; bench_exec_ms(q,
# reps): their median
exec_ms_sql() {
  cat <<'SQL'
CREATE OR REPLACE FUNCTION bench_exec_times(q text, reps int) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE j json; t float8[] := '{}';
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || q INTO j;
  FOR i IN 1 .. reps LOOP
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || q INTO j;
    t := t || (j -> 0 ->> 'Execution Time')::float8;
  END LOOP;
  RETURN t;
END $$;
CREATE OR REPLACE FUNCTION bench_exec_ms(q text, reps int) RETURNS float8 LANGUAGE sql AS $$
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(bench_exec_times(q, reps)) x
$$;
SQL
}

server_init() {
  as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust --no-sync -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; return 1; }
  {
    echo "# --- rtstream benchmark (test/bench/run.sh) ---"
    server_settings "$PORT" "$SOCKDIR"
  } >>"$PGDATA/postgresql.conf"
}

server_start() {
  local try
  for try in 1 2 3; do
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SERVERLOG" -w -t 120 start >/dev/null && break
    tail -n 5 "$SERVERLOG" >&2
    [ "$try" = 3 ] && return 1
    log "server did not start (a concurrent install of rtstream.so?); retrying in 10 s"
    sleep 10
  done

  # the router needs its slot before the first capture; _check() waits for it
  local i
  for i in $(seq 60); do
    sql postgres 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

server_stop() {
  if [ -f "$PGDATA/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 120 stop >/dev/null 2>&1 || true
  fi
}

server_restart() { server_stop; server_start; }

# Byte offset of the server log, to look for crashes since then.
log_mark() { stat -c %s "$SERVERLOG" 2>/dev/null || echo 0; }

# Crash reports in the server log after offset $1 (empty when none): a
# backend killed by a signal, a PANIC, a crash restart, or an rtstream worker
# that exited with an error while the server was not shutting down.
log_crashes() {
  tail -c +"$(($1 + 1))" "$SERVERLOG" 2>/dev/null | awk '
    /shutdown request/ { down = 1 }
    /database system is ready to accept connections/ { down = 0 }
    /terminated by signal|PANIC|terminating any other active server processes|terminated by exception/ { if (n++ < 3) print; next }
    /background worker "rtstream.*exited with exit code [1-9]/ && !down { if (n++ < 3) print }' || true
}

# The last ERROR of the server log after offset $1 (with its CONTEXT).
log_last_error() {
  tail -c +"$(($1 + 1))" "$SERVERLOG" 2>/dev/null | awk '
    /ERROR:/ { e = $0; sub(/^.*ERROR: +/, "", e); c = ""; next }
    /CONTEXT:/ && e != "" && c == "" { c = $0; sub(/^.*CONTEXT: +/, "", c) }
    END { if (e != "") print e (c != "" ? " (" c ")" : "") }' || true
}

# Rows or batches a worker could not apply, in all: the column of
# rtstream.stats is failed_batches in early versions, dead_letters later.
FAILED_SQL="(SELECT coalesce(sum(coalesce((to_jsonb(s) ->> 'failed_batches')::bigint,
                                          (to_jsonb(s) ->> 'dead_letters')::bigint, 0)), 0)
               FROM rtstream.stats s)"

# Drop every rtstream window of a stream (between runs, to start empty).
drop_windows() {
  sql "$DB" "SELECT rtstream.drop_window(name) FROM rtstream.windows
              WHERE stream = '$1'::regclass ORDER BY id" >/dev/null
}

# Drain what the router and workers still have, outside any timing.
settle() { sql "$DB" "SELECT rtstream.sync('$SYNC_TIMEOUT')" >/dev/null; }

# Between measured runs: everything of the previous run applied, rtstream's
# window state checkpointed (where the build has rtstream.checkpoint()), WAL
# and dirty buffers written, so every run starts from the same state.
quiesce() {
  settle
  sql "$DB" "DO \$\$ BEGIN
               IF to_regprocedure('rtstream.checkpoint(interval)') IS NOT NULL THEN
                 EXECUTE format('SELECT rtstream.checkpoint(%L)', '$SYNC_TIMEOUT');
               END IF;
             END \$\$" >/dev/null
  sql "$DB" 'CHECKPOINT' >/dev/null
}

# Record a correctness check: workload, what was checked, PASS or FAIL, detail.
check() {
  printf '%s,"%s",%s,"%s"\n' "$1" "${2//\"/\'}" "$3" "${4//\"/\'}" >>"$OUT/checks.csv"
  log "check $1: $2: $3${4:+ ($4)}"
}

# WAL retained by rtstream's slot while a workload runs: a sampler every
# 0.2 s of rtstream.stats' wal_retained_bytes (router row).  wal_start, then
# the workload, then wal_stop workload variant run: appends a line to
# $OUT/wal_retained.csv (max and last sample, and the WAL written meanwhile).
wal_start() {
  WAL_SAMPLES="$WORK/wal_samples.$$"
  : >"$WAL_SAMPLES"
  WAL_LSN0=$(sql "$DB" "SELECT pg_current_wal_lsn()")
  ( while :; do
      sql "$DB" "SELECT wal_retained_bytes FROM rtstream.stats WHERE process = 'router'" \
        >>"$WAL_SAMPLES" 2>/dev/null || true
      sleep 0.2
    done ) &
  WAL_SAMPLER=$!
}
wal_stop() {
  local written max last
  kill "$WAL_SAMPLER" 2>/dev/null || true
  wait "$WAL_SAMPLER" 2>/dev/null || true
  sql "$DB" "SELECT wal_retained_bytes FROM rtstream.stats WHERE process = 'router'" >>"$WAL_SAMPLES"
  written=$(sql "$DB" "SELECT pg_current_wal_lsn() - '$WAL_LSN0'::pg_lsn")
  max=$(awk '$1 ~ /^[0-9]+$/ && $1 > m { m = $1 } END { print m + 0 }' "$WAL_SAMPLES")
  last=$(awk '$1 ~ /^[0-9]+$/ { l = $1 } END { print l + 0 }' "$WAL_SAMPLES")
  [ -f "$OUT/wal_retained.csv" ] || echo 'workload,variant,run,max_retained_bytes,end_retained_bytes,wal_written_bytes' >"$OUT/wal_retained.csv"
  printf '%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$3" "$max" "$last" "$written" >>"$OUT/wal_retained.csv"
  log "  $1 | $2 | run $3: WAL retained max=$(hnum "$max")B end=$(hnum "$last")B of $(hnum "$written")B written"
  rm -f "$WAL_SAMPLES"
}
