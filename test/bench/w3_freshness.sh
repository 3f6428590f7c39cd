#!/usr/bin/env bash
# W3 freshness: a steady load of ~50k rows/s (pgbench --rate, 500-row
# transactions) into a stream, while a probe session inserts a marker row
# with a unique key, commits, and then polls a window view in a tight loop
# until the marker's group appears.  Latency = first poll that sees the
# marker - the moment COMMIT returned.  Two probes, one after the other:
#   marker window: a window of the same stream whose WHERE keeps only the
#       markers (k < 0), so a poll costs microseconds and the figure is the
#       pipeline's delay (WAL -> router -> worker -> shared memory);
#   load window:   the loaded 10k-group window itself, polled by key
#       (WHERE k = marker: a key lookup, which reads one group);
#   load window, whole read: the same window, every poll reading all 10k
#       groups and filtering after (a MATERIALIZED CTE keeps the key from
#       the read), so the figure includes that read cost.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W3

PROBES=$(scaled 200 20)
RATE=100              # load transactions per second
ROWS_PER_TXN=500      # -> 50k rows/s
TIMEOUT_S=5           # a marker not seen within this is a lost row

sqlf "$DB" >/dev/null <<'SQL'
SELECT bench_drop_stream('w3_s');
DROP TABLE IF EXISTS w3_probes;
CREATE TABLE w3_s (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w3_s', partition_by => 'k');
SELECT rtstream.create_window('w3_load',
  $q$SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi FROM w3_s GROUP BY k$q$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
SELECT rtstream.create_window('w3_marks',
  $q$SELECT k, count(*) AS n FROM w3_s WHERE k < 0 GROUP BY k$q$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
CREATE UNLOGGED TABLE w3_probes (run int, target text, i int, commit_ms float8,
                                 latency_ms float8, polls int);

-- One probe session: insert a marker, COMMIT, poll until it is visible.
-- Results stay in variables until the end, so the probe writes nothing else.
CREATE OR REPLACE PROCEDURE w3_probe(run int, target text, n int, key0 int, timeout_s float8)
LANGUAGE plpgsql AS $$
DECLARE
  mk int;
  t_ins timestamptz;
  t_commit timestamptz;
  t_seen timestamptz;
  polls int;
  lat float8[] := '{}';
  cms float8[] := '{}';
  pls int[] := '{}';
BEGIN
  FOR i IN 1 .. n LOOP
    mk := -(key0 + i);
    t_ins := clock_timestamp();
    INSERT INTO w3_s (ts, k, v) VALUES (clock_timestamp(), mk, 0);
    COMMIT;
    t_commit := clock_timestamp();
    polls := 0;
    LOOP
      polls := polls + 1;
      IF target = 'w3_marks' THEN
        PERFORM 1 FROM w3_marks WHERE k = mk;
      ELSIF target = 'w3_load' THEN
        PERFORM 1 FROM w3_load WHERE k = mk;
      ELSE
        PERFORM 1 FROM (WITH a AS MATERIALIZED (SELECT * FROM w3_load) SELECT 1 FROM a WHERE k = mk) x;
      END IF;
      EXIT WHEN FOUND;
      IF clock_timestamp() - t_commit > timeout_s * interval '1 s' THEN
        RAISE EXCEPTION 'marker % not visible in % after % s (% polls)', mk, target, timeout_s, polls;
      END IF;
    END LOOP;
    t_seen := clock_timestamp();
    lat := lat || extract(epoch FROM t_seen - t_commit) * 1000;
    cms := cms || extract(epoch FROM t_commit - t_ins) * 1000;
    pls := pls || polls;
    COMMIT;
    -- a pause that does not lock step with the load
    PERFORM pg_sleep(0.02 + random() * 0.03);
  END LOOP;
  INSERT INTO w3_probes SELECT run, target, g, cms[g], lat[g], pls[g] FROM generate_series(1, n) g;
END $$;
SQL

as_pg tee "$FILES/w3_load.sql" >/dev/null <<SQL
INSERT INTO w3_s (ts, k, v) SELECT now(), (random() * 9999)::int, random() FROM generate_series(1, $ROWS_PER_TXN);
SQL

rows_in() { sql "$DB" "SELECT coalesce(sum(rows), 0) FROM rtstream.stats WHERE process <> 'router'"; }

PGB=
# pgbench runs in a session of its own: stopping it is one signal to its group
stop_load() {
  if [ -n "$PGB" ]; then
    kill -TERM -- "-$PGB" 2>/dev/null || true
    wait "$PGB" 2>/dev/null || true
    PGB=
  fi
}
trap stop_load EXIT

for r in $(seq "$RUNS"); do
  log "W3 run $r/$RUNS: load $((RATE * ROWS_PER_TXN)) rows/s, $PROBES probes per target"
  quiesce
  setsid "${AS_PG[@]}" "$PGBIN/pgbench" -h "$SOCKDIR" -p "$PORT" -n -M prepared -c 2 -j 1 -R "$RATE" -T 3600 \
    -f "$FILES/w3_load.sql" "$DB" >"$WORK/w3_pgbench_$r.log" 2>&1 &
  PGB=$!
  sleep 3   # the load reaches its steady state
  for target in w3_marks w3_load w3_load_whole; do
    n0=$(rows_in); t0=$(date +%s.%N)
    if ! err=$(sql "$DB" "CALL w3_probe($r, '$target', $PROBES, $((r * 1000000 + ${#target} * 10000)), $TIMEOUT_S)" 2>&1); then
      stop_load
      fail "$W" "run $r, $target: ${err//$'\n'/ }"
      exit 1
    fi
    t1=$(date +%s.%N); n1=$(rows_in)
    kill -0 "$PGB" 2>/dev/null || { fail "$W" "the pgbench load stopped: $(tail -n 3 "$WORK/w3_pgbench_$r.log")"; exit 1; }
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    load=$(awk -v n=$((n1 - n0)) -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    case $target in
      w3_marks) v="marker window" ;;
      w3_load) v="load window (10k groups)" ;;
      *) v="load window (10k groups) whole read" ;;
    esac
    stats=$(sql "$DB" "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 3) || ' ' ||
                              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 3) || ' ' ||
                              round(max(latency_ms)::numeric, 3) || ' ' || round(avg(polls)::numeric, 1) || ' ' ||
                              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY commit_ms)::numeric, 3)
                         FROM w3_probes WHERE run = $r AND target = '$target'")
    read -r p50 p99 pmax polls commit <<<"$stats"
    rec "$W" "$v p50" "$r" "$PROBES" "$secs" "$load" latency_ms "$p50"
    rec "$W" "$v p99" "$r" "$PROBES" "$secs" "$load" latency_ms "$p99"
    rec "$W" "$v max" "$r" "$PROBES" "$secs" "$load" latency_ms "$pmax"
    log "  $v: mean polls per probe $polls, median insert+commit $commit ms"
  done
  stop_load
done
settle
bad=$(sql "$DB" "SELECT sum(late_rows) + sum(refused_groups) + $FAILED_SQL FROM rtstream.stats WHERE process <> 'router'")
if [ "$bad" != 0 ]; then
  fail "$W" "$bad rows late, refused or failed under the steady load"
  exit 1
fi
check "$W" "every marker became visible (within ${TIMEOUT_S} s); no row late, refused or failed" PASS ""
sql "$DB" "COPY (SELECT run, target, i, round(commit_ms::numeric, 3) AS commit_ms, round(latency_ms::numeric, 3) AS latency_ms, polls
                  FROM w3_probes ORDER BY run, target, i) TO STDOUT WITH (FORMAT csv, HEADER)" >"$OUT/w3_probes.csv"
drop_windows w3_s
