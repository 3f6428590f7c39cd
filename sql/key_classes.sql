--
-- Key classes: windows of a stream with the same GROUP BY, owner and
-- search_path build each row's key once and share one lookup of their
-- groups (src/worker_keys.c).  Each window still equals plain SQL; windows
-- of different owners never share a key (a key is evaluated as its
-- window's owner); a window whose ring is resized (alter_window) stays
-- exact.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE TABLE kc (ts timestamptz NOT NULL, k int, v int);
CREATE TABLE kc_rows (LIKE kc);
SELECT rtstream.create_stream('kc', partition_by => 'k');

-- four windows with GROUP BY k % 50 (one class), two with GROUP BY k, one global
SELECT rtstream.create_window('kc_a', 'SELECT k % 50 AS g, count(*) AS n, sum(v) AS sv FROM kc GROUP BY 1',
                              size => '1 minute', slide => '10 seconds', time_column => 'ts');
SELECT rtstream.create_window('kc_b', 'SELECT k % 50 AS g, count(*) AS n, max(v) AS mx FROM kc GROUP BY 1',
                              size => '10 seconds', time_column => 'ts');
SELECT rtstream.create_window('kc_c', 'SELECT k % 50 AS g, count(*) AS n FROM kc WHERE v % 3 = 0 GROUP BY 1',
                              size => '1 hour', time_column => 'ts');
SELECT rtstream.create_window('kc_d', 'SELECT k % 50 AS g, count(*) AS n, sum(v) AS sv FROM kc GROUP BY 1',
                              size => '1 day');
SELECT rtstream.create_window('kc_e', 'SELECT k AS g, count(*) AS n FROM kc GROUP BY k',
                              size => '1 minute', time_column => 'ts');
SELECT rtstream.create_window('kc_f', 'SELECT k AS g, min(v) AS mn FROM kc GROUP BY k',
                              size => '1 day');
SELECT rtstream.create_window('kc_g', 'SELECT count(*) AS n FROM kc', size => '1 day');

INSERT INTO kc_rows
SELECT '2026-03-01 10:00:00+00'::timestamptz + (i % 3000) * interval '10 ms', i % 997, i
  FROM generate_series(1, 20000) i;
INSERT INTO kc SELECT * FROM kc_rows ORDER BY ts;

-- each window against plain SQL over the rows of its current window
CREATE FUNCTION kc_check(w text, q text) RETURNS TABLE (only_view bigint, only_sql bigint)
LANGUAGE plpgsql AS $$
DECLARE ws timestamptz; we timestamptz;
BEGIN
    PERFORM rtstream.sync();
    EXECUTE format('SELECT min(window_start), max(window_end) FROM %I', w) INTO ws, we;
    q := replace(q, 'FROM kc', format('FROM (SELECT * FROM kc_rows WHERE %s) kc',
                 CASE WHEN (SELECT time_column FROM rtstream.windows WHERE name = w) IS NULL THEN 'true'
                      ELSE format('ts >= %L AND ts < %L', ws, we) END));
    RETURN QUERY EXECUTE format('SELECT (SELECT count(*) FROM ((SELECT * FROM %1$I) EXCEPT ALL
                                          (SELECT %2$L::timestamptz, %3$L::timestamptz, x.* FROM (%4$s) x)) a),
                                        (SELECT count(*) FROM ((SELECT %2$L::timestamptz, %3$L::timestamptz, x.* FROM (%4$s) x) EXCEPT ALL
                                          (SELECT * FROM %1$I)) b)', w, ws, we, q);
END $$;
SELECT w, c.* FROM rtstream.windows, LATERAL kc_check(name, query) c, LATERAL (SELECT name AS w) n
 WHERE name LIKE 'kc\_%' AND time_column IS NOT NULL ORDER BY 1;
-- commit-time windows: their bounds come from the commit time, the rows are all of kc_rows
SELECT (SELECT sum(n) FROM kc_d) = 20000 AS kc_d_all, (SELECT count(*) FROM kc_d) AS kc_d_groups,
       (SELECT sum(sv) FROM kc_d) = (SELECT sum(v) FROM kc_rows) AS kc_d_sum,
       (SELECT count(*) FROM kc_f) AS kc_f_groups,
       (SELECT count(*) FROM (SELECT g, mn FROM kc_f EXCEPT SELECT k, min(v) FROM kc_rows GROUP BY k) d) AS kc_f_wrong,
       (SELECT n FROM kc_g) AS kc_g_n;

-- a ring resized by alter_window (its table is replaced): still exact
SELECT rtstream.alter_window('kc_b', allowed_lateness => '5 seconds');
INSERT INTO kc_rows
SELECT '2026-03-01 10:00:30+00'::timestamptz + (i % 500) * interval '10 ms', i % 997, i
  FROM generate_series(20001, 25000) i;
INSERT INTO kc SELECT * FROM kc_rows WHERE v > 20000 ORDER BY ts;
SELECT w, c.* FROM rtstream.windows, LATERAL kc_check(name, query) c, LATERAL (SELECT name AS w) n
 WHERE name IN ('kc_a', 'kc_b', 'kc_e') ORDER BY 1;

-- Two owners, the same GROUP BY: each key is evaluated as its own window's
-- owner.  GROUP BY current_user shows whose rights built it.
CREATE ROLE kc_alice;
CREATE ROLE kc_bob;
GRANT SELECT ON kc TO kc_alice, kc_bob;
GRANT CREATE ON SCHEMA public TO kc_alice, kc_bob;
SET ROLE kc_alice;
SELECT rtstream.create_window('kc_who_alice', 'SELECT current_user::text AS who, count(*) AS n FROM kc GROUP BY 1',
                              size => '1 day');
SELECT rtstream.create_window('kc_who_bob', 'SELECT current_user::text AS who, count(*) AS n FROM kc GROUP BY 1',
                              size => '1 day');
RESET ROLE;
-- the two were one class; now their owners differ, and from the next batch
-- kc_who_bob runs as kc_bob
ALTER VIEW kc_who_bob OWNER TO kc_bob;
SELECT rtstream.sync();
INSERT INTO kc SELECT '2026-03-01 10:00:00+00', i, i FROM generate_series(1, 100) i;
SELECT rtstream.sync();
SELECT who, n FROM kc_who_alice;
SELECT who, n FROM kc_who_bob;

-- Clean up
SELECT rtstream.drop_window(name) FROM rtstream.windows WHERE name LIKE 'kc\_%' ORDER BY id;
SELECT rtstream.drop_stream('kc');
DROP TABLE kc, kc_rows;
DROP FUNCTION kc_check;
REVOKE CREATE ON SCHEMA public FROM kc_alice, kc_bob;
DROP ROLE kc_alice, kc_bob;

-- Group key encodings (groupkey.c): one fixed-length column is its bytes
-- alone and NULL the empty key (int2, int8, float8 with -0 and NaN, bool,
-- uuid); a last text column carries no length, so '' and NULL and
-- strings that are prefixes of each other stay apart; several columns
-- mix them.  Each window equals GROUP BY over the same rows.
CREATE TABLE gk (ts timestamptz, i2 int2, i8 int8, f float8, b bool, u uuid, t text, n numeric);
CREATE TABLE gk_rows (LIKE gk);
SELECT rtstream.create_stream('gk', partition_by => 'i8');
SELECT rtstream.create_window('gk_i2', 'SELECT i2, count(*) AS c FROM gk GROUP BY i2', size => '1 day');
SELECT rtstream.create_window('gk_i8', 'SELECT i8, count(*) AS c FROM gk GROUP BY i8', size => '1 day');
SELECT rtstream.create_window('gk_f', 'SELECT f, count(*) AS c FROM gk GROUP BY f', size => '1 day');
SELECT rtstream.create_window('gk_b', 'SELECT b, count(*) AS c FROM gk GROUP BY b', size => '1 day');
SELECT rtstream.create_window('gk_u', 'SELECT u, count(*) AS c FROM gk GROUP BY u', size => '1 day');
SELECT rtstream.create_window('gk_t', 'SELECT t, count(*) AS c FROM gk GROUP BY t', size => '1 day');
SELECT rtstream.create_window('gk_mix', 'SELECT t, i2, n, b, count(*) AS c FROM gk GROUP BY t, i2, n, b', size => '1 day');
SELECT rtstream.create_window('gk_mix2', 'SELECT i8, t, u, count(*) AS c FROM gk GROUP BY i8, t, u', size => '1 day');
WITH r AS (
    SELECT now() AS ts,
           CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 5 - 2)::int2 END AS i2,
           CASE WHEN i % 9 = 0 THEN NULL ELSE (i % 4 - 2) * 4000000000 END AS i8,
           CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN float8 '-0' WHEN 2 THEN 0 WHEN 3 THEN 'NaN'
                      WHEN 4 THEN -1.5 ELSE 'Infinity' END AS f,
           CASE WHEN i % 5 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
           CASE WHEN i % 8 = 0 THEN NULL ELSE md5((i % 3)::text)::uuid END AS u,
           CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'a' WHEN 3 THEN 'ab'
                      WHEN 4 THEN E'a\\x01' ELSE repeat('z', 300) END AS t,
           CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 3) * 1.5 END AS n
      FROM generate_series(1, 2000) i),
     s AS (INSERT INTO gk SELECT * FROM r RETURNING 1)
INSERT INTO gk_rows SELECT * FROM r;
SELECT * FROM rt_diff('(SELECT i2, c FROM gk_i2) v', 'SELECT i2, count(*) FROM gk_rows GROUP BY i2');
SELECT * FROM rt_diff('(SELECT i8, c FROM gk_i8) v', 'SELECT i8, count(*) FROM gk_rows GROUP BY i8');
SELECT * FROM rt_diff('(SELECT f, c FROM gk_f) v', 'SELECT f, count(*) FROM gk_rows GROUP BY f');
SELECT * FROM rt_diff('(SELECT b, c FROM gk_b) v', 'SELECT b, count(*) FROM gk_rows GROUP BY b');
SELECT * FROM rt_diff('(SELECT u, c FROM gk_u) v', 'SELECT u, count(*) FROM gk_rows GROUP BY u');
SELECT * FROM rt_diff('(SELECT t, c FROM gk_t) v', 'SELECT t, count(*) FROM gk_rows GROUP BY t');
SELECT * FROM rt_diff('(SELECT t, i2, n, b, c FROM gk_mix) v', 'SELECT t, i2, n, b, count(*) FROM gk_rows GROUP BY t, i2, n, b');
SELECT * FROM rt_diff('(SELECT i8, t, u, c FROM gk_mix2) v', 'SELECT i8, t, u, count(*) FROM gk_rows GROUP BY i8, t, u');
SELECT (SELECT count(*) FROM gk_f) AS float_groups, (SELECT count(*) FROM gk_t) AS text_groups,
       (SELECT count(*) FROM gk_mix) AS mixed_groups, (SELECT count(*) FROM gk_mix2) AS mixed2_groups;
