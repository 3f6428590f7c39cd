/* rtstream--0.2--0.3.sql: windows run with their owner's rights */

\echo Use "ALTER EXTENSION rtstream UPDATE TO '0.3'" to load this file. \quit

-- A window that was behind its worker when checkpointed (stalled, or
-- catching up) holds each partition of that worker at its own LSN.
ALTER TABLE rtstream.checkpoints ADD COLUMN partition_lsns pg_lsn[];

-- window_stats: whether each worker applies the window, and why not.
DROP VIEW rtstream.window_stats;
DROP FUNCTION rtstream._window_stats();

CREATE FUNCTION rtstream._window_stats(
    OUT window_id integer, OUT worker integer, OUT groups bigint, OUT rows bigint,
    OUT late_rows bigint, OUT null_time_rows bigint, OUT refused_groups bigint,
    OUT memory_bytes bigint, OUT newest_time timestamptz, OUT watermark timestamptz,
    OUT closed_until timestamptz, OUT state text, OUT error text, OUT error_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_window_stats' LANGUAGE C;

CREATE VIEW rtstream.window_stats AS
    SELECT w.name AS window_name, s.*
      FROM rtstream._window_stats() s JOIN rtstream.windows w ON w.id = s.window_id;

GRANT SELECT ON rtstream.window_stats TO PUBLIC;

COMMENT ON VIEW rtstream.window_stats IS
    'rtstream: per window and worker, its groups, rows, event time, watermark, and state (running, stalled, catching up) with the error that stalled it';

-- Dead letters hold rows of streams: a role sees those of the streams it may
-- SELECT (superusers and the extension owner see all).
ALTER TABLE rtstream.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY dead_letters_of_readable_streams ON rtstream.dead_letters
    FOR SELECT USING (has_table_privilege(stream::oid, 'SELECT'));
GRANT SELECT ON rtstream.dead_letters TO PUBLIC;

COMMENT ON TABLE rtstream.dead_letters IS
    'rtstream: rows a worker could not apply, and late rows of windows that keep them; each role sees those of the streams it may SELECT';
