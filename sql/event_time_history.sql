--
-- Event time, history tables: closed windows appended to <window>_history
-- across an empty stretch, retention, 500 groups; create_window errors,
-- drop_window and the history table.  Every result is compared with plain
-- SQL over a truth table filled by the same statements.  The helpers et_*:
-- setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

----------------------------------------------------------------------------
-- 3. History
----------------------------------------------------------------------------
-- the stream et as in event_time_results, and the rows of its phase 1 and
-- of phase 2 of event_time_lateness
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

-- 2. Late rows: the newest time is 00:10:00, the watermarks are
--   et_tumble 00:08:00, et_hop 00:09:00, et_dlt 00:09:30, et_all 00:08:00.
-- Nine rows per group, none newer: each late or not by the spec's rule.  A
-- row that is not late counts only in its windows still open (et_hop
-- 00:07:30 counts in the window ending 00:09:30, not in those ending
-- 00:08:00 .. 00:09:00, already in the history).
WITH r AS (
    SELECT timestamptz '2026-03-01 00:00:00' + u.o AS ts, et_key(g) AS k,
           10000 + g * 100 + u.n::int AS v,
           CASE WHEN g % 3 = 0 THEN NULL ELSE u.n * 0.5 END AS x
      FROM generate_series(0, 9) g,
           unnest(ARRAY[interval '2 min', '6 min 59 s', '7 min', '7 min 30 s', '7 min 59.999999 s',
                        '8 min', '9 min', '9 min 59 s', '10 min']) WITH ORDINALITY AS u(o, n)),
     s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
INSERT INTO et_truth SELECT r.*, '2026-03-01 00:10:00' FROM r;
SELECT rtstream.sync();

-- 3. History across an empty stretch: rows 00:10:00 - 00:11:59 and
-- 00:15:00 - 00:19:59 in order, then every group at 00:20:00
WITH r AS (
    SELECT timestamptz '2026-03-01 00:10:00' + i * interval '1 s' AS ts, et_key(i) AS k, i AS v,
           CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 40) * 0.5 END AS x
      FROM generate_series(0, 599) i WHERE i < 120 OR i >= 300),
     s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
WITH r AS (SELECT timestamptz '2026-03-01 00:20:00' AS ts, et_key(g) AS k, -2 AS v, 0.25::float8 AS x
             FROM generate_series(0, 9) g),
     s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
SELECT rtstream.sync();
SELECT w, s.* FROM unnest('{et_tumble,et_hop,et_dlt,et_all}'::text[]) WITH ORDINALITY u(w, o), et_state(w) s ORDER BY o;
SELECT * FROM et_check('et_tumble', 'SELECT * FROM et_tumble_truth');
SELECT * FROM et_check('et_hop', 'SELECT * FROM et_hop_truth');
SELECT * FROM et_check('et_dlt', 'SELECT * FROM et_dlt_truth');
SELECT * FROM et_check('et_all', 'SELECT * FROM et_all_truth');
-- the empty windows (ending 00:13, 00:14, 00:15) have no history rows
SELECT window_end, count(*) AS groups, sum(n) AS n
  FROM et_tumble_history WHERE window_end > '2026-03-01 00:10:00' GROUP BY 1 ORDER BY 1;
SELECT window_end, n, nk FROM et_all_history WHERE window_end > '2026-03-01 00:10:00' ORDER BY 1;
-- 4. retention: et_hop's history now starts at 00:19:00 - 3 minutes
SELECT count(*) AS history_rows, count(DISTINCT (window_end, k)) AS windows_x_groups,
       min(window_end), max(window_end) FROM et_hop_history;
SELECT count(*) AS history_rows, count(DISTINCT (window_end, k)) AS windows_x_groups
  FROM et_tumble_history;

-- History of 500 groups, hopping windows, NULLs: 20000 rows in order, one
-- every 30 ms (each group every 15 s), then every group at 01:10:00
CREATE TABLE mk (ts timestamptz, g int, x numeric);
CREATE TABLE mk_truth (LIKE mk);
SELECT rtstream.create_stream('mk', partition_by => 'g');
SELECT rtstream.create_window('mk_w',
  $$SELECT g, count(*) AS n, count(x) AS nx, sum(x) AS sx, min(x) AS lo FROM mk GROUP BY g$$,
  size => '1 minute', slide => '20 seconds', time_column => 'ts', allowed_lateness => '20 seconds',
  history => true);
CREATE VIEW mk_w_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, g, count(*) AS n, count(x) AS nx, sum(x) AS sx,
           min(x) AS lo
      FROM mk_truth, et_windows(ts, '1 minute', '20 seconds') w GROUP BY 1, 2, 3;
WITH r AS (SELECT timestamptz '2026-03-01 01:00:00' AS ts, g, NULL::numeric AS x
             FROM generate_series(0, 499) g),
     s AS (INSERT INTO mk SELECT * FROM r RETURNING 1)
INSERT INTO mk_truth SELECT * FROM r;
SELECT rtstream.sync();
WITH r AS (SELECT timestamptz '2026-03-01 01:00:00' + i * interval '30 ms' AS ts, i % 500 AS g,
                  CASE WHEN i % 9 = 0 THEN NULL ELSE (i % 1000) * 0.125 END AS x
             FROM generate_series(1, 20000) i),
     s AS (INSERT INTO mk SELECT * FROM r RETURNING 1)
INSERT INTO mk_truth SELECT * FROM r;
WITH r AS (SELECT timestamptz '2026-03-01 01:10:00' AS ts, g, 1.5 AS x FROM generate_series(0, 499) g),
     s AS (INSERT INTO mk SELECT * FROM r RETURNING 1)
INSERT INTO mk_truth SELECT * FROM r;
SELECT rtstream.sync();
SELECT * FROM et_state('mk_w');
SELECT * FROM et_check('mk_w', 'SELECT * FROM mk_w_truth');
SELECT count(*) AS history_rows, count(DISTINCT (window_end, g)) AS windows_x_groups,
       count(DISTINCT g) AS groups, min(window_end), max(window_end)
  FROM mk_w_history;

----------------------------------------------------------------------------
-- 7. create_window errors, drop_window and the history table
----------------------------------------------------------------------------
SELECT count(*) AS windows_before FROM rtstream.windows \gset
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', late_policy => 'drop');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', dead_letter_table => 'et_dead');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', late_policy => 'dead_letter', dead_letter_table => 'et');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', allowed_lateness => '-1 minute');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', allowed_lateness => '1 mon');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', allowed_lateness => '1 year 2 days');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', gap => '1 minute');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', slide => '1 minute',
                              time_column => 'ts', gap => '1 minute');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', gap => '0 minutes',
                              time_column => 'ts');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', gap => '1 mon',
                              time_column => 'ts');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', retention => '1 hour');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', history => true, retention => '-1 hour');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', idle_timeout => '-1 second');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', idle_timeout => '1 mon');
-- at most 1024 panes: (size + allowed_lateness) / slide
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', allowed_lateness => '1024 minutes');
SELECT rtstream.create_window('et_bad', 'SELECT k, count(*) FROM et GROUP BY k', size => '2 minutes',
                              slide => '1 minute', time_column => 'ts', allowed_lateness => '1023 minutes');
CREATE TABLE et_taken_history (a int);
SELECT rtstream.create_window('et_taken', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', history => true);
SELECT count(*) - :windows_before AS windows_added FROM rtstream.windows;
SELECT to_regclass('et_bad') AS view, to_regclass('et_bad_history') AS history,
       to_regclass('et_taken') AS taken_view;
-- accepted: the limit exactly, idle_timeout (its catalog value; '0' is off)
SELECT rtstream.create_window('et_edge', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', allowed_lateness => '1023 minutes',
                              idle_timeout => '30 seconds');
SELECT rtstream.create_window('et_idle0', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', idle_timeout => '0', history => false);
SELECT name, allowed_lateness, idle_timeout, history FROM rtstream.windows
 WHERE name IN ('et_edge', 'et_idle0') ORDER BY name;
SELECT rtstream.drop_window('et_edge');
SELECT rtstream.drop_window('et_idle0');

-- drop_window drops the history table, unless keep_history
SELECT rtstream.drop_window('et_hop');
SELECT rtstream.drop_window('et_tumble', keep_history => true);
SELECT to_regclass('et_hop') AS hop_view, to_regclass('et_hop_history') AS hop_history,
       to_regclass('et_tumble') AS tumble_view, to_regclass('et_tumble_history') AS tumble_history;
SELECT * FROM et_cmp('SELECT * FROM et_tumble_history',
                     $$SELECT * FROM et_tumble_truth WHERE window_end <= '2026-03-01 00:18:00'$$);
SELECT name FROM rtstream.windows WHERE name IN ('et_hop', 'et_tumble');
-- a window of that name again: its history table is taken
SELECT rtstream.create_window('et_tumble', 'SELECT k, count(*) FROM et GROUP BY k', size => '1 minute',
                              time_column => 'ts', history => true);
DROP TABLE et_tumble_history;

-- alter_window(history => true) must not take a table it did not create
CREATE TABLE et_dlt_history (a int);
SELECT rtstream.alter_window('et_dlt', history => true);
SELECT name, history FROM rtstream.windows WHERE name = 'et_dlt';
SELECT rtstream.drop_window('et_dlt');
SELECT to_regclass('et_dlt_history') AS users_table_kept;

-- the rest
SELECT rtstream.drop_window(name) FROM rtstream.windows
 WHERE name IN ('et_all', 'mk_w') ORDER BY name;
SELECT to_regclass('et_all_history'), to_regclass('mk_w_history');
SELECT rtstream.sync();

-- Clean up: event_time_results and event_time_lateness make the stream et too
DELETE FROM rtstream.dead_letters WHERE stream = 'et'::regclass;
SELECT rtstream.drop_stream('et');
DROP VIEW et_late, et_tumble_truth, et_hop_truth, et_dlt_truth, et_all_truth;
DROP TABLE et, et_truth, et_dead, et_taken_history, et_dlt_history;
SELECT rtstream.sync();
