#!/usr/bin/env bash
# W4 read cost: the time of `SELECT * FROM <window>` (1-minute window, 10 s
# slide: 6 panes, every group present in every pane) with 1k, 10k, 100k and
# 1M groups, against recomputing the same answer from a raw heap table
# indexed on ts:
#   SELECT k, count(*), sum(v), avg(v), min(v), max(v) FROM raw
#    WHERE ts >= <now> - interval '1 minute' AND ts < <now> GROUP BY k
# on raw tables of 1M and 10M rows of history, whose last minute holds the
# same groups and rows as the window.  <now> is a fixed literal (the newest
# event time), so the answer does not depend on when the query runs.
# Also: the 10k-group window read after 1M and after 10M rows were streamed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W4

READS=5                          # timed reads per figure and run (after a warm-up)
GROUPS_LIST="$(scaled 1000 10) $(scaled 10000 10) $(scaled 100000 10) $(scaled 1000000 10)"
G10K=$(scaled 10000 10)
H_SMALL=$(scaled 1000000 1000)   # raw history sizes
H_LARGE=$(scaled 10000000 10000)
round10k() { echo $(( ($1 + 9999) / 10000 * 10000 )); }
HIST1=$(round10k "$(scaled 1000000 60000)")     # rows of history of the first window (a full minute at least)
HIST2=$(round10k "$(scaled 10000000 600000)")   # ... and of the second
AGGS='count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi'
T_BASE='2024-03-01 00:00:00+00'

# Segment of G groups: one minute [T_G - 1 min, T_G), 6 panes of 10 s, each
# pane holding every key 0 .. G-1 once (6 G rows).  T_G is 1 + g hours after
# T_BASE for the g-th group count, so the segments never overlap.
seg_end() { sql "$BASEDB" "SELECT timestamptz '$T_BASE' + interval '1 hour' * (1 + $1)"; }

# Rows of one pane p (0..5) of a segment, as a SELECT.
pane_rows() {  # G t_end p
  echo "SELECT timestamptz '$2' - interval '60 s' + interval '10 s' * $3 + interval '1 ms' * (k % 9000),
               k, random() FROM generate_series(0, $1 - 1) k"
}

# --- rtstream side: one stream and one window per group count -------------
log "W4: streaming the windows' rows"
g_idx=0
for G in $GROUPS_LIST; do
  t_end=$(seg_end $g_idx)
  sqlf "$DB" >/dev/null <<SQL
SELECT bench_drop_stream('w4_s$g_idx');
CREATE TABLE w4_s$g_idx (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w4_s$g_idx', partition_by => 'k');
SELECT rtstream.create_window('w4_g$g_idx', \$q\$SELECT k, $AGGS FROM w4_s$g_idx GROUP BY k\$q\$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
SQL
  settle
  # one transaction per pane, in event-time order
  for p in 0 1 2 3 4 5; do
    sql "$DB" "INSERT INTO w4_s$g_idx $(pane_rows "$G" "$t_end" $p)" >/dev/null
  done
  g_idx=$((g_idx + 1))
done
settle

# --- history: 10k-group windows after HIST1 and after HIST2 streamed rows ----
# Two streams, w4_h1 fed HIST1 rows and w4_h2 fed HIST2 rows, so that both
# windows are read in every run, next to each other.  Rows at 1,000 per
# second of event time, k = i % G10K: every 10 s pane holds every key once
# (at scale 1), whatever the history.
sqlf "$DB" >/dev/null <<SQL
SELECT bench_drop_stream('w4_h1');
SELECT bench_drop_stream('w4_h2');
CREATE TABLE w4_h1 (ts timestamptz, k int, v float8);
CREATE TABLE w4_h2 (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w4_h1', partition_by => 'k');
SELECT rtstream.create_stream('w4_h2', partition_by => 'k');
SELECT rtstream.create_window('w4_hist1', \$q\$SELECT k, $AGGS FROM w4_h1 GROUP BY k\$q\$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
SELECT rtstream.create_window('w4_hist2', \$q\$SELECT k, $AGGS FROM w4_h2 GROUP BY k\$q\$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
-- feed rows [0, n) into a stream in transactions of 10 s of event time, in order
CREATE OR REPLACE PROCEDURE w4_feed(tbl text, n bigint) LANGUAGE plpgsql AS \$\$
DECLARE c bigint := 0;
BEGIN
  WHILE c < n LOOP
    EXECUTE format('INSERT INTO %I SELECT timestamptz %L - interval ''30 days'' + interval ''1 ms'' * i,
                           (i %% $G10K)::int, random()
                      FROM generate_series(\$1, \$2) i', tbl, '$T_BASE')
      USING c, least(c + 10000, n) - 1;
    COMMIT;
    c := c + 10000;
  END LOOP;
END \$\$;
SQL
settle
for h in 1 2; do
  want=$([ $h = 1 ] && echo "$HIST1" || echo "$HIST2")
  log "W4: streaming $(hnum "$want") rows of history into w4_h$h"
  sql "$DB" "CALL w4_feed('w4_h$h', $want)" >/dev/null
  settle
  got=$(sql "$DB" "SELECT count(*) || ' ' || sum(n) FROM w4_hist$h")
  # 60 s at 1,000 rows/s in the window: 60,000 rows (fewer while the first
  # minute is not yet full), G10K groups
  rows=$(( want < 60000 ? want : 60000 ))
  grp=$(( rows < G10K ? rows : G10K ))
  if [ "$got" != "$grp $rows" ]; then
    fail "$W" "history window after $(hnum "$want") rows: groups, rows = $got; expected $grp $rows"
    exit 1
  fi
done

# --- raw side ---------------------------------------------------------------
# raw_small (H_SMALL rows) and raw_large (H_LARGE rows): old filler history at
# 1,000 rows/s of event time (keys % 10k), then the segments of the group
# counts that fit (all of them in raw_large, not the 1M-group one in raw_small).
build_raw() {  # table total_rows -> prints the group indexes it holds
  local t=$1 total=$2 g_idx=0 used=0 segs='' G fill
  for G in $GROUPS_LIST; do
    if [ $((used + 6 * G)) -le $((total * 9 / 10)) ]; then
      used=$((used + 6 * G)); segs="$segs $g_idx"
    fi
    g_idx=$((g_idx + 1))
  done
  fill=$((total - used))
  sql "$BASEDB" "DROP TABLE IF EXISTS $t; CREATE TABLE $t (ts timestamptz, k int, v float8)" >/dev/null
  sql "$BASEDB" "INSERT INTO $t SELECT timestamptz '$T_BASE' - interval '30 days' + interval '1 ms' * i,
                                       (i % 10000)::int, random() FROM generate_series(0, $fill - 1) i" >/dev/null
  for g_idx in $segs; do
    G=$(echo "$GROUPS_LIST" | awk -v i=$((g_idx + 1)) '{ print $i }')
    t_end=$(seg_end "$g_idx")
    for p in 0 1 2 3 4 5; do
      sql "$BASEDB" "INSERT INTO $t $(pane_rows "$G" "$t_end" $p)" >/dev/null
    done
  done
  sql "$BASEDB" "CREATE INDEX ON $t (ts)" >/dev/null
  sql "$BASEDB" "VACUUM ANALYZE $t" >/dev/null
  echo "$segs"
}
log "W4: building raw tables of $(hnum "$H_SMALL") and $(hnum "$H_LARGE") rows"
SEGS_SMALL=$(build_raw w4_raw_small "$H_SMALL")
SEGS_LARGE=$(build_raw w4_raw_large "$H_LARGE")
check_raw_rows() {
  local n; n=$(sql "$BASEDB" "SELECT count(*) FROM $1")
  [ "$n" = "$2" ] || { fail "$W" "raw table $1 has $n rows, expected $2"; exit 1; }
}
check_raw_rows w4_raw_small "$H_SMALL"
check_raw_rows w4_raw_large "$H_LARGE"

# --- correctness: each window = the raw query over the same rows -----------
g_idx=0
for G in $GROUPS_LIST; do
  t_end=$(seg_end $g_idx)
  got=$(sql "$DB" "SELECT count(*) || ' ' || sum(n) || ' ' || min(window_start) FROM w4_g$g_idx")
  want="$G $((6 * G)) $(sql "$DB" "SELECT timestamptz '$t_end' - interval '1 minute'")"
  if [ "$got" != "$want" ]; then
    fail "$W" "window of $(hnum "$G") groups: groups, rows, start = $got; expected $want"
    exit 1
  fi
  g_idx=$((g_idx + 1))
done
check "$W" "each window has G groups, 6 G rows, and starts at its segment's minute" PASS ""

window_ms() { sql "$DB" "SELECT round(bench_exec_ms('SELECT * FROM $1', $READS)::numeric, 3)"; }
raw_ms() {  # table t_end
  sql "$BASEDB" "SET work_mem = '512MB'; SELECT round(bench_exec_ms(\$q\$SELECT k, $AGGS FROM $1
                   WHERE ts >= timestamptz '$2' - interval '1 minute' AND ts < timestamptz '$2'
                   GROUP BY k\$q\$, $READS)::numeric, 3)" | tail -n 1
}

for r in $(seq "$RUNS"); do
  log "W4 run $r/$RUNS"
  quiesce
  g_idx=0
  for G in $GROUPS_LIST; do
    t_end=$(seg_end $g_idx)
    ms=$(window_ms "w4_g$g_idx")
    rec "$W" "stream $(hnum "$G") groups" "$r" "$G" "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')" \
      "$(awk -v g="$G" -v m="$ms" 'BEGIN { printf "%.0f", g / (m / 1000) }')" read_ms "$ms"
    for side in small large; do
      if [[ " $([ $side = small ] && echo "$SEGS_SMALL" || echo "$SEGS_LARGE") " == *" $g_idx "* ]]; then
        hist=$([ $side = small ] && echo "$H_SMALL" || echo "$H_LARGE")
        ms=$(raw_ms "w4_raw_$side" "$t_end")
        rec "$W" "raw $(hnum "$hist") rows: $(hnum "$G") groups" "$r" "$G" \
          "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')" \
          "$(awk -v g="$G" -v m="$ms" 'BEGIN { printf "%.0f", g / (m / 1000) }')" read_ms "$ms"
      fi
    done
    g_idx=$((g_idx + 1))
  done
  for h in 1 2; do
    want=$([ $h = 1 ] && echo "$HIST1" || echo "$HIST2")
    ms=$(window_ms "w4_hist$h")
    rec "$W" "stream $(hnum "$G10K") groups after $(hnum "$want") rows" "$r" "$G10K" \
      "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')" \
      "$(awk -v g="$G10K" -v m="$ms" 'BEGIN { printf "%.0f", g / (m / 1000) }')" read_ms "$ms"
  done
done
check "$W" "history window: the last minute's groups and rows after $(hnum "$HIST1") and after $(hnum "$HIST2") streamed rows" PASS ""

for t in $(sql "$DB" "SELECT stream::text FROM rtstream.streams WHERE stream::text LIKE 'w4%'"); do
  drop_windows "$t"
done
