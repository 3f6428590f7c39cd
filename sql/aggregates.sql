--
-- Aggregates: the catalog path (any aggregate with a combine function,
-- internal states included), the native fast path, hll and tdigest, each
-- compared with the same aggregate over the same rows in plain SQL.
--
SET timezone = 'UTC';
CREATE TABLE m (ts timestamptz, g int, i2 int2, i4 int4, i8 int8, n numeric,
                r real, d float8, b bool, t text, tz timestamptz);
CREATE TABLE m_truth (LIKE m);
SELECT rtstream.create_stream('m', partition_by => 'i4');

SELECT rtstream.create_window('m_generic', $$
    SELECT g, count(i8) AS c8, sum(i8) AS s8, avg(i8) AS a8, sum(n) AS sn, avg(n) AS an,
           min(n) AS minn, max(n) AS maxn,
           stddev(d) AS sdd, variance(d) AS vd, stddev_samp(i4) AS sd4, var_pop(i8) AS vp8,
           stddev(n) AS sdn, variance(r) AS vr,
           bool_and(b) AS band, bool_or(b) AS bor, bit_and(i4) AS bitand4, bit_or(i8) AS bitor8,
           bit_and(i2) AS bitand2, min(t) AS mint, max(t) AS maxt, min(tz) AS mintz, max(tz) AS maxtz
      FROM m GROUP BY g$$, size => '1 hour', slide => '10 minutes', time_column => 'ts');

SELECT rtstream.create_window('m_fast', $$
    SELECT g, count(*) AS c, count(d) AS cd, sum(i2) AS s2, sum(i4) AS s4, sum(r) AS sr, sum(d) AS sd,
           avg(i2) AS a2, avg(i4) AS a4, avg(r) AS ar, avg(d) AS ad,
           min(i2) AS mi2, max(i2) AS ma2, min(i4) AS mi4, max(i4) AS ma4,
           min(i8) AS mi8, max(i8) AS ma8, min(r) AS mir, max(r) AS mar, min(d) AS mid, max(d) AS mad
      FROM m GROUP BY g$$, size => '1 hour', slide => '10 minutes', time_column => 'ts');

-- grouped by the partition key: each group lives in one worker, read
-- without merging
SELECT rtstream.create_window('m_by_i4', $$
    SELECT i4, count(*) AS c, sum(n) AS sn, stddev(d) AS sdd, min(t) AS mint, avg(i8) AS a8
      FROM m GROUP BY i4$$, size => '1 hour', slide => '10 minutes', time_column => 'ts');

-- user-defined aggregates built on the same functions take the catalog
-- path: they must agree with the fast path
CREATE AGGREGATE my_sum(float8) (sfunc = float8pl, stype = float8, combinefunc = float8pl);
CREATE AGGREGATE my_max(int4) (sfunc = int4larger, stype = int4, combinefunc = int4larger);
CREATE AGGREGATE my_count(*) (sfunc = int8inc, stype = int8, combinefunc = int8pl, initcond = '0');
SELECT rtstream.create_window('m_udf', $$
    SELECT g, my_sum(d) AS s, my_max(i4) AS mx, my_count(*) AS c, sum(d) AS fs, max(i4) AS fmx, count(*) AS fc
      FROM m GROUP BY g$$, size => '1 hour', slide => '10 minutes', time_column => 'ts');

WITH r AS (
    SELECT timestamptz '2026-03-01 00:00:00+00' + i * interval '1 second' AS ts,
           i % 23 AS g,
           CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 300 - 150)::int2 END AS i2,
           CASE WHEN i % 17 = 0 THEN NULL ELSE i % 1000 - 400 END AS i4,
           CASE WHEN i % 19 = 0 THEN NULL ELSE (i::int8 * 1000003) % 9000000000 END AS i8,
           CASE WHEN i % 29 = 0 THEN NULL ELSE round((i % 977) / 7.0, 3) END AS n,
           CASE WHEN i % 31 = 0 THEN NULL ELSE ((i % 64) * 0.5)::real END AS r,
           CASE WHEN i % 37 = 0 THEN NULL ELSE (i % 512) * 0.125 - 20 END AS d,
           CASE WHEN i % 41 = 0 THEN NULL ELSE i % 5 <> 0 END AS b,
           CASE WHEN i % 43 = 0 THEN NULL ELSE md5(i::text) END AS t,
           CASE WHEN i % 47 = 0 THEN NULL
                ELSE timestamptz '2020-01-01 00:00:00+00' + (i * 7919 % 100000) * interval '1 minute' END AS tz
      FROM generate_series(1, 20000) i),
     s AS (INSERT INTO m SELECT * FROM r RETURNING 1)
INSERT INTO m_truth SELECT * FROM r;

-- truth over the current window
CREATE VIEW m_cur AS
    SELECT b.ws, b.we, m_truth.*
      FROM m_truth, rt_bounds((SELECT max(ts) FROM m_truth), '1 hour', '10 minutes') b
     WHERE ts >= b.ws AND ts < b.we;

-- floating-point results of different summation orders are compared
-- after rounding; everything else exactly
SELECT * FROM rt_diff('(SELECT window_start, window_end, g, c8, s8, a8, sn, an, minn, maxn,
                               round(sdd::numeric, 9), round(vd::numeric, 6), round(sd4, 9), round(vp8, 0),
                               round(sdn, 9), round(vr::numeric, 6), band, bor, bitand4, bitor8, bitand2,
                               mint, maxt, mintz, maxtz FROM m_generic) v', $$
    SELECT ws, we, g, count(i8), sum(i8), avg(i8), sum(n), avg(n), min(n), max(n),
           round(stddev(d)::numeric, 9), round(variance(d)::numeric, 6), round(stddev_samp(i4), 9),
           round(var_pop(i8), 0), round(stddev(n), 9), round(variance(r)::numeric, 6),
           bool_and(b), bool_or(b), bit_and(i4), bit_or(i8), bit_and(i2),
           min(t), max(t), min(tz), max(tz)
      FROM m_cur GROUP BY ws, we, g$$);

SELECT * FROM rt_diff('m_fast', $$
    SELECT ws, we, g, count(*), count(d), sum(i2), sum(i4), sum(r), sum(d),
           avg(i2), avg(i4), avg(r), avg(d), min(i2), max(i2), min(i4), max(i4),
           min(i8), max(i8), min(r), max(r), min(d), max(d)
      FROM m_cur GROUP BY ws, we, g$$);

SELECT * FROM rt_diff('(SELECT window_start, window_end, i4, c, sn, round(sdd::numeric, 9), mint, a8 FROM m_by_i4) v', $$
    SELECT ws, we, i4, count(*), sum(n), round(stddev(d)::numeric, 9), min(t), avg(i8)
      FROM m_cur GROUP BY ws, we, i4$$);
SELECT count(*) AS groups FROM m_by_i4;

SELECT * FROM rt_diff('m_udf', $$
    SELECT ws, we, g, sum(d), max(i4), count(*), sum(d), max(i4), count(*)
      FROM m_cur GROUP BY ws, we, g$$);
SELECT count(*) AS groups, sum(c) AS rows_in_window FROM m_udf;
SELECT count(*) FILTER (WHERE s IS DISTINCT FROM fs OR mx IS DISTINCT FROM fmx OR c <> fc)
       AS fast_and_catalog_paths_disagree FROM m_udf;

-- all-NULL input: sum/min/max are NULL, count is 0, as in plain SQL
INSERT INTO m (ts, g) VALUES ('2026-03-01 05:30:00+00', 1000), ('2026-03-01 05:30:01+00', 1000);
INSERT INTO m_truth (ts, g) VALUES ('2026-03-01 05:30:00+00', 1000), ('2026-03-01 05:30:01+00', 1000);
SELECT * FROM rt_diff('m_fast', $$
    SELECT ws, we, g, count(*), count(d), sum(i2), sum(i4), sum(r), sum(d),
           avg(i2), avg(i4), avg(r), avg(d), min(i2), max(i2), min(i4), max(i4),
           min(i8), max(i8), min(r), max(r), min(d), max(d)
      FROM m_cur GROUP BY ws, we, g$$);
SELECT g, c, cd, s2, sd, a4, ad, mi8, mad FROM m_fast WHERE g = 1000;
SELECT g, c8, s8, a8, sn, an, sdd, band, mint, maxtz FROM m_generic WHERE g = 1000;

-- FILTER and expressions in arguments and group keys (the window counts
-- the rows committed after its creation: the 200 rows at 05:40)
SELECT rtstream.create_window('m_expr', $$
    SELECT g % 5 AS g5, lower(substr(t, 1, 1)) AS t1, count(*) FILTER (WHERE d > 0) AS pos,
           sum(d * 2 + 1) AS s2, max(length(t)) AS ml
      FROM m WHERE i4 IS NOT NULL GROUP BY g % 5, lower(substr(t, 1, 1))$$,
    size => '1 hour', time_column => 'ts');
INSERT INTO m (ts, g, i4, d, t) SELECT '2026-03-01 05:40:00+00', i, i, i - 50, md5(i::text)
  FROM generate_series(1, 200) i;
INSERT INTO m_truth (ts, g, i4, d, t) SELECT '2026-03-01 05:40:00+00', i, i, i - 50, md5(i::text)
  FROM generate_series(1, 200) i;
SELECT * FROM rt_diff('m_expr', $$
    SELECT b.ws, b.we, g % 5, lower(substr(t, 1, 1)), count(*) FILTER (WHERE d > 0),
           sum(d * 2 + 1), max(length(t))
      FROM m_truth, rt_bounds((SELECT max(ts) FROM m_truth), '1 hour', '1 hour') b
     WHERE ts >= b.ws AND ts < b.we AND ts = '2026-03-01 05:40:00+00' AND i4 IS NOT NULL
     GROUP BY 1, 2, 3, 4$$);

-- hll and tdigest, through the same catalog path
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
CREATE TABLE lat (ts timestamptz, page text, user_id bigint, ms float8);
CREATE TABLE lat_truth (LIKE lat);
SELECT rtstream.create_stream('lat', partition_by => 'user_id');
SELECT rtstream.create_window('lat_w', $$
    SELECT page, hll_add_agg(hll_hash_bigint(user_id)) AS users,
           tdigest_percentile(ms, 100, 0.5) AS p50, tdigest_percentile(ms, 100, 0.99) AS p99,
           tdigest(ms, 100) AS digest, count(*) AS n
      FROM lat GROUP BY page$$, size => '10 minutes', slide => '1 minute', time_column => 'ts');
WITH r AS (SELECT timestamptz '2026-04-01 00:00:00+00' + i * interval '20 milliseconds' AS ts,
                  'p' || (i % 4) AS page, (i * 7) % 5000 AS user_id, ((i * 37) % 10000) / 10.0 AS ms
             FROM generate_series(1, 40000) i),
     s AS (INSERT INTO lat SELECT * FROM r RETURNING 1)
INSERT INTO lat_truth SELECT * FROM r;
CREATE VIEW lat_cur AS
    SELECT b.ws, b.we, lat_truth.*
      FROM lat_truth, rt_bounds((SELECT max(ts) FROM lat_truth), '10 minutes', '1 minute') b
     WHERE ts >= b.ws AND ts < b.we;
SELECT rtstream.sync();
-- distinct counts: the union of partial sketches is the sketch of the union
SELECT v.page, hll_cardinality(v.users) = hll_cardinality(t.users) AS same_cardinality,
       v.n = t.n AS same_count
  FROM lat_w v
  JOIN (SELECT page, hll_add_agg(hll_hash_bigint(user_id)) AS users, count(*) AS n
          FROM lat_cur GROUP BY page) t USING (page)
 ORDER BY page;
-- percentiles: a digest merged from panes is an approximation of the
-- exact percentile, within 1% of the value range here
SELECT v.page, abs(v.p50 - t.p50) < 10 AS p50_close, abs(v.p99 - t.p99) < 10 AS p99_close,
       abs(q.p90 - t.p90) < 10 AS p90_close
  FROM lat_w v
  CROSS JOIN LATERAL (SELECT tdigest_percentile(d, 0.9) AS p90 FROM (VALUES (v.digest)) x(d)) q
  JOIN (SELECT page, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) AS p90,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
          FROM lat_cur GROUP BY page) t USING (page)
 ORDER BY page;
SELECT count(*) FROM lat_w;

-- Pane layout (pane_layout.c).  avg(x) keeps no sum or count of its own
-- when a sum(x) or count(x) of the same input and FILTER holds them; with
-- another FILTER or argument it keeps its own.  A group whose x are all -0
-- has sum(x) -0 and avg(x) 0, as in PostgreSQL, though they share a word.
-- sh_w's panes hold their number beside the flags; sh_tiny's 10 us panes
-- are too narrow for that, so their number takes a word.
CREATE TABLE sh (ts timestamptz, g int, i4 int4, d float8);
CREATE TABLE sh_truth (LIKE sh);
SELECT rtstream.create_stream('sh', partition_by => 'g');
SELECT rtstream.create_window('sh_w', $$
    SELECT g, sum(d) AS sd, avg(d) AS ad, count(d) AS cd,
           avg(d) FILTER (WHERE i4 > 0) AS adp, sum(d) FILTER (WHERE i4 > 0) AS sdp,
           avg(d) FILTER (WHERE i4 < 0) AS adn, count(d) FILTER (WHERE i4 < 0) AS cdn,
           sum(i4) AS s4, avg(i4) AS a4, avg(i4 + 1) AS a41, count(*) AS c, avg(d) AS ad2
      FROM sh GROUP BY g$$, size => '1 hour', slide => '10 minutes', time_column => 'ts');
SELECT rtstream.create_window('sh_tiny', $$
    SELECT g, sum(d) AS sd, avg(d) AS ad, count(*) AS c
      FROM sh GROUP BY g$$, size => '5 milliseconds', slide => '10 microseconds', time_column => 'ts');
WITH r AS (
    SELECT timestamptz '2026-05-01 00:00:00+00' + i * interval '1 microsecond' AS ts,
           i % 7 AS g,
           CASE WHEN i % 13 = 0 THEN NULL ELSE i % 200 - 100 END AS i4,
           CASE WHEN i % 11 = 0 THEN NULL WHEN i % 7 = 6 THEN float8 '-0'
                ELSE (i % 512) * 0.125 - 20 END AS d
      FROM generate_series(1, 5000) i),
     s AS (INSERT INTO sh SELECT * FROM r RETURNING 1)
INSERT INTO sh_truth SELECT * FROM r;
SELECT * FROM rt_diff('sh_w', $$
    SELECT b.ws, b.we, g, sum(d), avg(d), count(d),
           avg(d) FILTER (WHERE i4 > 0), sum(d) FILTER (WHERE i4 > 0),
           avg(d) FILTER (WHERE i4 < 0), count(d) FILTER (WHERE i4 < 0),
           sum(i4), avg(i4), avg(i4 + 1), count(*), avg(d)
      FROM sh_truth, rt_bounds((SELECT max(ts) FROM sh_truth), '1 hour', '10 minutes') b
     WHERE ts >= b.ws AND ts < b.we GROUP BY 1, 2, 3$$);
SELECT * FROM rt_diff('sh_tiny', $$
    SELECT b.we - interval '5 milliseconds', b.we, g, sum(d), avg(d), count(*)
      FROM sh_truth, (SELECT max(ts) + interval '10 microseconds' AS we FROM sh_truth) b
     WHERE ts >= b.we - interval '5 milliseconds' AND ts < b.we GROUP BY 1, 2, 3$$);
SELECT g, sd::text AS sum_text, ad::text AS avg_text, adp::text AS avg_pos_text,
       (SELECT sum(d)::text FROM sh_truth WHERE g = 6) AS sql_sum,
       (SELECT avg(d)::text FROM sh_truth WHERE g = 6) AS sql_avg
  FROM sh_w WHERE g = 6;
SELECT g, sd::text AS sum_text, ad::text AS avg_text FROM sh_tiny WHERE g = 6;
SELECT count(*) AS groups, sum(c) AS rows_in_window FROM sh_w;

-- variance and stddev (float8, float4) take the native path: the same
-- arithmetic as float8_accum, float8_combine and their finals, so that they
-- equal, bit for bit, aggregates of the catalog path built on those very
-- functions, over the same rows: NULLs, -0, Inf, NaN, one row, many panes.
CREATE AGGREGATE cat_var_pop(float8) (sfunc = float8_accum, stype = float8[], combinefunc = float8_combine,
    finalfunc = float8_var_pop, initcond = '{0,0,0}');
CREATE AGGREGATE cat_var_samp(float8) (sfunc = float8_accum, stype = float8[], combinefunc = float8_combine,
    finalfunc = float8_var_samp, initcond = '{0,0,0}');
CREATE AGGREGATE cat_stddev_pop(float8) (sfunc = float8_accum, stype = float8[], combinefunc = float8_combine,
    finalfunc = float8_stddev_pop, initcond = '{0,0,0}');
CREATE AGGREGATE cat_stddev_samp(float4) (sfunc = float4_accum, stype = float8[], combinefunc = float8_combine,
    finalfunc = float8_stddev_samp, initcond = '{0,0,0}');
CREATE TABLE vr (ts timestamptz, g int, d float8, r real);
CREATE TABLE vr_truth (LIKE vr);
SELECT rtstream.create_stream('vr', partition_by => 'ts');
SELECT rtstream.create_window('vr_w', $$
    SELECT g, var_pop(d) AS vp, var_samp(d) AS vs, variance(d) AS v, stddev_pop(d) AS sp,
           stddev_samp(r) AS ss, stddev(r) AS s,
           cat_var_pop(d) AS c_vp, cat_var_samp(d) AS c_vs, cat_stddev_pop(d) AS c_sp,
           cat_stddev_samp(r) AS c_ss, count(*) AS n
      FROM vr GROUP BY g$$, size => '1 hour', slide => '1 minute', time_column => 'ts');
WITH r AS (
    SELECT timestamptz '2026-06-01 00:00:00+00' + (i * 7 % 3600) * interval '1 second' AS ts,
           CASE WHEN i <= 3000 THEN i % 9 ELSE 9 + i % 4 END AS g,
           CASE WHEN i % 17 = 0 THEN NULL
                WHEN i > 3000 AND i % 4 = 0 THEN 'Infinity'
                WHEN i > 3000 AND i % 4 = 1 THEN 'NaN'
                WHEN i > 3000 AND i % 4 = 2 THEN float8 '-0'
                ELSE (i % 1000) * 1.37e5 - (i % 13) * 0.001 END AS d,
           CASE WHEN i % 19 = 0 THEN NULL ELSE ((i % 300) * 0.25)::real END AS r
      FROM generate_series(1, 3100) i
    UNION ALL SELECT '2026-06-01 00:30:00+00', 100, 42.5, 1.5),
     s AS (INSERT INTO vr SELECT * FROM r RETURNING 1)
INSERT INTO vr_truth SELECT * FROM r;
SELECT rtstream.sync();
SELECT count(*) AS groups,
       count(*) FILTER (WHERE float8send(vp) IS DISTINCT FROM float8send(c_vp)
                           OR float8send(vs) IS DISTINCT FROM float8send(c_vs)
                           OR float8send(v) IS DISTINCT FROM float8send(c_vs)
                           OR float8send(sp) IS DISTINCT FROM float8send(c_sp)
                           OR float8send(ss) IS DISTINCT FROM float8send(c_ss)
                           OR float8send(s) IS DISTINCT FROM float8send(c_ss)) AS native_and_catalog_differ
  FROM vr_w;
SELECT g, n, vp, vs, sp, ss FROM vr_w WHERE g >= 9 ORDER BY g;
-- and against plain SQL over the same rows (summed in another order: equal
-- to 1e-12 relative)
SELECT count(*) AS groups,
       count(*) FILTER (WHERE w.n <> t.n
                           OR abs(w.vp - t.vp) > 1e-12 * abs(t.vp) OR abs(w.vs - t.vs) > 1e-12 * abs(t.vs)
                           OR abs(w.sp - t.sp) > 1e-12 * abs(t.sp) OR abs(w.ss - t.ss) > 1e-12 * abs(t.ss)
                           OR (w.vs IS NULL) <> (t.vs IS NULL) OR (w.ss IS NULL) <> (t.ss IS NULL)) AS differ
  FROM vr_w w
  JOIN (SELECT g, var_pop(d) AS vp, var_samp(d) AS vs, stddev_pop(d) AS sp, stddev_samp(r) AS ss, count(*) AS n
          FROM vr_truth GROUP BY g) t USING (g)
 WHERE g < 9 OR g = 12 OR g = 100;
