# DDL while rows stream in: create_window, drop_window, ALTER TABLE,
# drop_stream, DROP EXTENSION (the slot goes with it), DROP DATABASE (not
# blocked), and privileges.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RtsTest;

my $node = rts_node('ddl');
$node->append_conf('postgresql.conf', "rtstream.databases = 'postgres, other'\n");
$node->restart;
rts_setup($node);
rts_wait_ready($node);

# windows come and go while writers run; the others stay exact
my $w = rts_start_writers($node, 8);
sleep 1;
$node->safe_psql('postgres',
	"SELECT rtstream.create_window('w_new', 'SELECT k % 10 AS b, count(*) AS n FROM s GROUP BY k % 10', size => '1 day')");
sleep 1;
$node->safe_psql('postgres', "SELECT rtstream.drop_window('w_all')");
sleep 1;
$node->safe_psql('postgres',
	"SELECT rtstream.create_window('w_all', 'SELECT count(*) AS n, avg(v) AS a FROM s', size => '1 day')");
# a new column: old and new rows are read alike
$node->safe_psql('postgres', 'ALTER TABLE s ADD COLUMN note text');
$node->safe_psql('postgres', 'ALTER TABLE t ADD COLUMN note text');
$node->safe_psql('postgres', "ALTER TABLE s ALTER COLUMN note SET DEFAULT 'x'");
my $out = rts_stop_writers($w);
like($out, qr/number of failed transactions: 0/, 'writers did not fail');
is($node->safe_psql('postgres', 'SELECT rtstream.sync(); SELECT sum(n) > 0 FROM w_new'), "\nt",
	'the new window counts');
my ($ok, $diff) = (1, $node->safe_psql('postgres', q{
  SELECT count(*) FROM (SELECT k, n, total FROM w_day EXCEPT SELECT k, count(*), sum(v) FROM t GROUP BY k) d}));
is($diff, '0', 'the other windows stayed exact');

# changes windows cannot follow are refused, with nothing changed
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'ALTER TABLE s ALTER COLUMN v TYPE bigint');
like($stderr, qr/cannot change the type of a column of stream "s"/, 'ALTER TYPE refused');
($ret, $stdout, $stderr) = $node->psql('postgres', 'ALTER TABLE s DROP COLUMN note');
like($stderr, qr/cannot drop a column of stream "s"/, 'DROP COLUMN refused');
($ret, $stdout, $stderr) = $node->psql('postgres', 'ALTER TABLE s RENAME COLUMN v TO w');
like($stderr, qr/cannot rename a column of stream "s"/, 'RENAME COLUMN refused');
($ret, $stdout, $stderr) = $node->psql('postgres', 'ALTER TABLE s RENAME TO s2');
like($stderr, qr/cannot rename the table of stream "s"/, 'RENAME refused');
($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP TABLE s');
like($stderr, qr/cannot drop table "s" because it is an rtstream stream/, 'DROP TABLE refused');
is($node->safe_psql('postgres', "SELECT format_type(atttypid, -1) FROM pg_attribute WHERE attrelid = 's'::regclass AND attname = 'v'"),
	'integer', 'nothing changed');

# privileges: creating a stream needs the table, a window SELECT on the
# stream, reading a window SELECT on its view
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT CREATE ON SCHEMA public TO alice, bob;
SET ROLE alice;
CREATE TABLE a_stream (k int);
SELECT rtstream.create_stream('a_stream');
SELECT rtstream.create_window('a_win', 'SELECT k, count(*) AS n FROM a_stream GROUP BY k', size => '1 day');
});
($ret, $stdout, $stderr) = $node->psql('postgres', "SET ROLE bob; SELECT rtstream.create_stream('a_stream')");
like($stderr, qr/must be owner of table a_stream/, 'create_stream needs ownership');
($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET ROLE bob; SELECT rtstream.create_window('b_win', 'SELECT count(*) FROM a_stream', size => '1 day')");
like($stderr, qr/permission denied for table a_stream/, 'create_window needs SELECT');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SET ROLE bob; SELECT * FROM a_win');
like($stderr, qr/permission denied for view a_win/, 'the view has ordinary privileges');
($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET ROLE bob; SELECT * FROM rtstream.window_rows('a_win') AS w(a timestamptz, b timestamptz, k int, n bigint)");
like($stderr, qr/permission denied for rtstream window "a_win"/, 'and window_rows() follows them');
$node->safe_psql('postgres', 'SET ROLE alice; GRANT SELECT ON a_win TO bob; INSERT INTO a_stream VALUES (1), (1)');
is($node->safe_psql('postgres', 'SELECT rtstream.sync(); SET ROLE bob; SELECT n FROM a_win'), "\n2",
	'after GRANT, bob reads the window');

# drop_stream while writers run: the table becomes an ordinary table
$w = rts_start_writers($node, 4);
sleep 1;
$node->safe_psql('postgres', "SELECT rtstream.drop_stream('s', cascade => true)");
$out = rts_stop_writers($w);
like($out, qr/number of failed transactions: 0/, 'writers did not fail across drop_stream');
ok($node->safe_psql('postgres', 'SELECT count(*) FROM s') > 0, 'rows are stored in s again');
is($node->safe_psql('postgres', "SELECT count(*) FROM rtstream.windows WHERE stream = 's'::regclass"),
	'0', 'its windows are gone');

# DROP EXTENSION: workers let go, the slot is dropped, no WAL is held
$node->safe_psql('postgres', 'DROP EXTENSION rtstream CASCADE');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name LIKE 'rtstream_%'"),
	'DROP EXTENSION drops the replication slot');
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE again (k int);
SELECT rtstream.create_stream('again');
SELECT rtstream.create_window('again_w', 'SELECT count(*) AS n FROM again', size => '1 day');
INSERT INTO again SELECT generate_series(1, 10);
});
is($node->safe_psql('postgres', 'SELECT rtstream.sync(); SELECT n FROM again_w'), "\n10",
	'CREATE EXTENSION again works');

# DROP DATABASE of a database that used rtstream is not blocked
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->poll_query_until('other', "SELECT true");
$node->safe_psql('other', q{
CREATE EXTENSION rtstream;
CREATE TABLE o (k int);
SELECT rtstream.create_stream('o');
SELECT rtstream.create_window('o_w', 'SELECT count(*) AS n FROM o', size => '1 day');
INSERT INTO o VALUES (1);
SELECT rtstream.sync();
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_replication_slots WHERE slot_name LIKE 'rtstream_%'"), 'two slots');
$node->safe_psql('postgres', 'DROP DATABASE other');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'rtstream_%'"), '1',
	'DROP DATABASE succeeded and dropped its slot');
is($node->safe_psql('postgres', 'INSERT INTO again VALUES (1); SELECT rtstream.sync(); SELECT n FROM again_w'),
	"\n11", 'the other database goes on');

# DROP and CREATE EXTENSION at once: the new windows take the ids of the
# former ones while the workers may still hold those; an event-time window
# with history must start afresh (no row late, its history exact)
for my $round (1 .. 3)
{
	$node->safe_psql('postgres', q{
DROP EXTENSION rtstream CASCADE;
DROP TABLE IF EXISTS again, ev, ev_h_history;
CREATE EXTENSION rtstream;
CREATE TABLE ev (k int, ts timestamptz);
SELECT rtstream.create_stream('ev', partition_by => 'k');
SELECT rtstream.create_window('ev_h', 'SELECT k, count(*) AS n FROM ev GROUP BY k',
  size => '1 minute', time_column => 'ts', history => true);
INSERT INTO ev SELECT i % 4, timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second'
  FROM generate_series(0, 299) i;
SELECT rtstream.sync();
});
	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT sum(late_rows) FROM rtstream.window_stats WHERE window_name = 'ev_h'),
       (SELECT count(*) || '/' || sum(n) FROM ev_h_history)}),
		'0|16/240',
		"DROP and CREATE EXTENSION at once, round $round: nothing late, the history exact");
}

$node->stop;
done_testing();
