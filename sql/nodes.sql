--
-- Distributed streams on one server: the checks of create_stream(nodes),
-- add_node and remove_node, the ring, and the node side of a delivery
-- (rtstream.inbox), exactly once by (source, stream) position.  Several
-- servers: test/t/016_scale_out.pl.
--
\set SHOW_CONTEXT never
CREATE TABLE d (ts timestamptz NOT NULL, k text, v int);

-- no postgres_fdw yet
SELECT rtstream.create_stream('d', partition_by => 'k', nodes => ARRAY['n1']);
CREATE EXTENSION postgres_fdw;
SELECT rtstream.create_stream('d', partition_by => 'k', nodes => ARRAY['nope']);
SELECT rtstream.create_stream('d', partition_by => 'k', nodes => ARRAY[]::name[]);
CREATE SERVER n1 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'nope');
SELECT rtstream.create_stream('d', partition_by => 'k', nodes => ARRAY['n1', 'n1']);
-- nothing changed
SELECT count(*) FROM rtstream.streams WHERE stream = 'd'::regclass;
SELECT count(*) FROM rtstream.stream_nodes;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'd'::regclass;

-- a local stream is not distributed
SELECT rtstream.create_stream('d', partition_by => 'k');
SELECT rtstream.add_node('d', 'n1');
SELECT rtstream.remove_node('d', 'n1');

-- the ring: every partition has one owner, adding a node moves partitions
-- only to it
SELECT array_length(rtstream._node_partitions('{a,b}', 'a'), 1) +
       array_length(rtstream._node_partitions('{a,b}', 'b'), 1) AS two_nodes;
SELECT count(*) AS overlap FROM unnest(rtstream._node_partitions('{a,b}', 'a')) p
 WHERE p = ANY (rtstream._node_partitions('{a,b}', 'b'));
SELECT count(*) AS moved_elsewhere
  FROM unnest(rtstream._node_partitions('{a,b}', 'a')) p
 WHERE NOT p = ANY (rtstream._node_partitions('{a,b,c}', 'a'))
   AND NOT p = ANY (rtstream._node_partitions('{a,b,c}', 'c'));
SELECT cardinality(rtstream._node_partitions('{a,b,c}', 'c')) BETWEEN 10 AND 35 AS c_takes_about_a_third;
SELECT rtstream._node_partitions('{a}', 'b') AS not_a_node;

-- The node side: a coordinator's delivery into rtstream.inbox, as the
-- stream's owner.  Rows sent again (a restart of either side) are skipped.
SELECT rtstream.create_window('d_w', 'SELECT k, count(*) AS n, sum(v) AS s FROM d GROUP BY k',
                              size => '1 hour', time_column => 'ts');
CREATE TABLE d_truth (ts timestamptz, k text, v int);
INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows)
VALUES ('c1', 'public.d', '{0/100,0/200}', '{0,0}', '{2,1}',
        (ARRAY[ROW('2026-01-01 00:10+00', 'a', 1), ROW('2026-01-01 00:11+00', 'b', 2),
               ROW('2026-01-01 00:12+00', 'a', 3)]::d[])::text);
INSERT INTO d_truth VALUES ('2026-01-01 00:10+00', 'a', 1), ('2026-01-01 00:11+00', 'b', 2), ('2026-01-01 00:12+00', 'a', 3);
-- the same delivery again, then one overlapping it: only the new rows count
INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows)
VALUES ('c1', 'public.d', '{0/100,0/200}', '{0,0}', '{2,1}',
        (ARRAY[ROW('2026-01-01 00:10+00', 'a', 1), ROW('2026-01-01 00:11+00', 'b', 2),
               ROW('2026-01-01 00:12+00', 'a', 3)]::d[])::text);
INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows)
VALUES ('c1', 'public.d', '{0/200,0/300}', '{0,0}', '{2,1}',
        (ARRAY[ROW('2026-01-01 00:12+00', 'a', 3), ROW('2026-01-01 00:13+00', 'c', 4),
               ROW('2026-01-01 00:14+00', 'b', 5)]::d[])::text);
INSERT INTO d_truth VALUES ('2026-01-01 00:13+00', 'c', 4), ('2026-01-01 00:14+00', 'b', 5);
-- another coordinator has its own position
INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows)
VALUES ('c2', 'public.d', '{0/100}', '{0}', '{1}',
        (ARRAY[ROW('2026-01-01 00:15+00', 'a', 6)]::d[])::text);
INSERT INTO d_truth VALUES ('2026-01-01 00:15+00', 'a', 6);
-- an aborted delivery changes nothing
BEGIN;
INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows)
VALUES ('c2', 'public.d', '{0/200}', '{0}', '{1}', (ARRAY[ROW('2026-01-01 00:16+00', 'z', 7)]::d[])::text);
ROLLBACK;
SELECT rtstream.sync();
SELECT source, stream, lsn, seq, rows FROM rtstream.deliveries ORDER BY source;
(SELECT k, n, s FROM d_w EXCEPT ALL SELECT k, count(*), sum(v) FROM d_truth GROUP BY k)
UNION ALL
(SELECT k, count(*), sum(v) FROM d_truth GROUP BY k EXCEPT ALL SELECT k, n, s FROM d_w);
SELECT k, n, s FROM d_w ORDER BY k;

-- a role that does not own the stream can neither deliver nor move a
-- position
CREATE ROLE rts_nodes_intruder;
GRANT USAGE ON SCHEMA public TO rts_nodes_intruder;
GRANT INSERT ON d TO rts_nodes_intruder;
SET ROLE rts_nodes_intruder;
INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows)
VALUES ('c1', 'public.d', '{FFFF/0}', '{0}', '{1}', (ARRAY[ROW('2026-01-01 00:17+00', 'x', 8)]::d[])::text);
UPDATE rtstream.deliveries SET lsn = 'FFFF/0';
INSERT INTO rtstream.deliveries (source, stream, lsn, seq) VALUES ('c3', 'd', 'FFFF/0', 0);
SELECT count(*) AS visible_positions FROM rtstream.deliveries;
-- its window_state is refused too (no SELECT on the view)
SELECT count(*) FROM rtstream.window_state('d_w');
RESET ROLE;
SELECT rtstream.sync();
SELECT source, lsn, seq FROM rtstream.deliveries ORDER BY source;
SELECT k, n, s FROM d_w ORDER BY k;

-- window_state: one row per worker holding the window, every group
SELECT sum(groups) AS groups, count(*) FILTER (WHERE watermark IS NULL) AS no_watermark
  FROM rtstream.window_state('d_w');

-- rtstream.allow_partial_results is a user setting, off by default
SHOW rtstream.allow_partial_results;

SELECT rtstream.drop_stream('d', cascade => true);
DROP TABLE d, d_truth;
DROP SERVER n1;
DROP EXTENSION postgres_fdw;
REVOKE ALL ON SCHEMA public FROM rts_nodes_intruder;
DROP ROLE rts_nodes_intruder;
