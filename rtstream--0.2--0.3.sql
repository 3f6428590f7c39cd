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


-- Options are validated in one place, in C (src/options.c), for the SQL
-- functions and for the workers reading the catalog alike.
CREATE OR REPLACE FUNCTION rtstream._interval_option(value interval, what text, zero_is_off boolean)
RETURNS interval AS 'MODULE_PATHNAME', 'rts_interval_option' LANGUAGE C IMMUTABLE;
CREATE OR REPLACE FUNCTION rtstream._check_late_policy(late_policy text, dead_letter_table regclass)
RETURNS void AS 'MODULE_PATHNAME', 'rts_check_late_policy' LANGUAGE C;
CREATE FUNCTION rtstream._check_range_bounds(bounds text[])
RETURNS void AS 'MODULE_PATHNAME', 'rts_check_range_bounds' LANGUAGE C;
ALTER TABLE rtstream.windows DROP CONSTRAINT IF EXISTS windows_late_policy_check;

CREATE OR REPLACE FUNCTION rtstream.create_stream(stream regclass, partition_by text DEFAULT NULL,
                                       method text DEFAULT 'hash', bounds text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cols text[];
    col  text;
    kind "char";
    owner oid;
    coltype text;
    ordered boolean;
BEGIN
    PERFORM rtstream._check();
    SELECT c.relkind, c.relowner INTO kind, owner FROM pg_class c WHERE c.oid = stream;
    IF kind IS DISTINCT FROM 'r' THEN
        RAISE EXCEPTION '"%" is not an ordinary table', stream
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'A stream is an ordinary table; partitioned tables, views and foreign tables cannot be streams.';
    END IF;
    IF NOT pg_has_role(owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', stream USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM rtstream.streams s WHERE s.stream = create_stream.stream) THEN
        RAISE EXCEPTION 'table "%" is already a stream', stream USING ERRCODE = 'duplicate_object';
    END IF;
    IF partition_by IS NOT NULL THEN
        cols := rtstream._column_list(partition_by);
        IF cols IS NULL OR '' = ANY (cols) THEN
            RAISE EXCEPTION 'invalid partition_by list "%"', partition_by
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give one column name or a comma-separated list of column names.';
        END IF;
        FOREACH col IN ARRAY cols LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = stream AND a.attname = col
                              AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, stream
                    USING ERRCODE = 'undefined_column';
            END IF;
        END LOOP;
    END IF;
    IF method IS NULL OR method NOT IN ('hash', 'range') THEN
        RAISE EXCEPTION 'unknown partitioning method "%"', method
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''hash'' or ''range''.';
    END IF;
    IF method = 'hash' AND bounds IS NOT NULL THEN
        RAISE EXCEPTION 'bounds are only for method ''range''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF method = 'range' THEN
        IF coalesce(array_length(cols, 1), 0) <> 1 THEN
            RAISE EXCEPTION 'range partitioning needs exactly one partition_by column'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM rtstream._check_range_bounds(bounds);
        SELECT format_type(a.atttypid, a.atttypmod) INTO coltype
          FROM pg_attribute a WHERE a.attrelid = stream AND a.attname = cols[1];
        -- each bound must be a value of the column's type, in ascending order
        EXECUTE format('SELECT coalesce(bool_and(lo < hi), true) FROM
                          (SELECT b::%1$s AS lo, lead(b::%1$s) OVER (ORDER BY n) AS hi
                             FROM unnest($1) WITH ORDINALITY AS u(b, n)) s WHERE hi IS NOT NULL',
                       coltype)
          INTO ordered USING bounds;
        IF NOT ordered THEN
            RAISE EXCEPTION 'range bounds must be strictly ascending' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    EXECUTE format('CREATE TRIGGER rtstream_capture BEFORE INSERT ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION rtstream.capture(%s)',
                   stream,
                   (SELECT string_agg(quote_literal(a), ', ')
                      FROM unnest(ARRAY[method] || coalesce(cols, '{}') || coalesce(bounds, '{}')) a));
    PERFORM rtstream._register_stream(stream, cols, method, bounds);
END
$$;


-- What every object is for (\df+ and \dt+ say it).
COMMENT ON FUNCTION rtstream.create_stream(regclass, text, text, text[]) IS
    'rtstream: make a table a stream: rows inserted or copied into it are captured for its windows, not stored';
COMMENT ON FUNCTION rtstream.drop_stream(regclass, boolean) IS
    'rtstream: make a stream an ordinary table again (with cascade, dropping its windows first)';
COMMENT ON FUNCTION rtstream.create_window(text, text, interval, interval, text, interval, interval, text, regclass, boolean, interval, interval) IS
    'rtstream: declare a window by an aggregate query over a stream; creates a view of its name';
COMMENT ON FUNCTION rtstream.alter_window(text, interval, interval, interval, boolean, text, regclass) IS
    'rtstream: change a window''s event-time options, keeping its state';
COMMENT ON FUNCTION rtstream.drop_window(text, boolean) IS
    'rtstream: drop a window, its view and (unless keep_history) its history table';
COMMENT ON FUNCTION rtstream.sync(interval) IS
    'rtstream: return once every transaction committed before the call is applied to every window (stalled windows are named in a WARNING)';
COMMENT ON FUNCTION rtstream.checkpoint(interval) IS
    'rtstream: apply what was committed, have every worker checkpoint, return the LSN up to which windows are durable';
COMMENT ON FUNCTION rtstream.window_results(text) IS
    'rtstream: every open window of a window (each slide position), with a column definition list';
COMMENT ON FUNCTION rtstream.window_results(text, anyelement) IS
    'rtstream: every open window of a window (each slide position), typed by NULL::view';
COMMENT ON FUNCTION rtstream.window_rows(text) IS
    'rtstream: the current window of each group, as the window''s view reads it';
COMMENT ON FUNCTION rtstream.capture() IS
    'rtstream: the capture trigger of a stream (BEFORE INSERT, returns NULL)';
COMMENT ON FUNCTION rtstream._check() IS
    'rtstream internal: the server checks, and a wait for the router, before DDL';
COMMENT ON FUNCTION rtstream._analyse(text, interval, interval, text, interval, interval) IS
    'rtstream internal: analyse a window query, return its stream and view columns';
COMMENT ON FUNCTION rtstream._notify(integer, text) IS
    'rtstream internal: tell the workers, through WAL, that a window was created, dropped or altered';
COMMENT ON FUNCTION rtstream._outer_user() IS
    'rtstream internal: the session''s role, under SECURITY DEFINER helpers';
COMMENT ON FUNCTION rtstream._stats() IS 'rtstream internal: the rows of rtstream.stats';
COMMENT ON FUNCTION rtstream._window_stats() IS 'rtstream internal: the rows of rtstream.window_stats';
COMMENT ON FUNCTION rtstream._windows_changed() IS
    'rtstream internal: trigger on rtstream.windows that notifies the workers of every change, pg_restore included';
COMMENT ON FUNCTION rtstream._register_stream(regclass, text[], text, text[]) IS
    'rtstream internal: write a stream into the catalog (SECURITY DEFINER, checks the caller''s DDL)';
COMMENT ON FUNCTION rtstream._unregister_stream(regclass) IS
    'rtstream internal: remove a stream from the catalog (SECURITY DEFINER)';
COMMENT ON FUNCTION rtstream._register_window(text, regclass, regclass, text, interval, interval, text, text, interval, interval, interval, text, regclass, regclass, interval) IS
    'rtstream internal: write a window into the catalog (SECURITY DEFINER, checks the caller''s view)';
COMMENT ON FUNCTION rtstream._unregister_window(integer) IS
    'rtstream internal: remove a window from the catalog (SECURITY DEFINER)';
COMMENT ON FUNCTION rtstream._alter_window(integer, interval, interval, interval, regclass, text, regclass) IS
    'rtstream internal: change a window''s options in the catalog (SECURITY DEFINER)';
COMMENT ON FUNCTION rtstream._check_targets(oid, regclass, regclass) IS
    'rtstream internal: a window''s history and dead-letter tables belong to its owner';
COMMENT ON FUNCTION rtstream._column_list(text) IS
    'rtstream internal: parse a partition_by column list';
COMMENT ON FUNCTION rtstream._create_history(name, text) IS
    'rtstream internal: create a window''s history table with the columns of its view';
COMMENT ON FUNCTION rtstream._interval_option(interval, text, boolean) IS
    'rtstream internal: check a lateness, timeout or retention (no months, not negative)';
COMMENT ON FUNCTION rtstream._check_late_policy(text, regclass) IS
    'rtstream internal: check a late_policy and its dead_letter_table';
COMMENT ON FUNCTION rtstream._check_range_bounds(text[]) IS
    'rtstream internal: check the bounds of range partitioning';
COMMENT ON TABLE rtstream.checkpoints IS
    'rtstream internal: each worker''s window state and the LSN it holds, written at checkpoints';
COMMENT ON TABLE rtstream.checkpoint_partitions IS
    'rtstream internal: per partition, the LSN up to which its rows are in checkpointed state';
COMMENT ON TABLE rtstream.history_progress IS
    'rtstream: per window with history, the window end its history table is complete up to';
