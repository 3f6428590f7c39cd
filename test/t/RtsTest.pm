# Helpers of the rtstream TAP tests: a node with rtstream's settings, a
# stream with windows and a truth table, writers that insert the same rows
# into both in one transaction, and the comparison of every window with
# the truth.
package RtsTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

our @EXPORT = qw(rts_node rts_setup rts_start_writers rts_stop_writers
  rts_check rts_wait_ready rts_pid rts_pgbench rts_diff rts_diff_sql rts_diff_parse);
use Exporter 'import';

# A started node with rtstream's settings.  Options: workers (2);
# databases ('postgres'; '' for every database); init (a hash of
# PostgreSQL::Test::Cluster->init options); conf (more settings, appended
# last, so they override these).
sub rts_node
{
	my ($name, %opts) = @_;
	my $workers = $opts{workers} // 2;
	my $databases = $opts{databases} // 'postgres';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'rtstream'
wal_level = logical
max_worker_processes = 32
max_replication_slots = 8
max_connections = 40
rtstream.databases = '$databases'
rtstream.workers = $workers
rtstream.checkpoint_interval = '1s'
restart_after_crash = on
} . ($opts{conf} // ''));
	$node->start;
	return $node;
}

# Wait until the router and every worker are up.
sub rts_wait_ready
{
	my ($node) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = count(pid) FROM rtstream.stats")
	  or die "rtstream did not come up";
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
}

# Stream s (k, v, ts) with a commit-time window, an event-time sliding
# window grouped by another key, and a global window; truth table t.
sub rts_setup
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE s (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE t (LIKE s);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w_day', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
SELECT rtstream.create_window('w_event',
  'SELECT v % 7 AS b, count(*) AS n, sum(v) AS total, max(k) AS mk FROM s GROUP BY v % 7',
  size => '1 hour', slide => '10 minutes', time_column => 'ts');
SELECT rtstream.create_window('w_all', 'SELECT count(*) AS n, avg(v) AS a FROM s', size => '1 day');
});
}

my $script = q{
\set k random(1, 200)
\set n random(1, 20)
BEGIN;
INSERT INTO s SELECT :k + g, g * :k % 1000, '2026-06-01 00:30:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, :n) g;
INSERT INTO t SELECT :k + g, g * :k % 1000, '2026-06-01 00:30:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, :n) g;
COMMIT;
};
my $rollback = q{
\set k random(1, 200)
BEGIN;
INSERT INTO s SELECT :k, 1, '2026-06-01 00:30:00+00' FROM generate_series(1, 50) g;
ROLLBACK;
BEGIN;
INSERT INTO s SELECT :k, 2, '2026-06-01 00:31:00+00' FROM generate_series(1, 5) g;
INSERT INTO t SELECT :k, 2, '2026-06-01 00:31:00+00' FROM generate_series(1, 5) g;
SAVEPOINT a;
INSERT INTO s SELECT :k, 3, '2026-06-01 00:31:00+00' FROM generate_series(1, 5) g;
ROLLBACK TO SAVEPOINT a;
COMMIT;
};

# Start pgbench writers (in the background) for $seconds.
sub rts_start_writers
{
	my ($node, $seconds, $clients) = @_;
	$clients //= 4;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	open(my $f, '>', "$dir/w.sql") or die;
	print $f $script;
	close $f;
	open($f, '>', "$dir/r.sql") or die;
	print $f $rollback;
	close $f;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-T', $seconds, '-c', $clients, '-j', 2,
			'-f', "$dir/w.sql\@9", '-f', "$dir/r.sql\@1",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub rts_stop_writers
{
	my ($w) = @_;
	eval { $w->{h}->finish; };
	return ${ $w->{out} };
}

# The pid of an rtstream process ('router', 'worker 0', ...).
sub rts_pid
{
	my ($node, $process) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM rtstream.stats WHERE process = '$process'");
}

# Start pgbench (in the background) for $seconds with the given scripts:
# scripts => [[text, weight], ...], clients => n (4), defines => {var => value}
# (pgbench -D).  Stop it with rts_stop_writers.
sub rts_pgbench
{
	my ($node, $seconds, %opts) = @_;
	my $clients = $opts{clients} // 4;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my @args = ('pgbench', '-n', '-T', $seconds, '-c', $clients, '-j', 2);
	my $i = 0;
	for my $s (@{ $opts{scripts} })
	{
		my ($text, $weight) = @$s;
		open(my $f, '>', "$dir/s$i.sql") or die;
		print $f $text;
		close $f;
		push @args, '-f', "$dir/s$i.sql\@" . ($weight // 1);
		$i++;
	}
	my $defines = $opts{defines} // {};
	push @args, '-D', "$_=$defines->{$_}" for sort keys %$defines;
	push @args, '-h', $node->host, '-p', $node->port, 'postgres';
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(\@args, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

# Compare two queries as multisets: (rows only in the first, rows only in
# the second, up to $limit of those rows as text for diagnostics), in
# database $db ('postgres').  rts_diff_sql and rts_diff_parse serve callers
# that run the query their own way (as another role, say).
sub rts_diff_sql
{
	my ($left, $right, $limit) = @_;
	$limit //= 20;
	return qq{
WITH rts_l AS MATERIALIZED ($left), rts_r AS MATERIALIZED ($right),
     rts_lonly AS MATERIALIZED (SELECT * FROM rts_l EXCEPT ALL SELECT * FROM rts_r),
     rts_ronly AS MATERIALIZED (SELECT * FROM rts_r EXCEPT ALL SELECT * FROM rts_l)
SELECT line FROM (
  SELECT 0 AS o, (SELECT count(*) FROM rts_lonly) || ' ' || (SELECT count(*) FROM rts_ronly) AS line
  UNION ALL
  (SELECT 1, 'first only: ' || rts_x::text FROM rts_lonly rts_x LIMIT $limit)
  UNION ALL
  (SELECT 2, 'second only: ' || rts_y::text FROM rts_ronly rts_y LIMIT $limit)) rts_d
ORDER BY o, line
};
}

sub rts_diff_parse
{
	my ($res) = @_;
	my ($counts, @rows) = split /\n/, $res;
	my ($lonly, $ronly) = split / /, $counts;
	return ($lonly, $ronly, join("\n", @rows));
}

sub rts_diff
{
	my ($node, $left, $right, $limit, $db) = @_;
	return rts_diff_parse($node->safe_psql($db // 'postgres',
		rts_diff_sql($left, $right, $limit)));
}

# Every window equals the same aggregate over the truth table.
sub rts_check
{
	my ($node, $what) = @_;
	rts_wait_ready($node);
	my $diff = $node->safe_psql('postgres', q{
SELECT 'w_day', count(*) FROM (
  (SELECT k, n, total FROM w_day EXCEPT SELECT k, count(*), sum(v) FROM t GROUP BY k)
  UNION ALL
  (SELECT k, count(*), sum(v) FROM t GROUP BY k EXCEPT SELECT k, n, total FROM w_day)) d
UNION ALL
SELECT 'w_event', count(*) FROM (
  (SELECT b, n, total, mk FROM w_event EXCEPT SELECT v % 7, count(*), sum(v), max(k) FROM t GROUP BY v % 7)
  UNION ALL
  (SELECT v % 7, count(*), sum(v), max(k) FROM t GROUP BY v % 7 EXCEPT SELECT b, n, total, mk FROM w_event)) d
UNION ALL
SELECT 'w_all', count(*) FROM (
  (SELECT n, a::numeric(20,6) FROM w_all EXCEPT SELECT count(*), avg(v)::numeric(20,6) FROM t)
  UNION ALL
  (SELECT count(*), avg(v)::numeric(20,6) FROM t EXCEPT SELECT n, a::numeric(20,6) FROM w_all)) d
});
	is($diff, "w_day|0\nw_event|0\nw_all|0", "$what: every window equals the truth");
	my ($truth, $counted) = split /\|/, $node->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM t), (SELECT sum(n) FROM w_day)');
	ok($truth > 0, "$what: $truth rows committed");
	is($counted // 0, $truth, "$what: no row lost, none counted twice");
}

1;
