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

-- the group key of the rows of stream et (event_time_results,
-- event_time_lateness, event_time_history): ten groups, one of them NULL
CREATE FUNCTION et_key(i int) RETURNS text LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN i % 10 = 9 THEN NULL ELSE 'k' || i % 10 END $$;
