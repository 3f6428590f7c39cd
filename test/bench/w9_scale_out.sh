#!/usr/bin/env bash
# W9 scale-out (issue 13): windows over several PostgreSQL servers through
# postgres_fdw.  The bench server (run.sh's) is the coordinator; this script
# starts three more local servers, the nodes w9_n1 .. w9_n3 (initdb into
# $WORK/w9_nX, port PORT+11 .. PORT+13, a Unix socket in $WORK/w9_nX only,
# the bench server's rtstream settings), and stops them at the end, also on
# failure.
#
# Ingest: the same N rows (ts, k, v), 10k keys, COPYed from a file
#   (a) into a local stream with the window, on the coordinator alone;
#   (b) through the coordinator into a stream distributed over w9_n1, w9_n2;
# timed from COPY start until rtstream.sync() returns (the rows are applied
# on every node), the COPY alone too.  Ratio: (b) rows/s / (a) rows/s.
# Read: SELECT * FROM <view> of a window of G (10k) groups, each in all 6
# panes, READS times (EXPLAIN ANALYZE execution time, as W4), median and p95:
#   (c) a local window on the coordinator holding all the rows;
#   (d) through the coordinator, the stream on one node (w9_n1);
#   (e) through the coordinator, the stream spread over w9_n1 .. w9_n3;
# ratios: (e) / (c) and (e) / (d) of the latencies (> 1: slower).
# Checks: after every ingest run, each view (on the coordinator) = GROUP BY
# over a plain table with the same rows; the nodes applied every row, none
# late, and the distributed rows are spread over both nodes; the three read
# windows are equal to each other and to the plain GROUP BY.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W9

N=$(scaled 1000000 3000)          # rows per ingest COPY
KEYS=10000                        # keys of the ingest rows
G=$(scaled 10000 10)              # groups of the read windows
READS=50                          # timed reads per variant and run (after a warm-up)
NODES="1 2 3"
T_END='2024-05-01 00:03:00+00'    # ingest: newest event time (exclusive), a slide boundary
SPAN=180                          # ingest: seconds of event time (3 minutes: the last window is full)
R_END='2024-05-01 01:00:00+00'    # read: the end of the read windows' minute
AGGS='count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi'
SHAPE="size => '1 minute', slide => '10 seconds', time_column => 'ts'"

# --- the nodes ------------------------------------------------------------------
node_dir() { echo "$WORK/w9_n$1"; }
node_port() { echo $((PORT + 10 + $1)); }
node_log() { echo "$WORK/w9_n$1.log"; }
# psql on node $1, database $DB; the rest are psql arguments
nq() {
  local i=$1; shift
  as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$(node_dir "$i")" -p "$(node_port "$i")" -d "$DB" "$@"
}

node_start() {
  local i=$1 d; d=$(node_dir "$i")
  rm -rf "$d"
  mkdir -p "$d"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$d"; fi
  as_pg "$PGBIN/initdb" -D "$d/data" -A trust --no-sync -E UTF8 --locale=C >"$d.initdb.log" 2>&1 ||
    { cat "$d.initdb.log" >&2; return 1; }
  # the bench server's settings (lib.sh server_init), on a port and socket of its own
  {
    echo "# --- rtstream benchmark W9 node $i (test/bench/w9_scale_out.sh) ---"
    server_settings "$(node_port "$i")" "$d"
  } >>"$d/data/postgresql.conf"
  as_pg "$PGBIN/pg_ctl" -D "$d/data" -l "$(node_log "$i")" -w -t 120 start >/dev/null ||
    { tail -n 20 "$(node_log "$i")" >&2; return 1; }
  as_pg "$PGBIN/createdb" -h "$d" -p "$(node_port "$i")" "$DB"
  nq "$i" -c 'CREATE EXTENSION rtstream' >/dev/null
  # up when the router and every worker are (as the TAP tests wait)
  local t
  for t in $(seq 60); do
    [ "$(nq "$i" -c 'SELECT count(*) = count(pid) FROM rtstream.stats' 2>/dev/null)" = t ] && return 0
    sleep 1
  done
  log "W9: rtstream did not come up on node $i"
  return 1
}

node_stop() {
  local d; d=$(node_dir "$1")
  if [ -f "$d/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$d/data" -m fast -w -t 120 stop >/dev/null 2>&1 ||
      as_pg "$PGBIN/pg_ctl" -D "$d/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
  fi
}

# At the end, also on failure: the distributed streams go (their drop runs
# on the nodes, so while they are up), so that the coordinator's shipper
# has nothing left for servers that are about to disappear; the foreign
# servers go; the nodes stop.
STARTED=0
cleanup() {
  local rc=$? i
  trap - EXIT
  if [ "$STARTED" = 1 ]; then
    sql "$DB" "SELECT bench_drop_stream(t) FROM unnest(ARRAY['w9_d', 'w9_r1', 'w9_r3']) t" >/dev/null 2>&1 ||
      log "W9: could not drop the distributed streams"
    sql "$DB" "DROP SERVER IF EXISTS w9_n1, w9_n2, w9_n3 CASCADE" >/dev/null 2>&1 || true
  fi
  for i in $NODES; do
    # a crash on a node fails the workload as one on the coordinator does
    local crash; crash=$(SERVERLOG=$(node_log "$i") log_crashes 0)
    if [ -n "$crash" ]; then
      fail "$W" "crash on node w9_n$i: $(sed 's/^[-0-9:. ]*UTC \[[0-9]*\] //' <<<"${crash%%$'\n'*}" | cut -c1-200)"
      rc=1
    fi
    [ "$rc" = 0 ] || { log "W9: last lines of node w9_n$i's log:"; tail -n 8 "$(node_log "$i")" >&2 2>/dev/null || true; }
    node_stop "$i"
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

log "W9: starting nodes w9_n1 .. w9_n3 on ports $(node_port 1) .. $(node_port 3)"
STARTED=1
for i in $NODES; do node_start "$i"; done

servers=''
for i in $NODES; do
  servers+="CREATE SERVER w9_n$i FOREIGN DATA WRAPPER postgres_fdw
              OPTIONS (host '$(node_dir "$i")', port '$(node_port "$i")', dbname '$DB', async_capable 'true');
            CREATE USER MAPPING FOR CURRENT_USER SERVER w9_n$i;
"
done
sqlf "$DB" >/dev/null <<SQL
SELECT bench_drop_stream(t) FROM unnest(ARRAY['w9_l', 'w9_d', 'w9_rl', 'w9_r1', 'w9_r3']) t;
DROP TABLE IF EXISTS w9_truth, w9_rtruth;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
DROP SERVER IF EXISTS w9_n1, w9_n2, w9_n3 CASCADE;
$servers
SQL

# Everything applied and checkpointed on the coordinator and on every node.
quiesce_all() {
  quiesce
  local i
  for i in $NODES; do
    nq "$i" -c "SELECT rtstream.sync('$SYNC_TIMEOUT')" >/dev/null
    nq "$i" -c "DO \$\$ BEGIN
                  IF to_regprocedure('rtstream.checkpoint(interval)') IS NOT NULL THEN
                    EXECUTE format('SELECT rtstream.checkpoint(%L)', '$SYNC_TIMEOUT');
                  END IF;
                END \$\$" >/dev/null
    nq "$i" -c 'CHECKPOINT' >/dev/null
  done
}

# A view (on the coordinator) against the plain GROUP BY of table $2 over
# [$3 - 1 minute, $3): every group, count, sum, min, max equal (v is a
# multiple of 0.25: float8 sums are exact in any order), avg within 1e-12
# relative, window_start = $3 - 1 minute.  Prints what differs, nothing when
# equal.
view_vs_plain() {  # view table t_end
  sqlf "$DB" <<SQL
WITH v AS (SELECT * FROM $1),
     t AS (SELECT k, $AGGS FROM $2
            WHERE ts >= timestamptz '$3' - interval '1 minute' AND ts < timestamptz '$3' GROUP BY k),
     j AS (SELECT v.k AS vk, t.k AS tk, v.n AS vn, t.n AS tn, v.s AS vs, t.s AS ts_, v.a AS va, t.a AS ta,
                  v.lo AS vlo, t.lo AS tlo, v.hi AS vhi, t.hi AS thi,
                  (v.k IS NULL OR t.k IS NULL OR v.n <> t.n OR v.s <> t.s OR v.lo <> t.lo OR v.hi <> t.hi
                   OR abs(v.a - t.a) > 1e-12 * greatest(1, abs(t.a))) AS bad
             FROM v FULL JOIN t ON v.k = t.k)
SELECT format('%s: %s groups, %s rows; plain GROUP BY: %s groups, %s rows; %s groups differ (first: %s)',
              '$1', count(vk), sum(vn), count(tk), sum(tn), count(*) FILTER (WHERE bad),
              (SELECT format('k=%s view (%s, %s, %s, %s, %s) plain (%s, %s, %s, %s, %s)',
                             coalesce(vk, tk), vn, vs, va, vlo, vhi, tn, ts_, ta, tlo, thi)
                 FROM j WHERE bad ORDER BY coalesce(vk, tk) LIMIT 1))
  FROM j
HAVING count(*) FILTER (WHERE bad) > 0 OR count(vk) = 0
UNION ALL
SELECT format('%s: window_start %s .. %s, expected %s', '$1', min(window_start), max(window_start),
              timestamptz '$3' - interval '1 minute')
  FROM $1
HAVING min(window_start) IS DISTINCT FROM timestamptz '$3' - interval '1 minute'
    OR max(window_start) IS DISTINCT FROM timestamptz '$3' - interval '1 minute';
SQL
}

# --- ingest ---------------------------------------------------------------------
F="$FILES/w9_k$KEYS.dat"
TS_EXPR="timestamptz '$T_END' - interval '$SPAN s' + (i * ($SPAN.0 / $N)) * interval '1 s'"
log "W9: generating the ingest file ($N rows, $KEYS keys)"
sqlf "$DB" >/dev/null <<SQL
SELECT setseed(0.4299);
COPY (SELECT $TS_EXPR, floor(random() * $KEYS)::int, floor(random() * 4000) / 4.0
        FROM generate_series(0, $N - 1) i) TO '$F';
-- the truth: the same rows in a plain table
CREATE TABLE w9_truth (ts timestamptz, k int, v float8);
COPY w9_truth FROM '$F';
ANALYZE w9_truth;
CREATE TABLE w9_l (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w9_l', partition_by => 'k');
CREATE TABLE w9_d (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w9_d', partition_by => 'k', nodes => ARRAY['w9_n1', 'w9_n2']);
SQL
EXPECT=$(sql "$DB" "SELECT count(*) FROM w9_truth
                     WHERE ts >= timestamptz '$T_END' - interval '1 minute' AND ts < timestamptz '$T_END'")
log "W9: $EXPECT of $N rows fall in the last window"

# After a distributed run: every node's window applied its rows (together
# all N), none late or refused; both nodes got rows; nothing pending.
check_nodes() {  # window
  local i got tot=0 bad='' late pend
  for i in 1 2; do
    got=$(nq "$i" -c "SELECT coalesce(sum(rows), 0) || ' ' || coalesce(sum(late_rows), 0) + coalesce(sum(refused_groups), 0)
                        FROM rtstream.window_stats WHERE window_name = '$1'")
    read -r rows late <<<"$got"
    tot=$((tot + rows))
    [ "$rows" -gt 0 ] || bad+="node w9_n$i applied no row; "
    [ "$late" = 0 ] || bad+="node w9_n$i: $late rows late or groups refused; "
  done
  [ "$tot" = "$N" ] || bad+="the nodes applied $tot rows, expected $N; "
  pend=$(sql "$DB" "SELECT coalesce(sum(pending_rows), 0) || ' ' || coalesce(string_agg(last_error, ' | '), '')
                      FROM rtstream.nodes WHERE stream = 'w9_d'::regclass")
  [ "${pend%% *}" = 0 ] || bad+="rtstream.nodes: $pend pending after sync(); "
  echo "$bad"
}

run_ingest() {  # run variant table
  local r=$1 v=$2 t=$3 out copy total bad
  drop_windows "$t"
  sql "$DB" "SELECT rtstream.create_window('${t}_w', \$q\$SELECT k, $AGGS FROM $t GROUP BY k\$q\$, $SHAPE)" >/dev/null
  quiesce_all
  out=$(timed_copy "$DB" "$t" "$F" 1)
  read -r _ copy total <<<"${out//|/ }"
  bad=$(view_vs_plain "${t}_w" w9_truth "$T_END")
  if [ "$t" = w9_d ]; then bad+=$(check_nodes "${t}_w"); fi
  if [ -n "$bad" ]; then
    # late or lost: the same view 10 s later, sync() or not
    sleep 10
    later=$(sql "$DB" "SELECT count(*) || ' groups, ' || coalesce(sum(n), 0) || ' rows' FROM ${t}_w")
    fail "$W $v" "wrong result after run $r (COPY $copy s, until sync() returned $total s): ${bad//$'\n'/; } 10 s later the view has $later (expected $EXPECT rows)"
    exit 1
  fi
  rec "$W" "$v" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
}

for r in $(seq "$RUNS"); do
  log "W9 ingest run $r/$RUNS"
  run_ingest "$r" 'ingest local stream (a)' w9_l
  run_ingest "$r" 'ingest coordinator 2 nodes (b)' w9_d
done
check "$W" "every ingest run: the view = GROUP BY over the same rows (local and over 2 nodes, on the coordinator); the nodes applied all rows, both some, none late" PASS \
  "$EXPECT rows, $(sql "$DB" "SELECT count(DISTINCT k) FROM w9_truth WHERE ts >= timestamptz '$T_END' - interval '1 minute' AND ts < timestamptz '$T_END'") groups"
sql "$DB" "SELECT bench_drop_stream('w9_l'); SELECT bench_drop_stream('w9_d')" >/dev/null

# --- read -----------------------------------------------------------------------
# G groups, each in all 6 panes of the minute before R_END, one pane per
# transaction, the same rows into the three streams and the plain table.
log "W9: read windows of $(hnum "$G") groups"
sqlf "$DB" >/dev/null <<SQL
CREATE TABLE w9_rtruth (ts timestamptz, k int, v float8);
CREATE TABLE w9_rl (LIKE w9_rtruth);
CREATE TABLE w9_r1 (LIKE w9_rtruth);
CREATE TABLE w9_r3 (LIKE w9_rtruth);
SELECT rtstream.create_stream('w9_rl', partition_by => 'k');
SELECT rtstream.create_stream('w9_r1', partition_by => 'k', nodes => ARRAY['w9_n1']);
SELECT rtstream.create_stream('w9_r3', partition_by => 'k', nodes => ARRAY['w9_n1', 'w9_n2', 'w9_n3']);
SELECT rtstream.create_window('w9_rl_w', \$q\$SELECT k, $AGGS FROM w9_rl GROUP BY k\$q\$, $SHAPE);
SELECT rtstream.create_window('w9_r1_w', \$q\$SELECT k, $AGGS FROM w9_r1 GROUP BY k\$q\$, $SHAPE);
SELECT rtstream.create_window('w9_r3_w', \$q\$SELECT k, $AGGS FROM w9_r3 GROUP BY k\$q\$, $SHAPE);
-- latencies (ms) of reps executions of a query after one warm-up, as W4
-- (bench_exec_times, lib.sh): their median and 95th percentile
CREATE OR REPLACE FUNCTION w9_exec_ms(q text, reps int, OUT p50 float8, OUT p95 float8) LANGUAGE sql AS \$\$
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), percentile_cont(0.95) WITHIN GROUP (ORDER BY x)
    FROM unnest(bench_exec_times(q, reps)) x
\$\$;
SQL
sql "$DB" "SELECT rtstream.sync('$SYNC_TIMEOUT')" >/dev/null
for p in 0 1 2 3 4 5; do
  rows="SELECT timestamptz '$R_END' - interval '60 s' + interval '10 s' * $p + interval '1 ms' * (k % 9000),
               k, ((k * 7 + $p * 13) % 4000) / 4.0 FROM generate_series(0, $G - 1) k"
  sql "$DB" "INSERT INTO w9_rtruth $rows" >/dev/null
  for t in w9_rl w9_r1 w9_r3; do sql "$DB" "INSERT INTO $t $rows" >/dev/null; done
done
settle
bad=''
for t in w9_rl w9_r1 w9_r3; do bad+=$(view_vs_plain "${t}_w" w9_rtruth "$R_END"); done
# the three windows, row for row (every column of the views, window bounds included)
bad+=$(sql "$DB" "SELECT format('%s rows of w9_r3_w not in w9_rl_w, %s of w9_rl_w not in w9_r3_w, %s rows of w9_r1_w not in w9_rl_w, %s of w9_rl_w not in w9_r1_w',
                                 (SELECT count(*) FROM (TABLE w9_r3_w EXCEPT ALL TABLE w9_rl_w) x),
                                 (SELECT count(*) FROM (TABLE w9_rl_w EXCEPT ALL TABLE w9_r3_w) x),
                                 (SELECT count(*) FROM (TABLE w9_r1_w EXCEPT ALL TABLE w9_rl_w) x),
                                 (SELECT count(*) FROM (TABLE w9_rl_w EXCEPT ALL TABLE w9_r1_w) x))
                   WHERE EXISTS (TABLE w9_r3_w EXCEPT ALL TABLE w9_rl_w) OR EXISTS (TABLE w9_rl_w EXCEPT ALL TABLE w9_r3_w)
                      OR EXISTS (TABLE w9_r1_w EXCEPT ALL TABLE w9_rl_w) OR EXISTS (TABLE w9_rl_w EXCEPT ALL TABLE w9_r1_w)")
spread=$(for i in $NODES; do
  nq "$i" -c "SELECT coalesce(sum(rows), 0) FROM rtstream.window_stats WHERE window_name = 'w9_r3_w'"
done | paste -sd' ')
for x in $spread; do [ "$x" -gt 0 ] || bad+="w9_r3 is not spread over the 3 nodes (rows per node: $spread); "; done
if [ -n "$bad" ]; then
  fail "$W read" "wrong result: ${bad//$'\n'/; }"
  exit 1
fi
check "$W" "read windows: local, over 1 node and over 3 nodes are equal row for row and = GROUP BY over the same rows" PASS \
  "$G groups, $((6 * G)) rows; rows per node of the 3-node stream: $spread"

for r in $(seq "$RUNS"); do
  log "W9 read run $r/$RUNS"
  quiesce_all
  for pair in 'w9_rl_w|read local window (c)' 'w9_r1_w|read coordinator 1 node (d)' 'w9_r3_w|read coordinator 3 nodes (e)'; do
    view=${pair%%|*}; v=${pair#*|}
    read -r p50 p95 <<<"$(sql "$DB" "SELECT round(p50::numeric, 3), round(p95::numeric, 3) FROM w9_exec_ms('SELECT * FROM $view', $READS)" -F ' ')"
    for q in "median $p50" "p95 $p95"; do
      ms=${q#* }
      rec "$W" "$v ${q%% *}" "$r" "$G" "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')" \
        "$(awk -v g="$G" -v m="$ms" 'BEGIN { printf "%.0f", g / (m / 1000) }')" read_ms "$ms"
    done
  done
done

# Where the time of a distributed read goes (logged, once, not a figure): on
# w9_n1, its window_state() of the 1-node window and a read of its own view
# of that window; on the coordinator, the fetch of the node's state through
# the foreign table alone (no combining) and the bytes it carries.
exec_ms_sql | nq 1 >/dev/null
d_state=$(nq 1 -c "SELECT round(bench_exec_ms('SELECT * FROM public.w9_r1_w__state', 10)::numeric, 1)")
d_local=$(nq 1 -c "SELECT round(bench_exec_ms('SELECT * FROM public.w9_r1_w', 10)::numeric, 1)")
d_fetch=$(sql "$DB" "SELECT round(p50::numeric, 1) FROM w9_exec_ms('SELECT * FROM w9_r1_w__w9_n1', 10)")
d_view=$(sql "$DB" "SELECT round(p50::numeric, 1) FROM w9_exec_ms('SELECT * FROM w9_r1_w', 10)")
d_bytes=$(sql "$DB" "SELECT sum(octet_length(state)) || ' bytes in ' || count(*) || ' states' FROM w9_r1_w__w9_n1")
log "W9 read over 1 node, medians of 10: view on the coordinator $d_view ms; its parts: fetch of the node's state through postgres_fdw $d_fetch ms ($d_bytes), of which window_state() on the node $d_state ms; the rest is the combining on the coordinator. The node's own view of the same window, read on the node: $d_local ms"
