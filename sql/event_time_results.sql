--
-- Event time, reading a window: out-of-order rows within allowed_lateness
-- all count, and the view (the current window), rtstream.window_results
-- (every open window, each slide position, in both call forms) and the
-- history (closed windows) each equal plain SQL over a truth table filled
-- by the same statements.  The helpers et_* and how the tests stay
-- deterministic: setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

----------------------------------------------------------------------------
-- 1. Out-of-order rows within allowed_lateness
----------------------------------------------------------------------------
-- ten groups (one of them NULL) over both workers, four windows:
--   et_tumble  1 minute,              lateness 2 min, history, late rows counted
--   et_hop     2 minutes / 30 seconds, lateness 1 min, history kept 3 minutes,
--              late rows in rtstream.dead_letters
--   et_dlt     1 minute,              lateness 30 s, late rows in et_dead
--   et_all     2 minutes / 1 minute, one global group (rows of both workers),
--              lateness 2 min, history
CREATE TABLE et (ts timestamptz, k text, v int, x float8);
-- newest_before: the newest event time of the stream when the row
-- arrived (every window's watermark is that less its lateness)
CREATE TABLE et_truth (ts timestamptz, k text, v int, x float8,
                       newest_before timestamptz NOT NULL DEFAULT '-infinity');
CREATE TABLE et_dead (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
SELECT rtstream.create_stream('et', partition_by => 'k');
SELECT rtstream.create_window('et_tumble',
  $$SELECT k, count(*) AS n, count(x) AS nx, sum(v) AS sv, avg(x) AS ax, min(x) AS lo, max(v) AS hi
      FROM et GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes', history => true);
SELECT rtstream.create_window('et_hop',
  $$SELECT k, count(*) AS n, sum(x) AS sx, max(x) AS mx FROM et GROUP BY k$$,
  size => '2 minutes', slide => '30 seconds', time_column => 'ts', allowed_lateness => '1 minute',
  late_policy => 'dead_letter', history => true, retention => '3 minutes');
SELECT rtstream.create_window('et_dlt',
  $$SELECT k, count(*) AS n, sum(v) AS sv FROM et GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '30 seconds',
  late_policy => 'dead_letter', dead_letter_table => 'et_dead');
SELECT rtstream.create_window('et_all',
  $$SELECT count(*) AS n, count(k) AS nk, sum(v) AS sv, max(x) AS mx FROM et$$,
  size => '2 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes',
  history => true);
SELECT name, size, slide, gap, allowed_lateness, idle_timeout, late_policy, dead_letter_table,
       history, retention
  FROM rtstream.windows WHERE name LIKE 'et\_%' ORDER BY id;
\d et_tumble_history
\d et_hop_history

-- the truth of each window: every slide position, with the rows that
-- arrived while it was open (window_end > watermark then)
CREATE VIEW et_tumble_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, k, count(*) AS n, count(x) AS nx,
           sum(v) AS sv, avg(x) AS ax, min(x) AS lo, max(v) AS hi
      FROM et_truth, et_windows(ts, '1 minute', '1 minute') w
     WHERE w.we > newest_before - interval '2 minutes' GROUP BY 1, 2, 3;
CREATE VIEW et_hop_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, k, count(*) AS n, sum(x) AS sx, max(x) AS mx
      FROM et_truth, et_windows(ts, '2 minutes', '30 seconds') w
     WHERE w.we > newest_before - interval '1 minute' GROUP BY 1, 2, 3;
CREATE VIEW et_dlt_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM et_truth, et_windows(ts, '1 minute', '1 minute') w
     WHERE w.we > newest_before - interval '30 seconds' GROUP BY 1, 2, 3;
CREATE VIEW et_all_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, count(*) AS n, count(k) AS nk, sum(v) AS sv,
           max(x) AS mx
      FROM et_truth, et_windows(ts, '2 minutes', '1 minute') w
     WHERE w.we > newest_before - interval '2 minutes' GROUP BY 1, 2;
-- late rows: every window holding them had closed when they arrived
CREATE VIEW et_late AS
    SELECT ts, k, v, x,
           et_late(ts, '1 minute', '1 minute', newest_before - interval '2 minutes') AS t,
           et_late(ts, '2 minutes', '30 seconds', newest_before - interval '1 minute') AS h,
           et_late(ts, '1 minute', '1 minute', newest_before - interval '30 seconds') AS d,
           et_late(ts, '2 minutes', '1 minute', newest_before - interval '2 minutes') AS a
      FROM et_truth;

-- one row per group at 00:00: both workers have rows
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, et_key(g) AS k, 0 AS v, NULL::float8 AS x
             FROM generate_series(0, 9) g),
     s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
SELECT rtstream.sync();

-- 1200 rows over ten minutes, each up to 29.5 s older than the newest
-- before it (less than every window's lateness: none is late), with NULLs
-- in x; then every group at 00:10:00, the newest time
WITH r AS (
    SELECT timestamptz '2026-03-01 00:00:00' + i * interval '500 ms'
               - ((i * 37) % 60) * interval '500 ms' AS ts,
           et_key(i) AS k, i AS v,
           CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 100) * 0.25 END AS x
      FROM generate_series(1, 1200) i),
     s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
WITH r AS (SELECT timestamptz '2026-03-01 00:10:00' AS ts, et_key(g) AS k, -1 AS v, 0.5::float8 AS x
             FROM generate_series(0, 9) g),
     s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
SELECT rtstream.sync();
SELECT count(*) AS rows_out_of_order
  FROM (SELECT ts < max(ts) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS o
          FROM et_truth WHERE v > 0) s WHERE o;

-- newest 00:10:00 everywhere: watermark = 00:10:00 - allowed_lateness;
-- the history is written up to the last window end <= watermark
SELECT w, s.* FROM unnest('{et_tumble,et_hop,et_dlt,et_all}'::text[]) WITH ORDINALITY u(w, o), et_state(w) s ORDER BY o;
SELECT * FROM et_check('et_tumble', 'SELECT * FROM et_tumble_truth');
SELECT * FROM et_check('et_hop', 'SELECT * FROM et_hop_truth');
SELECT * FROM et_check('et_dlt', 'SELECT * FROM et_dlt_truth');
SELECT * FROM et_check('et_all', 'SELECT * FROM et_all_truth');
-- open windows, each slide position, ordered by window_end
SELECT * FROM rtstream.window_results('et_all', NULL::et_all);
SELECT window_end, count(*) AS groups, sum(n) AS n
  FROM rtstream.window_results('et_hop', NULL::et_hop) GROUP BY 1 ORDER BY 1;
SELECT bool_and(ordered) AS ordered_by_window_end
  FROM (SELECT window_end >= lag(window_end) OVER (ORDER BY o) AS ordered
          FROM rtstream.window_results('et_hop', NULL::et_hop) WITH ORDINALITY
               AS r(window_start, window_end, k, n, sx, mx, o)) s;
-- the form with a column definition list
SELECT * FROM et_cmp($$SELECT * FROM rtstream.window_results('et_dlt')
                          AS r(window_start timestamptz, window_end timestamptz, k text, n bigint, sv bigint)$$,
                     $$SELECT * FROM rtstream.window_results('et_dlt', NULL::et_dlt)$$);
-- the view is the current window: the rows at 00:10:00
SELECT * FROM et_tumble WHERE k IN ('k3', 'k4') OR k IS NULL ORDER BY k;
-- history: one row per closed window and group, the oldest dropped by retention
SELECT count(*) AS history_rows, count(DISTINCT (window_end, k)) AS windows_x_groups,
       min(window_end), max(window_end) FROM et_tumble_history;
SELECT count(*) AS history_rows, count(DISTINCT (window_end, k)) AS windows_x_groups,
       min(window_end), max(window_end) FROM et_hop_history;
SELECT count(*) AS history_rows, min(window_end), max(window_end) FROM et_all_history;
SELECT * FROM et_tumble_history WHERE window_end = '2026-03-01 00:05:00' AND k IN ('k1', 'k2') ORDER BY k;

-- Clean up: event_time_lateness and event_time_history make the stream et again
SELECT rtstream.drop_window(name) FROM rtstream.windows
 WHERE name IN ('et_tumble', 'et_hop', 'et_dlt', 'et_all') ORDER BY name;
DELETE FROM rtstream.dead_letters WHERE stream = 'et'::regclass;
SELECT rtstream.drop_stream('et');
DROP VIEW et_late, et_tumble_truth, et_hop_truth, et_dlt_truth, et_all_truth;
DROP TABLE et, et_truth, et_dead;
SELECT rtstream.sync();
