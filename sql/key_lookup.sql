--
-- Key lookups: a view's quals "column = value" and "column IN (...)" on
-- its GROUP BY columns are passed to rtstream.window_rows_at
-- (src/read_pushdown.c), which reads only the groups of those keys.
-- Every lookup must return exactly the rows of the whole view filtered
-- the same way (a MATERIALIZED CTE keeps the quals above the read, so
-- nothing is pushed there): for every key type that qualifies, keys
-- spread over both workers or kept on one, a key of two columns, a
-- session window, keys that no group has, NULL, IN lists with repeated and
-- NULL values, parameters of a generic plan, and quals that must not be
-- pushed (another type, an expression, a nondeterministic collation, part
-- of a two-column key).  A role without SELECT on the view cannot read it
-- through the new function.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE TABLE kl (ts timestamptz NOT NULL, k int, t text, u uuid, d date, b bool, v int);
SELECT rtstream.create_stream('kl', partition_by => 'k');

-- groups in one worker (k is the partition key) or spread (the others)
SELECT rtstream.create_window('kl_k', 'SELECT k, count(*) AS n, sum(v) AS sv FROM kl GROUP BY k',
                              size => '1 day');
SELECT rtstream.create_window('kl_t', 'SELECT t, count(*) AS n, max(v) AS mx FROM kl GROUP BY t',
                              size => '1 hour', slide => '10 minutes', time_column => 'ts');
SELECT rtstream.create_window('kl_kt', 'SELECT k % 7 AS g, t, count(*) AS n FROM kl GROUP BY 1, t',
                              size => '1 day');
SELECT rtstream.create_window('kl_types', 'SELECT u, d, ts, count(*) AS n, min(v) AS mn FROM kl GROUP BY u, d, ts',
                              size => '1 day');
-- aggregates of the catalog path allocate while a group is finalised
SELECT rtstream.create_window('kl_cat', 'SELECT k, count(DISTINCT v % 7) AS dv, max(t) AS mt, bool_or(v > 5000) AS big FROM kl GROUP BY k',
                              size => '1 day');
SELECT rtstream.create_window('kl_sess', 'SELECT k, count(*) AS n, sum(v) AS sv FROM kl GROUP BY k',
                              gap => '5 minutes', time_column => 'ts');

INSERT INTO kl
SELECT '2026-03-01 10:00:00+00'::timestamptz + (i % 50) * interval '1 minute',
       CASE WHEN i % 41 = 0 THEN NULL ELSE i % 300 END,
       CASE WHEN i % 37 = 0 THEN NULL ELSE 'key-' || (i % 40) END,
       ('00000000-0000-0000-0000-' || lpad((i % 5)::text, 12, '0'))::uuid,
       date '2026-03-01' + i % 3,
       i % 2 = 0,
       i
  FROM generate_series(1, 6000) i;
SELECT rtstream.sync();

-- rows of a query on a view with and without the pushdown: the second
-- keeps the quals above a MATERIALIZED CTE of the whole view
CREATE FUNCTION kl_same(w text, quals text) RETURNS TABLE (pushed bigint, whole bigint, differ bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH p AS MATERIALIZED (SELECT * FROM %1$s WHERE %2$s),
              a AS MATERIALIZED (SELECT * FROM %1$s),
              f AS MATERIALIZED (SELECT * FROM a WHERE %2$s)
         SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM f),
                (SELECT count(*) FROM ((SELECT * FROM p EXCEPT ALL SELECT * FROM f)
                                       UNION ALL (SELECT * FROM f EXCEPT ALL SELECT * FROM p)) x)',
        w, quals);
END $$;

-- whether the plan of a query reads through window_rows_at
CREATE FUNCTION kl_pushed(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text; found boolean := false;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF, VERBOSE) ' || q LOOP
        IF line LIKE '%window_rows_at%' THEN found := true; END IF;
    END LOOP;
    RETURN found;
END $$;

-- pushed: one group each
SELECT kl_pushed('SELECT * FROM kl_k WHERE k = 42') AS pushed, * FROM kl_same('kl_k', 'k = 42');
SELECT kl_pushed('SELECT * FROM kl_k WHERE 42 = k') AS pushed, * FROM kl_same('kl_k', '42 = k');
SELECT kl_pushed($$SELECT * FROM kl_t WHERE t = 'key-7'$$) AS pushed, * FROM kl_same('kl_t', $$t = 'key-7'$$);
SELECT kl_pushed($$SELECT * FROM kl_kt WHERE g = 3 AND t = 'key-10'$$) AS pushed,
       * FROM kl_same('kl_kt', $$g = 3 AND t = 'key-10'$$);
SELECT kl_pushed($$SELECT * FROM kl_types WHERE u = '00000000-0000-0000-0000-000000000002' AND d = '2026-03-02' AND ts = '2026-03-01 10:07:00+00'$$) AS pushed,
       * FROM kl_same('kl_types', $$u = '00000000-0000-0000-0000-000000000002' AND d = '2026-03-02' AND ts = '2026-03-01 10:07:00+00'$$);
SELECT kl_pushed('SELECT * FROM kl_sess WHERE k = 49') AS pushed, * FROM kl_same('kl_sess', 'k = 49');
-- and with more quals beside the key, on aggregates too
SELECT kl_pushed('SELECT * FROM kl_k WHERE k = 42 AND n > 0 AND sv = 0') AS pushed,
       * FROM kl_same('kl_k', 'k = 42 AND n > 0 AND sv = 0');
SELECT * FROM kl_same('kl_k', 'k = 42 AND n > 0');
-- IN lists and = ANY: one group per distinct value, NULLs and missing
-- values finding none; combinations of two columns
SELECT kl_pushed('SELECT * FROM kl_k WHERE k IN (42, 43)') AS pushed, * FROM kl_same('kl_k', 'k IN (42, 43)');
SELECT kl_pushed('SELECT * FROM kl_k WHERE k IN (42, 42, 43, NULL, 100000)') AS pushed,
       * FROM kl_same('kl_k', 'k IN (42, 42, 43, NULL, 100000)');
SELECT kl_pushed($$SELECT * FROM kl_k WHERE k = ANY ('{}')$$) AS pushed, * FROM kl_same('kl_k', $$k = ANY ('{}')$$);
SELECT kl_pushed($$SELECT * FROM kl_k WHERE k = ANY ('{NULL}')$$) AS pushed, * FROM kl_same('kl_k', $$k = ANY ('{NULL}')$$);
SELECT kl_pushed($$SELECT * FROM kl_t WHERE t IN ('key-1', 'key-2', 'key-3', 'none')$$) AS pushed,
       * FROM kl_same('kl_t', $$t IN ('key-1', 'key-2', 'key-3', 'none')$$);
SELECT kl_pushed($$SELECT * FROM kl_kt WHERE g IN (1, 2, 3) AND t IN ('key-10', 'key-11')$$) AS pushed,
       * FROM kl_same('kl_kt', $$g IN (1, 2, 3) AND t IN ('key-10', 'key-11')$$);
SELECT kl_pushed($$SELECT * FROM kl_kt WHERE g IN (1, 2) AND t = 'key-10'$$) AS pushed,
       * FROM kl_same('kl_kt', $$g IN (1, 2) AND t = 'key-10'$$);
SELECT kl_pushed('SELECT * FROM kl_cat WHERE k IN (5, 17, 42, 43, 299)') AS pushed,
       * FROM kl_same('kl_cat', 'k IN (5, 17, 42, 43, 299)');
SELECT * FROM kl_same('kl_cat', 'k = ANY (ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 200])');
SELECT kl_pushed('SELECT * FROM kl_sess WHERE k IN (49, 99, 149)') AS pushed,
       * FROM kl_same('kl_sess', 'k IN (49, 99, 149)');
-- every key of kl_k at once
SELECT * FROM kl_same('kl_k', 'k = ANY (ARRAY(SELECT generate_series(0, 299)))');
SELECT * FROM kl_same('kl_k', 'k IN (' || (SELECT string_agg(i::text, ', ') FROM generate_series(0, 299) i) || ')');

-- keys no group has, and contradicting ones
SELECT * FROM kl_same('kl_k', 'k = 100000');
SELECT * FROM kl_same('kl_t', $$t = 'no such key'$$);
SELECT * FROM kl_same('kl_kt', $$g = 3 AND t = 'key-10' AND g = 4$$);
-- NULL keys match nothing (the group of NULL is read with IS NULL)
SELECT count(*) FROM kl_k WHERE k = NULL;
SELECT * FROM kl_same('kl_k', 'k IS NULL');
SELECT * FROM kl_same('kl_t', 't IS NULL');
-- the whole view is still the whole view
SELECT count(*) AS groups, sum(n) AS rows FROM kl_k;

-- not pushed (and still right): another type, an expression, IN, part of
-- a two-column key, a nondeterministic collation, a join
SELECT kl_pushed('SELECT * FROM kl_k WHERE k = 42::bigint') AS pushed, * FROM kl_same('kl_k', 'k = 42::bigint');
SELECT kl_pushed('SELECT * FROM kl_k WHERE k + 0 = 42') AS pushed, * FROM kl_same('kl_k', 'k + 0 = 42');
SELECT kl_pushed('SELECT * FROM kl_k WHERE k IN (42, n)') AS pushed, * FROM kl_same('kl_k', 'k IN (42, n)');
SELECT kl_pushed('SELECT * FROM kl_k WHERE n = 20') AS pushed, * FROM kl_same('kl_k', 'n = 20');
-- one column of two: the function is called, and reads every group
SELECT kl_pushed('SELECT * FROM kl_kt WHERE g = 3') AS pushed, * FROM kl_same('kl_kt', 'g = 3');
CREATE COLLATION kl_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT kl_pushed($$SELECT * FROM kl_t WHERE t = 'KEY-7' COLLATE kl_ci$$) AS pushed,
       * FROM kl_same('kl_t', $$t = 'KEY-7' COLLATE kl_ci$$);
SELECT kl_pushed('SELECT * FROM kl_k, generate_series(42, 43) y WHERE k = y') AS pushed;

-- parameters: custom and generic plans
PREPARE kl_q(int) AS SELECT k, n, sv FROM kl_k WHERE k = $1;
PREPARE kl_qa(int[]) AS SELECT k, n, sv FROM kl_k WHERE k = ANY ($1) ORDER BY k;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE kl_qa('{42,43}');
EXECUTE kl_qa('{43,42,42,NULL,-1}');
SELECT k, n, sv FROM kl_k WHERE k + 0 IN (42, 43) ORDER BY k;
EXPLAIN (COSTS OFF) EXECUTE kl_q(42);
EXECUTE kl_q(42);
SELECT k, n, sv FROM kl_k WHERE k + 0 = 42;
EXECUTE kl_q(NULL);
RESET plan_cache_mode;
EXECUTE kl_q(43);
SELECT k, n, sv FROM kl_k WHERE k + 0 = 43;
DEALLOCATE kl_q;
DEALLOCATE kl_qa;

-- PL/pgSQL variables are parameters too
DO $$
DECLARE got bigint; want bigint;
BEGIN
    FOR i IN 1 .. 300 LOOP
        SELECT n INTO got FROM kl_k WHERE k = i;
        SELECT n INTO want FROM kl_k x WHERE x.k + 0 = i;
        IF got IS DISTINCT FROM want THEN
            RAISE EXCEPTION 'key %: % against %', i, got, want;
        END IF;
    END LOOP;
    RAISE NOTICE 'every key of kl_k found by a variable';
END $$;
-- every key of the windows whose groups are spread over both workers, and
-- of the session window, against the whole view filtered
DO $$
DECLARE key text; got text; want text; n int := 0;
BEGIN
    FOR key IN SELECT DISTINCT t FROM kl_t WHERE t IS NOT NULL LOOP
        SELECT string_agg(x::text, ';' ORDER BY x::text) INTO got FROM kl_t x WHERE t = key;
        SELECT string_agg(x::text, ';' ORDER BY x::text) INTO want FROM kl_t x WHERE t || '' = key;
        IF got IS DISTINCT FROM want THEN
            RAISE EXCEPTION 'kl_t key %: % against %', key, got, want;
        END IF;
        FOR gi IN 0 .. 6 LOOP
            SELECT string_agg(x::text, ';' ORDER BY x::text) INTO got FROM kl_kt x WHERE x.g = gi AND t = key;
            SELECT string_agg(x::text, ';' ORDER BY x::text) INTO want FROM kl_kt x WHERE x.g + 0 = gi AND t || '' = key;
            IF got IS DISTINCT FROM want THEN
                RAISE EXCEPTION 'kl_kt key %, %: % against %', gi, key, got, want;
            END IF;
        END LOOP;
        n := n + 1;
    END LOOP;
    FOR i IN 0 .. 299 LOOP
        SELECT string_agg(x::text, ';' ORDER BY x::text) INTO got FROM kl_sess x WHERE k = i;
        SELECT string_agg(x::text, ';' ORDER BY x::text) INTO want FROM kl_sess x WHERE k + 0 = i;
        IF got IS DISTINCT FROM want THEN
            RAISE EXCEPTION 'kl_sess key %: % against %', i, got, want;
        END IF;
        IF got IS NOT NULL THEN n := n + 1; END IF;
    END LOOP;
    RAISE NOTICE 'kl_t, kl_kt and kl_sess: % keys found by a variable', n;
END $$;

-- the new function checks SELECT on the view, as window_rows does
CREATE ROLE kl_reader;
SET ROLE kl_reader;
SELECT count(*) FROM kl_k WHERE k = 42;
SELECT count(*) FROM rtstream.window_rows_at('kl_k', '{3}', 42) AS w(ws timestamptz, we timestamptz, k int, n bigint, sv bigint);
RESET ROLE;
GRANT SELECT ON kl_k TO kl_reader;
SET ROLE kl_reader;
SELECT k, n, sv FROM kl_k WHERE k = 42;
SELECT k, n, sv FROM rtstream.window_rows_at('kl_k', '{3}', 42) AS w(ws timestamptz, we timestamptz, k int, n bigint, sv bigint);
RESET ROLE;
-- column numbers and values must pair up
SELECT count(*) FROM rtstream.window_rows_at('kl_k', '{3,4}', 42) AS w(ws timestamptz, we timestamptz, k int, n bigint, sv bigint);
REVOKE ALL ON kl_k FROM kl_reader;
DROP ROLE kl_reader;
