--
-- Distinct and top-k: rtstream.count_distinct and rtstream.topk as plain
-- aggregates (serial and parallel) against count(DISTINCT x) and
-- GROUP BY x ORDER BY count(*) DESC, x LIMIT k; then count(DISTINCT x) and
-- rtstream.topk in windows (tumbling and sliding, groups spread over both
-- workers, all-NULL groups, many groups, the history), each compared with
-- plain SQL over the same rows.  The helpers rt_diff, rt_bounds,
-- et_windows and et_check come from setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

-- top-k in plain SQL: the k most frequent non-NULL values, ties by value
CREATE FUNCTION topk_truth(vals anyarray, k int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('value', v, 'count', c) ORDER BY c DESC, v), '[]')
      FROM (SELECT v, count(*) AS c FROM unnest(vals) v WHERE v IS NOT NULL
             GROUP BY v ORDER BY count(*) DESC, v LIMIT k) s
$$;

----------------------------------------------------------------------------
-- Plain aggregates
----------------------------------------------------------------------------
-- i: up to 20011 distinct values; t: 3000 texts; n: numerics; x: 29 values
-- of skewed frequencies; c: 78 short texts; all with NULLs; g: 7 groups,
-- group 6 without any x
CREATE TABLE dv AS
    SELECT i AS id, i % 7 AS g,
           CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 7919) % 20011 END AS i,
           CASE WHEN i % 17 = 0 THEN NULL ELSE md5((i % 3000)::text) END AS t,
           CASE WHEN i % 19 = 0 THEN NULL ELSE round((i % 977) / 7.0, 1) END AS n,
           CASE WHEN i % 10 = 0 OR i % 7 = 6 THEN NULL ELSE floor(sqrt(i % 900))::int END AS x,
           CASE WHEN i % 9 = 0 THEN NULL ELSE chr(65 + (i * 7) % 26) || chr(97 + i % 3) END AS c
      FROM generate_series(1, 40000) i;
ANALYZE dv;

SELECT rtstream.count_distinct(i) AS i, count(DISTINCT i) AS i_truth,
       rtstream.count_distinct(t) AS t, count(DISTINCT t) AS t_truth,
       rtstream.count_distinct(n) AS n, count(DISTINCT n) AS n_truth,
       rtstream.count_distinct(t COLLATE "C") AS t_c, count(DISTINCT t COLLATE "C") AS t_c_truth,
       rtstream.count_distinct(x) AS x, count(DISTINCT x) AS x_truth
  FROM dv;
-- per group: no difference
SELECT g, rtstream.count_distinct(i), count(DISTINCT i), rtstream.count_distinct(t), count(DISTINCT t),
       rtstream.count_distinct(n), count(DISTINCT n), rtstream.count_distinct(x), count(DISTINCT x)
  FROM dv GROUP BY g
HAVING rtstream.count_distinct(i) <> count(DISTINCT i) OR rtstream.count_distinct(t) <> count(DISTINCT t)
    OR rtstream.count_distinct(n) <> count(DISTINCT n) OR rtstream.count_distinct(x) <> count(DISTINCT x);
SELECT g, rtstream.count_distinct(x) AS x, count(DISTINCT x) AS x_truth FROM dv GROUP BY g ORDER BY g;
-- NULLs, empty input; equal values of different images count once
SELECT rtstream.count_distinct(x), count(DISTINCT x) FROM (VALUES (NULL::int), (NULL)) v(x);
SELECT rtstream.count_distinct(x), count(DISTINCT x) FROM dv WHERE false;
SELECT rtstream.count_distinct(x), count(DISTINCT x) FROM (VALUES (1.0), (1.00), (2), (NULL), (2.000)) v(x);
SELECT rtstream.count_distinct(x), count(DISTINCT x)
  FROM (VALUES ('0'::float8), ('-0'), ('NaN'), ('NaN'), (NULL)) v(x);
SELECT rtstream.count_distinct(x), count(DISTINCT x)
  FROM (VALUES (ARRAY[1, 2]), (ARRAY[1, 2]), (ARRAY[2, 1]), (NULL)) v(x);
-- values stored out of line (TOAST) are detoasted into the set
CREATE TABLE dv_long (x text);
ALTER TABLE dv_long ALTER COLUMN x SET STORAGE EXTERNAL;
INSERT INTO dv_long SELECT repeat(md5((i % 5)::text), 100) FROM generate_series(1, 20) i;
SELECT rtstream.count_distinct(x), count(DISTINCT x) FROM dv_long;

-- top-k, exact here: at most max(4k, 64) distinct values (c: 78 values,
-- exact from k = 20)
SELECT rtstream.topk(x, 5) FROM dv;
SELECT (SELECT jsonb_agg(jsonb_build_object('value', x, 'count', cnt) ORDER BY cnt DESC, x)
          FROM (SELECT x, count(*) AS cnt FROM dv WHERE x IS NOT NULL
                 GROUP BY x ORDER BY count(*) DESC, x LIMIT 5) s) AS truth;
SELECT rtstream.topk(x, 5) = topk_truth(array_agg(x), 5) AS x_5,
       rtstream.topk(x, 40) = topk_truth(array_agg(x), 40) AS x_all,
       jsonb_array_length(rtstream.topk(x, 40)) AS x_values,
       rtstream.topk(c COLLATE "C", 20) = topk_truth(array_agg(c COLLATE "C"), 20) AS c_20,
       rtstream.topk(n, 16) = topk_truth(array_agg(n), 16) AS n_16
  FROM dv WHERE n < 9;
-- ties by value in the input collation (60 values: exact for k = 3)
SELECT rtstream.topk(c COLLATE "C", 3) AS c_3 FROM dv WHERE c COLLATE "C" < 'U';
SELECT (SELECT jsonb_agg(jsonb_build_object('value', c, 'count', cnt) ORDER BY cnt DESC, c COLLATE "C")
          FROM (SELECT c, count(*) AS cnt FROM dv WHERE c COLLATE "C" < 'U'
                 GROUP BY c ORDER BY count(*) DESC, c COLLATE "C" LIMIT 3) s) AS c_3_truth;
-- 78 values, more than the 64 counters of k = 3: the counts are upper bounds
SELECT rtstream.topk(c COLLATE "C", 3) AS c_3_approximate FROM (SELECT c FROM dv ORDER BY id) s;
-- per group, with group 6 (every x NULL): []
SELECT g, rtstream.topk(x, 3) FROM dv GROUP BY g ORDER BY g;
SELECT g FROM dv GROUP BY g
HAVING rtstream.topk(x, 3) <> topk_truth(array_agg(x), 3)
    OR rtstream.topk(c, 20) <> topk_truth(array_agg(c), 20)
    OR rtstream.topk(i % 50, 7) <> topk_truth(array_agg(i % 50), 7);
-- NULLs, empty input, k above the number of values, other types
SELECT rtstream.topk(x, 3) FROM (VALUES (NULL::int), (NULL)) v(x);
SELECT rtstream.topk(x, 3) FROM dv WHERE false;
SELECT rtstream.topk(x, 10) FROM (VALUES ('b'), ('a'), (NULL), ('b'), ('c'), ('a')) v(x);
SELECT rtstream.topk(x, 2) FROM (VALUES (1.0), (1.00), (2), (NULL), (2.000), (2.0)) v(x);
SELECT rtstream.topk(x, 2) FROM (VALUES (ARRAY[1, 2]), (ARRAY[1, 2]), (ARRAY[3])) v(x);
SELECT rtstream.topk(x, 2) FROM (VALUES ('2026-03-01'::date), ('2026-03-01'), ('2026-01-01')) v(x);

-- many values: more distinct values than counters.  Counts never
-- underestimate, overestimate by at most N / m (m = 64 for k = 10), and the
-- heavy values (i % 10 for a third of the rows, about 1333 each) are found
CREATE TABLE dv_skew AS
    SELECT CASE WHEN i % 3 = 0 THEN i % 10 ELSE 1000 + i END AS x FROM generate_series(1, 40000) i;
WITH r AS (SELECT rtstream.topk(x, 10) AS top, count(x) AS total FROM dv_skew),
     e AS (SELECT (j->>'value')::int AS x, (j->>'count')::bigint AS cnt, total
             FROM r, jsonb_array_elements(top) j),
     t AS (SELECT x, count(*) AS cnt FROM dv_skew GROUP BY x)
SELECT count(*) AS values, bool_and(e.cnt >= t.cnt) AS never_under,
       bool_and(e.cnt - t.cnt <= e.total / 64) AS within_bound,
       array_agg(e.x ORDER BY e.x) = ARRAY[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] AS heavy_values_found
  FROM e JOIN t USING (x);
-- nearly all distinct (each value once or twice): the same bounds
WITH r AS (SELECT rtstream.topk(i, 5) AS top, count(i) AS total FROM dv),
     e AS (SELECT (j->>'value')::int AS i, (j->>'count')::bigint AS cnt, total
             FROM r, jsonb_array_elements(top) j),
     t AS (SELECT i, count(*) AS cnt FROM dv GROUP BY i)
SELECT count(*) AS values, bool_and(e.cnt >= t.cnt) AS never_under,
       bool_and(e.cnt - t.cnt <= e.total / 64) AS within_bound
  FROM e JOIN t USING (i);

-- parallel plans: partial states serialised by the workers and combined
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
-- (count(DISTINCT) and array_agg have no partial form: the truth is
-- computed apart)
EXPLAIN (COSTS OFF)
SELECT rtstream.count_distinct(i), rtstream.count_distinct(t), rtstream.topk(x, 5) FROM dv;
CREATE TABLE dv_truth AS
    SELECT count(DISTINCT i) AS ci, count(DISTINCT t) AS ct, count(DISTINCT n) AS cn,
           topk_truth(array_agg(x), 5) AS tx, topk_truth(array_agg(c), 20) AS tc
      FROM dv;
SELECT p.ci = q.ci AS i, p.ct = q.ct AS t, p.cn = q.cn AS n, p.tx = q.tx AS x_5, p.tc = q.tc AS c_20
  FROM (SELECT rtstream.count_distinct(i) AS ci, rtstream.count_distinct(t) AS ct,
               rtstream.count_distinct(n) AS cn, rtstream.topk(x, 5) AS tx, rtstream.topk(c, 20) AS tc
          FROM dv) p, dv_truth q;
-- per group: a partial state per worker and group
EXPLAIN (COSTS OFF)
SELECT g, rtstream.count_distinct(t), rtstream.topk(c, 20) FROM dv GROUP BY g;
CREATE TABLE dv_g_truth AS
    SELECT g, count(DISTINCT t) AS ct, topk_truth(array_agg(c), 20) AS tc FROM dv GROUP BY g;
SELECT count(*) AS groups, count(*) FILTER (WHERE p.ct = q.ct AND p.tc = q.tc) AS equal
  FROM (SELECT g, rtstream.count_distinct(t) AS ct, rtstream.topk(c, 20) AS tc FROM dv GROUP BY g) p
  JOIN dv_g_truth q USING (g);
WITH r AS (SELECT rtstream.topk(x, 10) AS top, count(x) AS total FROM dv_skew),
     e AS (SELECT (j->>'value')::int AS x, (j->>'count')::bigint AS cnt, total
             FROM r, jsonb_array_elements(top) j),
     t AS (SELECT x, count(*) AS cnt FROM dv_skew GROUP BY x)
SELECT count(*) AS values, bool_and(e.cnt >= t.cnt) AS never_under,
       bool_and(e.cnt - t.cnt <= e.total / 64) AS within_bound,
       array_agg(e.x ORDER BY e.x) = ARRAY[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] AS heavy_values_found
  FROM e JOIN t USING (x);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- errors
SELECT rtstream.topk(x, 0) FROM dv;
SELECT rtstream.topk(x, 10001) FROM dv;
SELECT rtstream.topk(x, NULL) FROM dv;
SELECT rtstream.count_distinct(point(1, 2));
SELECT rtstream.topk(point(1, 2), 3);

----------------------------------------------------------------------------
-- Windows
----------------------------------------------------------------------------
-- Stream dt, partitioned by u: the windows grouped by k (or not grouped)
-- combine each group over both workers; dt_many, grouped by u, does not.
-- k = 50 has no v and no w (all NULL).
CREATE TABLE dt (ts timestamptz, k int, u int, v int, s text, w int);
CREATE TABLE dt_truth (LIKE dt);
SELECT rtstream.create_stream('dt', partition_by => 'u');

-- count(DISTINCT) and topk, tumbling and sliding (a value in several
-- panes of a window counts once), with their histories
SELECT rtstream.create_window('dt_tumble', $$
    SELECT k, count(DISTINCT v) AS dv, count(DISTINCT s) AS ds,
           count(DISTINCT v) FILTER (WHERE v < 100) AS dv100, count(*) AS n,
           rtstream.topk(w, 3) AS top3
      FROM dt GROUP BY k$$, size => '1 hour', time_column => 'ts', history => true);
SELECT rtstream.create_window('dt_slide', $$
    SELECT k, count(DISTINCT v) AS dv, count(DISTINCT s) AS ds, rtstream.topk(w, 3) AS top3,
           rtstream.topk(v % 10, 10) AS top_v10
      FROM dt GROUP BY k$$,
    size => '1 hour', slide => '10 minutes', time_column => 'ts', history => true);
-- one group: every row, many values
SELECT rtstream.create_window('dt_all', $$
    SELECT count(DISTINCT s) AS ds, count(DISTINCT v) AS dv, count(DISTINCT w) AS dw,
           rtstream.topk(w, 5) AS top5, rtstream.topk(k, 60) AS keys, count(*) AS n
      FROM dt$$, size => '1 hour', slide => '10 minutes', time_column => 'ts');
-- many groups, each in one worker
SELECT rtstream.create_window('dt_many', $$
    SELECT u, count(DISTINCT w) AS dw, count(DISTINCT s) AS ds, rtstream.topk(v, 2) AS top2
      FROM dt GROUP BY u$$, size => '1 hour', slide => '30 minutes', time_column => 'ts');
\d dt_tumble

-- 20000 rows over 83 minutes, in order
WITH r AS (
    SELECT timestamptz '2026-03-01 00:00:00+00' + i * interval '250 ms' AS ts,
           i % 51 AS k, i % 2000 AS u,
           CASE WHEN i % 51 = 50 OR i % 29 = 0 THEN NULL ELSE (i * 37) % 300 END AS v,
           CASE WHEN i % 23 = 0 THEN NULL ELSE 's' || (i * 7919) % 20011 END AS s,
           CASE WHEN i % 51 = 50 THEN NULL ELSE floor(sqrt(i % 400))::int END AS w
      FROM generate_series(1, 20000) i),
     s AS (INSERT INTO dt SELECT * FROM r RETURNING 1)
INSERT INTO dt_truth SELECT * FROM r;

-- the truth of every window: each slide position with its rows
CREATE FUNCTION dt_windows(size interval, slide interval)
RETURNS TABLE (window_start timestamptz, window_end timestamptz, ts timestamptz, k int, u int,
               v int, s text, w int)
LANGUAGE sql AS $$
    SELECT e.ws, e.we, d.ts, d.k, d.u, d.v, d.s, d.w
      FROM dt_truth d, et_windows(d.ts, size, slide) e
$$;
CREATE VIEW dt_tumble_truth AS
    SELECT window_start, window_end, k, count(DISTINCT v) AS dv, count(DISTINCT s) AS ds,
           count(DISTINCT v) FILTER (WHERE v < 100) AS dv100, count(*) AS n,
           topk_truth(array_agg(w), 3) AS top3
      FROM dt_windows('1 hour', '1 hour') GROUP BY 1, 2, 3;
CREATE VIEW dt_slide_truth AS
    SELECT window_start, window_end, k, count(DISTINCT v) AS dv, count(DISTINCT s) AS ds,
           topk_truth(array_agg(w), 3) AS top3, topk_truth(array_agg(v % 10), 10) AS top_v10
      FROM dt_windows('1 hour', '10 minutes') GROUP BY 1, 2, 3;
CREATE VIEW dt_all_truth AS
    SELECT window_start, window_end, count(DISTINCT s) AS ds, count(DISTINCT v) AS dv,
           count(DISTINCT w) AS dw, topk_truth(array_agg(w), 5) AS top5,
           topk_truth(array_agg(k), 60) AS keys, count(*) AS n
      FROM dt_windows('1 hour', '10 minutes') GROUP BY 1, 2;
CREATE VIEW dt_many_truth AS
    SELECT window_start, window_end, u, count(DISTINCT w) AS dw, count(DISTINCT s) AS ds,
           topk_truth(array_agg(v), 2) AS top2
      FROM dt_windows('1 hour', '30 minutes') GROUP BY 1, 2, 3;

-- the current window, the open ones and the history: all equal
SELECT * FROM et_check('dt_tumble', 'SELECT * FROM dt_tumble_truth');
SELECT * FROM et_check('dt_slide', 'SELECT * FROM dt_slide_truth');
SELECT * FROM et_check('dt_all', 'SELECT * FROM dt_all_truth');
SELECT * FROM et_check('dt_many', 'SELECT * FROM dt_many_truth');
SELECT count(*) AS groups, sum(n) AS n, sum(dv) AS dv, sum(ds) AS ds FROM dt_tumble;
SELECT k, dv, ds, dv100, n, top3 FROM dt_tumble WHERE k IN (0, 1, 50) ORDER BY k;
SELECT window_start, window_end, ds, dv, dw, top5, jsonb_array_length(keys) AS keys, n FROM dt_all;
SELECT window_end, count(*) AS groups, sum(dv) AS dv FROM dt_slide_history GROUP BY 1 ORDER BY 1;
SELECT count(*) AS groups, sum(dw) AS dw FROM dt_many;

-- a second transaction: values seen before and new ones, into panes that
-- already hold sets and summaries
WITH r AS (
    SELECT timestamptz '2026-03-01 01:23:20+00' + i * interval '500 ms' AS ts,
           i % 51 AS k, (i * 3) % 2000 AS u,
           CASE WHEN i % 51 = 50 THEN NULL ELSE (i * 11) % 400 END AS v,
           CASE WHEN i % 2 = 0 THEN NULL ELSE 's' || i % 5000 END AS s,
           CASE WHEN i % 51 = 50 THEN NULL ELSE i % 25 END AS w
      FROM generate_series(1, 2000) i),
     s AS (INSERT INTO dt SELECT * FROM r RETURNING 1)
INSERT INTO dt_truth SELECT * FROM r;
SELECT * FROM et_check('dt_tumble', 'SELECT * FROM dt_tumble_truth');
SELECT * FROM et_check('dt_slide', 'SELECT * FROM dt_slide_truth');
SELECT * FROM et_check('dt_all', 'SELECT * FROM dt_all_truth');
SELECT * FROM et_check('dt_many', 'SELECT * FROM dt_many_truth');
SELECT window_start, window_end, ds, dv, dw, top5, n FROM dt_all;

-- window queries refused
SELECT rtstream.create_window('dt_bad', 'SELECT k, sum(DISTINCT v) FROM dt GROUP BY k', size => '1 hour');
SELECT rtstream.create_window('dt_bad', 'SELECT k, count(DISTINCT v ORDER BY v) FROM dt GROUP BY k', size => '1 hour');
SELECT rtstream.create_window('dt_bad', 'SELECT k, count(DISTINCT (v, s)) FROM dt GROUP BY k', size => '1 hour');
SELECT rtstream.create_window('dt_bad', 'SELECT k, count(DISTINCT v::money) FROM dt GROUP BY k', size => '1 hour');
SELECT rtstream.create_window('dt_bad', 'SELECT k, rtstream.topk(v, 0) FROM dt GROUP BY k', size => '1 hour');
SELECT rtstream.create_window('dt_bad', 'SELECT k, rtstream.topk(v, NULL) FROM dt GROUP BY k', size => '1 hour');
SELECT count(*) AS bad_windows FROM rtstream.windows WHERE name = 'dt_bad';

SELECT rtstream.drop_window(name) FROM rtstream.windows WHERE name LIKE 'dt\_%' ORDER BY name;
SELECT rtstream.drop_stream('dt');
DROP VIEW dt_tumble_truth, dt_slide_truth, dt_all_truth, dt_many_truth;
DROP FUNCTION dt_windows(interval, interval);
DROP TABLE dt, dt_truth, dv, dv_long, dv_skew, dv_truth, dv_g_truth;
