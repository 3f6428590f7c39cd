--
-- Window shapes: hopping windows with any slide, windows aligned to an
-- origin, daily windows on a time zone's wall clock across both DST
-- changes, and cumulating windows.  Every window is checked against plain
-- SQL over the same rows: its history (closed windows) and
-- rtstream.window_results (open windows) together hold every window that
-- holds a row, and its view holds the current one.
--
SET timezone = 'Europe/Paris';
\set SHOW_CONTEXT never

-- Every window holding t of a hopping (tumbling) window: it starts at
-- origin + n * slide and ends size later.  With day intervals, + follows the
-- session time zone's calendar, as the window's timezone does.
CREATE FUNCTION ws_hop(t timestamptz, size interval, slide interval, origin timestamptz,
                       OUT ws timestamptz, OUT we timestamptz)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT origin + n * slide, origin + n * slide + size
      FROM generate_series(floor(extract(epoch FROM t - origin - size) / extract(epoch FROM slide))::bigint - 1,
                           floor(extract(epoch FROM t - origin) / extract(epoch FROM slide))::bigint + 1) n
     WHERE origin + n * slide <= t AND t < origin + n * slide + size
$$;

-- Every window holding t of a cumulating window: from the start of t's
-- period (origin + n * size) to each step end after t, up to the size.
CREATE FUNCTION ws_cum(t timestamptz, size interval, step interval, origin timestamptz,
                       OUT ws timestamptz, OUT we timestamptz)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT p.ps, p.ps + j * step
      FROM (SELECT origin + n * size AS ps
              FROM generate_series(floor(extract(epoch FROM t - origin) / extract(epoch FROM size))::bigint - 1,
                                   floor(extract(epoch FROM t - origin) / extract(epoch FROM size))::bigint + 1) n
             WHERE origin + n * size <= t AND t < origin + (n + 1) * size) p,
           generate_series(1, (extract(epoch FROM size) / extract(epoch FROM step))::int) j
     WHERE p.ps + j * step > t AND p.ps + j * step <= p.ps + size
$$;

-- A window against its truth (every window holding a row, with the view's
-- columns): history + window_results, and the view against the window of
-- the truth that holds the newest time and ends first.  A stream keeps no
-- rows: the truth reads a copy, the table <stream>_rows.
CREATE FUNCTION ws_check(w text, truth text)
RETURNS TABLE (what text, got_rows bigint, truth_rows bigint, only_got bigint, only_truth bigint)
LANGUAGE plpgsql AS $$
DECLARE
    d rtstream.windows;
BEGIN
    PERFORM rtstream.sync();
    SELECT * INTO d FROM rtstream.windows WHERE name = w;
    RETURN QUERY SELECT 'history + open', c.* FROM et_cmp(
        format('SELECT * FROM %s UNION ALL SELECT * FROM rtstream.window_results(%L, NULL::%I)',
               d.history, w, w), truth) c;
    RETURN QUERY SELECT 'view', c.* FROM et_cmp(format('SELECT * FROM %I', w),
        format('SELECT * FROM (%s) t WHERE window_end = (SELECT min(window_end) FROM (%s) u
                 WHERE window_start <= (SELECT max(ts) FROM %s) AND window_end > (SELECT max(ts) FROM %s))',
               truth, truth, d.stream || '_rows', d.stream || '_rows')) c;
END $$;

----------------------------------------------------------------------------
-- 1. Seconds: any hop, an origin, cumulating
----------------------------------------------------------------------------
CREATE TABLE shs (ts timestamptz NOT NULL, k text, v int);
SELECT rtstream.create_stream('shs', partition_by => 'k');
-- 5 s windows every 2 s: panes of 1 s, windows start at even seconds
SELECT rtstream.create_window('shs_hop', 'SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS sv, min(v) AS mn FROM shs GROUP BY k',
                              size => '5 seconds', slide => '2 seconds', time_column => 'ts', history => true);
-- 7 s windows every 3 s, starting at 0.5 s past a multiple of 3 s from 2026
SELECT rtstream.create_window('shs_hop_origin', 'SELECT k, count(*) AS n, sum(v) AS sv FROM shs GROUP BY k',
                              size => '7 seconds', slide => '3 seconds', origin => '2026-01-01 00:00:00.5+00',
                              time_column => 'ts', history => true);
-- tumbling 10 s windows starting at 4 s past every 10 s, every group as one
SELECT rtstream.create_window('shs_tumble_origin', 'SELECT count(*) AS n, avg(v) AS av FROM shs',
                              size => '10 seconds', origin => '2026-01-01 00:00:04+00',
                              time_column => 'ts', history => true);
-- running totals of each minute, every 15 s
SELECT rtstream.create_window('shs_cum', 'SELECT k, count(*) AS n, sum(v) AS sv, max(v) AS mx FROM shs GROUP BY k',
                              size => '1 minute', step => '15 seconds', time_column => 'ts', history => true);
SELECT name, size, slide, step, origin, timezone FROM rtstream.windows WHERE name LIKE 'shs%' ORDER BY id;

-- 400 rows 0.7 s apart, in order, three keys, every 9th value NULL
CREATE TABLE shs_rows AS
SELECT '2026-03-01 10:00:00+00'::timestamptz + i * interval '0.7 seconds' AS ts, 'k' || (i % 3) AS k,
       CASE WHEN i % 9 <> 0 THEN i END AS v
  FROM generate_series(0, 399) i;
INSERT INTO shs SELECT * FROM shs_rows ORDER BY ts;

SELECT * FROM ws_check('shs_hop',
  $$SELECT ws AS window_start, we AS window_end, k, count(*) AS n, count(v) AS nv, sum(v) AS sv, min(v) AS mn
      FROM shs_rows, ws_hop(ts, '5 seconds', '2 seconds', 'epoch') GROUP BY 1, 2, 3$$);
SELECT * FROM ws_check('shs_hop_origin',
  $$SELECT ws AS window_start, we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM shs_rows, ws_hop(ts, '7 seconds', '3 seconds', '2026-01-01 00:00:00.5+00') GROUP BY 1, 2, 3$$);
SELECT * FROM ws_check('shs_tumble_origin',
  $$SELECT ws AS window_start, we AS window_end, count(*) AS n, avg(v) AS av
      FROM shs_rows, ws_hop(ts, '10 seconds', '10 seconds', '2026-01-01 00:00:04+00') GROUP BY 1, 2$$);
SELECT * FROM ws_check('shs_cum',
  $$SELECT ws AS window_start, we AS window_end, k, count(*) AS n, sum(v) AS sv, max(v) AS mx
      FROM shs_rows, ws_cum(ts, '1 minute', '15 seconds', 'epoch') GROUP BY 1, 2, 3$$);

-- what the shapes look like: starts and lengths of the windows of k0
SELECT window_start, window_end, n FROM shs_hop_history WHERE k = 'k0' ORDER BY window_end LIMIT 4;
SELECT window_start, window_end, n FROM shs_hop_origin_history WHERE k = 'k0' ORDER BY window_end LIMIT 3;
SELECT window_start, window_end, n FROM shs_tumble_origin_history ORDER BY window_end LIMIT 2;
SELECT window_start, window_end, n, sv FROM shs_cum_history WHERE k = 'k0' ORDER BY window_end LIMIT 5;
-- the current cumulating window: the minute so far
SELECT window_start, window_end, n FROM shs_cum ORDER BY k;

-- Late rows: a row is late when every window holding it is closed (its end
-- is at or before the watermark, here the newest time).  Rows 0.5 s to 20 s
-- behind it, late or not by the shape of each window.
CREATE TABLE shs_late AS
SELECT (SELECT max(ts) FROM shs_rows) - d * interval '1 second' AS ts, 'k1' AS k, 1 AS v
  FROM unnest('{0.5, 1.5, 2.5, 3.5, 5, 6.5, 8, 12, 20, 45, 70}'::numeric[]) d;
INSERT INTO shs SELECT * FROM shs_late;
SELECT rtstream.sync();
SELECT w.name, s.late_rows,
       (SELECT count(*) FROM shs_late l
         WHERE (SELECT max(we) FROM ws_hop(l.ts, w.size, w.slide, coalesce(w.origin, 'epoch')))
               <= (SELECT max(ts) FROM shs_rows)) AS late_by_sql
  FROM rtstream.windows w,
       LATERAL (SELECT sum(late_rows) AS late_rows FROM rtstream.window_stats ws
                 WHERE ws.window_name = w.name) s
 WHERE w.name LIKE 'shs%' AND w.step IS NULL ORDER BY w.id;
SELECT s.late_rows,
       (SELECT count(*) FROM shs_late l
         WHERE (SELECT max(we) FROM ws_cum(l.ts, '1 minute', '15 seconds', 'epoch'))
               <= (SELECT max(ts) FROM shs_rows)) AS late_by_sql
  FROM (SELECT sum(late_rows) AS late_rows FROM rtstream.window_stats
         WHERE window_name = 'shs_cum') s;

----------------------------------------------------------------------------
-- 2. Days on a time zone's wall clock, across both DST changes
----------------------------------------------------------------------------
CREATE TABLE shd (ts timestamptz NOT NULL, k text, v int);
SELECT rtstream.create_stream('shd', partition_by => 'k');
SELECT rtstream.create_window('shd_day', 'SELECT k, count(*) AS n, sum(v) AS sv FROM shd GROUP BY k',
                              size => '1 day', timezone => 'Europe/Paris', time_column => 'ts', history => true);
SELECT rtstream.create_window('shd_2days', 'SELECT count(*) AS n, sum(v) AS sv FROM shd',
                              size => '2 days', slide => '1 day', timezone => 'Europe/Paris',
                              time_column => 'ts', history => true);
-- the week from Monday, a running total each day
SELECT rtstream.create_window('shd_week', 'SELECT k, count(*) AS n, sum(v) AS sv FROM shd GROUP BY k',
                              size => '7 days', step => '1 day', timezone => 'Europe/Paris',
                              origin => '2026-03-23 00:00 Europe/Paris', time_column => 'ts', history => true);
-- the same day in UTC, for contrast
SELECT rtstream.create_window('shd_day_utc', 'SELECT count(*) AS n FROM shd',
                              size => '1 day', time_column => 'ts', history => true);

-- every 20 minutes, 27-31 March (DST starts 29 March), then 23-27 October
-- (DST ends 25 October): one transaction each
CREATE TABLE shd_rows AS
SELECT t AS ts, 'k' || (i % 4) AS k, (i % 50)::int AS v
  FROM generate_series('2026-03-27 00:00 Europe/Paris'::timestamptz, '2026-03-31 12:00 Europe/Paris', '20 minutes')
       WITH ORDINALITY g(t, i);
INSERT INTO shd SELECT * FROM shd_rows ORDER BY ts;
INSERT INTO shd_rows
SELECT t, 'k' || (i % 4), i % 50
  FROM generate_series('2026-10-23 00:00 Europe/Paris'::timestamptz, '2026-10-27 12:00 Europe/Paris', '20 minutes')
       WITH ORDINALITY g(t, i);
INSERT INTO shd SELECT * FROM shd_rows WHERE ts > '2026-10-01' ORDER BY ts;

SELECT * FROM ws_check('shd_day',
  $$SELECT ws AS window_start, we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM shd_rows, ws_hop(ts, '1 day', '1 day', '1970-01-01 00:00 Europe/Paris') GROUP BY 1, 2, 3$$);
SELECT * FROM ws_check('shd_2days',
  $$SELECT ws AS window_start, we AS window_end, count(*) AS n, sum(v) AS sv
      FROM shd_rows, ws_hop(ts, '2 days', '1 day', '1970-01-01 00:00 Europe/Paris') GROUP BY 1, 2$$);
SELECT * FROM ws_check('shd_week',
  $$SELECT ws AS window_start, we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM shd_rows, ws_cum(ts, '7 days', '1 day', '2026-03-23 00:00 Europe/Paris') GROUP BY 1, 2, 3$$);
SET timezone = 'UTC';
SELECT * FROM ws_check('shd_day_utc',
  $$SELECT ws AS window_start, we AS window_end, count(*) AS n
      FROM shd_rows, ws_hop(ts, '1 day', '1 day', 'epoch') GROUP BY 1, 2$$);
SET timezone = 'Europe/Paris';

-- local days of 23 and 25 hours, from local midnight to local midnight
SELECT window_start, window_end, window_end - window_start AS length, sum(n) AS n
  FROM shd_day_history
 WHERE window_start::date IN ('2026-03-28', '2026-03-29', '2026-03-30', '2026-10-24', '2026-10-25', '2026-10-26')
 GROUP BY 1, 2 ORDER BY 1;
-- in UTC instead, the same days are 24 hours
SELECT window_start, window_end - window_start AS length, n FROM shd_day_utc_history
 WHERE window_start::date IN ('2026-03-29', '2026-10-25') ORDER BY 1;
-- the week's running total grows one local day at a time
SELECT window_start, window_end, sum(n) AS n FROM shd_week_history
 WHERE window_start = '2026-03-23 00:00' GROUP BY 1, 2 ORDER BY 2;

-- Clean up
SELECT rtstream.drop_window(name) FROM rtstream.windows WHERE name LIKE 'sh%' ORDER BY id;
SELECT rtstream.drop_stream('shs');
SELECT rtstream.drop_stream('shd');
DROP TABLE shs, shd, shs_rows, shd_rows, shs_late;
DROP FUNCTION ws_hop, ws_cum, ws_check;
