--
-- Event time: allowed_lateness and watermarks, late rows (counted, dead
-- letters), history tables and retention, session windows, alter_window.
-- Every result is compared with plain SQL over a truth table filled by the
-- same statements.
--
-- The watermark is the stream's newest event time less allowed_lateness,
-- over the transactions every worker has applied; a row is also judged
-- against the rows before it in its own partition.  To be deterministic,
-- every window first gets one row per group at the same time, rows out of
-- order stay within the lateness, every group is given the same newest time
-- before rows meant to be late, and each phase ends with rtstream.sync().
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

-- Every slide position holding t: the windows [we - size, we) with we a
-- multiple of slide from the Unix epoch, t < we <= t + size.
CREATE FUNCTION et_windows(t timestamptz, size interval, slide interval,
                           OUT ws timestamptz, OUT we timestamptz)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
    SELECT e - size, e
      FROM generate_series(
             to_timestamp(floor(extract(epoch FROM t) / extract(epoch FROM slide))
                          * extract(epoch FROM slide)) + slide,
             to_timestamp(floor(extract(epoch FROM t) / extract(epoch FROM slide))
                          * extract(epoch FROM slide)) + size,
             slide) e
$$;

-- A row is late when every window holding it has ended at or before the
-- watermark it is judged against.
CREATE FUNCTION et_late(t timestamptz, size interval, slide interval, wm timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT max(we) <= wm FROM et_windows(t, size, slide)
$$;

-- A window's event time, over its workers: the watermark is the same on
-- every row of rtstream.window_stats (one_watermark).
CREATE FUNCTION et_state(w text, OUT newest timestamptz, OUT watermark timestamptz,
                         OUT closed_until timestamptz, OUT late_rows numeric,
                         OUT one_watermark boolean)
LANGUAGE sql AS $$
    SELECT max(newest_time), max(watermark), max(closed_until), sum(late_rows),
           count(DISTINCT watermark) = 1
      FROM rtstream.window_stats WHERE window_name = w
$$;

-- Two queries as multisets: their sizes and the rows of each missing from
-- the other (EXCEPT ALL both ways).  Equal when both only_ columns are 0.
CREATE FUNCTION et_cmp(got text, truth text, OUT got_rows bigint, OUT truth_rows bigint,
                       OUT only_got bigint, OUT only_truth bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rtstream.sync();
    EXECUTE format('SELECT (SELECT count(*) FROM (%1$s) a), (SELECT count(*) FROM (%2$s) b),
                           (SELECT count(*) FROM ((%1$s) EXCEPT ALL (%2$s)) c),
                           (SELECT count(*) FROM ((%2$s) EXCEPT ALL (%1$s)) d)', got, truth)
       INTO got_rows, truth_rows, only_got, only_truth;
END $$;

-- A window against its truth, a query giving every window (every slide
-- position, or every session) with the view's columns, over the rows as
-- they arrived (a row counts in the windows still open when it arrived):
--   view            the current window (sessions: every open session)
--   window_results  every open window: window_end > watermark
--   history         every closed window: window_end <= watermark (and
--                   >= watermark - retention)
CREATE FUNCTION et_check(w text, truth text)
RETURNS TABLE (what text, got_rows bigint, truth_rows bigint, only_got bigint, only_truth bigint)
LANGUAGE plpgsql AS $$
DECLARE
    d rtstream.windows;
    wm timestamptz;
    cur timestamptz;
BEGIN
    PERFORM rtstream.sync();
    SELECT * INTO d FROM rtstream.windows WHERE name = w;
    SELECT max(watermark) INTO wm FROM rtstream.window_stats WHERE window_name = w;
    IF d.gap IS NULL THEN
        SELECT b.we INTO cur
          FROM rt_bounds((SELECT max(newest_time) FROM rtstream.window_stats WHERE window_name = w),
                         d.size, d.slide) b;
    END IF;
    RETURN QUERY SELECT 'view', c.* FROM et_cmp(format('SELECT * FROM %I', w),
        format('SELECT * FROM (%s) t WHERE %s', truth,
               CASE WHEN d.gap IS NULL THEN format('window_end = %L', cur)
                    ELSE format('window_end > %L', wm) END)) c;
    RETURN QUERY SELECT 'window_results', c.* FROM et_cmp(
        format('SELECT * FROM rtstream.window_results(%L, NULL::%I)', w, w),
        format('SELECT * FROM (%s) t WHERE window_end > %L', truth, wm)) c;
    IF d.history IS NOT NULL THEN
        RETURN QUERY SELECT 'history', c.* FROM et_cmp(format('SELECT * FROM %s', d.history),
            format('SELECT * FROM (%s) t WHERE window_end <= %L AND window_end >= %L',
                   truth, wm, wm - coalesce(d.retention, '100 years'))) c;
    END IF;
END $$;

----------------------------------------------------------------------------
-- 1. Out-of-order rows within allowed_lateness; 2. late rows; 3. history
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
CREATE FUNCTION et_key(i int) RETURNS text LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN i % 10 = 9 THEN NULL ELSE 'k' || i % 10 END $$;
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
-- 5. Session windows: gap 5 minutes, lateness 4 minutes, history
----------------------------------------------------------------------------
CREATE TABLE se (ts timestamptz, k text, v int);
CREATE TABLE se_truth (ts timestamptz, k text, v int, late boolean NOT NULL DEFAULT false);
SELECT rtstream.create_stream('se', partition_by => 'k');
SELECT rtstream.create_window('se_w',
  $$SELECT k, count(*) AS n, sum(v) AS sv, min(ts) AS first_ts, max(ts) AS last_ts FROM se GROUP BY k$$,
  gap => '5 minutes', time_column => 'ts', allowed_lateness => '4 minutes', history => true);
SELECT name, size, slide, gap, allowed_lateness, history FROM rtstream.windows WHERE name = 'se_w';
-- sessions in plain SQL: a row starts a session when the previous row of
-- its group is 5 minutes or more before it (times are distinct per group)
CREATE VIEW se_w_truth AS
    WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) < interval '5 minutes'
                              THEN 0 ELSE 1 END AS starts
                 FROM se_truth WHERE NOT late),
         s AS (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY ts) AS session FROM o)
    SELECT min(ts) AS window_start, max(ts) + interval '5 minutes' AS window_end, k,
           count(*) AS n, sum(v) AS sv, min(ts) AS first_ts, max(ts) AS last_ts
      FROM s GROUP BY k, session;
-- every group at 00:00
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, k, 0 AS v
             FROM unnest(ARRAY['exact', 'below', 'merge'] ||
                         ARRAY(SELECT 's' || lpad(j::text, 2, '0') FROM generate_series(0, 29) j)) k),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
-- in time order: 'exact' 5 minutes after (a new session), 'below' 1 us less
-- (the same session), 'merge' two sessions; every other group at 00:10
WITH r AS (
    SELECT * FROM (VALUES (timestamptz '2026-03-01 00:05:00', 'exact', 1),
                          ('2026-03-01 00:04:59.999999', 'below', 1),
                          ('2026-03-01 00:04:00', 'merge', 1), ('2026-03-01 00:10:00', 'merge', 2),
                          ('2026-03-01 00:10:00', 'exact', 2)) v
    UNION ALL
    SELECT '2026-03-01 00:10:00', 's' || lpad(j::text, 2, '0'), 1 FROM generate_series(0, 29) j
    ORDER BY 1),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
SELECT * FROM et_state('se_w');
SELECT * FROM et_check('se_w', 'SELECT * FROM se_w_truth');
SELECT * FROM se_w WHERE k IN ('exact', 'below', 'merge') ORDER BY k, window_start;
SELECT * FROM se_w_history WHERE k IN ('exact', 'below', 'merge') ORDER BY k, window_start;
-- out of order: 00:07 joins both sessions of 'merge' into one; 00:06 joins
-- 'below'; 00:05:59 (before the watermark 00:06) is late
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 00:07:00', 'merge', 4),
                                 ('2026-03-01 00:06:00', 'below', 4),
                                 ('2026-03-01 00:05:59', 'exact', 4)) v),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth SELECT r.*, r.column1 < '2026-03-01 00:06:00' FROM r;
SELECT rtstream.sync();
SELECT * FROM et_state('se_w');
SELECT * FROM et_check('se_w', 'SELECT * FROM se_w_truth');
SELECT * FROM se_w WHERE k IN ('exact', 'below', 'merge') ORDER BY k, window_start;
-- 30 groups, 15 rows each, with gaps of 30 s to 6 min (5 min exactly,
-- and 1 us below and above) in time order; then every group at 02:00
WITH r AS (
    SELECT timestamptz '2026-03-01 00:10:00' + sum(gap) OVER (PARTITION BY j ORDER BY m) AS ts,
           's' || lpad(j::text, 2, '0') AS k, j * 100 + m AS v
      FROM generate_series(0, 29) j, generate_series(1, 15) m,
           LATERAL (SELECT (ARRAY[interval '1 min', '5 min', '4 min 59.999999 s', '6 min', '2 min',
                                 '30 s', '5 min 0.000001 s'])[(j + m * 3) % 7 + 1] AS gap) g
     ORDER BY 1),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth (ts, k, v) SELECT * FROM r;
WITH r AS (SELECT timestamptz '2026-03-01 02:00:00' AS ts, k, 5 AS v
             FROM (SELECT DISTINCT k FROM se_truth) d),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
SELECT max(ts) AS newest_before_seal FROM se_truth WHERE ts < '2026-03-01 02:00';
SELECT * FROM et_state('se_w');
SELECT * FROM et_check('se_w', 'SELECT * FROM se_w_truth');
-- late (before 01:56) or not: 01:55 late, 01:56 joins the open session
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 01:55:00', 's00', 7),
                                 ('2026-03-01 01:56:00', 's01', 7),
                                 ('2026-03-01 01:30:00', 's02', 7)) v),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth SELECT r.*, r.column1 < '2026-03-01 01:56:00' FROM r;
SELECT rtstream.sync();
SELECT * FROM et_state('se_w');
SELECT * FROM et_check('se_w', 'SELECT * FROM se_w_truth');
SELECT * FROM se_w WHERE k IN ('s00', 's01', 's02') ORDER BY k;
SELECT count(*) AS sessions, count(DISTINCT (k, window_start)) AS distinct_sessions,
       count(*) FILTER (WHERE window_end - window_start = interval '5 minutes') AS single_row,
       sum(n) AS n FROM se_w_history;
SELECT count(*) AS sessions_in_truth, sum(n) AS rows_in_truth FROM se_w_truth;

-- A group's rows on both workers (partitioned on p, grouped by k): its
-- session is one session over the rows of both
CREATE TABLE sp (ts timestamptz, k text, p int, v int);
CREATE TABLE sp_truth (LIKE sp);
SELECT rtstream.create_stream('sp', partition_by => 'p');
SELECT rtstream.create_window('sp_w', $$SELECT k, count(*) AS n, sum(v) AS sv FROM sp GROUP BY k$$,
  gap => '5 minutes', time_column => 'ts', allowed_lateness => '1 minute', history => true);
-- sp_truth has equal times per group: the truth sums them per time first
CREATE VIEW sp_w_truth AS
    WITH t AS (SELECT ts, k, count(*) AS n, sum(v) AS sv FROM sp_truth GROUP BY ts, k),
         o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) < interval '5 minutes'
                              THEN 0 ELSE 1 END AS starts FROM t),
         s AS (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY ts) AS session FROM o)
    SELECT min(ts) AS window_start, max(ts) + interval '5 minutes' AS window_end, k,
           sum(n)::bigint AS n, sum(sv)::bigint AS sv FROM s GROUP BY k, session;
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, 'a' AS k, p, 0 AS v FROM generate_series(0, 9) p),
     s AS (INSERT INTO sp SELECT * FROM r RETURNING 1)
INSERT INTO sp_truth SELECT * FROM r;
SELECT rtstream.sync();
-- partition p gets a row at 3p minutes: 3 minutes apart in all, further
-- apart on each worker
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' + p * interval '3 minutes' AS ts, 'a' AS k, p, 1 AS v
             FROM generate_series(0, 9) p),
     s AS (INSERT INTO sp SELECT * FROM r RETURNING 1)
INSERT INTO sp_truth SELECT * FROM r;
SELECT rtstream.sync();
WITH r AS (SELECT timestamptz '2026-03-01 00:27:00' AS ts, 'a' AS k, p, 10 AS v FROM generate_series(0, 9) p),
     s AS (INSERT INTO sp SELECT * FROM r RETURNING 1)
INSERT INTO sp_truth SELECT * FROM r;
SELECT rtstream.sync();
SELECT newest, watermark, late_rows FROM et_state('sp_w');
SELECT * FROM et_check('sp_w', 'SELECT * FROM sp_w_truth');
SELECT * FROM sp_w;
WITH r AS (SELECT timestamptz '2026-03-01 01:00:00' AS ts, 'a' AS k, p, 100 AS v FROM generate_series(0, 9) p),
     s AS (INSERT INTO sp SELECT * FROM r RETURNING 1)
INSERT INTO sp_truth SELECT * FROM r;
SELECT rtstream.sync();
SELECT newest, watermark, late_rows FROM et_state('sp_w');
SELECT * FROM et_check('sp_w', 'SELECT * FROM sp_w_truth');
SELECT * FROM sp_w_history;

----------------------------------------------------------------------------
-- 6. alter_window: lateness bigger and smaller, late_policy, idle_timeout,
-- retention, history off and on; the state is kept
----------------------------------------------------------------------------
CREATE TABLE al (ts timestamptz, k text, v int);
CREATE TABLE al_truth (ts timestamptz, k text, v int, late boolean NOT NULL DEFAULT false);
CREATE TABLE al_dead (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
SELECT rtstream.create_stream('al', partition_by => 'k');
SELECT rtstream.create_window('al_h', $$SELECT k, count(*) AS n, sum(v) AS sv FROM al GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes', history => true);
CREATE VIEW al_h_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM al_truth, et_windows(ts, '1 minute', '1 minute') w WHERE NOT late GROUP BY 1, 2, 3;
-- al_rows(times, late before): a row per group at each time, late when
-- its window ends at or before the given time
CREATE FUNCTION al_rows(times text[], late_until timestamptz DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    WITH r AS (SELECT t::timestamptz AS ts, 'g' || g AS k, g * 1000 + n::int AS v
                 FROM unnest(times) WITH ORDINALITY AS u(t, n), generate_series(1, 6) g
                ORDER BY 1, 2),
         s AS (INSERT INTO al SELECT * FROM r RETURNING 1)
    INSERT INTO al_truth
    SELECT r.*, coalesce(et_late(ts, '1 minute', '1 minute', late_until), false) FROM r;
$$;
SELECT al_rows('{2026-03-01 00:00:00}');
SELECT rtstream.sync();
SELECT al_rows(ARRAY(SELECT (timestamptz '2026-03-01 00:00:00' + i * interval '10 s')::text
                       FROM generate_series(1, 60) i));
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');

-- bigger: closed windows do not reopen, the watermark stays at 00:08:00
-- (it only rises) until the newest time passes 00:13:00; rows of windows
-- in the history are late
SELECT rtstream.alter_window('al_h', allowed_lateness => '5 minutes');
SELECT rtstream.sync();
SELECT name, allowed_lateness, history FROM rtstream.windows WHERE name = 'al_h';
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT al_rows('{2026-03-01 00:07:30, 2026-03-01 00:08:00, 2026-03-01 00:09:59}',
               late_until => '2026-03-01 00:08:00');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
-- newest 00:13:00, watermark 00:08:00: 00:08:30 and 00:10:59 count (with a
-- lateness of 2 minutes they would be late), 00:07:59 is in the history
SELECT al_rows('{2026-03-01 00:13:00}');
SELECT al_rows('{2026-03-01 00:07:59, 2026-03-01 00:08:30, 2026-03-01 00:10:59}',
               late_until => '2026-03-01 00:08:00');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT count(*) FILTER (WHERE late) AS late_in_truth FROM al_truth;

-- smaller: the watermark jumps to 00:12:30 and the windows up to 00:12:00
-- close; late rows go to al_dead from now on
SELECT rtstream.alter_window('al_h', allowed_lateness => '30 seconds', late_policy => 'dead_letter',
                             dead_letter_table => 'al_dead');
SELECT rtstream.sync();
SELECT name, allowed_lateness, late_policy, dead_letter_table FROM rtstream.windows WHERE name = 'al_h';
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT window_end, count(*) AS groups, sum(n) AS n
  FROM al_h_history WHERE window_end > '2026-03-01 00:08:00' GROUP BY 1 ORDER BY 1;
SELECT al_rows('{2026-03-01 00:11:59, 2026-03-01 00:12:10, 2026-03-01 00:12:29}',
               late_until => '2026-03-01 00:12:30');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT * FROM et_cmp('SELECT (row_data::al).* FROM al_dead',
                     $$SELECT ts, k, v FROM al_truth WHERE late AND ts = '2026-03-01 00:11:59'$$);
SELECT rtstream.alter_window('al_h', late_policy => 'count');
SELECT name, late_policy, dead_letter_table FROM rtstream.windows WHERE name = 'al_h';

-- idle_timeout: only the catalog here ('0' turns it off)
SELECT rtstream.alter_window('al_h', idle_timeout => '1 hour');
SELECT name, idle_timeout FROM rtstream.windows WHERE name = 'al_h';
SELECT rtstream.alter_window('al_h', idle_timeout => '0');
SELECT name, idle_timeout FROM rtstream.windows WHERE name = 'al_h';

-- retention 2 minutes: newest 00:16:00, watermark 00:15:30, history from
-- 00:13:30 on
SELECT rtstream.alter_window('al_h', retention => '2 minutes');
SELECT al_rows('{2026-03-01 00:16:00}');
SELECT rtstream.sync();
SELECT name, retention FROM rtstream.windows WHERE name = 'al_h';
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT window_end, count(*) AS groups FROM al_h_history GROUP BY 1 ORDER BY 1;

-- history off (retention first: it needs the history): the windows stay
-- exact; on again, in a new table: closed windows are appended again
-- (retention drops those of the time it was off)
SELECT rtstream.alter_window('al_h', history => false);
SELECT rtstream.alter_window('al_h', retention => '0', history => false);
SELECT name, history, retention FROM rtstream.windows WHERE name = 'al_h';
DROP TABLE al_h_history;
SELECT al_rows('{2026-03-01 00:19:00}');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT rtstream.alter_window('al_h', history => true, retention => '2 minutes');
SELECT name, history, retention FROM rtstream.windows WHERE name = 'al_h';
SELECT al_rows('{2026-03-01 00:21:00}');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT window_end, count(*) AS groups FROM al_h_history GROUP BY 1 ORDER BY 1;

-- bad values: an ERROR, and nothing changed
SELECT rtstream.alter_window('no_such_window', allowed_lateness => '1 minute');
SELECT rtstream.alter_window('al_h', allowed_lateness => '-1 second');
SELECT rtstream.alter_window('al_h', allowed_lateness => '1 mon');
SELECT rtstream.alter_window('al_h', allowed_lateness => '1024 minutes');
SELECT rtstream.alter_window('al_h', idle_timeout => '-5 minutes');
SELECT rtstream.alter_window('al_h', retention => '1 year');
SELECT rtstream.alter_window('al_h', late_policy => 'ignore');
SELECT rtstream.alter_window('al_h', dead_letter_table => 'al_dead');
SELECT rtstream.alter_window('al_h', late_policy => 'dead_letter', dead_letter_table => 'al');
SELECT rtstream.alter_window('al_h', history => false);
SELECT rtstream.alter_window('et_dlt', retention => '1 hour');
SELECT name, allowed_lateness, idle_timeout, late_policy, dead_letter_table, history, retention
  FROM rtstream.windows WHERE name IN ('al_h', 'et_dlt') ORDER BY name;
SELECT rtstream.alter_window('al_h', allowed_lateness => '1023 minutes');
SELECT name, allowed_lateness FROM rtstream.windows WHERE name = 'al_h';

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
 WHERE name IN ('et_all', 'nw_w', 'mk_w', 'se_w', 'sp_w', 'al_h') ORDER BY name;
SELECT to_regclass('et_all_history'), to_regclass('mk_w_history'), to_regclass('se_w_history');
SELECT rtstream.sync();
