#!/usr/bin/env bash
# W2 many writers: pgbench, 8 clients, transactions of 1 row and of 100 rows,
# into a stream (one sliding window over 10k keys, event time = now()) and
# into a plain heap table; tps and the ratio stream / plain.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W2

CLIENTS=8
THREADS=2
DUR=$(scaled 20 3)     # seconds per pgbench run

sqlf "$DB" >/dev/null <<'SQL'
SELECT bench_drop_stream('w2_s');
CREATE TABLE w2_s (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w2_s', partition_by => 'k');
SELECT rtstream.create_window('w2_w',
  $q$SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi FROM w2_s GROUP BY k$q$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
SQL
sqlf "$BASEDB" >/dev/null <<'SQL'
DROP TABLE IF EXISTS w2_plain;
CREATE TABLE w2_plain (ts timestamptz, k int, v float8);
SQL

for t in w2_s w2_plain; do
  as_pg tee "$FILES/${t}_1.sql" >/dev/null <<SQL
\\set k random(0, 9999)
INSERT INTO $t (ts, k, v) VALUES (now(), :k, random());
SQL
  as_pg tee "$FILES/${t}_100.sql" >/dev/null <<SQL
INSERT INTO $t (ts, k, v) SELECT now(), (random() * 9999)::int, random() FROM generate_series(1, 100);
SQL
done

applied() { sql "$DB" "SELECT coalesce(sum(rows), 0) FROM rtstream.window_stats WHERE window_name = 'w2_w'"; }

bench() {  # run rows_per_txn target
  local r=$1 n=$2 target=$3 db table out txns tps failed t0 catchup=0 before after late v
  if [ "$target" = stream ]; then db=$DB table=w2_s; else db=$BASEDB table=w2_plain; fi
  [ "$target" = plain ] && sql "$BASEDB" 'TRUNCATE w2_plain' >/dev/null
  quiesce
  [ "$target" = stream ] && before=$(applied) && wal_start
  out=$(as_pg "$PGBIN/pgbench" -h "$SOCKDIR" -p "$PORT" -n -M prepared -c "$CLIENTS" -j "$THREADS" \
          -T "$DUR" -f "$FILES/${table}_$n.sql" "$db" 2>&1) || { echo "$out" >&2; return 1; }
  txns=$(echo "$out" | awk -F': ' '/number of transactions actually processed/ { split($2, a, "/"); print a[1] }')
  failed=$(echo "$out" | awk -F': ' '/number of failed transactions/ { split($2, a, " "); print a[1] }')
  tps=$(echo "$out" | awk '/^tps = / { print $3 }' | tail -n 1)
  if [ -z "$txns" ] || [ -z "$tps" ]; then echo "$out" >&2; return 1; fi
  if [ "${failed:-0}" != 0 ]; then
    fail "$W" "$failed failed pgbench transactions into $target"
    exit 1
  fi
  v="$target $n-row txn"
  if [ "$target" = stream ]; then
    # the writers are done: how long until the window has applied everything
    t0=$(date +%s.%N)
    settle
    wal_stop "$W" "$target $n-row txn" "$r"
    catchup=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    after=$(applied)
    late=$(sql "$DB" "SELECT sum(late_rows) + sum(refused_groups) FROM rtstream.window_stats WHERE window_name = 'w2_w'")
    if [ $((after - before)) -ne $((txns * n)) ] || [ "$late" != 0 ]; then
      fail "$W $v" "run $r: the window applied $((after - before)) rows, pgbench committed $((txns * n)); $late late or refused"
      exit 1
    fi
  fi
  # seconds: the pgbench run, plus (stream) the wait until everything is applied
  rec "$W" "$v" "$r" $((txns * n)) \
    "$(awk -v d="$DUR" -v c="$catchup" 'BEGIN { printf "%.3f", d + c }')" \
    "$(awk -v x="$txns" -v n="$n" -v d="$DUR" -v c="$catchup" 'BEGIN { printf "%.0f", x * n / (d + c) }')" \
    tps "$tps"
}

for r in $(seq "$RUNS"); do
  log "W2 run $r/$RUNS"
  for n in 1 100; do
    bench "$r" "$n" plain
    bench "$r" "$n" stream
  done
done
check "$W" "every stream run: rows applied by the window = rows committed by pgbench; none late" PASS ""
drop_windows w2_s
