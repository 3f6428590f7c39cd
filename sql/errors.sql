--
-- Bad input: a clear ERROR, and nothing changed.
--
\set SHOW_CONTEXT never
CREATE TABLE e (ts timestamptz, day date, k text, v int, f float8);
CREATE VIEW e_view AS SELECT * FROM e;
SELECT count(*) AS windows_before FROM rtstream.windows \gset

-- streams
SELECT rtstream.create_stream('no_such_table');
SELECT rtstream.create_stream('e_view');
SELECT rtstream.create_stream('e', partition_by => 'nope');
SELECT rtstream.create_stream('e', partition_by => 'k,');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_stream('e', partition_by => 'v', method => 'list');
SELECT rtstream.create_stream('e', partition_by => 'v', method => 'range');
SELECT rtstream.create_stream('e', partition_by => 'v, k', method => 'range', bounds => '{1}');
SELECT rtstream.create_stream('e', partition_by => 'v', method => 'range', bounds => '{5,3}');
SELECT rtstream.create_stream('e', partition_by => 'v', method => 'range', bounds => '{1,x}');
SELECT rtstream.create_stream('e', partition_by => 'v', bounds => '{1}');
SELECT rtstream.create_stream('e', partition_by => 'K, "v"');
SELECT rtstream.create_stream('e');
SELECT rtstream.drop_stream('e_view');

-- window queries that are not one aggregate SELECT over one stream
-- (e2: a second stream)
CREATE TABLE e2 (ts timestamptz, x int);
SELECT rtstream.create_stream('e2');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e JOIN e2 ON true GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e, e2 GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e WHERE v IN (SELECT 1) GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*), rank() OVER () FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k HAVING count(*) > 1', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, sum(DISTINCT v) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, max(v ORDER BY f) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*), generate_series(1, 2) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT random() > 0.5 AS r, count(*) FROM e GROUP BY random() > 0.5', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, v FROM e', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT DISTINCT k, count(*) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k ORDER BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k LIMIT 3', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT count(*) FROM e UNION SELECT count(*) FROM e', size => '1 minute');
SELECT rtstream.create_window('e_w', 'WITH x AS (SELECT * FROM e) SELECT count(*) FROM x', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT count(*) FROM e; SELECT 1', size => '1 minute');
SELECT rtstream.create_window('e_w', 'INSERT INTO e DEFAULT VALUES', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT count(*) FROM (SELECT * FROM e) s', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY ROLLUP (k)', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) + 1 AS n FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT upper(k), count(*) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) AS window_start FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k FOR UPDATE', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELEC k FROM e', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT nope, count(*) FROM e GROUP BY nope', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM no_such_stream GROUP BY k', size => '1 minute');

-- aggregates rtstream cannot keep
SELECT rtstream.create_window('e_w', 'SELECT k, array_agg(v) FROM e GROUP BY k', size => '1 minute');
CREATE AGGREGATE no_combine(int) (sfunc = int4pl, stype = int4);
SELECT rtstream.create_window('e_w', 'SELECT k, no_combine(v) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, percentile_cont(0.5) WITHIN GROUP (ORDER BY f) FROM e GROUP BY k', size => '1 minute');

-- window geometry
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '0 seconds');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '-1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', slide => '0 seconds');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', slide => '10 seconds', step => '10 seconds');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', step => '7 seconds');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 day', slide => '1 hour', timezone => 'Europe/Paris');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 day', timezone => 'Mars/Olympus_Mons');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', gap => '1 minute', origin => '2026-01-01');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', gap => '1 minute', step => '1 second');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 hour', slide => '7 seconds');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', slide => '2 minutes');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 month');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 hour', slide => '1 second');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => NULL);

-- time column
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', time_column => 'nope');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', time_column => 'day');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute', time_column => 'v');

-- names
SELECT rtstream.create_window('e_view', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('', 'SELECT k, count(*) FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) AS n FROM e GROUP BY k', size => '1 minute');
SELECT rtstream.create_window('e_w', 'SELECT k, count(*) AS n FROM e GROUP BY k', size => '1 minute');

-- nothing of the failed calls was kept
SELECT count(*) - :windows_before AS windows_added FROM rtstream.windows;
SELECT relname FROM pg_class WHERE relname LIKE 'e\_%' ORDER BY relname;

-- dropping
SELECT rtstream.drop_window('no_such_window');
SELECT rtstream.drop_stream('e');
SELECT rtstream.window_rows('no_such_window');
SELECT * FROM rtstream.window_rows('e_w') AS w(a int);
SELECT rtstream.drop_stream('e', cascade => true);
SELECT count(*) - :windows_before AS windows_added FROM rtstream.windows;
SELECT relname FROM pg_class WHERE relname LIKE 'e\_%' ORDER BY relname;
-- e is an ordinary table again: rows are stored
INSERT INTO e (k, v) VALUES ('x', 1);
SELECT k, v FROM e;

-- sync with a timeout that cannot be met is an error only when it passes
SELECT rtstream.sync('10 seconds');
DROP VIEW e_view;
DROP TABLE e;
SELECT rtstream.drop_stream('e2');
DROP TABLE e2;
DROP AGGREGATE no_combine(int);

-- the settings of transactions applied while they run: out of range, or
-- set in a session, an ERROR that changes nothing
ALTER SYSTEM SET rtstream.background_nice = 20;
ALTER SYSTEM SET rtstream.decoding_memory = '1kB';
SET rtstream.apply_in_progress = off;
SET rtstream.background_nice = 0;
SELECT count(*) AS ours_in_auto_conf FROM pg_file_settings
 WHERE name IN ('rtstream.background_nice', 'rtstream.decoding_memory', 'rtstream.apply_in_progress')
   AND sourcefile LIKE '%postgresql.auto.conf';
SHOW rtstream.apply_in_progress;
