--
-- Event time, alter_window: allowed_lateness bigger and smaller,
-- late_policy, idle_timeout, retention, history off and on, bad values.
-- Every result is compared with plain SQL over a truth table filled by the
-- same statements.  The helpers et_*: setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

----------------------------------------------------------------------------
-- 6. alter_window: lateness bigger and smaller, late_policy, idle_timeout,
-- retention, history off and on; the state is kept
----------------------------------------------------------------------------
CREATE TABLE al (ts timestamptz, k text, v int);
CREATE TABLE al_truth (ts timestamptz, k text, v int, late boolean NOT NULL DEFAULT false);
CREATE TABLE al_dead (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
SELECT rtstream.create_stream('al', partition_by => 'k');
SELECT rtstream.create_window('al_h', $$SELECT k, count(*) AS n, sum(v) AS sv FROM al GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '2 minutes', history => true);
CREATE VIEW al_h_truth AS
    SELECT w.ws AS window_start, w.we AS window_end, k, count(*) AS n, sum(v) AS sv
      FROM al_truth, et_windows(ts, '1 minute', '1 minute') w WHERE NOT late GROUP BY 1, 2, 3;
-- al_rows(times, late before): a row per group at each time, late when
-- its window ends at or before the given time
CREATE FUNCTION al_rows(times text[], late_until timestamptz DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    WITH r AS (SELECT t::timestamptz AS ts, 'g' || g AS k, g * 1000 + n::int AS v
                 FROM unnest(times) WITH ORDINALITY AS u(t, n), generate_series(1, 6) g
                ORDER BY 1, 2),
         s AS (INSERT INTO al SELECT * FROM r RETURNING 1)
    INSERT INTO al_truth
    SELECT r.*, coalesce(et_late(ts, '1 minute', '1 minute', late_until), false) FROM r;
$$;
SELECT al_rows('{2026-03-01 00:00:00}');
SELECT rtstream.sync();
SELECT al_rows(ARRAY(SELECT (timestamptz '2026-03-01 00:00:00' + i * interval '10 s')::text
                       FROM generate_series(1, 60) i));
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');

-- bigger: closed windows do not reopen, the watermark stays at 00:08:00
-- (it only rises) until the newest time passes 00:13:00; rows of windows
-- in the history are late
SELECT rtstream.alter_window('al_h', allowed_lateness => '5 minutes');
SELECT rtstream.sync();
SELECT name, allowed_lateness, history FROM rtstream.windows WHERE name = 'al_h';
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT al_rows('{2026-03-01 00:07:30, 2026-03-01 00:08:00, 2026-03-01 00:09:59}',
               late_until => '2026-03-01 00:08:00');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
-- newest 00:13:00, watermark 00:08:00: 00:08:30 and 00:10:59 count (with a
-- lateness of 2 minutes they would be late), 00:07:59 is in the history
SELECT al_rows('{2026-03-01 00:13:00}');
SELECT al_rows('{2026-03-01 00:07:59, 2026-03-01 00:08:30, 2026-03-01 00:10:59}',
               late_until => '2026-03-01 00:08:00');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT count(*) FILTER (WHERE late) AS late_in_truth FROM al_truth;

-- smaller: the watermark jumps to 00:12:30 and the windows up to 00:12:00
-- close; late rows go to al_dead from now on
SELECT rtstream.alter_window('al_h', allowed_lateness => '30 seconds', late_policy => 'dead_letter',
                             dead_letter_table => 'al_dead');
SELECT rtstream.sync();
SELECT name, allowed_lateness, late_policy, dead_letter_table FROM rtstream.windows WHERE name = 'al_h';
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT window_end, count(*) AS groups, sum(n) AS n
  FROM al_h_history WHERE window_end > '2026-03-01 00:08:00' GROUP BY 1 ORDER BY 1;
SELECT al_rows('{2026-03-01 00:11:59, 2026-03-01 00:12:10, 2026-03-01 00:12:29}',
               late_until => '2026-03-01 00:12:30');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT * FROM et_cmp('SELECT (row_data::al).* FROM al_dead',
                     $$SELECT ts, k, v FROM al_truth WHERE late AND ts = '2026-03-01 00:11:59'$$);
SELECT rtstream.alter_window('al_h', late_policy => 'count');
SELECT name, late_policy, dead_letter_table FROM rtstream.windows WHERE name = 'al_h';

-- idle_timeout: only the catalog here ('0' turns it off)
SELECT rtstream.alter_window('al_h', idle_timeout => '1 hour');
SELECT name, idle_timeout FROM rtstream.windows WHERE name = 'al_h';
SELECT rtstream.alter_window('al_h', idle_timeout => '0');
SELECT name, idle_timeout FROM rtstream.windows WHERE name = 'al_h';

-- retention 2 minutes: newest 00:16:00, watermark 00:15:30, history from
-- 00:13:30 on
SELECT rtstream.alter_window('al_h', retention => '2 minutes');
SELECT al_rows('{2026-03-01 00:16:00}');
SELECT rtstream.sync();
SELECT name, retention FROM rtstream.windows WHERE name = 'al_h';
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT window_end, count(*) AS groups FROM al_h_history GROUP BY 1 ORDER BY 1;

-- history off (retention first: it needs the history): the windows stay
-- exact; on again, in a new table: closed windows are appended again
-- (retention drops those of the time it was off)
SELECT rtstream.alter_window('al_h', history => false);
SELECT rtstream.alter_window('al_h', retention => '0', history => false);
SELECT name, history, retention FROM rtstream.windows WHERE name = 'al_h';
DROP TABLE al_h_history;
SELECT al_rows('{2026-03-01 00:19:00}');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT rtstream.alter_window('al_h', history => true, retention => '2 minutes');
SELECT name, history, retention FROM rtstream.windows WHERE name = 'al_h';
SELECT al_rows('{2026-03-01 00:21:00}');
SELECT rtstream.sync();
SELECT * FROM et_state('al_h');
SELECT * FROM et_check('al_h', 'SELECT * FROM al_h_truth');
SELECT window_end, count(*) AS groups FROM al_h_history GROUP BY 1 ORDER BY 1;

-- al_other: a window without history (late rows in al_other_dead), for the
-- bad values below
CREATE TABLE al_other_dead (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
SELECT rtstream.create_window('al_other', $$SELECT k, count(*) AS n, sum(v) AS sv FROM al GROUP BY k$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '30 seconds',
  late_policy => 'dead_letter', dead_letter_table => 'al_other_dead');

-- bad values: an ERROR, and nothing changed
SELECT rtstream.alter_window('no_such_window', allowed_lateness => '1 minute');
SELECT rtstream.alter_window('al_h', allowed_lateness => '-1 second');
SELECT rtstream.alter_window('al_h', allowed_lateness => '1 mon');
SELECT rtstream.alter_window('al_h', allowed_lateness => '1024 minutes');
SELECT rtstream.alter_window('al_h', idle_timeout => '-5 minutes');
SELECT rtstream.alter_window('al_h', retention => '1 year');
SELECT rtstream.alter_window('al_h', late_policy => 'ignore');
SELECT rtstream.alter_window('al_h', dead_letter_table => 'al_dead');
SELECT rtstream.alter_window('al_h', late_policy => 'dead_letter', dead_letter_table => 'al');
SELECT rtstream.alter_window('al_h', history => false);
SELECT rtstream.alter_window('al_other', retention => '1 hour');
SELECT name, allowed_lateness, idle_timeout, late_policy, dead_letter_table, history, retention
  FROM rtstream.windows WHERE name IN ('al_h', 'al_other') ORDER BY name;
SELECT rtstream.alter_window('al_h', allowed_lateness => '1023 minutes');
SELECT name, allowed_lateness FROM rtstream.windows WHERE name = 'al_h';

-- the rest
SELECT rtstream.drop_window(name) FROM rtstream.windows
 WHERE name IN ('al_h', 'al_other') ORDER BY name;
SELECT rtstream.sync();
