/* rtstream--0.2.sql */

\echo Use "CREATE EXTENSION rtstream" to load this file. \quit

-- Catalog ------------------------------------------------------------------

CREATE TABLE rtstream.streams (
    stream       regclass PRIMARY KEY,
    partition_by text[],            -- NULL: rows spread round robin
    method       text NOT NULL DEFAULT 'hash' CHECK (method IN ('hash', 'range')),
    bounds       text[],            -- range: ascending upper bounds
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rtstream.windows (
    id           serial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    view         regclass NOT NULL,
    stream       regclass NOT NULL,  -- a stream of rtstream.streams (checked by create_window)
    query        text NOT NULL,
    size         interval,          -- NULL for a session window
    slide        interval,
    time_column  text,              -- NULL: commit time
    search_path  text NOT NULL,     -- as the query was analysed
    created_at   timestamptz NOT NULL DEFAULT now(),
    gap          interval,          -- a session window's gap
    allowed_lateness interval NOT NULL DEFAULT '0',
    idle_timeout interval,          -- NULL: the watermark waits for rows
    late_policy  text NOT NULL DEFAULT 'count' CHECK (late_policy IN ('count', 'dead_letter')),
    dead_letter_table regclass,     -- NULL: rtstream.dead_letters
    history      regclass,          -- the history table, NULL if none
    retention    interval,          -- of the history; NULL: kept
    CHECK ((size IS NULL) <> (gap IS NULL))
);

-- History: windows ending at or before emitted_until are in the window's
-- history table, with every row of the transactions ending at or before
-- lsn.  Written in the transaction that appends them.
CREATE TABLE rtstream.history_progress (
    window_id     integer PRIMARY KEY,
    emitted_until timestamptz NOT NULL,
    lsn           pg_lsn NOT NULL
);
GRANT SELECT ON rtstream.history_progress TO PUBLIC;

-- Window state, written by the workers (rtstream.checkpoint_interval): each
-- worker's windows with the LSN up to which they are exact.  Not dumped:
-- state belongs to a server's WAL.
CREATE TABLE rtstream.checkpoints (
    worker       integer NOT NULL,
    window_id    integer NOT NULL,  -- 0: the worker's own row
    created_lsn  pg_lsn,            -- the window counts transactions ending after it
    lsn          pg_lsn NOT NULL,
    state        bytea,
    taken_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker, window_id)
);

-- states are written whole at each checkpoint: compressing them costs more
-- than it saves
ALTER TABLE rtstream.checkpoints ALTER COLUMN state SET STORAGE EXTERNAL;

-- Per partition, the LSN up to which its rows are in checkpointed state.
CREATE TABLE rtstream.checkpoint_partitions (
    partition    integer PRIMARY KEY,
    lsn          pg_lsn NOT NULL
);

-- Rows a worker could not apply, with the error.
CREATE TABLE rtstream.dead_letters (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    stream       regclass,
    window_name  text,
    commit_lsn   pg_lsn,
    error        text NOT NULL,
    row_data     text
);

SELECT pg_catalog.pg_extension_config_dump('rtstream.streams', '');
SELECT pg_catalog.pg_extension_config_dump('rtstream.windows', '');
SELECT pg_catalog.pg_extension_config_dump('rtstream.windows_id_seq', '');

GRANT USAGE ON SCHEMA rtstream TO PUBLIC;
GRANT SELECT ON rtstream.streams, rtstream.windows TO PUBLIC;

-- C functions --------------------------------------------------------------

CREATE FUNCTION rtstream.capture() RETURNS trigger
    AS 'MODULE_PATHNAME', 'rts_capture' LANGUAGE C;

CREATE FUNCTION rtstream._check() RETURNS void
    AS 'MODULE_PATHNAME', 'rts_check' LANGUAGE C;

CREATE FUNCTION rtstream._analyse(query text, size interval, slide interval,
                                  time_column text, gap interval, allowed_lateness interval,
                                  OUT stream oid, OUT columns text)
    AS 'MODULE_PATHNAME', 'rts_analyse' LANGUAGE C;

CREATE FUNCTION rtstream._notify(window_id integer, op text) RETURNS void
    AS 'MODULE_PATHNAME', 'rts_notify' LANGUAGE C STRICT;

CREATE FUNCTION rtstream.window_rows(name text) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_window_rows' LANGUAGE C STRICT;

-- Every window still open, not only the current one.
CREATE FUNCTION rtstream.window_results(name text) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_window_results' LANGUAGE C STRICT;
CREATE FUNCTION rtstream.window_results(name text, rowtype anyelement) RETURNS SETOF anyelement
    AS 'MODULE_PATHNAME', 'rts_window_results' LANGUAGE C;

CREATE FUNCTION rtstream._outer_user() RETURNS oid
    AS 'MODULE_PATHNAME', 'rts_outer_user' LANGUAGE C STABLE;

CREATE FUNCTION rtstream.sync(timeout interval DEFAULT '60 seconds') RETURNS void
    AS 'MODULE_PATHNAME', 'rts_sync' LANGUAGE C STRICT;

CREATE FUNCTION rtstream.checkpoint(timeout interval DEFAULT '60 seconds') RETURNS pg_lsn
    AS 'MODULE_PATHNAME', 'rts_checkpoint' LANGUAGE C STRICT;
REVOKE EXECUTE ON FUNCTION rtstream.checkpoint(interval) FROM PUBLIC;

CREATE FUNCTION rtstream._stats(
    OUT process text, OUT pid integer, OUT rows bigint, OUT batches bigint,
    OUT late_rows bigint, OUT null_time_rows bigint, OUT refused_groups bigint,
    OUT dead_letters bigint, OUT groups bigint, OUT memory_bytes bigint,
    OUT behind_bytes bigint, OUT lsn pg_lsn, OUT checkpoint_lsn pg_lsn,
    OUT checkpoint_age interval, OUT wal_retained_bytes bigint, OUT replayed_skipped bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_stats' LANGUAGE C;

CREATE FUNCTION rtstream._window_stats(
    OUT window_id integer, OUT worker integer, OUT groups bigint, OUT rows bigint,
    OUT late_rows bigint, OUT null_time_rows bigint, OUT refused_groups bigint,
    OUT memory_bytes bigint, OUT newest_time timestamptz, OUT watermark timestamptz,
    OUT closed_until timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_window_stats' LANGUAGE C;

CREATE VIEW rtstream.stats AS SELECT * FROM rtstream._stats();

CREATE VIEW rtstream.window_stats AS
    SELECT w.name AS window_name, s.*
      FROM rtstream._window_stats() s JOIN rtstream.windows w ON w.id = s.window_id;

GRANT SELECT ON rtstream.stats, rtstream.window_stats TO PUBLIC;

-- Workers learn of new and dropped windows from a WAL message written by
-- the transaction that inserts or deletes the catalog row, whoever does it
-- (create_window, drop_window, or pg_restore loading the catalog).
CREATE FUNCTION rtstream._windows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM rtstream._notify(NEW.id, 'create');
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM rtstream._notify(NEW.id, 'alter');
        RETURN NEW;
    END IF;
    PERFORM rtstream._notify(OLD.id, 'drop');
    DELETE FROM rtstream.checkpoints c WHERE c.window_id = OLD.id;
    DELETE FROM rtstream.history_progress p WHERE p.window_id = OLD.id;
    RETURN OLD;
END
$$;
CREATE TRIGGER windows_changed AFTER INSERT OR UPDATE OR DELETE ON rtstream.windows
    FOR EACH ROW EXECUTE FUNCTION rtstream._windows_changed();

-- The catalog is written only by these SECURITY DEFINER functions.  Each
-- writes only what the caller has already proved it may do, by DDL that
-- PostgreSQL checked: a capture trigger it created on its table, a view it
-- created whose owner may read the stream, a trigger or view it dropped.

CREATE FUNCTION rtstream._register_stream(stream regclass, cols text[], method text, bounds text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = stream AND tgname = 'rtstream_capture'
                      AND tgfoid = 'rtstream.capture()'::regprocedure) THEN
        RAISE EXCEPTION 'table "%" has no rtstream capture trigger', stream
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO rtstream.streams (stream, partition_by, method, bounds)
    VALUES (stream, cols, method, bounds);
END
$$;

CREATE FUNCTION rtstream._unregister_stream(stream regclass)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = stream AND tgname = 'rtstream_capture') THEN
        RAISE EXCEPTION 'table "%" still has its capture trigger', stream
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    DELETE FROM rtstream.streams s WHERE s.stream = _unregister_stream.stream;
END
$$;

CREATE FUNCTION rtstream._register_window(name text, view regclass, stream regclass, query text,
                                          size interval, slide interval, time_column text,
                                          search_path text, gap interval, allowed_lateness interval,
                                          idle_timeout interval, late_policy text,
                                          dead_letter_table regclass, history regclass,
                                          retention interval)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner oid := (SELECT relowner FROM pg_class WHERE oid = view);
BEGIN
    IF NOT has_table_privilege(owner, stream, 'SELECT')
       OR pg_get_viewdef(view) NOT LIKE '%rtstream.window_rows(' || quote_literal(name) || '::text)%' THEN
        RAISE EXCEPTION 'view "%" is not the view of window "%"', view, name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM rtstream._check_targets(owner, dead_letter_table, history);
    INSERT INTO rtstream.windows (name, view, stream, query, size, slide, time_column, search_path,
                                  gap, allowed_lateness, idle_timeout, late_policy,
                                  dead_letter_table, history, retention)
    VALUES (name, view, stream, query, size, slide, time_column, search_path,
            gap, allowed_lateness, idle_timeout, late_policy, dead_letter_table, history, retention);
END
$$;

-- Workers write into a window's history and dead letter tables: the
-- window's owner must own the first and be allowed to insert into the second.
CREATE FUNCTION rtstream._check_targets(owner oid, dead_letter_table regclass, history regclass)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF dead_letter_table IS NOT NULL AND NOT has_table_privilege(owner, dead_letter_table, 'INSERT') THEN
        RAISE EXCEPTION 'permission denied for table %', dead_letter_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The owner of the window must be allowed to insert into its dead letter table.';
    END IF;
    IF history IS NOT NULL AND (SELECT relowner FROM pg_class WHERE oid = history) <> owner THEN
        RAISE EXCEPTION 'history table % must have the owner of the window', history
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- alter_window's catalog side: the caller (outside any SECURITY DEFINER
-- function) must own the window's view.
CREATE FUNCTION rtstream._alter_window(window_id integer, allowed_lateness interval,
                                       idle_timeout interval, retention interval,
                                       history regclass, late_policy text,
                                       dead_letter_table regclass)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner oid := (SELECT c.relowner FROM rtstream.windows w JOIN pg_class c ON c.oid = w.view
                   WHERE w.id = window_id);
BEGIN
    IF owner IS NULL OR NOT pg_has_role(rtstream._outer_user(), owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of rtstream window %', window_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM rtstream._check_targets(owner, dead_letter_table, history);
    UPDATE rtstream.windows w
       SET allowed_lateness = _alter_window.allowed_lateness,
           idle_timeout = _alter_window.idle_timeout,
           retention = _alter_window.retention,
           history = _alter_window.history,
           late_policy = _alter_window.late_policy,
           dead_letter_table = _alter_window.dead_letter_table
     WHERE w.id = window_id;
END
$$;

CREATE FUNCTION rtstream._unregister_window(window_id integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM rtstream.windows w JOIN pg_class c ON c.oid = w.view
                WHERE w.id = window_id) THEN
        RAISE EXCEPTION 'the view of window % still exists', window_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    DELETE FROM rtstream.windows w WHERE w.id = window_id;
END
$$;

REVOKE EXECUTE ON FUNCTION rtstream._notify(integer, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rtstream._check_targets(oid, regclass, regclass) FROM PUBLIC;

-- Streams ------------------------------------------------------------------

-- 'a, "B"' -> {a,B}: unquoted names fold to lower case, as in SQL.
CREATE FUNCTION rtstream._column_list(list text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT array_agg(CASE WHEN c ~ '^".*"$' THEN replace(substr(c, 2, length(c) - 2), '""', '"')
                          ELSE lower(c) END ORDER BY ord)
      FROM unnest(string_to_array(list, ',')) WITH ORDINALITY AS u(raw, ord),
           LATERAL (SELECT btrim(raw)) AS t(c)
$$;

CREATE FUNCTION rtstream.create_stream(stream regclass, partition_by text DEFAULT NULL,
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
        IF coalesce(array_length(bounds, 1), 0) = 0 OR array_length(bounds, 1) > 63
           OR array_position(bounds, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'range partitioning needs 1 to 63 non-NULL bounds'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
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

CREATE FUNCTION rtstream.drop_stream(stream regclass, "cascade" boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    w record;
    names text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM rtstream.streams s WHERE s.stream = drop_stream.stream) THEN
        RAISE EXCEPTION 'table "%" is not a stream', stream USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = stream), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', stream USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT string_agg(quote_ident(name), ', ' ORDER BY name) INTO names
      FROM rtstream.windows WHERE windows.stream = drop_stream.stream;
    IF names IS NOT NULL AND NOT "cascade" THEN
        RAISE EXCEPTION 'cannot drop stream "%" because windows depend on it', stream
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Windows: %s.', names),
                  HINT = 'Drop the windows first, or use rtstream.drop_stream(..., cascade => true).';
    END IF;
    FOR w IN SELECT name FROM rtstream.windows WHERE windows.stream = drop_stream.stream LOOP
        PERFORM rtstream.drop_window(w.name);
    END LOOP;
    EXECUTE format('DROP TRIGGER rtstream_capture ON %s', stream);
    PERFORM rtstream._unregister_stream(stream);
END
$$;

-- Windows ------------------------------------------------------------------

-- An interval option that may be NULL or zero: NULL when zero ("off").
CREATE FUNCTION rtstream._interval_option(value interval, what text, zero_is_off boolean)
RETURNS interval LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF extract(month FROM value) <> 0 OR extract(year FROM value) <> 0 THEN
        RAISE EXCEPTION '% must not contain months or years', what
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use days instead, for example ''30 days''.';
    END IF;
    IF value < '0'::interval THEN
        RAISE EXCEPTION '% must not be negative', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value = '0'::interval AND zero_is_off THEN
        RETURN NULL;
    END IF;
    RETURN value;
END
$$;

CREATE FUNCTION rtstream._check_late_policy(late_policy text, dead_letter_table regclass)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF late_policy IS NULL OR late_policy NOT IN ('count', 'dead_letter') THEN
        RAISE EXCEPTION 'unknown late_policy "%"', late_policy
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''count'' or ''dead_letter''.';
    END IF;
    IF dead_letter_table IS NOT NULL THEN
        IF late_policy <> 'dead_letter' THEN
            RAISE EXCEPTION 'dead_letter_table needs late_policy ''dead_letter'''
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_attribute d
                    WHERE d.attrelid = 'rtstream.dead_letters'::regclass AND d.attnum > 1
                      AND NOT d.attisdropped
                      AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                       WHERE a.attrelid = dead_letter_table AND a.attname = d.attname
                                         AND a.atttypid = d.atttypid AND NOT a.attisdropped)) THEN
            RAISE EXCEPTION 'table % lacks columns of rtstream.dead_letters', dead_letter_table
                USING ERRCODE = 'invalid_table_definition',
                      HINT = 'Create it with CREATE TABLE ... (LIKE rtstream.dead_letters INCLUDING DEFAULTS).';
        END IF;
        IF NOT has_table_privilege(dead_letter_table, 'INSERT') THEN
            RAISE EXCEPTION 'permission denied for table %', dead_letter_table
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
END
$$;

-- Create a window's history table, with the columns of its view.  A table
-- of that name is taken over only if it has exactly those columns and the
-- owner of the view (the history table of the window, kept when history
-- was turned off).
CREATE FUNCTION rtstream._create_history(schema name, name text)
RETURNS regclass LANGUAGE plpgsql AS $$
DECLARE
    hist text := name || '_history';
    existing regclass := to_regclass(format('%I.%I', schema, name || '_history'));
    view regclass := format('%I.%I', schema, name)::regclass;
BEGIN
    IF octet_length(hist) >= 64 THEN
        RAISE EXCEPTION 'history table name "%" is too long', hist
            USING ERRCODE = 'name_too_long', HINT = 'Use a window name of at most 55 bytes.';
    END IF;
    IF existing IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I AS SELECT * FROM %I.%I WITH NO DATA',
                       schema, hist, schema, name);
        EXECUTE format('CREATE INDEX ON %I.%I (window_end)', schema, hist);
        RETURN format('%I.%I', schema, hist)::regclass;
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = existing) <> 'r'
       OR (SELECT relowner FROM pg_class WHERE oid = existing)
          IS DISTINCT FROM (SELECT relowner FROM pg_class WHERE oid = view)
       OR (SELECT array_agg(attname::text || ' ' || format_type(atttypid, atttypmod) ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = existing AND attnum > 0 AND NOT attisdropped)
          IS DISTINCT FROM
          (SELECT array_agg(attname::text || ' ' || format_type(atttypid, atttypmod) ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = view AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'relation "%" already exists', hist USING ERRCODE = 'duplicate_table',
            HINT = 'Drop or rename it: the history table is created with the columns of the window''s view.';
    END IF;
    RETURN existing;
END
$$;

CREATE FUNCTION rtstream.create_window(name text, query text, size interval DEFAULT NULL,
                                       slide interval DEFAULT NULL,
                                       time_column text DEFAULT NULL,
                                       allowed_lateness interval DEFAULT '0',
                                       idle_timeout interval DEFAULT NULL,
                                       late_policy text DEFAULT 'count',
                                       dead_letter_table regclass DEFAULT NULL,
                                       history boolean DEFAULT false,
                                       retention interval DEFAULT NULL,
                                       gap interval DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a record;
    schema name := current_schema();
    hist regclass;
BEGIN
    PERFORM rtstream._check();
    IF name IS NULL OR query IS NULL OR (size IS NULL AND gap IS NULL) THEN
        RAISE EXCEPTION 'window name, query and size (or gap) must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(name) = 0 OR octet_length(name) >= 64 THEN
        RAISE EXCEPTION 'invalid window name "%"', name
            USING ERRCODE = 'invalid_name', HINT = 'A window name is a relation name of 1 to 63 bytes.';
    END IF;
    IF schema IS NULL THEN
        RAISE EXCEPTION 'no schema has been selected to create in' USING ERRCODE = 'invalid_schema_name';
    END IF;
    IF EXISTS (SELECT 1 FROM rtstream.windows w WHERE w.name = create_window.name) THEN
        RAISE EXCEPTION 'rtstream window "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = create_window.name
                                          AND c.relnamespace = schema::regnamespace) THEN
        RAISE EXCEPTION 'relation "%" already exists', name USING ERRCODE = 'duplicate_table';
    END IF;
    IF history AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = create_window.name || '_history'
                                                     AND c.relnamespace = schema::regnamespace) THEN
        RAISE EXCEPTION 'relation "%" already exists', name || '_history' USING ERRCODE = 'duplicate_table',
            HINT = 'Drop or rename it: create_window creates the history table.';
    END IF;
    allowed_lateness := coalesce(rtstream._interval_option(allowed_lateness, 'allowed_lateness', false), '0');
    idle_timeout := rtstream._interval_option(idle_timeout, 'idle_timeout', true);
    retention := rtstream._interval_option(retention, 'retention', true);
    IF retention IS NOT NULL AND NOT coalesce(history, false) THEN
        RAISE EXCEPTION 'retention needs history => true' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM rtstream._check_late_policy(late_policy, dead_letter_table);

    a := rtstream._analyse(query, size, slide, time_column, gap, allowed_lateness);

    IF NOT EXISTS (SELECT 1 FROM rtstream.streams s WHERE s.stream = a.stream) THEN
        RAISE EXCEPTION 'table "%" is not a stream', a.stream::regclass
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Register it first: SELECT rtstream.create_stream(%L);', a.stream::regclass::text);
    END IF;
    IF NOT has_table_privilege(a.stream, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', a.stream::regclass
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM rtstream.window_rows(%L) AS w(%s)',
                   schema, name, name, a.columns);
    IF history THEN
        hist := rtstream._create_history(schema, name);
    END IF;
    PERFORM rtstream._register_window(name, format('%I.%I', schema, name)::regclass, a.stream,
                                      query, size, CASE WHEN gap IS NULL THEN coalesce(slide, size) END,
                                      time_column, current_setting('search_path'), gap,
                                      allowed_lateness, idle_timeout, late_policy,
                                      dead_letter_table, hist, retention);
END
$$;

CREATE FUNCTION rtstream.alter_window(name text, allowed_lateness interval DEFAULT NULL,
                                      idle_timeout interval DEFAULT NULL,
                                      retention interval DEFAULT NULL,
                                      history boolean DEFAULT NULL,
                                      late_policy text DEFAULT NULL,
                                      dead_letter_table regclass DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    w rtstream.windows;
    hist regclass;
    dlt regclass;
BEGIN
    PERFORM rtstream._check();
    SELECT * INTO w FROM rtstream.windows WHERE windows.name = alter_window.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rtstream window "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class c WHERE c.oid = w.view), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of view %', w.view USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF allowed_lateness IS NOT NULL THEN
        w.allowed_lateness := rtstream._interval_option(allowed_lateness, 'allowed_lateness', false);
        -- the same checks as create_window (pane limit)
        PERFORM rtstream._analyse(w.query, w.size, w.slide, w.time_column, w.gap, w.allowed_lateness);
    END IF;
    IF idle_timeout IS NOT NULL THEN
        w.idle_timeout := rtstream._interval_option(idle_timeout, 'idle_timeout', true);
    END IF;
    IF retention IS NOT NULL THEN
        w.retention := rtstream._interval_option(retention, 'retention', true);
    END IF;
    IF late_policy IS NOT NULL THEN
        w.late_policy := late_policy;
        IF late_policy = 'count' THEN
            w.dead_letter_table := NULL;
        END IF;
    END IF;
    IF dead_letter_table IS NOT NULL THEN
        w.dead_letter_table := dead_letter_table;
    END IF;
    PERFORM rtstream._check_late_policy(w.late_policy, w.dead_letter_table);
    hist := w.history;
    IF history THEN
        IF hist IS NULL OR NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = hist) THEN
            hist := rtstream._create_history(
                (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = w.view), w.name);
        END IF;
    ELSIF NOT history THEN
        hist := NULL;
    END IF;
    IF w.retention IS NOT NULL AND hist IS NULL THEN
        RAISE EXCEPTION 'retention needs history => true' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM rtstream._alter_window(w.id, w.allowed_lateness, w.idle_timeout, w.retention, hist,
                                   w.late_policy, w.dead_letter_table);
END
$$;

CREATE FUNCTION rtstream.drop_window(name text, keep_history boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    w record;
BEGIN
    SELECT * INTO w FROM rtstream.windows WHERE windows.name = drop_window.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rtstream window "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = w.view) THEN
        IF NOT pg_has_role((SELECT relowner FROM pg_class c WHERE c.oid = w.view), 'USAGE') THEN
            RAISE EXCEPTION 'must be owner of view %', w.view USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('DROP VIEW %s', w.view);
    END IF;
    PERFORM rtstream._unregister_window(w.id);
    IF w.history IS NOT NULL AND NOT keep_history
       AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = w.history) THEN
        EXECUTE format('DROP TABLE %s', w.history);
    END IF;
END
$$;
