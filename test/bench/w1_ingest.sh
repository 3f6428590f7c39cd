#!/usr/bin/env bash
# W1 ingest: COPY of N rows (ts, k, v) from a file on disk into a stream with
# sliding windows, timed until rtstream.sync() returns, against the same COPY
# into (a) a plain heap table, (b) a table whose statement-level AFTER INSERT
# trigger upserts a per-key per-10-second summary, (c) a table whose row-level
# PL/pgSQL trigger does the same upsert (on fewer rows), and (f) the floor: a
# table whose BEFORE INSERT C trigger returns NULL (parsing alone; built from
# test/bench/floor).  The many-windows cases have 16 distinct windows (4 group
# keys x 4 shapes, mixed aggregates), each checked against plain SQL: with
# other aggregates for each shape ("distinct"), and with the same ones for
# the 4 shapes of a key ("sliced": stream slicing lets them share the
# partial aggregates of a large transaction).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W1

N=$(scaled 5000000 3000)          # rows per COPY
NC=$(scaled 200000 300)           # rows for the row-level trigger baseline
T_END='2024-01-01 00:03:00+00'    # newest event time (exclusive), a slide boundary
# Seconds of event time the rows are spread over: 3 minutes at scale 1, so
# the 1-minute window is full; scaled with the rows, so that the event-time
# density (rows per second of event time) is the same at every scale.
SPAN=$(awk -v s="$SCALE" 'BEGIN { v = 180 * s; if (v > 180) v = 180; printf "%.3f", v }')

# ts of row i (0 .. N-1): evenly spread, ascending, over [T_END - SPAN, T_END)
TS_EXPR="timestamptz '$T_END' - interval '$SPAN s' + (i * ($SPAN / $N)) * interval '1 s'"

WQUERY='SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi FROM w1_s GROUP BY k'

gen_file() {  # keys -> file of N rows, generated once per harness run
  local keys=$1 f="$FILES/w1_k$1.dat"
  if [ ! -s "$f" ]; then
    sqlf "$BASEDB" >/dev/null <<SQL
SELECT setseed(0.4242);
COPY (SELECT $TS_EXPR, floor(random() * $keys)::int, random()
        FROM generate_series(0, $N - 1) i) TO '$f';
SQL
  fi
  echo "$f"
}


log "W1: generating data files ($N rows each)"
F10K=$(gen_file 10000)
F100=$(gen_file 100)
F1M=$(gen_file 1000000)
FC="$FILES/w1_c.dat"
as_pg bash -c "head -n $NC '$F10K' > '$FC'"

sqlf "$BASEDB" >/dev/null <<'SQL'
DROP TABLE IF EXISTS w1_plain, w1_stmt, w1_stmt_sum, w1_row, w1_row_sum;
CREATE TABLE w1_plain (ts timestamptz, k int, v float8);

-- (b) what people write by hand: a statement trigger with a transition table
CREATE TABLE w1_stmt (ts timestamptz, k int, v float8);
CREATE TABLE w1_stmt_sum (k int, bucket timestamptz, n bigint, s float8, lo float8, hi float8,
                          PRIMARY KEY (k, bucket));
CREATE OR REPLACE FUNCTION w1_stmt_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO w1_stmt_sum AS t
  SELECT k, date_bin('10 seconds', ts, timestamptz 'epoch'), count(*), sum(v), min(v), max(v)
    FROM new_rows GROUP BY 1, 2
  ON CONFLICT (k, bucket) DO UPDATE
     SET n = t.n + excluded.n, s = t.s + excluded.s,
         lo = least(t.lo, excluded.lo), hi = greatest(t.hi, excluded.hi);
  RETURN NULL;
END $$;
CREATE TRIGGER w1_stmt_sum AFTER INSERT ON w1_stmt REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION w1_stmt_trg();

-- (c) the same upsert, row by row
CREATE TABLE w1_row (ts timestamptz, k int, v float8);
CREATE TABLE w1_row_sum (k int, bucket timestamptz, n bigint, s float8, lo float8, hi float8,
                         PRIMARY KEY (k, bucket));
CREATE OR REPLACE FUNCTION w1_row_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO w1_row_sum AS t
  VALUES (NEW.k, date_bin('10 seconds', NEW.ts, timestamptz 'epoch'), 1, NEW.v, NEW.v, NEW.v)
  ON CONFLICT (k, bucket) DO UPDATE
     SET n = t.n + 1, s = t.s + excluded.s,
         lo = least(t.lo, excluded.lo), hi = greatest(t.hi, excluded.hi);
  RETURN NULL;
END $$;
CREATE TRIGGER w1_row_sum AFTER INSERT ON w1_row FOR EACH ROW EXECUTE FUNCTION w1_row_trg();
SQL

# (f) the floor trigger, a C module of its own
FLOOR=0
if make -s -C "$HERE/floor" PG_CONFIG="$PGBIN/pg_config" >/dev/null 2>&1 &&
   make -s -C "$HERE/floor" PG_CONFIG="$PGBIN/pg_config" install >/dev/null 2>&1; then
  sqlf "$BASEDB" >/dev/null <<'SQL'
DROP TABLE IF EXISTS w1_floor;
CREATE TABLE w1_floor (ts timestamptz, k int, v float8);
CREATE OR REPLACE FUNCTION w1_null_trigger() RETURNS trigger
  AS 'rtstream_bench_floor', 'rtstream_bench_null_trigger' LANGUAGE C;
CREATE TRIGGER w1_floor BEFORE INSERT ON w1_floor FOR EACH ROW EXECUTE FUNCTION w1_null_trigger();
SQL
  FLOOR=1
else
  log "W1: could not build test/bench/floor (needs root and the server headers): no floor figure"
fi

sqlf "$DB" >/dev/null <<'SQL'
SELECT bench_drop_stream('w1_s');
CREATE TABLE w1_s (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w1_s', partition_by => 'k');
SQL

# Truth for the correctness check: rows of the last window [T_END - 1 min, T_END).
EXPECT=$(sql "$BASEDB" "SELECT count(*) FROM generate_series(0, $N - 1) i
                         WHERE $TS_EXPR >= timestamptz '$T_END' - interval '1 minute'")
EXP_START=$(sql "$BASEDB" "SELECT timestamptz '$T_END' - interval '1 minute'")
log "W1: $EXPECT of $N rows fall in the last window (from $EXP_START)"

run_baseline() {  # run variant table file rows
  local r=$1 v=$2 table=$3 file=$4 rows=$5 out copy total
  sql "$BASEDB" "TRUNCATE $table${6:+, $6}" >/dev/null
  quiesce
  out=$(timed_copy "$BASEDB" "$table" "$file" 0)
  read -r _ copy total <<<"${out//|/ }"
  if [ "$table" = w1_row ]; then
    # also the time it would take for N rows at this rate
    rec "$W" "$v" "$r" "$rows" "$total" "$(rps "$rows" "$total")" est_s_for_N \
      "$(awk -v n="$N" -v r="$rows" -v s="$total" 'BEGIN { printf "%.1f", s * n / r }')"
  else
    rec "$W" "$v" "$r" "$rows" "$total" "$(rps "$rows" "$total")" copy_s "$copy"
  fi
}

# Check every window of w1_s after a run: the counts add up to the rows of
# the window's time range, nothing late, refused or failed.
check_stream() {
  local nwin=$1 bad
  bad=$(sqlf "$DB" 2>&1 <<SQL
SELECT string_agg(msg, '; ') FROM (
  SELECT format('window %s: sum(n)=%s, expected %s; window_start %s, expected %s',
                name, bench_sum(name, 'n'), $EXPECT, bench_window_start(name), '$EXP_START') AS msg
    FROM rtstream.windows WHERE stream = 'w1_s'::regclass
     AND (bench_sum(name, 'n') IS DISTINCT FROM $EXPECT
          OR bench_window_start(name) IS DISTINCT FROM '$EXP_START')
  UNION ALL
  SELECT format('%s windows, expected %s', count(*), $nwin) FROM rtstream.windows
   WHERE stream = 'w1_s'::regclass HAVING count(*) <> $nwin
  UNION ALL
  SELECT format('window %s: %s rows applied, expected %s; %s late, %s refused groups',
                window_name, sum(rows), $N, sum(late_rows), sum(refused_groups))
    FROM rtstream.window_stats GROUP BY window_name
  HAVING sum(rows) <> $N OR sum(late_rows) > 0 OR sum(refused_groups) > 0
  UNION ALL
  SELECT format('%s failed batches or dead letters', $FAILED_SQL) WHERE $FAILED_SQL > 0) c
SQL
) || { echo "the check query failed: ${bad//$'\n'/ }"; return 1; }
  if [ -n "$bad" ]; then
    echo "$bad"
    return 1
  fi
}

run_stream() {  # run variant nwin file
  local r=$1 v=$2 nwin=$3 file=$4 out copy total i bad
  drop_windows w1_s
  for i in $(seq "$nwin"); do
    sql "$DB" "SELECT rtstream.create_window('w1_w$i', \$q\$$WQUERY\$q\$,
               size => '1 minute', slide => '10 seconds', time_column => 'ts')" >/dev/null
  done
  quiesce
  wal_start
  out=$(timed_copy "$DB" w1_s "$file" 1)
  wal_stop "$W" "$v" "$r"
  read -r _ copy total <<<"${out//|/ }"
  if ! bad=$(check_stream "$nwin"); then
    fail "$W $v" "wrong result after run $r: $bad"
    exit 1
  fi
  rec "$W" "$v" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
}

# 16 distinct windows: 4 group keys (a column, two expressions, none) x 4
# shapes (sliding, tumbling, short, long), each with its own aggregates.
D16_KEYS=('k' 'k % 100' '(v * 10)::int' '')
D16_SHAPES=("size => '1 minute', slide => '10 seconds'" "size => '10 seconds'"
            "size => '10 seconds', slide => '2 seconds'" "size => '1 hour', slide => '5 minutes'")
D16_AGGS=('count(*) AS n, sum(v) AS s' 'count(*) AS n, avg(v) AS a, max(v) AS hi'
          'count(*) AS n, min(v) AS lo, sum(k) AS sk' 'count(*) AS n, stddev(v) AS sd')

# The truth of the distinct windows: the rows of the file in a plain table of
# the same database, loaded once, untimed.
sqlf "$DB" >/dev/null <<SQL
DROP TABLE IF EXISTS w1_truth;
CREATE TABLE w1_truth (ts timestamptz, k int, v float8);
COPY w1_truth FROM '$F10K';
SQL

# Each window's current groups against its query over the truth rows of its
# [window_start, window_end): counts equal, other values within 1e-9
# (floating-point sums in another order); prints the windows that differ.
check_distinct16() {
  sqlf "$DB" <<'SQL'
DO $$
DECLARE w record; bad text := ''; n bigint; cols text; keyed boolean;
BEGIN
  FOR w IN SELECT name, query FROM rtstream.windows WHERE stream = 'w1_s'::regclass ORDER BY id LOOP
    keyed := w.query LIKE '%GROUP BY%';
    EXECUTE format($q$
      WITH b AS (SELECT min(window_start) AS ws, max(window_end) AS we FROM %1$I),
           v AS (SELECT * FROM %1$I),
           t AS (%2$s)
      SELECT count(*) FROM (SELECT * FROM v) v FULL JOIN t ON %3$s
       WHERE v.n IS NULL OR t.n IS NULL OR v.n <> t.n
          OR EXISTS (SELECT 1 FROM jsonb_each(to_jsonb(v) - 'window_start' - 'window_end') a
                       JOIN jsonb_each(to_jsonb(t)) c USING (key)
                      WHERE jsonb_typeof(c.value) = 'number'
                        AND abs((a.value #>> '{}')::float8 - (c.value #>> '{}')::float8)
                            > 1e-9 * greatest(1, abs((c.value #>> '{}')::float8)))$q$,
      w.name,
      replace(w.query, 'FROM w1_s',
              'FROM (SELECT w1_truth.* FROM w1_truth, b WHERE ts >= b.ws AND ts < b.we) w1_s'),
      CASE WHEN keyed THEN 'v.g = t.g' ELSE 'true' END) INTO n;
    IF n > 0 THEN bad := bad || format('window %s: %s groups differ from plain SQL; ', w.name, n); END IF;
  END LOOP;
  IF bad <> '' THEN RAISE EXCEPTION '%', bad; END IF;
END $$;
SQL
}

run_distinct16() {  # run variant distinct|sliced
  local r=$1 v=$2 mode=$3 out copy total i bad q aggs
  drop_windows w1_s
  i=0
  for ki in 0 1 2 3; do
    for si in 0 1 2 3; do
      i=$((i + 1))
      # distinct: the aggregates go with the shape, so no two windows of a
      # key have the same; sliced: with the key, so its 4 shapes do
      if [ "$mode" = sliced ]; then aggs=${D16_AGGS[$ki]}; else aggs=${D16_AGGS[$si]}; fi
      if [ -n "${D16_KEYS[$ki]}" ]; then
        q="SELECT ${D16_KEYS[$ki]} AS g, $aggs FROM w1_s GROUP BY 1"
      else
        q="SELECT $aggs FROM w1_s"
      fi
      sql "$DB" "SELECT rtstream.create_window('w1_d$i', \$q\$$q\$q\$, ${D16_SHAPES[$si]}, time_column => 'ts')" >/dev/null
    done
  done
  quiesce
  wal_start
  out=$(timed_copy "$DB" w1_s "$F10K" 1)
  wal_stop "$W" "$v" "$r"
  read -r _ copy total <<<"${out//|/ }"
  if ! bad=$(check_distinct16 2>&1); then
    fail "$W $v" "wrong result after run $r: ${bad//$'\n'/ }"
    exit 1
  fi
  bad=$(sql "$DB" "SELECT string_agg(format('window %s: %s rows, %s late, %s refused', window_name, r, l, g), '; ')
                     FROM (SELECT window_name, sum(rows) AS r, sum(late_rows) AS l, sum(refused_groups) AS g
                             FROM rtstream.window_stats WHERE window_name LIKE 'w1_d%' GROUP BY window_name) s
                    WHERE r <> $N OR l > 0 OR g > 0")
  if [ -n "$bad" ]; then
    fail "$W $v" "after run $r: $bad"
    exit 1
  fi
  rec "$W" "$v" "$r" "$N" "$total" "$(rps "$N" "$total")" copy_s "$copy"
}

for r in $(seq "$RUNS"); do
  log "W1 run $r/$RUNS"
  run_baseline "$r" "plain COPY (a)" w1_plain "$F10K" "$N"
  [ "$FLOOR" = 1 ] && run_baseline "$r" "floor: C trigger returning NULL (f)" w1_floor "$F10K" "$N"
  run_baseline "$r" "stmt trigger (b)" w1_stmt "$F10K" "$N" w1_stmt_sum
  run_baseline "$r" "row trigger (c)" w1_row "$FC" "$NC" w1_row_sum
  run_stream "$r" "stream 1 win/10k keys" 1 "$F10K"
  run_stream "$r" "stream 4 win/10k keys" 4 "$F10K"
  run_distinct16 "$r" "stream 16 distinct win/10k keys" distinct
  run_distinct16 "$r" "stream 16 sliced win/10k keys" sliced
  run_stream "$r" "stream 1 win/100 keys" 1 "$F100"
  run_stream "$r" "stream 1 win/1M keys" 1 "$F1M"
done

check "$W" "every stream run: sum(n) of each window = rows of its time range; no late, refused or failed" PASS \
  "$EXPECT rows in [$EXP_START, $T_END)"

# The baseline (b) summarises the same rows: cross-check it with the window.
x=$(sql "$BASEDB" "SELECT sum(n) FROM w1_stmt_sum WHERE bucket >= timestamptz '$EXP_START'")
if [ "$x" = "$EXPECT" ]; then
  check "$W" "statement-trigger summary agrees with the window" PASS "$x rows"
else
  check "$W" "statement-trigger summary agrees with the window" FAIL "$x rows, window $EXPECT"
fi
drop_windows w1_s

# Untimed check: an in-order COPY at a low event-time density (NS rows over
# 3 minutes, 10k keys, one window). Every row is in event-time order in the
# file, so none may be counted late.
NS=100000
FS="$FILES/w1_sparse.dat"
SPARSE_TS="timestamptz '$T_END' - interval '180 s' + (i * (180.0 / $NS)) * interval '1 s'"
sqlf "$BASEDB" >/dev/null <<SQL
SELECT setseed(0.77);
COPY (SELECT $SPARSE_TS, floor(random() * 10000)::int, random() FROM generate_series(0, $NS - 1) i) TO '$FS';
SQL
EXP_SPARSE=$(sql "$BASEDB" "SELECT count(*) FROM generate_series(0, $NS - 1) i
                             WHERE $SPARSE_TS >= timestamptz '$EXP_START'")
drop_windows w1_s
sql "$DB" "SELECT rtstream.create_window('w1_sparse', \$q\$$WQUERY\$q\$,
           size => '1 minute', slide => '10 seconds', time_column => 'ts')" >/dev/null
settle
sql "$DB" "COPY w1_s FROM '$FS'" >/dev/null
settle
got=$(sql "$DB" "SELECT coalesce(bench_sum('w1_sparse', 'n'), 0) || ' ' ||
                        (SELECT sum(late_rows) FROM rtstream.window_stats WHERE window_name = 'w1_sparse')")
read -r got_n got_late <<<"$got"
drop_windows w1_s
what="in-order COPY of $(hnum $NS) rows over 3 min (10k keys, one window)"
if [ "$got_n" != "$EXP_SPARSE" ]; then
  check "$W" "$what: window count = rows in range" FAIL "sum(n)=$got_n, expected $EXP_SPARSE"
  fail "$W check" "$what: window sum(n)=$got_n, expected $EXP_SPARSE"
  exit 1
fi
check "$W" "$what: window count = rows in range" PASS "$got_n rows"
if [ "$got_late" = 0 ]; then
  check "$W" "$what: no row counted late" PASS ""
else
  # Not a wrong window (rows of the current window are never late), but the
  # counter says rows were late that were in order: see README.md.
  check "$W" "$what: no row counted late" WARN \
    "$got_late of $NS in-order rows counted late (dropped from windows that had already passed)"
fi
sql "$BASEDB" 'TRUNCATE w1_plain, w1_stmt, w1_stmt_sum, w1_row, w1_row_sum' >/dev/null
[ "$FLOOR" = 1 ] && sql "$BASEDB" 'TRUNCATE w1_floor' >/dev/null
sql "$DB" 'DROP TABLE IF EXISTS w1_truth' >/dev/null
