# Helpers of the rtstream benchmark harness; sourced by run.sh.
# shellcheck shell=bash

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=rtsbench        # rtstream runs here (rtstream.databases)
BASEDB=rtsbase     # baselines: plain tables, triggers, raw history

# Run a command as the server's owner: postgres when we are root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

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
sql() { pq "$1" -c "$2"; }

# A script on stdin, run on database $1; psql variables may be passed as -v.
sqlf() { local db=$1; shift; pq "$db" "$@" -f -; }

# Record one measured figure: workload variant run rows seconds rows_per_s extra_name extra_value
rec() {
  printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$@" >>"$OUT/results.csv"
  log "  $1 | $2 | run $3: rows=$4 s=$5 rows/s=$6 $7=$8"
}

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

server_init() {
  as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust --no-sync -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; return 1; }
  cat >>"$PGDATA/postgresql.conf" <<CONF
# --- rtstream benchmark (test/bench/run.sh) ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCKDIR'
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

server_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SERVERLOG" -w -t 120 start >/dev/null ||
    { tail -n 30 "$SERVERLOG" >&2; return 1; }
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

# Crash reports in the server log after offset $1 (empty when none).
log_crashes() {
  tail -c +"$(($1 + 1))" "$SERVERLOG" 2>/dev/null |
    grep -E 'terminated by signal|exited with exit code [1-9]|PANIC|was terminated by exception' | head -n 3
}

# rtstream's counters of trouble: failed batches, refused groups, late rows.
rts_trouble() {
  sql "$DB" "SELECT coalesce(sum(failed_batches), 0) || ' failed batches, ' ||
                    coalesce(sum(refused_groups), 0) || ' refused groups'
               FROM rtstream.stats WHERE process <> 'router'
             HAVING coalesce(sum(failed_batches), 0) + coalesce(sum(refused_groups), 0) > 0"
}

# Drop every rtstream window of a stream (between runs, to start empty).
drop_windows() {
  sql "$DB" "SELECT rtstream.drop_window(name) FROM rtstream.windows
              WHERE stream = '$1'::regclass ORDER BY id" >/dev/null
}

# Drain what the router and workers still have, outside any timing.
settle() { sql "$DB" "SELECT rtstream.sync('$SYNC_TIMEOUT')" >/dev/null; }

# Between measured runs: WAL and dirty buffers of the previous run written,
# so every run starts from the same state.
quiesce() { settle; sql "$DB" 'CHECKPOINT' >/dev/null; }
