--
-- Event time, reading a window: out-of-order rows within allowed_lateness
-- all count, and the view (the current window), rtstream.window_results
-- (every open window, each slide position, in both call forms) and the
-- history (closed windows) each equal plain SQL over a truth table filled
-- by the same statements.  The helpers et_* and how the tests stay
-- deterministic: setup.sql.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never

----------------------------------------------------------------------------
-- 1. Out-of-order rows within allowed_lateness
----------------------------------------------------------------------------
-- the stream et, its four windows and truth views (setup.sql)
CALL et_create();
SELECT name, size, slide, gap, allowed_lateness, idle_timeout, late_policy, dead_letter_table,
       history, retention
  FROM rtstream.windows WHERE name LIKE 'et\_%' ORDER BY id;
\d et_tumble_history
\d et_hop_history

-- out-of-order rows within every window's lateness (setup.sql: et_load)
CALL et_load(1);
SELECT count(*) AS rows_out_of_order
  FROM (SELECT ts < max(ts) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS o
          FROM et_truth WHERE v > 0) s WHERE o;

-- newest 00:10:00 everywhere: watermark = 00:10:00 - allowed_lateness;
-- the history is written up to the last window end <= watermark
SELECT w, s.* FROM unnest('{et_tumble,et_hop,et_dlt,et_all}'::text[]) WITH ORDINALITY u(w, o), et_state(w) s ORDER BY o;
SELECT * FROM et_check('et_tumble', 'SELECT * FROM et_tumble_truth');
SELECT * FROM et_check('et_hop', 'SELECT * FROM et_hop_truth');
SELECT * FROM et_check('et_dlt', 'SELECT * FROM et_dlt_truth');
SELECT * FROM et_check('et_all', 'SELECT * FROM et_all_truth');
-- open windows, each slide position, ordered by window_end
SELECT * FROM rtstream.window_results('et_all', NULL::et_all);
SELECT window_end, count(*) AS groups, sum(n) AS n
  FROM rtstream.window_results('et_hop', NULL::et_hop) GROUP BY 1 ORDER BY 1;
SELECT bool_and(ordered) AS ordered_by_window_end
  FROM (SELECT window_end >= lag(window_end) OVER (ORDER BY o) AS ordered
          FROM rtstream.window_results('et_hop', NULL::et_hop) WITH ORDINALITY
               AS r(window_start, window_end, k, n, sx, mx, o)) s;
-- the form with a column definition list
SELECT * FROM et_cmp($$SELECT * FROM rtstream.window_results('et_dlt')
                          AS r(window_start timestamptz, window_end timestamptz, k text, n bigint, sv bigint)$$,
                     $$SELECT * FROM rtstream.window_results('et_dlt', NULL::et_dlt)$$);
-- the view is the current window: the rows at 00:10:00
SELECT * FROM et_tumble WHERE k IN ('k3', 'k4') OR k IS NULL ORDER BY k;
-- history: one row per closed window and group, the oldest dropped by retention
SELECT count(*) AS history_rows, count(DISTINCT (window_end, k)) AS windows_x_groups,
       min(window_end), max(window_end) FROM et_tumble_history;
SELECT count(*) AS history_rows, count(DISTINCT (window_end, k)) AS windows_x_groups,
       min(window_end), max(window_end) FROM et_hop_history;
SELECT count(*) AS history_rows, min(window_end), max(window_end) FROM et_all_history;
SELECT * FROM et_tumble_history WHERE window_end = '2026-03-01 00:05:00' AND k IN ('k1', 'k2') ORDER BY k;

-- Clean up: event_time_lateness and event_time_history make the stream et again
CALL et_drop();
