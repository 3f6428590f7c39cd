#!/usr/bin/env bash
# W8 recovery (issue 12): how long the server takes after `pg_ctl stop -m
# immediate` until rtstream.sync() returns, with a backlog of committed rows
# that the workers applied but did not checkpoint (rtstream.checkpoint_interval
# and rtstream.checkpoint_wal_size set out of the way for the workload, and
# restored at its end), against the same restart with no backlog (right after
# rtstream.checkpoint()).
#
# Each restart: a fresh window of 10k groups (W1's 1-minute window sliding by
# 10 s), a base of NB rows applied and checkpointed (rtstream.checkpoint(),
# CHECKPOINT), then a COPY of N rows into the stream and rtstream.sync()
# (applied, not checkpointed), `pg_ctl stop -m immediate`, `pg_ctl start`;
# timed on the client from the start command until the server accepts
# connections (pg_isready) and until `SELECT rtstream.sync('5 min')` returns.
# Backlogs: 0 (a), 250k, 500k and 1M rows (times BENCH_SCALE).  Figure: the
# seconds from the start until sync() returned; ratios: to the no-backlog
# restart of the same run, and the extra seconds per 1M rows of backlog.
# Check after every restart: the view = GROUP BY over a plain table holding the
# same rows (base + backlog): every group, count, sum, min, max equal, avg
# within 1e-12; nothing late, refused or failed.
#
# W8_PERF=1: also `perf record -a -g` during the largest backlog's restart of
# run 1, and a breakdown per process (startup = PostgreSQL's redo, router =
# decoding, workers = checkpoint loading and applying) in out/W8_perf.txt.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W8

NB=$(scaled 100000 1000)          # base rows, checkpointed before the backlog
BACKLOGS="$(scaled 250000 1000) $(scaled 500000 2000) $(scaled 1000000 4000)"
KEYS=10000
T_END='2024-03-01 00:01:00+00'    # newest event time (exclusive), a slide boundary
# base rows: ts ascending over [T_END - 60 s, T_END - 30 s); a backlog of N
# rows: ascending over [T_END - 30 s, T_END): all in the current 1-minute window,
# which starts at T_END - 60 s (T_END - 90 s with the base alone)
AGGS='count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi'
SHAPE="size => '1 minute', slide => '10 seconds', time_column => 'ts'"
START_LIMIT=300                   # seconds the restarted server has to accept connections

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }

# --- settings: no periodic nor WAL-size checkpoint of rtstream while W8 runs ----
# The values of postgresql.auto.conf before W8 (empty: none), restored at the end.
GUCS="rtstream.checkpoint_interval rtstream.checkpoint_wal_size"
declare -A ORIG
for g in $GUCS; do
  ORIG[$g]=$(sql "$DB" "SELECT setting FROM pg_file_settings
                         WHERE name = '$g' AND sourcefile LIKE '%postgresql.auto.conf' AND applied")
done
restore_settings() {
  local g
  [ -f "$PGDATA/postmaster.pid" ] && sql postgres 'SELECT 1' >/dev/null 2>&1 || server_start || return 0
  for g in $GUCS; do
    if [ -n "${ORIG[$g]}" ]; then
      sql "$DB" "ALTER SYSTEM SET $g = '${ORIG[$g]}'" >/dev/null || true
    else
      sql "$DB" "ALTER SYSTEM RESET $g" >/dev/null || true
    fi
  done
  sql "$DB" 'SELECT pg_reload_conf()' >/dev/null || true
  log "W8: restored $(sql "$DB" "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings
                                  WHERE name IN ('rtstream.checkpoint_interval', 'rtstream.checkpoint_wal_size')" || true)"
}
trap restore_settings EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

sql "$DB" "ALTER SYSTEM SET rtstream.checkpoint_interval = '1h'" >/dev/null
sql "$DB" "ALTER SYSTEM SET rtstream.checkpoint_wal_size = '64GB'" >/dev/null
sql "$DB" 'SELECT pg_reload_conf()' >/dev/null
sleep 1
log "W8: $(sql "$DB" "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ') FROM pg_settings
                       WHERE name IN ('rtstream.checkpoint_interval', 'rtstream.checkpoint_wal_size')")"

# --- data: the truth table and the files --------------------------------------
# w8_truth(seg, i, ts, k, v): seg 0 the base, seg N the backlog of N rows.
log "W8: generating the rows (base $NB, backlogs $BACKLOGS; $KEYS keys)"
sqlf "$DB" >/dev/null <<SQL
SELECT bench_drop_stream('w8_s');
DROP TABLE IF EXISTS w8_truth;
CREATE TABLE w8_truth (seg int, i int, ts timestamptz, k int, v float8);
SELECT setseed(0.0808);
INSERT INTO w8_truth
SELECT 0, i, timestamptz '$T_END' - interval '60 s' + (i * (30.0 / $NB)) * interval '1 s',
       floor(random() * $KEYS)::int, floor(random() * 4000) / 4.0
  FROM generate_series(0, $NB - 1) i;
SQL
for n in $BACKLOGS; do
  sqlf "$DB" >/dev/null <<SQL
INSERT INTO w8_truth
SELECT $n, i, timestamptz '$T_END' - interval '30 s' + (i * (30.0 / $n)) * interval '1 s',
       floor(random() * $KEYS)::int, floor(random() * 4000) / 4.0
  FROM generate_series(0, $n - 1) i;
COPY (SELECT ts, k, v FROM w8_truth WHERE seg = $n ORDER BY i) TO '$FILES/w8_back_$n.dat';
SQL
done
sqlf "$DB" >/dev/null <<SQL
COPY (SELECT ts, k, v FROM w8_truth WHERE seg = 0 ORDER BY i) TO '$FILES/w8_base.dat';
CREATE INDEX ON w8_truth (seg);
ANALYZE w8_truth;
CREATE TABLE w8_s (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w8_s', partition_by => 'k');
SQL

# The view against the plain GROUP BY of the base and backlog n: prints what
# differs, nothing when equal.
view_vs_plain() {  # n
  local ws="timestamptz '$T_END' - interval '1 minute'"
  [ "$1" -gt 0 ] || ws="timestamptz '$T_END' - interval '90 seconds'"
  sqlf "$DB" <<SQL
WITH v AS (SELECT * FROM w8_w),
     t AS (SELECT k, $AGGS FROM w8_truth WHERE seg IN (0, $1) GROUP BY k),
     j AS (SELECT v.k AS vk, t.k AS tk, v.n AS vn, t.n AS tn, v.s AS vs, t.s AS ts_, v.a AS va, t.a AS ta,
                  v.lo AS vlo, t.lo AS tlo, v.hi AS vhi, t.hi AS thi,
                  (v.k IS NULL OR t.k IS NULL OR v.n <> t.n OR v.s <> t.s OR v.lo <> t.lo OR v.hi <> t.hi
                   OR abs(v.a - t.a) > 1e-12 * greatest(1, abs(t.a))) AS bad
             FROM v FULL JOIN t ON v.k = t.k)
SELECT format('view: %s groups, %s rows; plain GROUP BY: %s groups, %s rows; %s groups differ (first: %s)',
              count(vk), coalesce(sum(vn), 0), count(tk), sum(tn), count(*) FILTER (WHERE bad),
              (SELECT format('k=%s view (%s, %s, %s, %s, %s) plain (%s, %s, %s, %s, %s)',
                             coalesce(vk, tk), vn, vs, va, vlo, vhi, tn, ts_, ta, tlo, thi)
                 FROM j WHERE bad ORDER BY coalesce(vk, tk) LIMIT 1))
  FROM j
HAVING count(*) FILTER (WHERE bad) > 0 OR count(vk) = 0
UNION ALL
SELECT format('window_start %s .. %s, expected %s', min(window_start), max(window_start), $ws)
  FROM w8_w
HAVING min(window_start) IS DISTINCT FROM $ws OR max(window_start) IS DISTINCT FROM $ws
UNION ALL
SELECT format('%s late rows, %s refused groups', sum(late_rows), sum(refused_groups))
  FROM rtstream.window_stats WHERE window_name = 'w8_w'
HAVING sum(late_rows) > 0 OR sum(refused_groups) > 0
UNION ALL
SELECT format('%s failed batches or dead letters', $FAILED_SQL) WHERE $FAILED_SQL > 0;
SQL
}

# The workers' durable checkpoint LSNs (to see that none checkpointed the backlog).
worker_ckpt() { sql "$DB" "SELECT string_agg(checkpoint_lsn::text, ' ' ORDER BY process) FROM rtstream.stats WHERE process LIKE 'worker%'"; }
# Where replay will start from: the slot's restart_lsn and confirmed_flush_lsn,
# the router's and workers' checkpoint_lsn (rtstream.stats), the WAL insert LSN.
positions() {
  sql "$DB" "SELECT format('slot restart %s confirmed %s; %s; insert %s',
                           (SELECT string_agg(restart_lsn::text, ',') FROM pg_replication_slots WHERE database = current_database()),
                           (SELECT string_agg(confirmed_flush_lsn::text, ',') FROM pg_replication_slots WHERE database = current_database()),
                           (SELECT string_agg(process || ' ckpt ' || checkpoint_lsn, ', ' ORDER BY process) FROM rtstream.stats),
                           pg_current_wal_lsn())"
}

# Wait until the slot's position is saved past the clean base.  The router
# confirms what the workers checkpointed at once, but PostgreSQL writes a
# logical slot's confirmed_flush to disk only when its restart_lsn moves (at
# a running-transactions record: a CHECKPOINT's or the background writer's,
# every 15 s) or at a checkpoint after that; after -m immediate the router
# decodes again from the position on disk, and the workers skip what they
# had checkpointed.  Without this wait the restart would also decode the
# base rows again (or not), depending on that timing.
slot_saved() {
  local lsn
  lsn=$(sql "$DB" 'SELECT pg_current_wal_lsn()')
  sql "$DB" 'CHECKPOINT' >/dev/null
  for _ in $(seq 200); do
    [ "$(sql "$DB" "SELECT bool_and(restart_lsn >= '$lsn') FROM pg_replication_slots
                     WHERE database = current_database()")" = t ] && return 0
    sleep 0.05
  done
  log "W8: the slot's restart_lsn did not pass $lsn within 10 s: $(positions)"
}

# perf during one restart (W8_PERF=1): system-wide, then the samples of this
# server's processes only (their pids collected while it runs).
PERF_PID='' PS_PID=''
perf_begin() {
  PERF_DATA="$WORK/w8_perf.data"
  : >"$WORK/w8_pids.txt"
  perf record -a -g -F 499 -o "$PERF_DATA" >"$WORK/w8_perf.log" 2>&1 &
  PERF_PID=$!
  sleep 0.5
}
perf_pids() {  # while the server runs: its processes, with their titles
  ( while :; do
      pm=$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || true)
      [ -n "$pm" ] && { echo "$pm postmaster"; ps -o pid=,args= --ppid "$pm" 2>/dev/null || true; } >>"$WORK/w8_pids.txt"
      sleep 0.05
    done ) &
  PS_PID=$!
}
perf_end() {  # variant
  local pids f="$OUT/W8_perf.txt" p title
  kill "$PS_PID" 2>/dev/null || true; wait "$PS_PID" 2>/dev/null || true
  kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true
  sort -u -k1,1n "$WORK/w8_pids.txt" | awk '$1 ~ /^[0-9]+$/' >"$WORK/w8_pids.u"
  pids=$(awk '{ print $1 }' "$WORK/w8_pids.u" | paste -sd,)
  {
    echo "W8 perf: $1, run 1; perf record -a -g -F 499 from pg_ctl start until rtstream.sync() returned"
    echo "samples per process of this server (pid, title when seen), in % of all the samples of the machine (other processes included):"
    perf report -i "$PERF_DATA" --no-children --pid "$pids" --sort pid -g none --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | while read -r pct rest; do
        p=$(grep -oE '^[0-9]+' <<<"$rest" || true)
        title=$(awk -v p="$p" '$1 == p { $1 = ""; print; exit }' "$WORK/w8_pids.u")
        echo "  $pct $rest ${title:-}"
      done
    for p in $(awk '{ print $1 }' "$WORK/w8_pids.u"); do
      title=$(awk -v p="$p" '$1 == p { $1 = ""; print; exit }' "$WORK/w8_pids.u")
      perf report -i "$PERF_DATA" --no-children --pid "$p" --sort dso,sym -g none --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 12 >"$WORK/w8_perf_one.txt" || true
      if [ -s "$WORK/w8_perf_one.txt" ]; then
        echo
        echo "pid $p ($title): top symbols"
        cat "$WORK/w8_perf_one.txt"
      fi
    done
  } >"$f" 2>&1
  log "W8: perf breakdown in $f"
}

# One measured restart: base rows checkpointed, then backlog n (0: none).
run_restart() {  # run variant n
  local r=$1 v=$2 n=$3 out copy total ck0 ck1 lsn0 walmb t0 t1 t2 ready sync_s bad stats
  drop_windows w8_s
  sql "$DB" "SELECT rtstream.create_window('w8_w', \$q\$SELECT k, $AGGS FROM w8_s GROUP BY k\$q\$, $SHAPE)" >/dev/null
  sql "$DB" "COPY w8_s FROM '$FILES/w8_base.dat'" >/dev/null
  quiesce    # applied, rtstream.checkpoint(), CHECKPOINT: the clean base
  slot_saved
  ck0=$(worker_ckpt)
  lsn0=$(sql "$DB" 'SELECT pg_current_wal_lsn()')
  if [ "$n" -gt 0 ]; then
    out=$(timed_copy "$DB" w8_s "$FILES/w8_back_$n.dat" 1)
    read -r _ copy total <<<"${out//|/ }"
    ck1=$(worker_ckpt)
    if [ "$ck1" != "$ck0" ]; then
      # a worker checkpointed (part of) the backlog: the figure would be too low
      check "$W" "$v: no worker checkpoint during the backlog" WARN \
        "run $r: checkpoint LSNs $ck0 -> $ck1 (rtstream.checkpoint_interval / checkpoint_wal_size not in effect?)"
    fi
  else
    copy=0 total=0
  fi
  walmb=$(sql "$DB" "SELECT round((pg_current_wal_lsn() - '$lsn0'::pg_lsn) / 1048576.0, 1)")
  log "W8 $v run $r: backlog of $n rows (COPY ${copy} s, applied at ${total} s; ${walmb} MB of WAL since the checkpoint); $(positions); stop -m immediate"

  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 60 stop >/dev/null
  [ "${PERF:-0}" = 1 ] && perf_begin
  t0=$(now)
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SERVERLOG" -W start >/dev/null
  [ "${PERF:-0}" = 1 ] && perf_pids
  until "$PGBIN/pg_isready" -q -h "$SOCKDIR" -p "$PORT" -d postgres -U postgres; do
    if awk -v a="$t0" -v b="$(now)" -v l="$START_LIMIT" 'BEGIN { exit !(b - a > l) }'; then
      fail "$W $v" "run $r: the server did not accept connections within ${START_LIMIT} s of its start after -m immediate; server log: $(tail -n 3 "$SERVERLOG" | tr '\n' ' ' | cut -c1-300)"
      exit 1
    fi
    sleep 0.01
  done
  t1=$(now)
  # t2: the server's clock when sync() returned (the same clock as date's);
  # then, at once, the rows the view holds (sync() must not return early)
  out=$(sqlf "$DB" <<SQL
SELECT rtstream.sync('$SYNC_TIMEOUT') \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) AS t2 \gset
SELECT coalesce(sum(n), 0) AS got FROM w8_w \gset
SELECT :t2 || ' ' || :got;
SQL
)
  read -r t2 got <<<"$out"
  if [ "$got" != "$((NB + n))" ]; then
    fail "$W $v" "run $r: rtstream.sync() returned $(secs "$t0" "$t2") s after the start with $got rows in the view, expected $((NB + n))"
    exit 1
  fi
  [ "${PERF:-0}" = 1 ] && perf_end "$v"
  ready=$(secs "$t0" "$t1") sync_s=$(secs "$t1" "$t2") total=$(secs "$t0" "$t2")

  stats=$(sql "$DB" "SELECT string_agg(format('%s rows=%s batches=%s skipped=%s', process, rows, batches,
                                              coalesce(replayed_skipped, 0)), '; ' ORDER BY process)
                       FROM rtstream.stats")
  log "W8 $v run $r: start -> connections ${ready} s, -> sync() ${sync_s} s, total ${total} s; after the restart: $stats"
  bad=$(view_vs_plain "$n")
  if [ -n "$bad" ]; then
    sleep 10
    later=$(sql "$DB" "SELECT count(*) || ' groups, ' || coalesce(sum(n), 0) || ' rows' FROM w8_w")
    fail "$W $v" "wrong result after the restart of run $r (sync() returned ${total} s after the start): ${bad//$'\n'/; }; 10 s later the view has $later (expected $((NB + n)) rows)"
    exit 1
  fi
  rec "$W" "$v" "$r" "$n" "$total" "$(rps "$n" "$total")" ready_s "$ready"
}

LAST=${BACKLOGS##* }
for r in $(seq "$RUNS"); do
  log "W8 run $r/$RUNS"
  run_restart "$r" "restart without backlog (a)" 0
  for n in $BACKLOGS; do
    PERF=0
    [ "${W8_PERF:-}" = 1 ] && [ "$r" = 1 ] && [ "$n" = "$LAST" ] && command -v perf >/dev/null && PERF=1
    run_restart "$r" "restart with $(hnum "$n") rows backlog" "$n"
  done
done
check "$W" "every restart after -m immediate: the view = GROUP BY over the base and backlog rows (each group's count, sum, min, max, avg); none late, refused or failed" PASS \
  "base $NB rows + backlogs of $BACKLOGS rows, $KEYS keys"
drop_windows w8_s
sql "$DB" "SELECT bench_drop_stream('w8_s'); DROP TABLE IF EXISTS w8_truth" >/dev/null
