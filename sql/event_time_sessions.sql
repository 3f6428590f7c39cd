--
-- Event time, session windows: a session per group ends gap after its
-- last row; rows out of order join or merge sessions, late rows are
-- counted; a group's rows on both workers make one session.  Every result
-- is compared with plain SQL over a truth table filled by the same
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

-- the rest
SELECT rtstream.drop_window(name) FROM rtstream.windows
 WHERE name IN ('se_w', 'sp_w') ORDER BY name;
SELECT to_regclass('se_w_history');
SELECT rtstream.sync();
