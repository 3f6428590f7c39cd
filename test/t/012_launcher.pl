# Any database, one migration transaction, no restart (the launcher).
#
# - Right after the server starts (no wait), in a database created after
#   the start: CREATE EXTENSION, a stream, windows and rows, in ONE
#   transaction, as migration tools run it; then rows from other sessions
#   count exactly.
# - Two databases at once, with independent windows.
# - DROP DATABASE under load, then CREATE DATABASE with the same name and
#   the same migration: it works again, and counts from scratch.
# - The pool (rtstream.max_databases) is full: a clear ERROR.
# - Too few max_worker_processes: a clear ERROR naming the setting and the
#   number needed, and one WARNING in the log.
# - pg_dump of a database, pg_restore into one created after the start.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use RtsTest;

my $node = rts_node('launcher', databases => '', conf => "rtstream.max_databases = 2\n");

my $migration = q{
BEGIN;
CREATE EXTENSION rtstream;
CREATE TABLE s (k int NOT NULL, v int NOT NULL);
CREATE TABLE t (LIKE s);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w_k', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
SELECT rtstream.create_window('w_all', 'SELECT count(*) AS n, max(v) AS hi FROM s', size => '1 hour', slide => '10 minutes');
INSERT INTO s VALUES (1, 1000000);
COMMIT;
};

# rows written by several sessions, each into the stream and the truth table
sub write_rows
{
	my ($db, $from, $to) = @_;
	for my $c (0 .. 3)
	{
		$node->safe_psql($db, qq{
BEGIN;
INSERT INTO s SELECT g % 50, g * 4 + $c FROM generate_series($from, $to) g;
INSERT INTO t SELECT g % 50, g * 4 + $c FROM generate_series($from, $to) g;
COMMIT;
});
	}
}

sub check_db
{
	my ($db, $what) = @_;
	$node->safe_psql($db, 'SELECT rtstream.sync()');
	my ($l, $r, $rows) = rts_diff($node,
		'SELECT k, n::numeric, total::numeric FROM w_k',
		'SELECT k, count(*)::numeric, sum(v)::numeric FROM t GROUP BY k', 5, $db);
	is("$l $r", '0 0', "$what: w_k equals plain SQL over the truth") or diag($rows);
	is($node->safe_psql($db, 'SELECT n, hi FROM w_all'),
		$node->safe_psql($db, 'SELECT count(*), max(v) FROM t'),
		"$what: w_all equals plain SQL over the truth");
}


# 1. right after the start, a database created after it, one transaction
$node->safe_psql('postgres', 'CREATE DATABASE app1');
$node->safe_psql('app1', $migration);
pass('a migration in one transaction right after the start commits');
write_rows('app1', 1, 500);
check_db('app1', 'migration in one transaction');
is($node->safe_psql('app1', "SELECT count(*) FROM rtstream.stats WHERE pid IS NOT NULL"),
	'3', 'the launcher started a router and 2 workers in app1');

# 2. a second database at once, independent windows
$node->safe_psql('postgres', 'CREATE DATABASE app2');
$node->safe_psql('app2', $migration);
write_rows('app2', 1, 200);
write_rows('app1', 501, 700);
check_db('app2', 'second database');
check_db('app1', 'first database, beside the second');

# 3. the pool of two is full
$node->safe_psql('postgres', 'CREATE DATABASE app3');
$node->safe_psql('app3', 'CREATE EXTENSION rtstream; CREATE TABLE s (k int)');
my ($ret, $out, $err) = $node->psql('app3', "SELECT rtstream.create_stream('s')");
like($err, qr/ERROR:  rtstream runs in at most 2 databases at once/, 'a full pool: clear error');
like($err, qr/HINT:  Raise rtstream.max_databases/, 'a full pool: the hint names the setting');

# 4. DROP DATABASE right after rows were written, and again
my $oid1 = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'app1'");
$node->safe_psql('app1', 'INSERT INTO s SELECT g % 50, g FROM generate_series(1, 100) g');
$node->safe_psql('postgres', 'DROP DATABASE app1 WITH (FORCE)');
pass('DROP DATABASE of a database with rtstream');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'rtstream_$oid1'"), '0',
	'its slot was dropped first');
# the freed entry lets app3 in
ok($node->poll_query_until('app3', "SELECT count(*) = 1 FROM (SELECT rtstream.create_stream('s')) x"),
	'the freed entry takes another database');
$node->safe_psql('postgres', 'CREATE DATABASE app1');
($ret, $out, $err) = $node->psql('app1', $migration);
like($err, qr/ERROR:  rtstream runs in at most 2 databases at once/,
	'with app2 and app3 using the pool, a third is refused');
is($node->safe_psql('app1', "SELECT count(*) FROM pg_extension WHERE extname = 'rtstream'"), '0',
	'and the refused migration changed nothing');
$node->safe_psql('postgres', 'DROP DATABASE app3 WITH (FORCE)');
my $tries = 0;
until ($node->psql('app1', $migration) == 0 || ++$tries > 50)
{
	sleep(0.2);
}
ok($tries <= 50, 'once app3 was dropped, the same migration in a new app1 works');
write_rows('app1', 1, 300);
check_db('app1', 'after DROP DATABASE and CREATE DATABASE again');
is($node->safe_psql('app1', 'SELECT sum(n) FROM w_k'), '1200', 'the new app1 counts from scratch');

# 5. pg_dump of app2, pg_restore into a database created now
my $dump = $node->basedir . '/app2.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('app2')], 'pg_dump app2');
$node->safe_psql('postgres', 'DROP DATABASE app2 WITH (FORCE)');
$node->safe_psql('postgres', 'CREATE DATABASE app4');
$node->command_ok(['pg_restore', '-d', $node->connstr('app4'), $dump], 'pg_restore into app4');
$node->safe_psql('app4', 'TRUNCATE t');
write_rows('app4', 1, 100);
check_db('app4', 'restored into a database created after the start');

my $log = slurp_file($node->logfile);
my @crash = ($log =~ /^.*(?:terminated by signal|TRAP:|PANIC:).*$/mg);
is(scalar(@crash), 0, 'no crash') or diag(join("\n", @crash));
$node->stop;

# 6. too few worker processes: the logical replication launcher, ours, and
#    a router take the three; the workers find no slot
my $small = rts_node('few_workers', databases => '', conf => "max_worker_processes = 3\n");
$small->safe_psql('postgres', 'CREATE EXTENSION rtstream; CREATE TABLE s (k int)');
my $got = '';
for (1 .. 100)
{
	($ret, $out, $err) = $small->psql('postgres', "SELECT rtstream.create_stream('s')");
	if ($ret != 0)
	{
		$got = $err;
		last;
	}
	$small->safe_psql('postgres', "SELECT rtstream.drop_stream('s')");
	sleep(0.2);
}
like($got, qr/ERROR:  rtstream cannot start in database "postgres"/, 'too few worker processes: an ERROR');
like($got, qr/HINT:  Raise max_worker_processes \(now 3\) by at least 3/, 'the hint names the setting and the number');
my $slog = slurp_file($small->logfile);
my @warn = ($slog =~ /^.*WARNING:  no background worker slot is free for rtstream.*$/mg);
is(scalar(@warn), 1, 'one WARNING in the log') or diag(join("\n", @warn));
$small->stop;

done_testing();
