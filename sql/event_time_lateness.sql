--
-- Event time, late rows: rows of windows already closed (by the watermark,
-- or by the rows before them in their own partition) are counted, or kept
-- as dead letters in rtstream.dead_letters or a dead_letter_table, and
-- never in a result.  Every result is compared with plain SQL over a truth
-- table filled by the same statements.  The helpers et_*: setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

----------------------------------------------------------------------------
-- 2. Late rows
----------------------------------------------------------------------------
-- the stream et (setup.sql)
CALL et_create();

-- 2. Late rows: the newest time is 00:10:00, the watermarks are
--   et_tumble 00:08:00, et_hop 00:09:00, et_dlt 00:09:30, et_all 00:08:00.
-- Nine rows per group, none newer: each late or not by the spec's rule.  A
-- row that is not late counts only in its windows still open (et_hop
-- 00:07:30 counts in the window ending 00:09:30, not in those ending
-- 00:08:00 .. 00:09:00, already in the history).
-- et_load(2) loads the rows of phase 1 of event_time_results, then these
-- (setup.sql).
CALL et_load(2);
-- which are late, by hand: t 00:02 .. 00:07:59.999999 (5 of 9), h 00:02, 00:06:59,
-- 00:07 (3, the last on the boundary), d 00:02 .. 00:08 (6), a 00:02, 00:06:59 (2)
SELECT to_char(ts, 'HH24:MI:SS.US') AS ts, bool_and(t) AS t, bool_and(h) AS h,
       bool_and(d) AS d, bool_and(a) AS a, count(*) AS groups
  FROM et_late WHERE v >= 10000 GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE t) AS late_t, count(*) FILTER (WHERE h) AS late_h,
       count(*) FILTER (WHERE d) AS late_d, count(*) FILTER (WHERE a) AS late_a
  FROM et_late;
-- late_rows, summed over the workers
SELECT w, s.* FROM unnest('{et_tumble,et_hop,et_dlt,et_all}'::text[]) WITH ORDINALITY u(w, o), et_state(w) s ORDER BY o;
-- late_policy 'dead_letter': each late row of et_hop in rtstream.dead_letters
SELECT count(*) AS dead_letters, bool_and(error LIKE 'late row%') AS late_row_errors,
       bool_and(stream = 'et'::regclass) AS stream, count(commit_lsn) AS with_lsn
  FROM rtstream.dead_letters WHERE window_name = 'et_hop';
SELECT * FROM et_cmp($$SELECT (row_data::et).* FROM rtstream.dead_letters WHERE window_name = 'et_hop'$$,
                     $$SELECT ts, k, v, x FROM et_late WHERE h$$);
-- dead_letter_table: et_dlt's late rows in et_dead, not in rtstream.dead_letters
SELECT count(*) AS dead_letters, bool_and(error LIKE 'late row%') AS late_row_errors,
       bool_and(window_name = 'et_dlt') AS window_name, bool_and(stream = 'et'::regclass) AS stream
  FROM et_dead;
SELECT * FROM et_cmp($$SELECT (row_data::et).* FROM et_dead$$,
                     $$SELECT ts, k, v, x FROM et_late WHERE d$$);
SELECT count(*) AS other_dead_letters FROM rtstream.dead_letters
 WHERE window_name IN ('et_tumble', 'et_dlt', 'et_all');
-- late rows are nowhere: view, open windows and history equal the truth
-- without them
SELECT * FROM et_check('et_tumble', 'SELECT * FROM et_tumble_truth');
SELECT * FROM et_check('et_hop', 'SELECT * FROM et_hop_truth');
SELECT * FROM et_check('et_dlt', 'SELECT * FROM et_dlt_truth');
SELECT * FROM et_check('et_all', 'SELECT * FROM et_all_truth');
SELECT window_start, window_end, n, nx, sv, hi
  FROM rtstream.window_results('et_tumble', NULL::et_tumble) WHERE k = 'k1' ORDER BY window_end;

-- A row of a window already in the history is late, also on a worker
-- that had no row of the window yet
CREATE TABLE nw (ts timestamptz, k text, v int);
CREATE TABLE nw_truth (LIKE nw);
SELECT rtstream.create_stream('nw', partition_by => 'k');
SELECT rtstream.create_window('nw_w', $$SELECT k, count(*) AS n, sum(v) AS sv FROM nw GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 minute', history => true);
INSERT INTO nw VALUES ('2026-03-01 00:00:10', 'a', 1), ('2026-03-01 00:05:00', 'a', 2);
INSERT INTO nw_truth VALUES ('2026-03-01 00:00:10', 'a', 1), ('2026-03-01 00:05:00', 'a', 2);
SELECT rtstream.sync();
SELECT newest, watermark, closed_until, late_rows FROM et_state('nw_w');
-- 00:00:20 and 00:03:59 are in windows of the history: late; 00:04:30 counts
INSERT INTO nw VALUES ('2026-03-01 00:00:20', 'b', 4), ('2026-03-01 00:03:59', 'b', 8),
                      ('2026-03-01 00:04:30', 'b', 16);
INSERT INTO nw_truth VALUES ('2026-03-01 00:04:30', 'b', 16);
SELECT rtstream.sync();
SELECT late_rows, closed_until FROM et_state('nw_w');
SELECT * FROM nw_w_history;
SELECT * FROM et_cmp('SELECT * FROM nw_w_history',
    $$SELECT w.ws, w.we, k, count(*), sum(v) FROM nw_truth, et_windows(ts, '1 minute', '1 minute') w
       WHERE w.we <= '2026-03-01 00:04:00' GROUP BY 1, 2, 3$$);
SELECT * FROM et_cmp($$SELECT * FROM rtstream.window_results('nw_w', NULL::nw_w)$$,
    $$SELECT w.ws, w.we, k, count(*), sum(v) FROM nw_truth, et_windows(ts, '1 minute', '1 minute') w
       WHERE w.we > '2026-03-01 00:04:00' GROUP BY 1, 2, 3$$);

-- Rows of one transaction are late only because of the rows before them
-- in their own partition: k0 at 00:10 makes k0 at 00:05 late, not the rows
-- of the other groups at 00:05 and 00:07:59 (other partitions, some on
-- k0's worker); they count, and their windows close at the commit
CREATE TABLE po (ts timestamptz, k text, v int);
CREATE TABLE po_truth (ts timestamptz, k text, v int, late boolean NOT NULL DEFAULT false);
SELECT rtstream.create_stream('po', partition_by => 'k');
SELECT rtstream.create_window('po_w', $$SELECT k, count(*) AS n, sum(v) AS sv FROM po GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes', history => true);
CREATE VIEW po_w_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM po_truth, et_windows(ts, '1 minute', '1 minute') w WHERE NOT late GROUP BY 1, 2, 3;
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, 'k' || g AS k, 0 AS v FROM generate_series(0, 19) g),
     s AS (INSERT INTO po SELECT * FROM r RETURNING 1)
INSERT INTO po_truth SELECT * FROM r;
SELECT rtstream.sync();
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 00:10:00', 'k0', 1, false),
                                 ('2026-03-01 00:05:00', 'k0', 2, true)) v
           UNION ALL
           SELECT t, 'k' || g, 4, false
             FROM generate_series(1, 19) g,
                  unnest(ARRAY[timestamptz '2026-03-01 00:05:00', '2026-03-01 00:07:59']) t),
     s AS (INSERT INTO po SELECT column1, column2, column3 FROM r RETURNING 1)
INSERT INTO po_truth SELECT * FROM r;
SELECT rtstream.sync();
SELECT * FROM et_state('po_w');
SELECT * FROM et_check('po_w', 'SELECT * FROM po_w_truth');
SELECT window_end, count(*) AS groups, sum(n) AS n FROM po_w_history GROUP BY 1 ORDER BY 1;

-- Clean up: event_time_history makes the stream et again
SELECT rtstream.drop_window('nw_w');
CALL et_drop();
