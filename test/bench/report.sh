#!/usr/bin/env bash
# Summary of a benchmark run: reads out/results.csv, out/failures.csv and
# out/checks.csv, computes the medians and the run-by-run ratios (in SQL, on
# the benchmark's server, which run.sh still has up), writes out/summary.csv
# and out/table.txt, prints the table and draws out/chart.png.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

# labels of the W4 raw tables, as w4_read.sh names them
HS=$(hnum "$(scaled 1000000 1000)")
HL=$(hnum "$(scaled 10000000 10000)")

sqlf "$BASEDB" >/dev/null <<'SQL'
DROP TABLE IF EXISTS bench_res, bench_fail, bench_check;
CREATE TABLE bench_res (id bigserial, workload text, variant text, run int, rows bigint,
                        seconds float8, rows_per_s float8, extra_name text, extra_value float8);
CREATE TABLE bench_fail (id bigserial, workload text, reason text);
CREATE TABLE bench_check (id bigserial, workload text, chk text, status text, detail text);
SQL
pq "$BASEDB" -c "COPY bench_res (workload, variant, run, rows, seconds, rows_per_s, extra_name, extra_value)
                 FROM STDIN WITH (FORMAT csv, HEADER)" <"$OUT/results.csv"
pq "$BASEDB" -c "COPY bench_fail (workload, reason) FROM STDIN WITH (FORMAT csv, HEADER)" <"$OUT/failures.csv"
pq "$BASEDB" -c "COPY bench_check (workload, chk, status, detail) FROM STDIN WITH (FORMAT csv, HEADER)" <"$OUT/checks.csv"

sqlf "$BASEDB" -v hs="$HS" -v hl="$HL" >/dev/null <<'SQL'
DROP TABLE IF EXISTS bench_summary;
CREATE TABLE bench_summary AS
WITH f AS (
  SELECT id, workload, variant, run, rows, seconds, rows_per_s, extra_name, extra_value,
         CASE WHEN workload IN ('W1', 'W6') THEN rows_per_s
              WHEN workload = 'W7' AND extra_name <> 'latency_ms' THEN rows_per_s
              WHEN workload = 'W9' AND extra_name = 'copy_s' THEN rows_per_s
              WHEN workload = 'W8' THEN seconds
              ELSE extra_value END AS fig,
         substring(variant FROM '(\S+) groups') AS glabel
    FROM bench_res),
r AS (
  SELECT f.*,
    CASE
      WHEN workload = 'W1' AND variant <> 'plain COPY (a)' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W1' AND x.variant = 'plain COPY (a)' AND x.run = f.run)
      WHEN workload = 'W2' AND variant LIKE 'stream %' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W2' AND x.variant = replace(f.variant, 'stream ', 'plain ') AND x.run = f.run)
      WHEN workload = 'W4' AND variant LIKE 'stream %' THEN
        (SELECT x.fig FROM f x WHERE x.workload = 'W4' AND x.variant = 'raw ' || :'hs' || ' rows: ' || f.glabel || ' groups' AND x.run = f.run) / fig
      WHEN workload = 'W6' AND variant LIKE 'stream %' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W6' AND x.variant = replace(f.variant, 'stream q5+q7', 'plain COPY bids') AND x.run = f.run)
      WHEN workload = 'W7' AND extra_name <> 'latency_ms' AND variant <> 'plain COPY (a)' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W7' AND x.variant = 'plain COPY (a)' AND x.run = f.run)
      -- W9: distributed / local (rows/s: < 1 is slower; read latency: > 1 is slower)
      WHEN workload = 'W9' AND variant LIKE 'ingest coordinator %' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W9' AND x.variant = 'ingest local stream (a)' AND x.run = f.run)
      WHEN workload = 'W9' AND variant LIKE 'read coordinator %' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W9' AND x.run = f.run
                  AND x.variant = 'read local window (c) ' || substring(f.variant FROM '\S+$'))
      -- W8: seconds until sync() after -m immediate / the same with no backlog (> 1: slower)
      WHEN workload = 'W8' AND rows > 0 THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W8' AND x.variant = 'restart without backlog (a)' AND x.run = f.run)
    END AS r1,
    CASE
      WHEN workload = 'W1' AND variant NOT IN ('plain COPY (a)', 'stmt trigger (b)') THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W1' AND x.variant = 'stmt trigger (b)' AND x.run = f.run)
      WHEN workload = 'W4' AND variant LIKE 'stream %' THEN
        (SELECT x.fig FROM f x WHERE x.workload = 'W4' AND x.variant = 'raw ' || :'hl' || ' rows: ' || f.glabel || ' groups' AND x.run = f.run) / fig
      WHEN workload = 'W7' AND variant LIKE 'stream + lateness%(c)' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W7' AND x.variant LIKE 'stream tumbling%(b)' AND x.run = f.run)
      WHEN workload = 'W9' AND variant LIKE 'read coordinator 3 nodes%' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W9' AND x.run = f.run
                  AND x.variant = 'read coordinator 1 node (d) ' || substring(f.variant FROM '\S+$'))
      -- W8: extra seconds per 1M rows of backlog, over the no-backlog restart
      WHEN workload = 'W8' AND rows > 0 THEN
        (fig - (SELECT x.fig FROM f x WHERE x.workload = 'W8' AND x.variant = 'restart without backlog (a)' AND x.run = f.run))
        / rows * 1e6
    END AS r2,
    CASE
      WHEN workload = 'W7' AND variant LIKE 'stream + lateness%(c)' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W7' AND x.variant LIKE '%by hand (d)' AND x.run = f.run)
      WHEN workload = 'W1' AND variant LIKE 'stream %' THEN
        fig / (SELECT x.fig FROM f x WHERE x.workload = 'W1' AND x.variant = 'floor: C trigger returning NULL (f)' AND x.run = f.run)
    END AS r3
  FROM f),
agg AS (
  SELECT workload, variant, min(id) AS ord, count(*) AS runs,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY fig) AS fig,
         min(fig) AS fig_min, max(fig) AS fig_max,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r1) AS r1,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r2) AS r2,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r3) AS r3,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY rows_per_s) AS rps,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS secs,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extra_value) AS extra,
         min(extra_name) AS extra_name
    FROM r GROUP BY workload, variant),
targets (workload, variant, txt, on_what, op, thr) AS (VALUES
  ('W1', 'stream 1 win/10k keys', '>=1.05x (a)', 'r1', '>=', 1.05),
  ('W1', 'stream 16 distinct win/10k keys', '>=0.8x (a)', 'r1', '>=', 0.8),
  ('W2', 'stream 1-row txn', '>= plain tps', 'r1', '>=', 1),
  ('W2', 'stream 100-row txn', '>= plain tps', 'r1', '>=', 1),
  ('W3', 'marker window p99', '<= 10 ms', 'fig', '<=', 10),
  ('W3', 'marker window max', '<= 100 ms', 'fig', '<=', 100),
  ('W3', 'load window (10k groups) p99', '<= 10 ms', 'fig', '<=', 10),
  ('W3', 'load window (10k groups) max', '<= 100 ms', 'fig', '<=', 100),
  ('W4', 'stream 10k groups', '<= 2 ms', 'fig', '<=', 2),
  ('W4', 'stream 10k groups after 1M rows', '<= 2 ms', 'fig', '<=', 2),
  ('W4', 'stream 10k groups after 10M rows', '<= 2 ms', 'fig', '<=', 2),
  ('W4', 'stream 1M groups', '<= 1 s', 'fig', '<=', 1000),
  ('W5', 'bytes/group/pane (window_stats)', '<= 40 B', 'fig', '<=', 40),
  ('W5', 'bytes/group/pane (OS: DSM pages allocated)', '<= 40 B', 'fig', '<=', 40),
  ('W6', 'stream q5+q7 per core', '>= 1M bids/s/core', 'fig', '>=', 1000000),
  ('W8', 'restart with 1M rows backlog', '<= 2 s', 'fig', '<=', 2)),
met AS (
  SELECT t.workload, t.variant, min(t.txt) AS target,
         bool_and(CASE t.on_what WHEN 'fig' THEN a.fig WHEN 'r1' THEN a.r1 ELSE a.r2 END
                  >= t.thr OR t.op = '<=') AND
         bool_and(CASE t.on_what WHEN 'fig' THEN a.fig WHEN 'r1' THEN a.r1 ELSE a.r2 END
                  <= t.thr OR t.op = '>=') AS ok
    FROM targets t JOIN agg a USING (workload, variant)
   GROUP BY t.workload, t.variant)
SELECT a.workload, a.variant, a.ord, a.runs,
       CASE WHEN a.workload IN ('W1', 'W6') THEN 'rows/s'
            WHEN a.workload = 'W7' AND a.extra_name <> 'latency_ms' THEN 'rows/s'
            WHEN a.workload = 'W9' AND a.extra_name = 'copy_s' THEN 'rows/s'
            WHEN a.workload = 'W9' THEN 'ms'
            WHEN a.workload = 'W2' THEN 'tps'
            WHEN a.workload = 'W8' THEN 's'
            WHEN a.workload IN ('W3', 'W4', 'W7') THEN 'ms'
            WHEN a.extra_name = 'MB' THEN 'MB' ELSE 'bytes' END AS unit,
       a.fig AS median, a.fig_min AS min, a.fig_max AS max,
       a.r1 AS ratio1,
       CASE WHEN a.r1 IS NOT NULL THEN
       CASE a.workload WHEN 'W1' THEN 'x plain COPY (a)' WHEN 'W2' THEN 'x plain tps'
                       WHEN 'W4' THEN 'x faster than raw ' || :'hs'
                       WHEN 'W6' THEN 'x plain COPY' WHEN 'W7' THEN 'x plain COPY (a)'
                       WHEN 'W8' THEN 'x no-backlog restart (a)'
                       WHEN 'W9' THEN CASE WHEN a.variant LIKE 'ingest%' THEN 'x local stream (a) rows/s'
                                           ELSE 'x local (c) latency' END END END AS ratio1_of,
       a.r2 AS ratio2,
       CASE WHEN a.r2 IS NOT NULL THEN
       CASE a.workload WHEN 'W1' THEN 'x stmt trigger (b)'
                       WHEN 'W4' THEN 'x faster than raw ' || :'hl'
                       WHEN 'W7' THEN 'x stream (b)' WHEN 'W9' THEN 'x 1 node (d) latency'
                       WHEN 'W8' THEN ' s more per 1M rows' END END AS ratio2_of,
       a.r3 AS ratio3,
       CASE WHEN a.r3 IS NOT NULL THEN
       CASE a.workload WHEN 'W7' THEN 'x by hand (d)' WHEN 'W1' THEN 'x floor (f)' END END AS ratio3_of,
       m.target, CASE WHEN m.ok THEN 'yes' WHEN NOT m.ok THEN 'NO' END AS met,
       CASE
         WHEN a.workload = 'W1' AND a.extra_name = 'copy_s' AND a.variant LIKE 'stream%' THEN
           format('%s s: COPY %s s + sync %s s', round(a.secs::numeric, 2), round(a.extra::numeric, 2),
                  round((a.secs - a.extra)::numeric, 2))
         WHEN a.workload = 'W1' AND a.extra_name = 'copy_s' THEN format('%s s', round(a.secs::numeric, 2))
         WHEN a.workload = 'W1' THEN format('%s s for %s rows; %s s for the full set', round(a.secs::numeric, 2),
                                            (SELECT min(rows) FROM bench_res b WHERE b.workload = 'W1' AND b.variant = a.variant),
                                            round(a.extra::numeric, 1))
         WHEN a.workload = 'W2' AND a.variant LIKE 'stream%' THEN
           format('%s rows/s applied, incl. catch-up', round(a.rps::numeric))
         WHEN a.workload = 'W2' THEN format('%s rows/s', round(a.rps::numeric))
         WHEN a.workload = 'W3' THEN format('under %s rows/s', round(a.rps::numeric))
         WHEN a.workload = 'W6' AND a.extra_name = 'cores_busy' THEN format('%s cores busy', round(a.extra::numeric, 2))
         WHEN a.workload = 'W6' THEN format('%s bids per CPU-second', round(a.extra::numeric))
         WHEN a.workload = 'W7' AND a.extra_name = 'latency_ms' THEN
           format('from COPY returning until the last closed window is in the history (%s rows)',
                  (SELECT min(rows) FROM bench_res b WHERE b.workload = 'W7' AND b.variant = a.variant))
         WHEN a.workload = 'W7' AND a.variant LIKE '%(d)' THEN
           format('%s s: COPY %s s + GROUP BY %s s', round(a.secs::numeric, 2), round(a.extra::numeric, 2),
                  round((a.secs - a.extra)::numeric, 2))
         WHEN a.workload = 'W7' AND a.variant LIKE 'stream%' THEN
           format('%s s: COPY %s s + sync %s s', round(a.secs::numeric, 2), round(a.extra::numeric, 2),
                  round((a.secs - a.extra)::numeric, 2))
         WHEN a.workload = 'W7' THEN format('%s s', round(a.secs::numeric, 2))
         WHEN a.workload = 'W9' AND a.extra_name = 'copy_s' THEN
           format('%s s: COPY %s s + sync %s s (COPY alone: %s k rows/s)', round(a.secs::numeric, 2),
                  round(a.extra::numeric, 2), round((a.secs - a.extra)::numeric, 2),
                  round(((SELECT min(rows) FROM bench_res b WHERE b.workload = 'W9' AND b.variant = a.variant) / a.extra / 1e3)::numeric, 1))
         WHEN a.workload = 'W9' THEN
           format('%s groups, SELECT * FROM view', (SELECT min(rows) FROM bench_res b WHERE b.workload = 'W9' AND b.variant = a.variant))
         -- W8: secs = start until sync() returned, extra = start until connections accepted
         WHEN a.workload = 'W8' AND a.variant LIKE '%(a)' THEN
           format('start -> connections %s s + -> sync() %s s; nothing to replay', round(a.extra::numeric, 2),
                  round((a.secs - a.extra)::numeric, 2))
         WHEN a.workload = 'W8' THEN
           format('start -> connections %s s + -> sync() %s s; %s k backlog rows/s over the whole restart', round(a.extra::numeric, 2),
                  round((a.secs - a.extra)::numeric, 2), round((a.rps / 1e3)::numeric, 1))
       END AS note
  FROM agg a LEFT JOIN met m USING (workload, variant);
SQL

sql "$BASEDB" "COPY (SELECT workload, variant, runs, unit, round(median::numeric, 3) AS median,
                            round(min::numeric, 3) AS min, round(max::numeric, 3) AS max,
                            round(ratio1::numeric, 3) AS ratio1, ratio1_of, round(ratio2::numeric, 3) AS ratio2,
                            ratio2_of, round(ratio3::numeric, 3) AS ratio3, ratio3_of, target, met, note
                       FROM bench_summary ORDER BY workload, ord) TO STDOUT WITH (FORMAT csv, HEADER)" \
  >"$OUT/summary.csv"

# --- the table ---------------------------------------------------------------
fmt_rows="
  CASE unit
    WHEN 'rows/s' THEN CASE WHEN median >= 1e6 THEN to_char(median / 1e6, 'FM990.00') || ' M'
                            ELSE to_char(median / 1e3, 'FM999990.0') || ' k' END
                       || CASE WHEN workload = 'W6' THEN ' bids/s' ELSE ' rows/s' END
    WHEN 'tps' THEN to_char(median, 'FM999,999,990') || ' tps'
    WHEN 'ms' THEN CASE WHEN median < 10 THEN to_char(median, 'FM990.000') ELSE to_char(median, 'FM999,990.0') END || ' ms'
    WHEN 'MB' THEN to_char(median, 'FM999,990.0') || ' MB'
    WHEN 's' THEN to_char(median, 'FM999,990.000') || ' s'
    ELSE to_char(median, 'FM9990.00') || ' B'
  END"
{
  echo "rtstream benchmark: rtstream $(cat "$OUT/revision.txt" 2>/dev/null), $(nproc) cores, $(pg_config --version | sed 's/ (.*//'), BENCH_RUNS=$RUNS, BENCH_SCALE=$SCALE, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "server: $(cat "$OUT/settings.txt" 2>/dev/null)"
  echo "figures: median of $RUNS runs; ratios: computed run by run against the baseline of the same run, then the median"
  if [ -s "$OUT/load.txt" ]; then
    awk '{ s += $2; if ($2 > m) m = $2; n++ } END { if (n) printf "machine load (1-min load average, this benchmark included, %d cores): mean %.2f, max %.2f\n", c, s / n, m }' \
      c="$(nproc)" "$OUT/load.txt"
  fi
  echo
  sql "$BASEDB" "
    SELECT workload, variant, fig, ratios, target, met, note FROM (
      SELECT workload, ord, variant, $fmt_rows AS fig,
             concat_ws('; ', to_char(ratio1, 'FM99990.00') || ratio1_of, to_char(ratio2, 'FM99990.00') || ratio2_of,
                       to_char(ratio3, 'FM99990.00') || ratio3_of) AS ratios,
             coalesce(target, '') AS target, coalesce(met, '') AS met, coalesce(note, '') AS note
        FROM bench_summary
      UNION ALL
      SELECT split_part(workload, ' ', 1), 1e9 + id,
             coalesce(nullif(substr(workload, length(split_part(workload, ' ', 1)) + 2), ''), '(workload)'),
             'FAILED', '', '', '', reason
        FROM bench_fail) t
    ORDER BY workload, ord" -F $'\t' |
    awk -F'\t' '
      BEGIN { h[1] = "Workload"; h[2] = "Variant"; h[3] = "Figure (median)"; h[4] = "Ratio (run by run)";
              h[5] = "Target"; h[6] = "Met"; h[7] = "Note"; n = 0
              for (i = 1; i <= 7; i++) w[i] = length(h[i]) }
      { n++; for (i = 1; i <= 7; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
      END {
        line = ""; for (i = 1; i <= 7; i++) line = line sprintf("%-" w[i] "s  ", h[i]); print line
        line = ""; for (i = 1; i <= 7; i++) { s = ""; for (j = 0; j < w[i]; j++) s = s "-"; line = line s "  " }; print line
        for (r = 1; r <= n; r++) {
          if (r > 1 && c[r, 1] != c[r - 1, 1]) print ""
          line = ""; for (i = 1; i <= 7; i++) line = line sprintf("%-" w[i] "s  ", c[r, i]); sub(/ +$/, "", line); print line
        }
      }'
  if [ -s "$OUT/wal_retained.csv" ]; then
    echo
    echo "WAL retained by rtstream's slot (median of the runs: largest sample every 0.2 s, at the end, and WAL written meanwhile):"
    awk -F, 'NR > 1 { k = $1 " | " $2; n[k]++; mx[k, n[k]] = $4; en[k, n[k]] = $5; wr[k, n[k]] = $6; if (!(k in seen)) { seen[k] = 1; order[++o] = k } }
      function med(a, k, c,   i, j, t, v) { for (i = 1; i <= c; i++) v[i] = a[k, i] + 0
        for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((c + 1) / 2)] }
      END { for (i = 1; i <= o; i++) { k = order[i]
        printf "  %-40s max %8.1f MB  end %8.1f MB  written %8.1f MB\n", k, med(mx, k, n[k]) / 1048576, med(en, k, n[k]) / 1048576, med(wr, k, n[k]) / 1048576 } }' \
      "$OUT/wal_retained.csv"
  fi
  echo
  echo "Correctness checks:"
  sql "$BASEDB" "SELECT format('  %-4s %-3s %s%s', status, workload, chk, CASE WHEN detail <> '' THEN ' (' || detail || ')' ELSE '' END)
                   FROM bench_check ORDER BY id"
  if [ -s "$OUT/warnings.txt" ]; then
    echo
    echo "WARNINGS:"
    sort -u "$OUT/warnings.txt" | sed 's/^/  /'
  fi
  if [ "$(sql "$BASEDB" 'SELECT count(*) FROM bench_fail')" != 0 ]; then
    echo
    echo "FAILED:"
    sql "$BASEDB" "SELECT format('  %s: %s', workload, reason) FROM bench_fail ORDER BY id"
  fi
} >"$OUT/table.txt"
cat "$OUT/table.txt"

# --- the chart ---------------------------------------------------------------
# one data file per panel: label value [value2 ...]
dat() { sql "$BASEDB" "$1" -F $'\t' >"$OUT/$2.dat"; }
dat "SELECT '\"' || variant || '\"', median / 1e6 FROM bench_summary WHERE workload = 'W1' ORDER BY ord" chart_w1
dat "SELECT '\"' || replace(p.variant, 'plain ', '') || '\"', p.median, s.median
       FROM bench_summary p JOIN bench_summary s ON s.workload = 'W2' AND s.variant = replace(p.variant, 'plain ', 'stream ')
      WHERE p.workload = 'W2' AND p.variant LIKE 'plain %' ORDER BY p.ord" chart_w2
dat "SELECT '\"' || replace(a.variant, ' p50', '') || '\"', a.median, b.median, c.median
       FROM bench_summary a
       JOIN bench_summary b ON b.workload = 'W3' AND b.variant = replace(a.variant, ' p50', ' p99')
       JOIN bench_summary c ON c.workload = 'W3' AND c.variant = replace(a.variant, ' p50', ' max')
      WHERE a.workload = 'W3' AND a.variant LIKE '% p50' ORDER BY a.ord" chart_w3
dat "SELECT (SELECT min(rows) FROM bench_res r WHERE r.workload = 'W4' AND r.variant = s.variant), s.median,
            (SELECT x.median FROM bench_summary x WHERE x.workload = 'W4' AND x.variant = 'raw $HS rows: ' || substring(s.variant FROM '(\S+) groups') || ' groups'),
            (SELECT x.median FROM bench_summary x WHERE x.workload = 'W4' AND x.variant = 'raw $HL rows: ' || substring(s.variant FROM '(\S+) groups') || ' groups')
       FROM bench_summary s WHERE s.workload = 'W4' AND s.variant ~ '^stream \S+ groups$' ORDER BY 1" chart_w4
sed -i 's/\t\t/\t?\t/g; s/\t\t/\t?\t/g; s/\t$/\t?/' "$OUT/chart_w4.dat"
dat "SELECT '\"' || variant || '\"', median FROM bench_summary WHERE workload = 'W5' AND unit = 'bytes' ORDER BY ord" chart_w5
dat "SELECT '\"' || variant || '\"', median / 1e6 FROM bench_summary WHERE workload = 'W6' ORDER BY ord" chart_w6
dat "SELECT '\"' || variant || '\"', median / 1e6 FROM bench_summary WHERE workload = 'W7' AND unit = 'rows/s' ORDER BY ord" chart_w7
dat "SELECT min(rows), percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extra_value)
       FROM bench_res WHERE workload = 'W8' GROUP BY variant ORDER BY 1" chart_w8
dat "SELECT '\"' || CASE WHEN variant LIKE 'ingest%' THEN 'ingest 2 nodes / local (rows/s)'
                         ELSE 'read ' || substring(variant FROM '\S+$') || ' 3 nodes / ' || v END || '\"', r
       FROM bench_summary, LATERAL (VALUES ('local (ms)', ratio1), ('1 node (ms)', ratio2)) x(v, r)
      WHERE workload = 'W9' AND r IS NOT NULL AND (variant LIKE 'ingest%' AND v = 'local (ms)' OR variant LIKE '%3 nodes%')
      ORDER BY ord, v DESC" chart_w9

# a panel's plot command, or an empty panel when its workload did not run
panel() {  # data file, plot command
  if [ -s "$OUT/$1" ]; then echo "$2"
  else echo "unset logscale; set label 1 'not run' at graph 0.5, 0.5 center; plot [0:1] [0:1] NaN notitle; unset label 1"; fi
}
P1=$(panel chart_w1.dat "plot 'chart_w1.dat' using 2:xtic(1) with boxes lc rgb '#4477aa' notitle")
P2=$(panel chart_w2.dat "plot 'chart_w2.dat' using 2:xtic(1) title 'plain table' lc rgb '#999999', '' using 3 title 'stream' lc rgb '#4477aa'")
P3=$(panel chart_w3.dat "plot 'chart_w3.dat' using 2:xtic(1) title 'p50' lc rgb '#88ccee', '' using 3 title 'p99' lc rgb '#4477aa', '' using 4 title 'max' lc rgb '#332288', 10 with lines dt 2 lc rgb 'red' title 'p99 target', 100 with lines dt 3 lc rgb 'red' title 'max target'")
P4=$(panel chart_w4.dat "plot 'chart_w4.dat' using 1:2 with linespoints lw 2 pt 7 title 'rtstream window', '' using 1:3 with linespoints pt 5 title 'raw $HS rows', '' using 1:4 with linespoints pt 9 title 'raw $HL rows'")
P5=$(panel chart_w5.dat "plot 'chart_w5.dat' using 2:xtic(1) with boxes lc rgb '#4477aa' notitle, 48 with lines dt 2 lc rgb 'red' title 'target'")
P6=$(panel chart_w6.dat "plot 'chart_w6.dat' using 2:xtic(1) with boxes lc rgb '#4477aa' notitle, 1 with lines dt 2 lc rgb 'red' title 'target per core'")
P7=$(panel chart_w7.dat "plot 'chart_w7.dat' using 2:xtic(1) with boxes lc rgb '#4477aa' notitle")
P8=$(panel chart_w8.dat "plot 'chart_w8.dat' using 1:2 with linespoints lw 2 pt 7 title 'start -> sync() returned', '' using 1:3 with linespoints pt 5 title 'start -> connections', 2 with lines dt 2 lc rgb 'red' title 'target (1M rows)'")
P9=$(panel chart_w9.dat "plot 'chart_w9.dat' using 2:xtic(1) with boxes lc rgb '#4477aa' notitle, 1 with lines dt 2 lc rgb 'red' title 'equal'")

term=pngcairo
gnuplot -e 'set terminal pngcairo' 2>/dev/null || term=png
(
  cd "$OUT"
  gnuplot 2>"$OUT/gnuplot.log" <<GP || { echo "report: gnuplot failed, see $OUT/gnuplot.log" >&2; exit 0; }
set terminal $term size 2400,1700 font ",10" noenhanced
set output 'chart.png'
set multiplot layout 3,3 title "rtstream benchmark ($(nproc) cores, runs=$RUNS, scale=$SCALE; medians)"
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid ytics
set xtics rotate by -30 left
set key top right

set title "W1 ingest: COPY (+ sync), M rows/s"
set yrange [0:*]
$P1

set title "W2 pgbench 8 clients, tps"
set style data histograms
set style histogram clustered gap 1
set yrange [0:*]
$P2

set title "W3 freshness under 50k rows/s load, ms (log)"
set logscale y
set yrange [*:1000<*]
$P3
unset style data
set style data lines

set title "W4 read cost vs groups, ms (log-log)"
set logscale xy
set yrange [*:*]
set xtics norotate
set xlabel "groups in the window"
set datafile missing '?'
$P4
unset logscale xy
unset xlabel
set xtics rotate by -30 left

set title "W5 shared memory per group per pane (count/sum/avg), bytes"
set yrange [0:60<*]
$P5

set title "W6 Nexmark bids: M bids/s"
set yrange [0:1.2<*]
$P6

set title "W7 event time: COPY (+ sync, + GROUP BY), M rows/s"
set yrange [0:*]
$P7

set title "W8 recovery after -m immediate: seconds vs backlog (rows applied, not checkpointed)"
set yrange [0:*]
set xtics norotate
set xlabel "backlog rows"
$P8
unset xlabel
set xtics rotate by -30 left

set title "W9 scale-out: distributed / one server (median ratio of the runs, log)"
set logscale y
set yrange [*:*]
$P9
unset logscale y
unset multiplot
GP
)
[ -s "$OUT/chart.png" ] && log "chart: $OUT/chart.png"
