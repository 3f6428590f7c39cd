--
-- Setup for the tests after this one: the extension and the helper
-- functions they share.  Each later file sets its own session settings
-- (timezone, SHOW_CONTEXT) and makes its own tables, streams and windows.
--
CREATE EXTENSION rtstream;

-- rt_diff(view, truth query): rows of the view missing from the truth and
-- rows of the truth missing from the view.  Empty means equal.
CREATE FUNCTION rt_diff(w text, truth text)
RETURNS TABLE (side text, row_text text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rtstream.sync();
    RETURN QUERY EXECUTE format(
        'SELECT ''only in view'', t::text FROM (SELECT * FROM %s EXCEPT ALL (%s)) t
         UNION ALL
         SELECT ''only in truth'', t::text FROM ((%s) EXCEPT ALL SELECT * FROM %s) t
         ORDER BY 1, 2', w, truth, truth, w);
END $$;

-- the current window of an event-time window: it ends at the first slide
-- boundary after the newest event time
CREATE FUNCTION rt_bounds(newest timestamptz, size interval, slide interval,
                          OUT ws timestamptz, OUT we timestamptz)
LANGUAGE sql AS $$
    SELECT to_timestamp((floor(extract(epoch FROM newest) / extract(epoch FROM slide)) + 1)
                        * extract(epoch FROM slide)) - size,
           to_timestamp((floor(extract(epoch FROM newest) / extract(epoch FROM slide)) + 1)
                        * extract(epoch FROM slide))
$$;

----------------------------------------------------------------------------
-- Event time (the event_time_* tests)
----------------------------------------------------------------------------
-- The watermark is the stream's newest event time less allowed_lateness,
-- over the transactions every worker has applied; a row is also judged
-- against the rows before it in its own partition.  To be deterministic,
-- every window first gets one row per group at the same time, rows out of
-- order stay within the lateness, every group is given the same newest time
-- before rows meant to be late, and each phase ends with rtstream.sync().

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
--   window_results  every open window: window_end > watermark (sessions:
--                   window_end >= watermark, a row at the watermark could
--                   still join a session ending there)
--   history         every closed window: the others (and window_end >=
--                   watermark - retention)
CREATE FUNCTION et_check(w text, truth text)
RETURNS TABLE (what text, got_rows bigint, truth_rows bigint, only_got bigint, only_truth bigint)
LANGUAGE plpgsql AS $$
DECLARE
    d rtstream.windows;
    wm timestamptz;
    cur timestamptz;
    open_end text;
BEGIN
    PERFORM rtstream.sync();
    SELECT * INTO d FROM rtstream.windows WHERE name = w;
    SELECT max(watermark) INTO wm FROM rtstream.window_stats WHERE window_name = w;
    IF d.gap IS NULL THEN
        SELECT b.we INTO cur
          FROM rt_bounds((SELECT max(newest_time) FROM rtstream.window_stats WHERE window_name = w),
                         d.size, d.slide) b;
    END IF;
    open_end := CASE WHEN d.gap IS NULL THEN '>' ELSE '>=' END;
    RETURN QUERY SELECT 'view', c.* FROM et_cmp(format('SELECT * FROM %I', w),
        format('SELECT * FROM (%s) t WHERE %s', truth,
               CASE WHEN d.gap IS NULL THEN format('window_end = %L', cur)
                    ELSE format('window_end >= %L', wm) END)) c;
    RETURN QUERY SELECT 'window_results', c.* FROM et_cmp(
        format('SELECT * FROM rtstream.window_results(%L, NULL::%I)', w, w),
        format('SELECT * FROM (%s) t WHERE window_end %s %L', truth, open_end, wm)) c;
    IF d.history IS NOT NULL THEN
        RETURN QUERY SELECT 'history', c.* FROM et_cmp(format('SELECT * FROM %s', d.history),
            format('SELECT * FROM (%s) t WHERE NOT (window_end %s %L) AND window_end >= %L',
                   truth, open_end, wm, wm - coalesce(d.retention, '100 years'))) c;
    END IF;
END $$;

-- the group key of the rows of stream et (event_time_results,
-- event_time_lateness, event_time_history): ten groups, one of them NULL
CREATE FUNCTION et_key(i int) RETURNS text LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN i % 10 = 9 THEN NULL ELSE 'k' || i % 10 END $$;

-- The stream et of event_time_results, event_time_lateness and
-- event_time_history: ten groups (one of them NULL) over both workers,
-- four windows:
--   et_tumble  1 minute,              lateness 2 min, history, late rows counted
--   et_hop     2 minutes / 30 seconds, lateness 1 min, history kept 3 minutes,
--              late rows in rtstream.dead_letters
--   et_dlt     1 minute,              lateness 30 s, late rows in et_dead
--   et_all     2 minutes / 1 minute, one global group (rows of both workers),
--              lateness 2 min, history
-- and the truth table and views.  et_create() makes them; et_load(phase)
-- loads the rows of phase 1 (event_time_results) and, with phase 2, those
-- of event_time_lateness's late rows, each statement in a transaction of
-- its own as the tests ran them; et_drop() drops them all.
CREATE PROCEDURE et_create() LANGUAGE plpgsql AS $body$
BEGIN
    CREATE TABLE et (ts timestamptz, k text, v int, x float8);
    -- newest_before: the newest event time of the stream when the row
    -- arrived (every window's watermark is that less its lateness)
    CREATE TABLE et_truth (ts timestamptz, k text, v int, x float8,
                           newest_before timestamptz NOT NULL DEFAULT '-infinity');
    CREATE TABLE et_dead (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
    PERFORM rtstream.create_stream('et', partition_by => 'k');
    COMMIT;
    PERFORM rtstream.create_window('et_tumble',
      $q$SELECT k, count(*) AS n, count(x) AS nx, sum(v) AS sv, avg(x) AS ax, min(x) AS lo, max(v) AS hi
          FROM et GROUP BY k$q$,
      size => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes', history => true);
    COMMIT;
    PERFORM rtstream.create_window('et_hop',
      $q$SELECT k, count(*) AS n, sum(x) AS sx, max(x) AS mx FROM et GROUP BY k$q$,
      size => '2 minutes', slide => '30 seconds', time_column => 'ts', allowed_lateness => '1 minute',
      late_policy => 'dead_letter', history => true, retention => '3 minutes');
    COMMIT;
    PERFORM rtstream.create_window('et_dlt',
      $q$SELECT k, count(*) AS n, sum(v) AS sv FROM et GROUP BY k$q$,
      size => '1 minute', time_column => 'ts', allowed_lateness => '30 seconds',
      late_policy => 'dead_letter', dead_letter_table => 'et_dead');
    COMMIT;
    PERFORM rtstream.create_window('et_all',
      $q$SELECT count(*) AS n, count(k) AS nk, sum(v) AS sv, max(x) AS mx FROM et$q$,
      size => '2 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes',
      history => true);
    COMMIT;

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
END $body$;

CREATE PROCEDURE et_load(phase int) LANGUAGE plpgsql AS $body$
BEGIN
    -- one row per group at 00:00: both workers have rows
    WITH r AS (SELECT timestamptz '2026-03-01 00:00:00' AS ts, et_key(g) AS k, 0 AS v, NULL::float8 AS x
                 FROM generate_series(0, 9) g),
         s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
    INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
    COMMIT;
    PERFORM rtstream.sync();

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
    COMMIT;
    WITH r AS (SELECT timestamptz '2026-03-01 00:10:00' AS ts, et_key(g) AS k, -1 AS v, 0.5::float8 AS x
                 FROM generate_series(0, 9) g),
         s AS (INSERT INTO et SELECT * FROM r RETURNING 1)
    INSERT INTO et_truth (ts, k, v, x) SELECT * FROM r;
    COMMIT;
    PERFORM rtstream.sync();
    IF phase < 2 THEN
        RETURN;
    END IF;
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
    COMMIT;
    PERFORM rtstream.sync();
END $body$;

CREATE PROCEDURE et_drop() LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM rtstream.drop_window(name) FROM rtstream.windows
     WHERE name IN ('et_tumble', 'et_hop', 'et_dlt', 'et_all') ORDER BY name;
    COMMIT;
    DELETE FROM rtstream.dead_letters WHERE stream = 'et'::regclass;
    PERFORM rtstream.drop_stream('et');
    DROP VIEW et_late, et_tumble_truth, et_hop_truth, et_dlt_truth, et_all_truth;
    DROP TABLE et, et_truth, et_dead;
    COMMIT;
    PERFORM rtstream.sync();
END $body$;
