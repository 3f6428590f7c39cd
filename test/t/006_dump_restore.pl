# pg_dump and pg_restore of a database that uses rtstream recreate its
# streams and windows, which then count what is inserted into the copy.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RtsTest;

my $node = rts_node('dump');
$node->append_conf('postgresql.conf', "rtstream.databases = 'postgres, restored'\n");
$node->restart;
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE clicks (ts timestamptz NOT NULL DEFAULT now(), page text, ms float8);
SELECT rtstream.create_stream('clicks', partition_by => 'page');
SELECT rtstream.create_window('clicks_w', 'SELECT page, count(*) AS n, avg(ms) AS a FROM clicks GROUP BY page',
                              size => '1 hour', slide => '10 minutes', time_column => 'ts');
CREATE TABLE readings (sensor int, temp real);
SELECT rtstream.create_stream('readings', partition_by => 'sensor', method => 'range', bounds => '{10,20}');
SELECT rtstream.create_window('readings_w', 'SELECT sensor, max(temp) AS hi FROM readings GROUP BY sensor', size => '1 day');
INSERT INTO clicks (page, ms) VALUES ('/a', 1), ('/b', 2);
-- event-time options, a history table and a dead letter table of the user's
CREATE TABLE late_ev (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
CREATE TABLE ev (ts timestamptz, k int);
SELECT rtstream.create_stream('ev', partition_by => 'k');
SELECT rtstream.create_window('ev_w', 'SELECT k, count(*) AS n FROM ev GROUP BY k',
  size => '1 minute', time_column => 'ts', allowed_lateness => '30 seconds',
  late_policy => 'dead_letter', dead_letter_table => 'late_ev', history => true, retention => '1 day');
SELECT rtstream.create_window('ev_s', 'SELECT k, count(*) AS n FROM ev GROUP BY k',
  gap => '5 minutes', time_column => 'ts', idle_timeout => '1 hour');
INSERT INTO ev SELECT '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 second', i % 4
  FROM generate_series(0, 299) i;
SELECT rtstream.sync();
});
rts_wait_ready($node);

my $dump = $node->basedir . '/db.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

my $catalog = q{SELECT string_agg(format('%s %s %s %s', stream, partition_by, method, bounds), '; ' ORDER BY stream::text) FROM rtstream.streams;
SELECT string_agg(format('%s %s %s %s %s %s %s %s %s %s %s %s %s', name, stream, query, size, slide, time_column,
                          gap, allowed_lateness, idle_timeout, late_policy, dead_letter_table, history, retention),
                  '; ' ORDER BY name) FROM rtstream.windows};
is($node->safe_psql('restored', $catalog), $node->safe_psql('postgres', $catalog),
	'the same streams and windows');
is($node->safe_psql('restored', 'SELECT count(*) FROM clicks'), '0', 'streams stay empty');

$node->safe_psql('restored', q{
INSERT INTO clicks (page, ms) SELECT '/p' || (i % 3), i FROM generate_series(1, 30) i;
INSERT INTO readings SELECT i % 30, i FROM generate_series(1, 90) i;
SELECT rtstream.sync();
});
is($node->safe_psql('restored', 'SELECT string_agg(page || n || a, \',\' ORDER BY page) FROM clicks_w'),
	'/p01016.5,/p11014.5,/p21015.5', 'the restored window counts');
is($node->safe_psql('restored', 'SELECT count(*), max(hi) FROM readings_w'), '30|90', 'so does the range-partitioned one');

# the history table comes back with its rows, and the restored window
# appends to it (its progress is not dumped: it starts with the new rows)
is($node->safe_psql('restored', 'SELECT count(*) FROM ev_w_history'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM ev_w_history'), 'the history rows are restored');
isnt($node->safe_psql('restored', 'SELECT count(*) FROM ev_w_history'), '0', 'there were history rows');
$node->safe_psql('restored', q{
INSERT INTO ev SELECT '2026-01-02 00:00:00+00'::timestamptz + i * interval '1 second', i % 4
  FROM generate_series(0, 299) i;
INSERT INTO ev VALUES ('2026-01-01 23:00:00+00', 1);
SELECT rtstream.sync();
});
is($node->safe_psql('restored', q{SELECT count(*), sum(n) FROM ev_w_history WHERE window_end > '2026-01-02'}),
	'16|240', 'the restored window writes its history');
is($node->safe_psql('restored', q{SELECT count(*) FROM late_ev WHERE error LIKE 'late row%'}),
	'1', 'and its late rows to the restored dead letter table');

$node->stop;
done_testing();
