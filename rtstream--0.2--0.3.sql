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
    OUT closed_until timestamptz, OUT state text, OUT error text, OUT error_at timestamptz,
    OUT held_wal_bytes bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_window_stats' LANGUAGE C;

CREATE VIEW rtstream.window_stats AS
    SELECT w.name AS window_name, s.*
      FROM rtstream._window_stats() s JOIN rtstream.windows w ON w.id = s.window_id;

GRANT SELECT ON rtstream.window_stats TO PUBLIC;

COMMENT ON VIEW rtstream.window_stats IS
    'rtstream: per window and worker, its groups, rows, event time, watermark, and state (running, stalled, catching up) with the error that stalled it and the WAL it alone holds back';

-- stats: gaps recorded, and the router's error while it fails.
DROP VIEW rtstream.stats;
DROP FUNCTION rtstream._stats();

CREATE FUNCTION rtstream._stats(
    OUT process text, OUT pid integer, OUT rows bigint, OUT batches bigint,
    OUT late_rows bigint, OUT null_time_rows bigint, OUT refused_groups bigint,
    OUT dead_letters bigint, OUT groups bigint, OUT memory_bytes bigint,
    OUT behind_bytes bigint, OUT lsn pg_lsn, OUT checkpoint_lsn pg_lsn,
    OUT checkpoint_age interval, OUT wal_retained_bytes bigint, OUT replayed_skipped bigint,
    OUT gaps bigint, OUT error text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_stats' LANGUAGE C;

CREATE VIEW rtstream.stats AS SELECT * FROM rtstream._stats();
GRANT SELECT ON rtstream.stats TO PUBLIC;

COMMENT ON VIEW rtstream.stats IS
    'rtstream: one row for the router (rows routed, WAL decoded and retained, gaps, its last error) and one per worker (rows applied, late, refused, dead letters, memory, checkpoints)';

-- What exactly-once could not cover: transactions ending after from_lsn and
-- at or before to_lsn never reached window_name (NULL: any window), because
-- their WAL was gone (a slot invalidated by max_slot_wal_keep_size, a stalled
-- window past rtstream.stalled_wal_limit).
CREATE TABLE rtstream.gaps (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    from_lsn     pg_lsn NOT NULL,
    to_lsn       pg_lsn NOT NULL,
    window_name  text,
    reason       text NOT NULL
);
GRANT SELECT ON rtstream.gaps TO PUBLIC;

COMMENT ON TABLE rtstream.gaps IS
    'rtstream: ranges of WAL whose transactions some windows (window_name, or all when NULL) never counted, and why';

-- Dead letters hold rows of streams: a role sees those of the streams it may
-- SELECT (superusers and the extension owner see all).
ALTER TABLE rtstream.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY dead_letters_of_readable_streams ON rtstream.dead_letters
    FOR SELECT USING (has_table_privilege(stream::oid, 'SELECT'));
GRANT SELECT ON rtstream.dead_letters TO PUBLIC;

COMMENT ON TABLE rtstream.dead_letters IS
    'rtstream: rows a worker could not apply, and late rows of windows that keep them; each role sees those of the streams it may SELECT';

-- A dead_letter_table made with (LIKE rtstream.dead_letters INCLUDING DEFAULTS)
-- draws its ids from this sequence, and workers insert into it as the
-- window's owner: any role may draw ids (it reveals only a counter).
GRANT USAGE ON SEQUENCE rtstream.dead_letters_id_seq TO PUBLIC;

COMMENT ON COLUMN rtstream.windows.history IS
    'the window''s history table, a regclass (NULL: the window keeps no history)';
COMMENT ON TABLE rtstream.windows IS
    'rtstream: the windows of this database, with their query and options; readable by anyone, like pg_views';
COMMENT ON TABLE rtstream.streams IS
    'rtstream: the tables registered as streams, with how their rows are partitioned';
