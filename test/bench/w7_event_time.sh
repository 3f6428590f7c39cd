#!/usr/bin/env bash
# W7 event time: what allowed_lateness and history cost, and what they
# replace.  COPY of N rows (ts, k, v; ts ascending over 5 minutes, 10k keys)
# from a file on disk, timed:
#   (a) into a plain heap table;
#   (b) into a stream with a tumbling 10-second event-time window (no
#       lateness, no history), until rtstream.sync() returns;
#   (c) the same with allowed_lateness => '30 seconds' and history => true,
#       until rtstream.sync() returns (which also waits for the history of
#       every closed window);
#   (d) by hand: COPY into a heap table, then INSERT INTO a summary table
#       SELECT date_bin('10 seconds', ts, 'epoch'), k, count(*), sum(v) ...
#       GROUP BY over the rows of the closed windows.
# Also the history latency of (c): from the moment its COPY returned until
# the last closed window is in the history table (a second session, started
# before the COPY, polls max(window_end)).  Each run does (a), (b), (c),
# (d).  Checks: after (b) and (c), the view and window_results() against
# the plain table of (a); right after (c)'s sync returned, every closed
# window is in the history; after (d), that history equals (d)'s GROUP BY,
# window by window and group by group.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W7

N=$(scaled 5000000 3000)          # rows per COPY
KEYS=10000
SPAN=300                          # seconds of event time, at every scale
T_START='2024-03-01 00:00:00+00'  # oldest event time, a window boundary
LATENESS='30 seconds'
POLL_S=0.005                      # pause between two polls of the history

# ts of row i (0 .. N-1): evenly spread, ascending, over [T_START, T_START + SPAN).
# The span does not scale: every scale closes the same 26 windows of 10 s
# (30 windows, the last 4 still open under the lateness of 30 s); the rows
# per window scale.
TS_EXPR="timestamptz '$T_START' + (i * ($SPAN.0 / $N)) * interval '1 s'"

WQUERY='SELECT k, count(*) AS n, sum(v) AS s FROM w7_s GROUP BY k'

FILE="$FILES/w7_events.dat"
log "W7: generating $N rows ($KEYS keys over $SPAN s of event time)"
sqlf "$BASEDB" >/dev/null <<SQL
SELECT setseed(0.5151);
COPY (SELECT $TS_EXPR, floor(random() * $KEYS)::int, random()
        FROM generate_series(0, $N - 1) i) TO '$FILE';
SQL

# Event times of the file: the newest; the watermark of (c) after sync (the
# newest - lateness); LAST_END, the end of the last window it closes (the
# rows of the closed windows are those before it); the start of the current
# window of the view (the one holding the newest time); the windows closed.
IFS='|' read -r NEWEST WM_C LAST_END CUR_START NCLOSED <<<"$(sql "$BASEDB" "
  SELECT t, t - interval '$LATENESS', e, date_bin('10 seconds', t, timestamptz 'epoch'),
         extract(epoch FROM e - timestamptz '$T_START')::int / 10
    FROM (SELECT t, date_bin('10 seconds', t - interval '$LATENESS', timestamptz 'epoch') AS e
            FROM (SELECT $TS_EXPR AS t FROM (SELECT $N - 1 AS i) x) y) z")"
ts() { echo "timestamptz '$1'"; }
log "W7: newest event time $NEWEST; (c) closes $NCLOSED windows, up to $LAST_END"

sqlf "$BASEDB" >/dev/null <<'SQL'
DROP TABLE IF EXISTS w7_plain, w7_raw, w7_sum;
CREATE TABLE w7_plain (ts timestamptz, k int, v float8);
-- (d) by hand: the raw rows, and the final per-window results
CREATE TABLE w7_raw (ts timestamptz, k int, v float8);
CREATE TABLE w7_sum (window_start timestamptz, window_end timestamptz, k int, n bigint, s float8);
SQL

sqlf "$DB" >/dev/null <<'SQL'
SELECT bench_drop_stream('w7_s');
DROP TABLE IF EXISTS w7_truth;
CREATE TABLE w7_s (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w7_s', partition_by => 'k');
-- (d)'s summary of the same run, copied here for the check
CREATE TABLE w7_truth (window_start timestamptz, window_end timestamptz, k int, n bigint, s float8);

-- Poll a history table until the window ending at last_end is in it; the
-- clock time (epoch) of the first poll that sees it, and the polls.
CREATE OR REPLACE FUNCTION w7_wait_history(hist regclass, last_end timestamptz, pause float8,
                                           timeout_s float8, OUT seen float8, OUT polls int)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  m timestamptz;
BEGIN
  polls := 0;
  LOOP
    polls := polls + 1;
    -- max(window_end) over the window ends of interest: an index range scan
    -- (the history table is indexed on window_end)
    EXECUTE format('SELECT max(window_end) FROM %s WHERE window_end >= $1', hist) INTO m USING last_end;
    EXIT WHEN m IS NOT NULL;
    IF clock_timestamp() - t0 > timeout_s * interval '1 s' THEN
      RAISE EXCEPTION 'the window ending at % not in % after % s (% polls)', last_end, hist, timeout_s, polls;
    END IF;
    PERFORM pg_sleep(pause);
  END LOOP;
  seen := extract(epoch FROM clock_timestamp());
END $$;
SQL

# A window's state after its run, for the log: shared memory and groups.
log_state() {
  log "  window $1 after sync: $(sql "$DB" "SELECT round(sum(memory_bytes) / 1048576.0, 1) || ' MB, ' || sum(groups) || ' groups'
                                           FROM rtstream.window_stats WHERE window_name = '$1'")"
}


# Rows of the current window (the view's), from the plain table of (a).
EXP_CUR=
exp_cur() {
  [ -n "$EXP_CUR" ] || EXP_CUR=$(sql "$BASEDB" "SELECT count(*) FROM w7_plain WHERE ts >= $(ts "$CUR_START")")
  echo "$EXP_CUR"
}

# After (b) or (c): the view holds the current window with every row of it,
# rtstream.window_results() every window still open with every row of them,
# every row was applied, none late (the file is in event-time order), none
# refused or failed, and the watermark is the newest event time - lateness.
check_window() {  # name watermark -> error text, empty if right
  local name=$1 wm=$2 expc expo nopen wm_end
  expc=$(exp_cur)
  # the open windows: those ending after the watermark, from the end of the
  # last closed one up to the current one
  IFS='|' read -r wm_end nopen expo <<<"$(sql "$BASEDB" "
    SELECT e, extract(epoch FROM $(ts "$CUR_START") - e)::int / 10 + 1,
           (SELECT count(*) FROM w7_plain WHERE ts >= e)
      FROM date_bin('10 seconds', $(ts "$wm"), timestamptz 'epoch') e")"
  sqlf "$DB" <<SQL
SELECT string_agg(msg, '; ') FROM (
  SELECT format('view %s: sum(n)=%s over [%s, %s), expected %s rows from %s',
                '$name', sum(n), min(window_start), max(window_end), $expc, $(ts "$CUR_START")) AS msg
    FROM $name
  HAVING sum(n) IS DISTINCT FROM $expc OR min(window_start) IS DISTINCT FROM $(ts "$CUR_START")
  UNION ALL
  SELECT format('window %s: %s rows applied, expected %s; %s late, %s refused groups; watermark %s, expected %s',
                window_name, sum(rows), $N, sum(late_rows), sum(refused_groups), max(watermark), $(ts "$wm"))
    FROM rtstream.window_stats WHERE window_name = '$name' GROUP BY window_name
  HAVING sum(rows) <> $N OR sum(late_rows) > 0 OR sum(refused_groups) > 0
      OR max(watermark) IS DISTINCT FROM $(ts "$wm") OR count(DISTINCT watermark) > 1
  UNION ALL
  SELECT format('%s failed batches or dead letters', $FAILED_SQL) WHERE $FAILED_SQL > 0
  UNION ALL
  -- with a lateness, the windows still open: rtstream.window_results()
  SELECT format('window_results(%s): sum(n)=%s in %s windows from %s, expected %s rows in %s windows from %s',
                '$name', sum(n), count(DISTINCT window_end), min(window_start), $expo, $nopen, $(ts "$wm_end"))
    FROM rtstream.window_results('$name', NULL::$name)
  HAVING sum(n) IS DISTINCT FROM $expo OR count(DISTINCT window_end) <> $nopen
      OR min(window_start) IS DISTINCT FROM $(ts "$wm_end")) c
SQL
}

# Right after (c)'s rtstream.sync() returned: every closed window is in the
# history (the last one ends at LAST_END), and closed_until says so.  Prints
# the history's row count, or an error text.
HIST_ROWS=
check_history_complete() {  # -> "rows" or "error: text"
  sqlf "$DB" <<SQL
SELECT CASE WHEN windows = $NCLOSED AND last_end = $(ts "$LAST_END") AND closed = $(ts "$LAST_END")
                 AND emitted = $(ts "$LAST_END")
            THEN rows::text
            ELSE format('error: history: %s rows, %s windows, last ending %s; expected %s windows up to %s; closed_until %s, history_progress.emitted_until %s',
                        rows, windows, last_end, $NCLOSED, $(ts "$LAST_END"), closed, emitted) END
  FROM (SELECT count(*) AS rows, count(DISTINCT window_end) AS windows, max(window_end) AS last_end
          FROM w7_hist_history) h,
       (SELECT max(closed_until) AS closed FROM rtstream.window_stats WHERE window_name = 'w7_hist') c,
       (SELECT max(p.emitted_until) AS emitted FROM rtstream.history_progress p
          JOIN rtstream.windows w ON w.id = p.window_id WHERE w.name = 'w7_hist') e
SQL
}

# After (d): (c)'s history, as it was when its sync returned (same row count),
# holds exactly the closed windows, each group once, with the values of (d)'s
# GROUP BY (float sums within a relative 1e-9: the order of the additions
# differs).  Prints an error text, empty if right.
check_history() {  # rows right after sync
  sqlf "$DB" <<SQL
SELECT string_agg(msg, '; ') FROM (
  SELECT format('history: %s rows (%s right after sync; %s windows, last ending %s, %s duplicate groups), GROUP BY of (d): %s rows (%s windows); %s rows differ (only in history %s, only in (d) %s, other values %s)',
                (SELECT count(*) FROM w7_hist_history), $1, (SELECT count(DISTINCT window_end) FROM w7_hist_history),
                (SELECT max(window_end) FROM w7_hist_history), dup,
                (SELECT count(*) FROM w7_truth), (SELECT count(DISTINCT window_end) FROM w7_truth),
                only_h + only_t + diff, only_h, only_t, diff) AS msg
    FROM (SELECT count(*) FILTER (WHERE t.window_start IS NULL) AS only_h,
                 count(*) FILTER (WHERE h.window_start IS NULL) AS only_t,
                 count(*) FILTER (WHERE h.window_start IS NOT NULL AND t.window_start IS NOT NULL
                                    AND (h.window_end IS DISTINCT FROM t.window_end OR h.n IS DISTINCT FROM t.n
                                         OR NOT abs(h.s - t.s) <= 1e-9 * greatest(abs(t.s), 1))) AS diff
            FROM w7_hist_history h
            FULL JOIN w7_truth t ON t.window_start = h.window_start AND t.k = h.k) m,
         (SELECT count(*) - count(DISTINCT (window_start, k)) AS dup FROM w7_hist_history) d
   WHERE only_h + only_t + diff + dup > 0
      OR (SELECT count(*) FROM w7_hist_history) <> $1
      OR (SELECT count(*) FROM w7_truth) = 0) c
SQL
}

run_baseline() {  # run
  local r=$1 out tc copy total
  sql "$BASEDB" 'TRUNCATE w7_plain' >/dev/null
  quiesce
  out=$(timed_copy "$BASEDB" w7_plain "$FILE" 0)
  read -r tc copy total <<<"${out//|/ }"
  rec "$W" "plain COPY (a)" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
}

run_byhand() {  # run
  local r=$1 out tc copy total bad
  sql "$BASEDB" 'TRUNCATE w7_raw, w7_sum' >/dev/null
  quiesce
  # work_mem as a DBA would set it for this query (as in W4): with the
  # default 4MB its hash aggregate of 260k groups spills to disk
  out=$(timed_copy "$BASEDB" w7_raw "$FILE" 0 "SET work_mem = '256MB';
INSERT INTO w7_sum
  SELECT date_bin('10 seconds', ts, timestamptz 'epoch'),
         date_bin('10 seconds', ts, timestamptz 'epoch') + interval '10 seconds', k, count(*), sum(v)
    FROM w7_raw WHERE ts < $(ts "$LAST_END") GROUP BY 1, 3;")
  read -r tc copy total <<<"${out//|/ }"
  rec "$W" "COPY + GROUP BY by hand (d)" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
  # (d)'s summary is the truth of (c)'s history, which is still there
  sql "$DB" 'TRUNCATE w7_truth' >/dev/null
  pq "$BASEDB" -c 'COPY w7_sum TO STDOUT' | pq "$DB" -c 'COPY w7_truth FROM STDIN'
  bad=$(check_history "$HIST_ROWS" 2>&1) || bad="the check query failed: ${bad//$'\n'/ }"
  if [ -n "$bad" ]; then
    fail "$W stream (c)" "wrong history after run $r: $bad"
    exit 1
  fi
}

run_tumble() {  # run
  local r=$1 out tc copy total bad
  drop_windows w7_s
  sql "$DB" "SELECT rtstream.create_window('w7_tumble', \$q\$$WQUERY\$q\$,
             size => '10 seconds', time_column => 'ts')" >/dev/null
  quiesce
  out=$(timed_copy "$DB" w7_s "$FILE" 1)
  read -r tc copy total <<<"${out//|/ }"
  bad=$(check_window w7_tumble "$NEWEST" 2>&1) || bad="the check query failed: ${bad//$'\n'/ }"
  if [ -n "$bad" ]; then
    fail "$W stream (b)" "wrong result after run $r: $bad"
    exit 1
  fi
  rec "$W" "stream tumbling 10 s (b)" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
  log_state w7_tumble
}

POLLER=
stop_poller() {
  if [ -n "$POLLER" ]; then
    sql "$DB" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'w7_poll'" \
      >/dev/null 2>&1 || true
    wait "$POLLER" 2>/dev/null || true
    POLLER=
  fi
}
trap stop_poller EXIT

run_history() {  # run
  local r=$1 out tc copy total bad i seen polls lat
  drop_windows w7_s
  sql "$DB" "SELECT rtstream.create_window('w7_hist', \$q\$$WQUERY\$q\$,
             size => '10 seconds', time_column => 'ts',
             allowed_lateness => '$LATENESS', history => true)" >/dev/null
  quiesce
  # the poller: a session of its own, started before the COPY (the history
  # cannot hold anything before the COPY commits)
  pq "dbname=$DB application_name=w7_poll" -F ' ' \
    -c "SELECT * FROM w7_wait_history('w7_hist_history', $(ts "$LAST_END"), $POLL_S, 600)" \
    >"$WORK/w7_poll_$r.out" 2>&1 &
  POLLER=$!
  for i in $(seq 100); do
    [ "$(sql "$DB" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'w7_poll' AND state = 'active'")" = 1 ] && break
    sleep 0.05
  done
  out=$(timed_copy "$DB" w7_s "$FILE" 1)
  read -r tc copy total <<<"${out//|/ }"
  # sync returned: every closed window must be in the history now
  bad=$(check_window w7_hist "$WM_C" 2>&1) || bad="the check query failed: ${bad//$'\n'/ }"
  if [ -z "$bad" ]; then
    HIST_ROWS=$(check_history_complete 2>&1) || HIST_ROWS="error: the check query failed: ${HIST_ROWS//$'\n'/ }"
    case $HIST_ROWS in error:*) bad=${HIST_ROWS#error: } ;; esac
  fi
  if [ -n "$bad" ]; then
    stop_poller
    fail "$W stream (c)" "wrong result after run $r (right after rtstream.sync() returned): $bad"
    exit 1
  fi
  if ! wait "$POLLER"; then
    POLLER=
    fail "$W history latency" "run $r: the poll of the history failed: $(tr '\n' ' ' <"$WORK/w7_poll_$r.out")"
    exit 1
  fi
  POLLER=
  read -r seen polls <"$WORK/w7_poll_$r.out"
  rec "$W" "stream + lateness 30 s + history (c)" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
  lat=$(awk -v a="$tc" -v b="$seen" 'BEGIN { printf "%.4f", b - a }')
  rec "$W" "history latency after COPY (c)" "$r" "$HIST_ROWS" "$lat" "$(rps "$HIST_ROWS" "$lat")" latency_ms \
    "$(awk -v s="$lat" 'BEGIN { printf "%.1f", s * 1000 }')"
  log_state w7_hist
  log "  history latency: $lat s ($polls polls, ${POLL_S} s apart); sync returned $(awk -v a="$total" -v b="$copy" \
        'BEGIN { printf "%.3f", a - b }') s after COPY"
}

for r in $(seq "$RUNS"); do
  log "W7 run $r/$RUNS"
  run_baseline "$r"
  run_tumble "$r"
  run_history "$r"
  run_byhand "$r"
done

check "$W" "every stream run: the view = the rows of the current window, window_results() = the rows of the open windows; every row applied, none late, refused or failed; watermark = newest - lateness" PASS \
  "$(exp_cur) rows from $CUR_START"
check "$W" "history of (c): every closed window in it when rtstream.sync() returned; = GROUP BY of (d), each group once" PASS \
  "$(sql "$DB" "SELECT count(*) || ' rows, ' || count(DISTINCT window_end) || ' windows' FROM w7_hist_history")"
drop_windows w7_s
sql "$BASEDB" 'TRUNCATE w7_plain, w7_raw, w7_sum' >/dev/null
