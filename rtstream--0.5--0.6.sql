/* rtstream--0.5--0.6.sql */

\echo Use "ALTER EXTENSION rtstream UPDATE TO '0.6'" to load this file. \quit

-- The rows of a window's view whose columns (their numbers in the view)
-- have the given values: the planner calls it in place of window_rows for
-- a view's quals "column = value", so that a lookup by group key reads one
-- group (src/read_pushdown.c).  The quals are still applied above it.
CREATE FUNCTION rtstream.window_rows_at(name text, columns int2[], VARIADIC key_values "any")
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'rts_window_rows_at' LANGUAGE C STRICT;
