/* rtstream--0.3--0.4.sql: window shapes (any hop, origin, timezone, cumulate), sessions by the common rule, distinct and top-k, NOTIFY */

\echo Use "ALTER EXTENSION rtstream UPDATE TO '0.4'" to load this file. \quit

-- ==== window shapes (geometry, notify) ====

-- Window shapes: windows aligned to an origin (and read on a time zone's
-- wall clock), cumulating windows growing by a step, and NOTIFY on close.
ALTER TABLE rtstream.windows
    ADD COLUMN origin timestamptz,
    ADD COLUMN timezone text,
    ADD COLUMN step interval,
    ADD COLUMN notify boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN rtstream.windows.origin IS
    'windows start at multiples of the slide (cumulating: of the size) from it; NULL: the Unix epoch';
COMMENT ON COLUMN rtstream.windows.timezone IS
    'windows of whole days run from local midnight in this zone; NULL: absolute time';
COMMENT ON COLUMN rtstream.windows.step IS
    'a cumulating window: windows [start, start + n * step) up to size; slide then equals step';
COMMENT ON COLUMN rtstream.windows.notify IS
    'NOTIFY on the channel named after the window, with its end as payload, when a window closes';

DROP FUNCTION rtstream._analyse(text, interval, interval, text, interval, interval);
CREATE FUNCTION rtstream._analyse(query text, size interval, slide interval,
                                  time_column text, gap interval, allowed_lateness interval,
                                  origin timestamptz, timezone text, step interval,
                                  OUT stream oid, OUT columns text)
    AS 'MODULE_PATHNAME', 'rts_analyse' LANGUAGE C;
COMMENT ON FUNCTION rtstream._analyse(text, interval, interval, text, interval, interval, timestamptz, text, interval) IS
    'rtstream internal: analyse a window query, return its stream and view columns';

DROP FUNCTION rtstream._register_window(text, regclass, regclass, text, interval, interval, text, text, interval, interval, interval, text, regclass, regclass, interval);
CREATE FUNCTION rtstream._register_window(name text, view regclass, stream regclass, query text,
                                          size interval, slide interval, time_column text,
                                          search_path text, gap interval, allowed_lateness interval,
                                          idle_timeout interval, late_policy text,
                                          dead_letter_table regclass, history regclass,
                                          retention interval, origin timestamptz,
                                          timezone text, step interval, notify boolean)
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
                                  dead_letter_table, history, retention, origin, timezone, step, notify)
    VALUES (name, view, stream, query, size, slide, time_column, search_path,
            gap, allowed_lateness, idle_timeout, late_policy, dead_letter_table, history, retention,
            origin, timezone, step, notify);
END
$$;

COMMENT ON FUNCTION rtstream._register_window(text, regclass, regclass, text, interval, interval, text, text, interval, interval, interval, text, regclass, regclass, interval, timestamptz, text, interval, boolean) IS
    'rtstream internal: write a window into the catalog (SECURITY DEFINER, checks the caller''s view)';

DROP FUNCTION rtstream.create_window(text, text, interval, interval, text, interval, interval, text, regclass, boolean, interval, interval);
CREATE FUNCTION rtstream.create_window(name text, query text, size interval DEFAULT NULL,
                                       slide interval DEFAULT NULL,
                                       time_column text DEFAULT NULL,
                                       allowed_lateness interval DEFAULT '0',
                                       idle_timeout interval DEFAULT NULL,
                                       late_policy text DEFAULT 'count',
                                       dead_letter_table regclass DEFAULT NULL,
                                       history boolean DEFAULT false,
                                       retention interval DEFAULT NULL,
                                       gap interval DEFAULT NULL,
                                       origin timestamptz DEFAULT NULL,
                                       timezone text DEFAULT NULL,
                                       step interval DEFAULT NULL,
                                       notify boolean DEFAULT false)
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
    IF notify AND gap IS NOT NULL AND NOT coalesce(history, false) THEN
        RAISE EXCEPTION 'notify on a session window needs history => true'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A session closes when its history row is written; the NOTIFY is sent with it.';
    END IF;

    a := rtstream._analyse(query, size, slide, time_column, gap, allowed_lateness,
                           origin, timezone, step);

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
                                      query, size,
                                      CASE WHEN gap IS NULL THEN coalesce(slide, step, size) END,
                                      time_column, current_setting('search_path'), gap,
                                      allowed_lateness, idle_timeout, late_policy,
                                      dead_letter_table, hist, retention,
                                      origin, timezone, step, coalesce(notify, false));
END
$$;

COMMENT ON FUNCTION rtstream.create_window(text, text, interval, interval, text, interval, interval, text, regclass, boolean, interval, interval, timestamptz, text, interval, boolean) IS
    'rtstream: declare a window by an aggregate query over a stream; creates a view of its name';

-- alter_window checks the shape as create_window does
CREATE OR REPLACE FUNCTION rtstream.alter_window(name text, allowed_lateness interval DEFAULT NULL,
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
        PERFORM rtstream._analyse(w.query, w.size, CASE WHEN w.step IS NULL THEN w.slide END,
                                  w.time_column, w.gap, w.allowed_lateness,
                                  w.origin, w.timezone, w.step);
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

-- ==== end window shapes ====

-- ==== aggregates: count(DISTINCT), topk ====

-- Mergeable aggregates over sets of values (src/agg_distinct.c,
-- src/agg_topk.c): plain aggregates, parallel safe, that a window keeps per
-- pane like any aggregate with combine and serialization functions.  A
-- window's count(DISTINCT x) is kept as rtstream.count_distinct(x).

CREATE FUNCTION rtstream.count_distinct_trans(internal, anyelement) RETURNS internal
    AS 'MODULE_PATHNAME', 'rts_count_distinct_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION rtstream.count_distinct_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rts_count_distinct_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION rtstream.count_distinct_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rts_count_distinct_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION rtstream.count_distinct_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rts_count_distinct_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION rtstream.count_distinct_final(internal) RETURNS bigint
    AS 'MODULE_PATHNAME', 'rts_count_distinct_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE rtstream.count_distinct(anyelement) (
    SFUNC = rtstream.count_distinct_trans,
    STYPE = internal,
    COMBINEFUNC = rtstream.count_distinct_combine,
    SERIALFUNC = rtstream.count_distinct_serial,
    DESERIALFUNC = rtstream.count_distinct_deserial,
    FINALFUNC = rtstream.count_distinct_final,
    PARALLEL = SAFE
);
COMMENT ON FUNCTION rtstream.count_distinct_trans(internal, anyelement) IS
    'rtstream internal: transition function of rtstream.count_distinct';
COMMENT ON FUNCTION rtstream.count_distinct_combine(internal, internal) IS
    'rtstream internal: combine function of rtstream.count_distinct (set union)';
COMMENT ON FUNCTION rtstream.count_distinct_serial(internal) IS
    'rtstream internal: serialization function of rtstream.count_distinct';
COMMENT ON FUNCTION rtstream.count_distinct_deserial(bytea, internal) IS
    'rtstream internal: deserialization function of rtstream.count_distinct';
COMMENT ON FUNCTION rtstream.count_distinct_final(internal) IS
    'rtstream internal: final function of rtstream.count_distinct (the size of the set)';
COMMENT ON AGGREGATE rtstream.count_distinct(anyelement) IS
    'the exact number of distinct non-NULL values, as count(DISTINCT x), mergeable: a window keeps count(DISTINCT x) as this aggregate';

CREATE FUNCTION rtstream.topk_trans(internal, anyelement, integer) RETURNS internal
    AS 'MODULE_PATHNAME', 'rts_topk_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION rtstream.topk_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rts_topk_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION rtstream.topk_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rts_topk_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION rtstream.topk_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rts_topk_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION rtstream.topk_final(internal) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'rts_topk_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE rtstream.topk(value anyelement, k integer) (
    SFUNC = rtstream.topk_trans,
    STYPE = internal,
    COMBINEFUNC = rtstream.topk_combine,
    SERIALFUNC = rtstream.topk_serial,
    DESERIALFUNC = rtstream.topk_deserial,
    FINALFUNC = rtstream.topk_final,
    PARALLEL = SAFE
);
COMMENT ON FUNCTION rtstream.topk_trans(internal, anyelement, integer) IS
    'rtstream internal: transition function of rtstream.topk (space-saving update)';
COMMENT ON FUNCTION rtstream.topk_combine(internal, internal) IS
    'rtstream internal: combine function of rtstream.topk (merge of space-saving summaries)';
COMMENT ON FUNCTION rtstream.topk_serial(internal) IS
    'rtstream internal: serialization function of rtstream.topk';
COMMENT ON FUNCTION rtstream.topk_deserial(bytea, internal) IS
    'rtstream internal: deserialization function of rtstream.topk';
COMMENT ON FUNCTION rtstream.topk_final(internal) IS
    'rtstream internal: final function of rtstream.topk (the k most frequent values as jsonb)';
COMMENT ON AGGREGATE rtstream.topk(anyelement, integer) IS
    'the k (1 to 10000) most frequent non-NULL values with their counts, as jsonb [{"value": ..., "count": n}, ...], most frequent first, ties by value; a mergeable space-saving summary of max(4k, 64) counters: counts are exact while no more distinct values than that were seen';

-- ==== end aggregates ====
