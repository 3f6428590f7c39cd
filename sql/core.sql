--
-- Core: streams, windows of every shape, compared with plain SQL over the
-- same rows (a truth table filled in the same statements).  The extension
-- and rt_diff, rt_bounds come from setup.sql.
--
SET timezone = 'UTC';

-- The example of the README
CREATE TABLE clicks (ts timestamptz NOT NULL DEFAULT now(), page text,
                     user_id bigint, latency_ms float8);
CREATE TABLE clicks_truth (LIKE clicks);
SELECT rtstream.create_stream('clicks', partition_by => 'page');
SELECT rtstream.create_window('clicks_1m',
  $$SELECT page, count(*) AS hits, sum(latency_ms) AS total_ms, avg(latency_ms) AS avg_ms,
           min(latency_ms) AS min_ms, max(latency_ms) AS max_ms
      FROM clicks GROUP BY page$$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
\d clicks_1m
SELECT name, stream, size, slide, time_column FROM rtstream.windows;
SELECT stream, partition_by FROM rtstream.streams;

-- event times spread over 3 minutes, values exactly representable
WITH r AS (
    SELECT timestamptz '2026-01-01 00:00:00+00' + (i * interval '179 milliseconds') AS ts,
           '/page/' || (i % 37) AS page, i::bigint AS user_id,
           CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 1000) * 0.25 END AS latency_ms
      FROM generate_series(1, 1000) i),
     s AS (INSERT INTO clicks SELECT * FROM r RETURNING 1)
INSERT INTO clicks_truth SELECT * FROM r;
SELECT count(*) AS rows_stored_in_stream FROM clicks;

SELECT * FROM rt_diff('clicks_1m', $$
    SELECT b.ws, b.we, page, count(*), sum(latency_ms), avg(latency_ms),
           min(latency_ms), max(latency_ms)
      FROM clicks_truth, rt_bounds((SELECT max(ts) FROM clicks_truth), '1 minute', '10 seconds') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3$$);
SELECT count(*) AS groups, min(window_start), max(window_end) FROM clicks_1m;

-- COPY goes through the same capture
COPY clicks (ts, page, user_id, latency_ms) FROM STDIN;
2026-01-01 00:03:00+00	/page/1	1	1.5
2026-01-01 00:03:01+00	/page/2	2	\N
2026-01-01 00:03:02+00	\N	3	7
\.
INSERT INTO clicks_truth VALUES
    ('2026-01-01 00:03:00+00', '/page/1', 1, 1.5),
    ('2026-01-01 00:03:01+00', '/page/2', 2, NULL),
    ('2026-01-01 00:03:02+00', NULL, 3, 7);
SELECT * FROM rt_diff('clicks_1m', $$
    SELECT b.ws, b.we, page, count(*), sum(latency_ms), avg(latency_ms),
           min(latency_ms), max(latency_ms)
      FROM clicks_truth, rt_bounds((SELECT max(ts) FROM clicks_truth), '1 minute', '10 seconds') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3$$);
SELECT * FROM clicks_1m WHERE page IS NULL OR page = '/page/2' ORDER BY page;

-- a row whose time is NULL is skipped and counted, not an error
ALTER TABLE clicks ALTER ts DROP NOT NULL;
INSERT INTO clicks VALUES (NULL, '/page/1', 1, 100);
SELECT rtstream.sync();
SELECT sum(null_time_rows) FROM rtstream.window_stats WHERE window_name = 'clicks_1m';
-- a row older than the current window is late: counted, never mixed in
INSERT INTO clicks VALUES ('2025-12-31 00:00:00+00', '/page/1', 1, 100);
SELECT rtstream.sync();
SELECT sum(late_rows) FROM rtstream.window_stats WHERE window_name = 'clicks_1m';
SELECT * FROM rt_diff('clicks_1m', $$
    SELECT b.ws, b.we, page, count(*), sum(latency_ms), avg(latency_ms),
           min(latency_ms), max(latency_ms)
      FROM clicks_truth, rt_bounds((SELECT max(ts) FROM clicks_truth), '1 minute', '10 seconds') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3$$);

-- Tumbling window, a global window (no GROUP BY) and a window grouped by
-- another key than the partition key, on the same stream
SELECT rtstream.create_window('clicks_tumble',
  $$SELECT page, count(latency_ms) AS n, sum(latency_ms) AS s FROM clicks GROUP BY page$$,
  size => '30 seconds', time_column => 'ts');
SELECT rtstream.create_window('clicks_global',
  $$SELECT count(*) AS n, avg(latency_ms) AS a, max(user_id) AS top_user FROM clicks$$,
  size => '2 minutes', slide => '1 minute', time_column => 'ts');
SELECT rtstream.create_window('clicks_by_user',
  $$SELECT user_id % 7 AS bucket, count(*) AS n, min(page) AS first_page FROM clicks
     WHERE latency_ms > 10 GROUP BY user_id % 7$$,
  size => '1 minute', slide => '20 seconds', time_column => 'ts');
-- windows count the rows of transactions that commit after their creation
TRUNCATE clicks_truth;
WITH r AS (
    SELECT timestamptz '2026-01-01 00:10:00+00' + (i * interval '71 milliseconds') AS ts,
           '/p/' || (i % 101) AS page, i::bigint AS user_id, (i % 400) * 0.5 AS latency_ms
      FROM generate_series(1, 2000) i),
     s AS (INSERT INTO clicks SELECT * FROM r RETURNING 1)
INSERT INTO clicks_truth SELECT * FROM r;
SELECT * FROM rt_diff('clicks_tumble', $$
    SELECT b.ws, b.we, page, count(latency_ms), sum(latency_ms)
      FROM clicks_truth, rt_bounds((SELECT max(ts) FROM clicks_truth), '30 seconds', '30 seconds') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3$$);
SELECT * FROM rt_diff('clicks_global', $$
    SELECT b.ws, b.we, count(*), avg(latency_ms), max(user_id)
      FROM clicks_truth, rt_bounds((SELECT max(ts) FROM clicks_truth), '2 minutes', '1 minute') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2$$);
SELECT * FROM rt_diff('clicks_by_user', $$
    SELECT b.ws, b.we, user_id % 7, count(*), min(page)
      FROM clicks_truth, rt_bounds((SELECT max(ts) FROM clicks_truth), '1 minute', '20 seconds') b
     WHERE ts >= b.ws AND ts < b.we AND latency_ms > 10 GROUP BY 1, 2, 3$$);
SELECT count(*) FROM clicks_by_user;
SELECT window_start, window_end, n FROM clicks_global;

-- an empty window: a global window over rows all filtered out has no row
SELECT rtstream.create_window('clicks_none',
  $$SELECT count(*) AS n FROM clicks WHERE page = 'nowhere'$$, size => '1 minute', time_column => 'ts');
INSERT INTO clicks VALUES ('2026-01-01 00:12:30+00', '/p/1', 1, 1);
SELECT rtstream.sync();
SELECT count(*) AS rows_in_empty_window FROM clicks_none;

-- Commit-time window: every row of this test commits within the day
CREATE TABLE events (k int, v int, note text);
CREATE TABLE events_truth (LIKE events);
SELECT rtstream.create_stream('events');
SELECT rtstream.create_window('events_day',
  $$SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a, min(note) AS lo, max(note) AS hi
      FROM events GROUP BY k$$, size => '1 day');
WITH r AS (SELECT i % 50 AS k, CASE WHEN i % 7 = 0 THEN NULL ELSE i END AS v, 'n' || (i % 13) AS note
             FROM generate_series(1, 5000) i),
     s AS (INSERT INTO events SELECT * FROM r RETURNING 1)
INSERT INTO events_truth SELECT * FROM r;
SELECT * FROM rt_diff('events_day', $$
    SELECT date_trunc('day', now()), date_trunc('day', now()) + interval '1 day',
           k, count(*), sum(v), avg(v), min(note), max(note)
      FROM events_truth GROUP BY k$$);

-- 10,000+ keys, hash partitioned on two columns
CREATE TABLE many (ts timestamptz, a int, b text, x float8);
CREATE TABLE many_truth (LIKE many);
SELECT rtstream.create_stream('many', partition_by => 'a, b');
SELECT rtstream.create_window('many_w',
  $$SELECT a, b, count(*) AS n, sum(x) AS s, max(x) AS mx FROM many GROUP BY a, b$$,
  size => '10 minutes', slide => '1 minute', time_column => 'ts');
WITH r AS (SELECT timestamptz '2026-02-01 00:00:00+00' + (i * interval '10 milliseconds') AS ts,
                  i % 12000 AS a, 'b' || (i % 3) AS b, (i % 97) * 1.0 AS x
             FROM generate_series(1, 48000) i),
     s AS (INSERT INTO many SELECT * FROM r RETURNING 1)
INSERT INTO many_truth SELECT * FROM r;
SELECT * FROM rt_diff('many_w', $$
    SELECT b.ws, b.we, a, many_truth.b, count(*), sum(x), max(x)
      FROM many_truth, rt_bounds((SELECT max(ts) FROM many_truth), '10 minutes', '1 minute') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3, 4$$);
SELECT count(*) AS groups FROM many_w;

-- Range partitioning on an ordered key
CREATE TABLE readings (ts timestamptz, sensor int, temp float8);
CREATE TABLE readings_truth (LIKE readings);
SELECT rtstream.create_stream('readings', partition_by => 'sensor', method => 'range',
                              bounds => '{100,200,300}');
SELECT rtstream.create_window('readings_w', $$
    SELECT sensor / 50 AS band, count(*) AS n, avg(temp) AS t, min(sensor) AS lo
      FROM readings GROUP BY sensor / 50$$, size => '5 minutes', slide => '1 minute', time_column => 'ts');
WITH r AS (SELECT timestamptz '2026-05-01 00:00:00+00' + i * interval '30 milliseconds' AS ts,
                  CASE WHEN i % 100 = 0 THEN NULL ELSE (i * 13) % 400 END AS sensor,
                  (i % 80) * 0.5 AS temp
             FROM generate_series(1, 20000) i),
     s AS (INSERT INTO readings SELECT * FROM r RETURNING 1)
INSERT INTO readings_truth SELECT * FROM r;
SELECT * FROM rt_diff('readings_w', $$
    SELECT b.ws, b.we, sensor / 50, count(*), avg(temp), min(sensor)
      FROM readings_truth, rt_bounds((SELECT max(ts) FROM readings_truth), '5 minutes', '1 minute') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3$$);
SELECT stream, partition_by, method, bounds FROM rtstream.streams ORDER BY stream::text;
