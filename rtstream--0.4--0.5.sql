-- rtstream 0.4 -> 0.5: streams over several servers (issue 13).
--
-- A coordinator (any server with rtstream and postgres_fdw) ships the rows of
-- a distributed stream to the nodes that own their partitions; each node
-- aggregates its share in ordinary windows, and the coordinator's views
-- combine the nodes' partial states.  Everything between servers goes
-- through postgres_fdw foreign tables:
--   <schema>.<stream>__<node>  -> the node's rtstream.inbox (rows, commands)
--   <schema>.<window>__<node>  -> the node's view <schema>.<window>__state
\echo Use "ALTER EXTENSION rtstream UPDATE TO '0.5'" to load this file. \quit

-- Coordinator catalog ---------------------------------------------------------

-- The nodes of each distributed stream (foreign servers of postgres_fdw).
-- A node being removed is 'draining': it gets no new rows, and is read until
-- its windows are closed.
CREATE TABLE rtstream.stream_nodes (
    stream       regclass NOT NULL REFERENCES rtstream.streams ON DELETE CASCADE,
    node         name NOT NULL,
    state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining')),
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, node)
);
SELECT pg_catalog.pg_extension_config_dump('rtstream.stream_nodes', '');
GRANT SELECT ON rtstream.stream_nodes TO PUBLIC;

-- Node side -------------------------------------------------------------------

-- What a node has applied of each coordinator's rows, per stream: every row
-- of the transactions ending before lsn, and the first seq rows (for this
-- stream) of the transaction ending at lsn.  Written in the transaction that
-- inserts the rows, so a delivery sent again is skipped (exactly once).
CREATE TABLE rtstream.deliveries (
    source       text NOT NULL,     -- system identifier and database of the coordinator
    stream       regclass NOT NULL,
    lsn          pg_lsn NOT NULL,
    seq          bigint NOT NULL,
    rows         bigint NOT NULL DEFAULT 0,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, stream)
);
SELECT pg_catalog.pg_extension_config_dump('rtstream.deliveries', '');
-- a role sees and moves only the positions of streams it owns
ALTER TABLE rtstream.deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY deliveries_owner ON rtstream.deliveries
    USING (pg_has_role((SELECT relowner FROM pg_class WHERE oid = stream), 'USAGE'))
    WITH CHECK (pg_has_role((SELECT relowner FROM pg_class WHERE oid = stream), 'USAGE'));
GRANT SELECT, INSERT, UPDATE ON rtstream.deliveries TO PUBLIC;

-- The inbox: a coordinator inserts here, through a foreign table, either
-- rows for a stream (with their positions) or a command to run.  Nothing is
-- stored: the trigger applies it, with the inserting role's rights.
CREATE TABLE rtstream.inbox (
    source       text,
    stream       text,              -- qualified name of the node's stream
    lsns         pg_lsn[],          -- per segment: the source transaction's end
    seqs         bigint[],          -- per segment: its first row's number in it
    counts       integer[],         -- per segment: its rows
    rows         text,              -- the rows: text of an array of the stream's row type,
    tuples       bytea,             -- or the coordinator's tuples (length, tuple)...
    signature    text,              -- ... of a table of this layout (src/inbox.c)
    command      text               -- or an SQL command, run as the inserting role
);
GRANT INSERT ON rtstream.inbox TO PUBLIC;

-- No SET search_path here: a command may set it for the rest of the node's
-- transaction (create_window analyses its query with the coordinator's);
-- every name below is qualified.
CREATE FUNCTION rtstream._inbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rel regclass;
    at_lsn pg_lsn;
    at_seq bigint;
    skip bigint := 0;
    total bigint := 0;
    i integer;
    last_lsn pg_lsn;
    last_seq bigint;
BEGIN
    IF NEW.command IS NOT NULL THEN
        EXECUTE NEW.command;
        RETURN NULL;
    END IF;
    rel := NEW.stream::regclass;
    IF NOT EXISTS (SELECT 1 FROM rtstream.streams s WHERE s.stream = rel) THEN
        RAISE EXCEPTION 'table "%" is not a stream', rel USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = rel), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Rows are delivered to a node by the owner of its stream.';
    END IF;
    INSERT INTO rtstream.deliveries (source, stream, lsn, seq)
    VALUES (NEW.source, rel, '0/0', 0) ON CONFLICT DO NOTHING;
    SELECT d.lsn, d.seq INTO at_lsn, at_seq FROM rtstream.deliveries d
     WHERE d.source = NEW.source AND d.stream = rel FOR UPDATE;
    -- segments come in (lsn, seq) order: what was applied is a prefix
    FOR i IN 1 .. coalesce(array_length(NEW.lsns, 1), 0) LOOP
        IF NEW.lsns[i] < at_lsn THEN
            skip := skip + NEW.counts[i];
        ELSIF NEW.lsns[i] = at_lsn THEN
            skip := skip + greatest(0, least(NEW.counts[i]::bigint, at_seq - NEW.seqs[i]));
        END IF;
        total := total + NEW.counts[i];
        last_lsn := NEW.lsns[i];
        last_seq := NEW.seqs[i] + NEW.counts[i];
    END LOOP;
    IF total > skip THEN
        IF NEW.tuples IS NOT NULL THEN
            -- the coordinator's tuples, through the stream's triggers (inbox.c)
            PERFORM rtstream._insert_tuples(rel, NEW.tuples, NEW.signature, skip);
        ELSE
            -- unnest() in the target list keeps each row whole; OFFSET skips
            -- what the node has
            EXECUTE format('INSERT INTO %s SELECT (s.r).* FROM (SELECT pg_catalog.unnest($1::%s[]) AS r OFFSET $2) s',
                           rel, (SELECT c.reltype::regtype FROM pg_catalog.pg_class c WHERE c.oid = rel))
              USING NEW.rows, skip;
        END IF;
        UPDATE rtstream.deliveries d SET lsn = last_lsn, seq = last_seq,
               rows = d.rows + (total - skip), applied_at = now()
         WHERE d.source = NEW.source AND d.stream = rel;
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION rtstream._insert_tuples(stream regclass, tuples bytea, signature text, skip bigint)
RETURNS bigint AS 'MODULE_PATHNAME', 'rts_insert_tuples' LANGUAGE C STRICT;

CREATE TRIGGER inbox BEFORE INSERT ON rtstream.inbox
    FOR EACH ROW EXECUTE FUNCTION rtstream._inbox();

CREATE FUNCTION rtstream.window_state(name text)
RETURNS TABLE (worker integer, watermark timestamptz, newest timestamptz, state bytea, groups integer)
AS 'MODULE_PATHNAME', 'rts_window_state' LANGUAGE C STRICT;

-- Coordinator: the ring, the nodes' view ----------------------------------------

-- Which partitions a node owns among the active nodes of a stream.
CREATE FUNCTION rtstream._node_partitions(nodes name[], node name) RETURNS integer[]
AS 'MODULE_PATHNAME', 'rts_node_partitions' LANGUAGE C IMMUTABLE STRICT;

-- The shipper's state per node (delivered position, rows waiting, last error).
CREATE FUNCTION rtstream._node_stats(OUT node name, OUT delivered_lsn pg_lsn,
                                     OUT pending_rows bigint, OUT delivered_rows bigint,
                                     OUT failures integer, OUT last_error text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'rts_node_stats' LANGUAGE C;

CREATE VIEW rtstream.nodes AS
SELECT n.stream, n.node, n.state,
       CASE WHEN n.state = 'active' THEN
            rtstream._node_partitions(ARRAY(SELECT a.node FROM rtstream.stream_nodes a
                                             WHERE a.stream = n.stream AND a.state = 'active'
                                             ORDER BY a.node), n.node)
       END AS partitions,
       s.delivered_lsn, s.pending_rows, s.delivered_rows, s.failures, s.last_error
  FROM rtstream.stream_nodes n
  LEFT JOIN rtstream._node_stats() s ON s.node = n.node;
GRANT SELECT ON rtstream.nodes TO PUBLIC;

CREATE FUNCTION rtstream._register_nodes(stream regclass, nodes name[], state text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(rtstream._outer_user(), (SELECT relowner FROM pg_class WHERE oid = stream), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', stream USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO rtstream.stream_nodes (stream, node, state)
    SELECT stream, n, state FROM unnest(nodes) n
    ON CONFLICT ON CONSTRAINT stream_nodes_pkey DO UPDATE SET state = EXCLUDED.state;
END
$$;

CREATE FUNCTION rtstream._unregister_node(stream regclass, node name)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(rtstream._outer_user(), (SELECT relowner FROM pg_class WHERE oid = stream), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', stream USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM rtstream.stream_nodes s WHERE s.stream = _unregister_node.stream AND s.node = _unregister_node.node;
END
$$;

-- Streams and windows: the nodes option -----------------------------------------

DROP FUNCTION rtstream.create_stream(regclass, text, text, text[]);

-- Coordinator: creating streams and windows on the nodes ------------------------

-- A relation's name, schema-qualified (nodes run commands with an empty
-- search_path).
CREATE FUNCTION rtstream._qualified(rel regclass) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel
$$;

-- The foreign table through which the coordinator reaches a node's inbox for
-- one stream: <schema>.<stream>__<node>.
CREATE FUNCTION rtstream._inbox_of(stream regclass, node name) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%I.%I', n.nspname, c.relname || '__' || node)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = stream
$$;

-- Run a command on a node, as the caller's user mapping, in the node's part
-- of this transaction (postgres_fdw commits it with ours).
CREATE FUNCTION rtstream._on_node(inbox text, command text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO %s (command) VALUES ($1)', inbox) USING command;
END
$$;

CREATE FUNCTION rtstream._check_nodes(stream regclass, nodes name[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgres_fdw') THEN
        RAISE EXCEPTION 'a distributed stream needs the extension postgres_fdw'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION postgres_fdw; and make each node a foreign server with a user mapping.';
    END IF;
    IF cardinality(nodes) = 0 OR cardinality(nodes) > 16 THEN
        RAISE EXCEPTION 'a distributed stream needs 1 to 16 nodes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(nodes) x) <> cardinality(nodes) THEN
        RAISE EXCEPTION 'node list has duplicates' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH n IN ARRAY nodes LOOP
        IF n IS NULL OR NOT EXISTS (SELECT 1 FROM pg_foreign_server s
                                      JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                                     WHERE s.srvname = n AND w.fdwname = 'postgres_fdw') THEN
            RAISE EXCEPTION 'node "%" is not a foreign server of postgres_fdw', n
                USING ERRCODE = 'undefined_object',
                      HINT = 'CREATE SERVER ... FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., port ..., dbname ...), then CREATE USER MAPPING.';
        END IF;
        IF NOT has_server_privilege(n, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for foreign server %', n USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF octet_length((SELECT relname FROM pg_class WHERE oid = stream) || '__' || n) >= 64 THEN
            RAISE EXCEPTION 'stream and node names are too long: "%__%" must fit in 63 bytes',
                (SELECT relname FROM pg_class WHERE oid = stream), n USING ERRCODE = 'name_too_long';
        END IF;
    END LOOP;
END
$$;

-- The definition of a stream's table, for the nodes.
CREATE FUNCTION rtstream._table_ddl(stream regclass) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('CREATE TABLE IF NOT EXISTS %s (%s)', rtstream._qualified(stream),
                  concat_ws(', ',
                            string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                              CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                                                   THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END,
                                              CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END),
                                       ', ' ORDER BY a.attnum),
                            (SELECT string_agg(pg_get_constraintdef(c.oid), ', ')
                               FROM pg_constraint c WHERE c.conrelid = stream AND c.contype = 'c')))
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = stream AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- Make the stream's table and stream on every node, and the inbox foreign
-- tables here.
CREATE FUNCTION rtstream._stream_on_nodes(stream regclass, partition_by text, method text,
                                          bounds text[], nodes name[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n name;
    inbox text;
    nsp name := (SELECT c.relnamespace::regnamespace::name FROM pg_class c WHERE c.oid = stream);
BEGIN
    FOREACH n IN ARRAY nodes LOOP
        inbox := rtstream._inbox_of(stream, n);
        EXECUTE format('CREATE FOREIGN TABLE %s (source text, stream text, lsns pg_lsn[], seqs bigint[], '
                       'counts integer[], rows text, tuples bytea, signature text, command text) '
                       'SERVER %I OPTIONS (schema_name ''rtstream'', table_name ''inbox'')', inbox, n);
        PERFORM rtstream._on_node(inbox, format('CREATE SCHEMA IF NOT EXISTS %I', nsp));
        PERFORM rtstream._on_node(inbox, rtstream._table_ddl(stream));
        PERFORM rtstream._on_node(inbox,
            format('SELECT rtstream.create_stream(%L, partition_by => %L, method => %L, bounds => %L) '
                   'WHERE NOT EXISTS (SELECT 1 FROM rtstream.streams WHERE stream = %L::regclass)',
                   rtstream._qualified(stream), partition_by, method, bounds, rtstream._qualified(stream)));
    END LOOP;
END
$$;

-- Make a window on every node of its stream, its state view there, and the
-- foreign tables here through which its view reads them.
CREATE FUNCTION rtstream._window_on_nodes(name text, schema name, stream regclass, query text,
                                          size interval, slide interval, time_column text,
                                          allowed_lateness interval, idle_timeout interval,
                                          late_policy text, gap interval, origin timestamptz,
                                          timezone text, step interval, search_path text,
                                          held boolean, only_node name DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n record;
    inbox text;
BEGIN
    FOR n IN SELECT s.node FROM rtstream.stream_nodes s
              WHERE s.stream = _window_on_nodes.stream AND (only_node IS NULL OR s.node = only_node)
              ORDER BY s.node LOOP
        IF octet_length(name || '__' || n.node) >= 64 THEN
            RAISE EXCEPTION 'window and node names are too long: "%__%" must fit in 63 bytes', name, n.node
                USING ERRCODE = 'name_too_long';
        END IF;
        inbox := rtstream._inbox_of(stream, n.node);
        PERFORM rtstream._on_node(inbox, format('CREATE SCHEMA IF NOT EXISTS %I', schema));
        PERFORM rtstream._on_node(inbox, format('SELECT pg_catalog.set_config(''search_path'', %L, true)',
                                                format('%I, ', schema) || search_path));
        PERFORM rtstream._on_node(inbox,
            format('SELECT rtstream.create_window(%L, %L, size => %L, slide => %L, time_column => %L, '
                   'allowed_lateness => %L, idle_timeout => %L, late_policy => %L, gap => %L, '
                   'origin => %L, timezone => %L, step => %L)',
                   name, query, size, slide, time_column, allowed_lateness, idle_timeout,
                   late_policy, gap, origin, timezone, step));
        IF held THEN
            PERFORM rtstream._on_node(inbox, format('SELECT rtstream._hold_history(%L)', name));
        END IF;
        PERFORM rtstream._on_node(inbox, format('CREATE VIEW %I.%I AS SELECT * FROM rtstream.window_state(%L)',
                                                schema, name || '__state', name));
        PERFORM rtstream._on_node(inbox, 'SELECT pg_catalog.set_config(''search_path'', ''pg_catalog'', true)');
        EXECUTE format('CREATE FOREIGN TABLE %I.%I (worker integer, watermark timestamptz, newest timestamptz, state bytea, groups integer) '
                       'SERVER %I OPTIONS (schema_name %L, table_name %L)',
                       schema, name || '__' || n.node, n.node, schema, name || '__state');
    END LOOP;
END
$$;

-- Drop a window's parts on the nodes and its foreign tables here.
CREATE FUNCTION rtstream._window_off_nodes(name text, view regclass, stream regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n record;
    inbox text;
    nsp name := (SELECT c.relnamespace::regnamespace::name FROM pg_class c WHERE c.oid = view);
BEGIN
    FOR n IN SELECT s.node FROM rtstream.stream_nodes s WHERE s.stream = _window_off_nodes.stream ORDER BY s.node LOOP
        inbox := rtstream._inbox_of(stream, n.node);
        PERFORM rtstream._on_node(inbox, format('DROP VIEW IF EXISTS %I.%I', nsp, name || '__state'));
        PERFORM rtstream._on_node(inbox, format('SELECT rtstream.drop_window(%L) '
                                                'WHERE EXISTS (SELECT 1 FROM rtstream.windows WHERE name = %L)',
                                                name, name));
        EXECUTE format('DROP FOREIGN TABLE IF EXISTS %I.%I', nsp, name || '__' || n.node);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION rtstream.drop_window(name text, keep_history boolean DEFAULT false)
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
        IF EXISTS (SELECT 1 FROM rtstream.stream_nodes n WHERE n.stream = w.stream) THEN
            PERFORM rtstream._window_off_nodes(w.name, w.view, w.stream);
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

CREATE OR REPLACE FUNCTION rtstream.drop_stream(stream regclass, "cascade" boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    w record;
    n record;
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
    -- the nodes keep their tables, as this server does
    FOR n IN SELECT s.node FROM rtstream.stream_nodes s WHERE s.stream = drop_stream.stream LOOP
        PERFORM rtstream._on_node(rtstream._inbox_of(stream, n.node),
            format('SELECT rtstream.drop_stream(%L, cascade => true) '
                   'WHERE EXISTS (SELECT 1 FROM rtstream.streams WHERE stream = %L::regclass)',
                   rtstream._qualified(stream), rtstream._qualified(stream)));
        EXECUTE format('DROP FOREIGN TABLE %s', rtstream._inbox_of(stream, n.node));
    END LOOP;
    EXECUTE format('DROP TRIGGER rtstream_capture ON %s', stream);
    PERFORM rtstream._unregister_stream(stream);
END
$$;

CREATE FUNCTION rtstream.create_stream(stream regclass, partition_by text DEFAULT NULL,
                                       method text DEFAULT 'hash', bounds text[] DEFAULT NULL,
                                       nodes name[] DEFAULT NULL)
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
    IF nodes IS NOT NULL THEN
        PERFORM rtstream._check_nodes(stream, nodes);
    END IF;
    PERFORM rtstream._register_stream(stream, cols, method, bounds);
    IF nodes IS NOT NULL THEN
        PERFORM rtstream._stream_on_nodes(stream, partition_by, method, bounds, nodes);
        PERFORM rtstream._register_nodes(stream, nodes, 'active');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION rtstream.create_window(name text, query text, size interval DEFAULT NULL,
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
    distributed boolean;
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

    distributed := EXISTS (SELECT 1 FROM rtstream.stream_nodes n WHERE n.stream = a.stream);
    IF distributed AND dead_letter_table IS NOT NULL THEN
        RAISE EXCEPTION 'dead_letter_table is not supported on a window over a distributed stream'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Each node keeps its dead letters in its own rtstream.dead_letters.';
    END IF;
    IF distributed AND coalesce(notify, false) AND NOT coalesce(history, false) THEN
        RAISE EXCEPTION 'notify on a window over a distributed stream needs history => true'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'The coordinator sends the NOTIFY with the history rows it writes.';
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
    IF distributed THEN
        PERFORM rtstream._window_on_nodes(name, schema, a.stream, query, size, slide, time_column,
                                          allowed_lateness, idle_timeout, late_policy, gap,
                                          origin, timezone, step, current_setting('search_path'),
                                          coalesce(history, false) OR gap IS NOT NULL);
    END IF;
END
$$;


COMMENT ON FUNCTION rtstream.create_stream(regclass, text, text, text[], name[]) IS
    'rtstream: make a table a stream: rows inserted or copied into it are captured for its windows, not stored; with nodes, spread over those servers';
COMMENT ON TABLE rtstream.stream_nodes IS 'rtstream: the nodes (postgres_fdw servers) of each distributed stream';
COMMENT ON VIEW rtstream.nodes IS 'rtstream: which node holds which partitions of each distributed stream, and its delivery state';
COMMENT ON TABLE rtstream.deliveries IS 'rtstream: what this node has applied of each coordinator''s rows (exactly once)';
COMMENT ON TABLE rtstream.inbox IS 'rtstream: where coordinators deliver rows and commands (nothing is stored)';
COMMENT ON FUNCTION rtstream.window_state(text) IS
    'rtstream: a window''s partial state per worker (the checkpoint format, every pane still needed), with its watermark, newest event time and number of groups, for a coordinator to combine';

CREATE FUNCTION rtstream._stream_nodes_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'rts_stream_nodes_changed' LANGUAGE C;
CREATE TRIGGER stream_nodes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rtstream.stream_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION rtstream._stream_nodes_changed();

-- Growing and shrinking ----------------------------------------------------------

-- The partition_by list of a stream, as create_stream takes it.
CREATE FUNCTION rtstream._partition_list(stream regclass) RETURNS text
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(quote_ident(c), ', ' ORDER BY n)
      FROM rtstream.streams s, unnest(s.partition_by) WITH ORDINALITY AS u(c, n)
     WHERE s.stream = _partition_list.stream
$$;

CREATE FUNCTION rtstream._check_distributed(stream regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM rtstream.stream_nodes n WHERE n.stream = _check_distributed.stream) THEN
        RAISE EXCEPTION 'table "%" is not a distributed stream', stream
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Make it one with rtstream.create_stream(..., nodes => ARRAY[...]).';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = stream), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', stream USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- Add a node: its stream and windows are made there, then the ring takes it
-- in.  Writers wait for the change (the stream is locked until commit), so
-- no transaction mixes two rings.  Partitions that move keep their open
-- windows on their former node: the view combines both until they close.
CREATE FUNCTION rtstream.add_node(stream regclass, node name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    w record;
BEGIN
    PERFORM rtstream._check();
    PERFORM rtstream._check_distributed(stream);
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', stream);
    IF EXISTS (SELECT 1 FROM rtstream.stream_nodes n
                WHERE n.stream = add_node.stream AND n.node = add_node.node AND n.state = 'active') THEN
        RAISE EXCEPTION 'node "%" is already a node of stream "%"', node, stream USING ERRCODE = 'duplicate_object';
    END IF;
    IF (SELECT count(*) FROM rtstream.stream_nodes n WHERE n.stream = add_node.stream) >= 16 THEN
        RAISE EXCEPTION 'a distributed stream has at most 16 nodes' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM rtstream.stream_nodes n
                    WHERE n.stream = add_node.stream AND n.node = add_node.node) THEN
        -- a new node (a draining one has all of it already)
        PERFORM rtstream._check_nodes(stream, ARRAY[node]);
        SELECT * INTO s FROM rtstream.streams WHERE streams.stream = add_node.stream;
        PERFORM rtstream._stream_on_nodes(stream, rtstream._partition_list(stream), s.method, s.bounds, ARRAY[node]);
        PERFORM rtstream._register_nodes(stream, ARRAY[node], 'draining');
        FOR w IN SELECT * FROM rtstream.windows WHERE windows.stream = add_node.stream ORDER BY id LOOP
            PERFORM rtstream._window_on_nodes(w.name, (SELECT c.relnamespace::regnamespace::name FROM pg_class c WHERE c.oid = w.view),
                                              w.stream, w.query,
                                              CASE WHEN w.gap IS NULL THEN w.size END,
                                              CASE WHEN w.gap IS NULL AND w.step IS NULL THEN w.slide END,
                                              w.time_column, w.allowed_lateness, w.idle_timeout,
                                              w.late_policy, w.gap, w.origin, w.timezone, w.step,
                                              w.search_path, w.history IS NOT NULL OR w.gap IS NOT NULL, node);
        END LOOP;
    END IF;
    PERFORM rtstream._register_nodes(stream, ARRAY[node], 'active');
END
$$;

-- Remove a node: first it leaves the ring ('draining': no new rows go to
-- it, its windows are still read); with drop => true, once none of its
-- windows holds anything, its stream and windows there are dropped and it
-- is forgotten.
CREATE FUNCTION rtstream.remove_node(stream regclass, node name, "drop" boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    w record;
    held bigint;
    inbox text;
BEGIN
    PERFORM rtstream._check();
    PERFORM rtstream._check_distributed(stream);
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', stream);
    SELECT n.state INTO st FROM rtstream.stream_nodes n
     WHERE n.stream = remove_node.stream AND n.node = remove_node.node;
    IF st IS NULL THEN
        RAISE EXCEPTION 'node "%" is not a node of stream "%"', node, stream USING ERRCODE = 'undefined_object';
    END IF;
    IF st = 'active' THEN
        IF (SELECT count(*) FROM rtstream.stream_nodes n
             WHERE n.stream = remove_node.stream AND n.state = 'active') = 1 THEN
            RAISE EXCEPTION 'cannot remove the last node of stream "%"', stream
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Add another node first, or drop the stream.';
        END IF;
        PERFORM rtstream._register_nodes(stream, ARRAY[node], 'draining');
    END IF;
    IF NOT "drop" THEN
        RETURN;
    END IF;
    -- every window of the node must be empty: nothing of it is still needed
    FOR w IN SELECT name, view FROM rtstream.windows WHERE windows.stream = remove_node.stream LOOP
        EXECUTE format('SELECT coalesce(sum(groups), 0) FROM %I.%I',
                       (SELECT c.relnamespace::regnamespace::name FROM pg_class c WHERE c.oid = w.view),
                       w.name || '__' || node) INTO held;
        IF held > 0 THEN
            RAISE EXCEPTION 'node "%" still holds % groups of window "%"', node, held, w.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Its windows close as the watermark passes them; call remove_node(..., drop => true) again then.';
        END IF;
    END LOOP;
    FOR w IN SELECT windows.name, windows.view FROM rtstream.windows WHERE windows.stream = remove_node.stream LOOP
        inbox := rtstream._inbox_of(stream, node);
        PERFORM rtstream._on_node(inbox, format('DROP VIEW IF EXISTS %I.%I',
                                                (SELECT c.relnamespace::regnamespace::name FROM pg_class c WHERE c.oid = w.view),
                                                w.name || '__state'));
        PERFORM rtstream._on_node(inbox, format('SELECT rtstream.drop_window(%L) '
                                                'WHERE EXISTS (SELECT 1 FROM rtstream.windows WHERE name = %L)',
                                                w.name, w.name));
        EXECUTE format('DROP FOREIGN TABLE IF EXISTS %I.%I',
                       (SELECT c.relnamespace::regnamespace::name FROM pg_class c WHERE c.oid = w.view),
                       w.name || '__' || node);
    END LOOP;
    PERFORM rtstream._on_node(rtstream._inbox_of(stream, node),
        format('SELECT rtstream.drop_stream(%L, cascade => true) '
               'WHERE EXISTS (SELECT 1 FROM rtstream.streams WHERE stream = %L::regclass)',
               rtstream._qualified(stream), rtstream._qualified(stream)));
    EXECUTE format('DROP FOREIGN TABLE %s', rtstream._inbox_of(stream, node));
    PERFORM rtstream._unregister_node(stream, node);
END
$$;

COMMENT ON FUNCTION rtstream.add_node(regclass, name) IS
    'rtstream: add a node (a postgres_fdw server) to a distributed stream; about 1/N of the partitions move to it';
COMMENT ON FUNCTION rtstream.remove_node(regclass, name, boolean) IS
    'rtstream: take a node out of a distributed stream''s ring; with drop => true, forget it once its windows hold nothing';

-- History of distributed windows -----------------------------------------------------
--
-- The coordinator writes the history of a distributed window, combined
-- from every node.  A node's window then keeps its closed panes until the
-- coordinator has written them (history_held), and the coordinator
-- releases them after its own commit.
ALTER TABLE rtstream.windows ADD COLUMN history_held boolean NOT NULL DEFAULT false;

CREATE FUNCTION rtstream._history_publish(window_id integer, until timestamptz, session_keep timestamptz)
RETURNS void AS 'MODULE_PATHNAME', 'rts_history_publish' LANGUAGE C;
REVOKE EXECUTE ON FUNCTION rtstream._history_publish(integer, timestamptz, timestamptz) FROM PUBLIC;

-- A window whose view the session's role owns (for the SECURITY DEFINER
-- helpers below).
CREATE FUNCTION rtstream._owned_window(name text) RETURNS rtstream.windows
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w rtstream.windows;
BEGIN
    SELECT * INTO w FROM rtstream.windows WHERE windows.name = _owned_window.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rtstream window "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(rtstream._outer_user(), (SELECT relowner FROM pg_class WHERE oid = w.view), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of view %', w.view USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN w;
END
$$;

-- On a node, by the coordinator: keep this window's closed panes for it.
CREATE FUNCTION rtstream._hold_history(name text, held boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w rtstream.windows := rtstream._owned_window(name);
BEGIN
    UPDATE rtstream.windows SET history_held = held WHERE id = w.id;
END
$$;

-- On a node, by the coordinator once its history has the windows ending up
-- to until: the node may drop their panes (sessions: those ending before
-- session_keep).
CREATE FUNCTION rtstream._history_release(name text, until timestamptz, session_keep timestamptz)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w rtstream.windows := rtstream._owned_window(name);
BEGIN
    IF NOT w.history_held THEN
        RAISE EXCEPTION 'the history of rtstream window "%" is not held for a coordinator', name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO rtstream.history_progress (window_id, emitted_until, lsn)
    VALUES (w.id, until, '0/0')
    ON CONFLICT (window_id) DO UPDATE
        SET emitted_until = greatest(history_progress.emitted_until, excluded.emitted_until);
    PERFORM rtstream._history_publish(w.id, until, session_keep);
END
$$;

-- alter_window on a distributed window: the same change on every node.
CREATE FUNCTION rtstream._alter_on_nodes(name text, stream regclass, allowed_lateness interval,
                                         idle_timeout interval, late_policy text, held boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n record;
    inbox text;
BEGIN
    FOR n IN SELECT s.node FROM rtstream.stream_nodes s WHERE s.stream = _alter_on_nodes.stream ORDER BY s.node LOOP
        inbox := rtstream._inbox_of(stream, n.node);
        IF allowed_lateness IS NOT NULL OR idle_timeout IS NOT NULL OR late_policy IS NOT NULL THEN
            PERFORM rtstream._on_node(inbox,
                format('SELECT rtstream.alter_window(%L, allowed_lateness => %L, idle_timeout => %L, late_policy => %L)',
                       name, allowed_lateness, idle_timeout, late_policy));
        END IF;
        IF held IS NOT NULL THEN
            PERFORM rtstream._on_node(inbox, format('SELECT rtstream._hold_history(%L, %L)', name, held));
        END IF;
    END LOOP;
END
$$;

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
    IF EXISTS (SELECT 1 FROM rtstream.stream_nodes n WHERE n.stream = w.stream) THEN
        IF w.dead_letter_table IS NOT NULL THEN
            RAISE EXCEPTION 'dead_letter_table is not supported on a window over a distributed stream'
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Each node keeps its dead letters in its own rtstream.dead_letters.';
        END IF;
        PERFORM rtstream._alter_on_nodes(w.name, w.stream, allowed_lateness, idle_timeout, late_policy,
                                         CASE WHEN history IS NULL THEN NULL ELSE hist IS NOT NULL OR w.gap IS NOT NULL END);
    END IF;
    PERFORM rtstream._alter_window(w.id, w.allowed_lateness, w.idle_timeout, w.retention, hist,
                                   w.late_policy, w.dead_letter_table);
END
$$;

-- What every object is for (\df+ says it).
COMMENT ON FUNCTION rtstream._check_distributed(regclass) IS
    'rtstream internal: the stream is distributed and the caller owns it';
COMMENT ON FUNCTION rtstream._check_nodes(regclass, name[]) IS
    'rtstream internal: check a node list (postgres_fdw servers, USAGE, names that fit)';
COMMENT ON FUNCTION rtstream._history_publish(integer, timestamptz, timestamptz) IS
    'rtstream internal: a node''s window may drop what its coordinator''s history holds (shared memory)';
COMMENT ON FUNCTION rtstream._history_release(text, timestamptz, timestamptz) IS
    'rtstream internal: on a node, by its coordinator once its history holds the windows up to until';
COMMENT ON FUNCTION rtstream._hold_history(text, boolean) IS
    'rtstream internal: on a node, keep a window''s closed panes until its coordinator releases them';
COMMENT ON FUNCTION rtstream._inbox() IS
    'rtstream internal: trigger of rtstream.inbox: apply a delivery exactly once, or run a command, as the inserting role';
COMMENT ON FUNCTION rtstream._inbox_of(regclass, name) IS
    'rtstream internal: the foreign table of a node''s inbox for a stream';
COMMENT ON FUNCTION rtstream._insert_tuples(regclass, bytea, text, bigint) IS
    'rtstream internal: fire delivered tuples through a node stream''s triggers (superuser, same layout)';
COMMENT ON FUNCTION rtstream._node_partitions(name[], name) IS
    'rtstream internal: the partitions a node owns on the ring of these nodes';
COMMENT ON FUNCTION rtstream._node_stats() IS
    'rtstream internal: the shipper''s state per node, for rtstream.nodes';
COMMENT ON FUNCTION rtstream._on_node(text, text) IS
    'rtstream internal: run a command on a node through its inbox, in the node''s part of this transaction';
COMMENT ON FUNCTION rtstream._owned_window(text) IS
    'rtstream internal: a window whose view the session''s role owns';
COMMENT ON FUNCTION rtstream._partition_list(regclass) IS
    'rtstream internal: a stream''s partition_by list, as create_stream takes it';
COMMENT ON FUNCTION rtstream._qualified(regclass) IS
    'rtstream internal: a relation''s schema-qualified name';
COMMENT ON FUNCTION rtstream._register_nodes(regclass, name[], text) IS
    'rtstream internal: write a stream''s nodes into the catalog (SECURITY DEFINER, checks the caller owns it)';
COMMENT ON FUNCTION rtstream._unregister_node(regclass, name) IS
    'rtstream internal: remove a node of a stream from the catalog (SECURITY DEFINER, checks the caller owns it)';
COMMENT ON FUNCTION rtstream._stream_nodes_changed() IS
    'rtstream internal: trigger on rtstream.stream_nodes: capturing backends read the ring again';
COMMENT ON FUNCTION rtstream._stream_on_nodes(regclass, text, text, text[], name[]) IS
    'rtstream internal: make a stream''s table and stream on its nodes, and their inbox foreign tables here';
COMMENT ON FUNCTION rtstream._table_ddl(regclass) IS
    'rtstream internal: the CREATE TABLE of a stream''s table, for its nodes';
COMMENT ON FUNCTION rtstream._window_on_nodes(text, name, regclass, text, interval, interval, text, interval, interval, text, interval, timestamptz, text, interval, text, boolean, name) IS
    'rtstream internal: make a window on its stream''s nodes, their state views, and the foreign tables here';
COMMENT ON FUNCTION rtstream._window_off_nodes(text, regclass, regclass) IS
    'rtstream internal: drop a window''s parts on its stream''s nodes and its foreign tables here';
COMMENT ON FUNCTION rtstream._alter_on_nodes(text, regclass, interval, interval, text, boolean) IS
    'rtstream internal: alter_window on every node of a distributed window';
