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
-- the stream et and the rows of phase 1 of event_time_results and of
-- phase 2 of event_time_lateness (setup.sql)
CALL et_create();
CALL et_load(2);

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
