--
-- Event time, session windows: a session per group ends gap after its
-- last row, and rows at most gap apart (exactly gap too) are one session;
-- rows out of order join or merge sessions; a row before the watermark
-- joins a session still open that starts at or before it, and is late
-- otherwise; a group's rows on both workers make one session.  Every
-- result is compared with plain SQL over a truth table filled by the same
-- statements.  The helpers et_*: setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

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
-- its group is more than 5 minutes before it
CREATE VIEW se_w_truth AS
    WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) <= interval '5 minutes'
                              THEN 0 ELSE 1 END AS starts
                 FROM se_truth WHERE NOT late),
         s AS (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY ts) AS session FROM o)
    SELECT min(ts) AS window_start, max(ts) + interval '5 minutes' AS window_end, k,
           count(*) AS n, sum(v) AS sv, min(ts) AS first_ts, max(ts) AS last_ts
      FROM s GROUP BY k, session;
-- a row at t is late when it is before the watermark wm and no session of
-- its group still open (ending at or after wm) starts at or before t; a
-- group's rows are all on one worker (partitioned by k)
CREATE FUNCTION se_late(key text, t timestamptz, wm timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT t < wm AND NOT EXISTS (SELECT FROM se_w_truth s
                                   WHERE s.k = key AND s.window_end >= wm AND s.window_start <= t)
$$;
-- every group at 00:00
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, k, 0 AS v
             FROM unnest(ARRAY['exact', 'below', 'merge'] ||
                         ARRAY(SELECT 's' || lpad(j::text, 2, '0') FROM generate_series(0, 29) j)) k),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
-- in time order: 'exact' 5 minutes after and 5 minutes after that (rows
-- gap apart touch: one session), 'below' 1 us less (the same session),
-- 'merge' two sessions; every other group at 00:10
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
-- 'below'; 00:05:59, before the watermark 00:06, falls into the open
-- session [00:00, 00:10] of 'exact': it joins it
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 00:07:00', 'merge', 4),
                                 ('2026-03-01 00:06:00', 'below', 4),
                                 ('2026-03-01 00:05:59', 'exact', 4)) v),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth SELECT r.*, se_late(r.column2, r.column1, '2026-03-01 00:06:00') FROM r;
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
-- late (before 01:56) or not: 01:55 is late, before the first row (02:00)
-- of the open session of s00 though within gap of it; 01:56, at the
-- watermark, joins the open session; 01:30 reaches only closed sessions
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 01:55:00', 's00', 7),
                                 ('2026-03-01 01:56:00', 's01', 7),
                                 ('2026-03-01 01:30:00', 's02', 7)) v),
     s AS (INSERT INTO se SELECT * FROM r RETURNING 1)
INSERT INTO se_truth SELECT r.*, se_late(r.column2, r.column1, '2026-03-01 01:56:00') FROM r;
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
         o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) <= interval '5 minutes'
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
-- 6. Sessions that touch, rows before the watermark: gap 5 minutes,
--    lateness 1 minute, history.  A session is closed once the watermark
--    has passed its end (last + gap < watermark); a row before the
--    watermark joins a session still open that starts at or before it.
----------------------------------------------------------------------------
CREATE TABLE sr (ts timestamptz, k text, v int);
CREATE TABLE sr_truth (ts timestamptz, k text, v int, late boolean NOT NULL DEFAULT false);
SELECT rtstream.create_stream('sr', partition_by => 'k');
SELECT rtstream.create_window('sr_w',
  $$SELECT k, count(*) AS n, sum(v) AS sv, min(ts) AS first_ts, max(ts) AS last_ts FROM sr GROUP BY k$$,
  gap => '5 minutes', time_column => 'ts', allowed_lateness => '1 minute', history => true);
CREATE VIEW sr_w_truth AS
    WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) <= interval '5 minutes'
                              THEN 0 ELSE 1 END AS starts
                 FROM sr_truth WHERE NOT late),
         s AS (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY ts) AS session FROM o)
    SELECT min(ts) AS window_start, max(ts) + interval '5 minutes' AS window_end, k,
           count(*) AS n, sum(v) AS sv, min(ts) AS first_ts, max(ts) AS last_ts
      FROM s GROUP BY k, session;
CREATE FUNCTION sr_late(key text, t timestamptz, wm timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT t < wm AND NOT EXISTS (SELECT FROM sr_w_truth s
                                   WHERE s.k = key AND s.window_end >= wm AND s.window_start <= t)
$$;
-- every group at 00:00
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, k, 0 AS v
             FROM unnest(ARRAY['touch', 'apart', 'chain', 'closed', 'into', 'before', 'edge',
                               'atwm']) k),
     s AS (INSERT INTO sr SELECT * FROM r RETURNING 1)
INSERT INTO sr_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
-- in time order: 'touch' exactly gap after (one session), 'apart' gap + 1 us
-- after (two), 'chain' rows each exactly gap apart; then every group at
-- 00:20: the watermark is 00:19
WITH r AS (
    SELECT * FROM (VALUES (timestamptz '2026-03-01 00:05:00', 'touch', 1),
                          ('2026-03-01 00:05:00.000001', 'apart', 1),
                          ('2026-03-01 00:05:00', 'chain', 1), ('2026-03-01 00:10:00', 'chain', 2),
                          ('2026-03-01 00:15:00', 'chain', 3),
                          ('2026-03-01 00:14:00', 'edge', 1), ('2026-03-01 00:14:00', 'atwm', 1),
                          ('2026-03-01 00:15:00', 'into', 1), ('2026-03-01 00:16:00', 'before', 1)) v
    ORDER BY 1),
     s AS (INSERT INTO sr SELECT * FROM r RETURNING 1)
INSERT INTO sr_truth (ts, k, v) SELECT * FROM r;
WITH r AS (SELECT timestamptz '2026-03-01 00:20:00' AS ts, k, 2 AS v
             FROM (SELECT DISTINCT k FROM sr_truth) d),
     s AS (INSERT INTO sr SELECT * FROM r RETURNING 1)
INSERT INTO sr_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
-- the history is complete up to 1 us before the watermark: 'edge' and
-- 'atwm' [00:14, 00:19), ending at the watermark, are still open
SELECT * FROM et_state('sr_w');
SELECT * FROM et_check('sr_w', 'SELECT * FROM sr_w_truth');
SELECT * FROM sr_w ORDER BY k, window_start;
SELECT * FROM sr_w_history ORDER BY k, window_start;
-- before the watermark 00:19 (and at it), every group's newest time 00:20:
--   closed  00:05     exactly gap after its closed session [00:00, 00:05),
--                     reaching no open one: late; its history row stays
--   into    00:17     inside its open session [00:15, 00:20]: joins it
--   into    00:15     at the first row of that session: joins it
--   chain   00:01     19 minutes before the newest time, in its open session
--                     [00:00, 00:20]: joins it
--   before  00:14     2 minutes before the first row (00:16) of its open
--                     session: late (Flink would start the session earlier;
--                     a worker cannot tell that no closed session of the
--                     group, here or on another worker, is within gap)
--   edge    00:14:30  in [00:14, 00:19), open as it ends at the watermark:
--                     joins it
--   atwm    00:19     at the watermark, never late: touches [00:14, 00:19)
--                     and [00:20, 00:25) and makes them one session
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 00:05:00', 'closed', 10),
                                 ('2026-03-01 00:17:00', 'into', 10),
                                 ('2026-03-01 00:15:00', 'into', 11),
                                 ('2026-03-01 00:01:00', 'chain', 10),
                                 ('2026-03-01 00:14:00', 'before', 10),
                                 ('2026-03-01 00:14:30', 'edge', 10),
                                 ('2026-03-01 00:19:00', 'atwm', 10)) v),
     s AS (INSERT INTO sr SELECT * FROM r RETURNING 1)
INSERT INTO sr_truth SELECT r.*, sr_late(r.column2, r.column1, '2026-03-01 00:19:00') FROM r;
SELECT rtstream.sync();
SELECT k, ts, v FROM sr_truth WHERE late ORDER BY k;
SELECT * FROM et_state('sr_w');
SELECT * FROM et_check('sr_w', 'SELECT * FROM sr_w_truth');
SELECT * FROM sr_w ORDER BY k, window_start;
SELECT * FROM sr_w_history ORDER BY k, window_start;
-- every group at 01:00: every session before closes, each once in the
-- history
WITH r AS (SELECT timestamptz '2026-03-01 01:00:00' AS ts, k, 5 AS v
             FROM (SELECT DISTINCT k FROM sr_truth) d),
     s AS (INSERT INTO sr SELECT * FROM r RETURNING 1)
INSERT INTO sr_truth (ts, k, v) SELECT * FROM r;
SELECT rtstream.sync();
SELECT * FROM et_state('sr_w');
SELECT * FROM et_check('sr_w', 'SELECT * FROM sr_w_truth');
SELECT * FROM sr_w_history WHERE window_end > '2026-03-01 00:19:00' ORDER BY k, window_start;
SELECT count(*) AS sessions, count(DISTINCT (k, window_start)) AS distinct_sessions,
       sum(n) AS n FROM sr_w_history;
SELECT count(*) AS sessions_in_truth, sum(n) AS rows_in_truth
  FROM sr_w_truth WHERE window_end < '2026-03-01 00:59:00';

----------------------------------------------------------------------------
-- 7. Sessions of a group on both workers (partitioned on p, grouped by k)
--    that only touch: merged by the same rule when read and written
----------------------------------------------------------------------------
CREATE TABLE sq (ts timestamptz, k text, p int, v int);
CREATE TABLE sq_truth (ts timestamptz, k text, p int, v int, late boolean NOT NULL DEFAULT false);
SELECT rtstream.create_stream('sq', partition_by => 'p');
SELECT rtstream.create_window('sq_w', $$SELECT k, count(*) AS n, sum(v) AS sv FROM sq GROUP BY k$$,
  gap => '5 minutes', time_column => 'ts', allowed_lateness => '1 minute', history => true);
CREATE VIEW sq_w_truth AS
    WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) <= interval '5 minutes'
                              THEN 0 ELSE 1 END AS starts
                 FROM sq_truth WHERE NOT late),
         s AS (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY ts) AS session FROM o)
    SELECT min(ts) AS window_start, max(ts) + interval '5 minutes' AS window_end, k,
           count(*) AS n, sum(v) AS sv
      FROM s GROUP BY k, session;
-- late as in sr_late, for a group whose rows every worker has alike
CREATE FUNCTION sq_late(key text, t timestamptz, wm timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT t < wm AND NOT EXISTS (SELECT FROM sq_w_truth s
                                   WHERE s.k = key AND s.window_end >= wm AND s.window_start <= t)
$$;
-- 'a' and 'b' at 00:00 in every partition
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, k, p, 0 AS v
             FROM unnest(ARRAY['a', 'b']) k, generate_series(0, 9) p),
     s AS (INSERT INTO sq SELECT * FROM r RETURNING 1)
INSERT INTO sq_truth (ts, k, p, v) SELECT * FROM r;
SELECT rtstream.sync();
-- 'a': a chain of rows exactly gap apart, each in another partition (on
-- each worker, its own rows are further apart: partial sessions that only
-- touch those of the other worker)
WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' + j * interval '5 minutes' AS ts, 'a' AS k,
                  j AS p, j AS v
             FROM generate_series(1, 9) j),
     s AS (INSERT INTO sq SELECT * FROM r RETURNING 1)
INSERT INTO sq_truth (ts, k, p, v) SELECT * FROM r;
-- 'b' at 00:46, then 'a' and 'b' at 00:50, in every partition
WITH r AS (SELECT timestamptz '2026-03-01 00:46:00' AS ts, 'b' AS k, p, 1 AS v FROM generate_series(0, 9) p
           UNION ALL
           SELECT timestamptz '2026-03-01 00:50:00', k, p, 2 FROM unnest(ARRAY['a', 'b']) k,
                  generate_series(0, 9) p),
     s AS (INSERT INTO sq SELECT * FROM r RETURNING 1)
INSERT INTO sq_truth (ts, k, p, v) SELECT * FROM r;
SELECT rtstream.sync();
SELECT newest, watermark, closed_until, late_rows FROM et_state('sq_w');
SELECT count(*) AS workers_with_rows FROM rtstream.window_stats WHERE window_name = 'sq_w' AND rows > 0;
SELECT * FROM et_check('sq_w', 'SELECT * FROM sq_w_truth');
SELECT * FROM sq_w ORDER BY k, window_start;
SELECT * FROM sq_w_history ORDER BY k, window_start;
-- before the watermark 00:49: 'b' 00:47 joins the open session [00:46,
-- 00:50] (every worker has it); 'b' 00:45, before its first row, is late
WITH r AS (SELECT * FROM (VALUES (timestamptz '2026-03-01 00:47:00', 'b', 3, 10),
                                 ('2026-03-01 00:45:00', 'b', 5, 10)) v),
     s AS (INSERT INTO sq SELECT * FROM r RETURNING 1)
INSERT INTO sq_truth SELECT r.*, sq_late(r.column2, r.column1, '2026-03-01 00:49:00') FROM r;
SELECT rtstream.sync();
SELECT k, ts, p, v FROM sq_truth WHERE late;
SELECT newest, watermark, closed_until, late_rows FROM et_state('sq_w');
SELECT * FROM et_check('sq_w', 'SELECT * FROM sq_w_truth');
SELECT * FROM sq_w ORDER BY k, window_start;
-- every partition at 02:00: each session once in the history
WITH r AS (SELECT timestamptz '2026-03-01 02:00:00' AS ts, k, p, 100 AS v
             FROM unnest(ARRAY['a', 'b']) k, generate_series(0, 9) p),
     s AS (INSERT INTO sq SELECT * FROM r RETURNING 1)
INSERT INTO sq_truth (ts, k, p, v) SELECT * FROM r;
SELECT rtstream.sync();
SELECT * FROM et_check('sq_w', 'SELECT * FROM sq_w_truth');
SELECT * FROM sq_w_history ORDER BY k, window_start;

-- the rest
SELECT rtstream.drop_window(name) FROM rtstream.windows
 WHERE name IN ('se_w', 'sp_w', 'sr_w', 'sq_w') ORDER BY name;
SELECT to_regclass('se_w_history');
SELECT rtstream.sync();
