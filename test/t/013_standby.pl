# Read replicas, failover and missing resources: honest answers.
#
# - Reading a window on a hot standby is a clear ERROR, never an empty
#   answer.
# - Failover: the primary stops hard while writers run; the standby is
#   promoted.  The windows go on from the replicated checkpoints, the WAL
#   between the last checkpoint and the promotion is recorded as a gap in
#   rtstream.gaps, nothing is counted twice, and every row committed after
#   the promotion counts exactly once.
# - No free replication slot: an ERROR at the first rtstream call naming
#   max_replication_slots, and the router's error logged once, not once a
#   second.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use RtsTest;

my $primary = rts_node('primary', databases => '', init => { allows_streaming => 'logical' },
	conf => "rtstream.checkpoint_interval = '2s'\n");
$primary->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE s (k int NOT NULL, v int NOT NULL);
CREATE TABLE t (LIKE s);
CREATE TABLE t2 (LIKE s);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
});
$primary->safe_psql('postgres', q{
INSERT INTO s SELECT g % 20, g FROM generate_series(1, 1000) g;
INSERT INTO t SELECT g % 20, g FROM generate_series(1, 1000) g;
SELECT rtstream.checkpoint();
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# 1. reads on the standby
my ($ret, $out, $err) = $standby->psql('postgres', 'SELECT * FROM w');
isnt($ret, 0, 'standby: reading a window fails');
like($err, qr/ERROR:  rtstream windows cannot be read on a standby/, 'standby: a clear ERROR');
like($err, qr/HINT:  Read the window on the primary/, 'standby: with a hint');
($ret, $out, $err) = $standby->psql('postgres', "SELECT * FROM rtstream.window_results('w', NULL::w)");
like($err, qr/cannot be read on a standby/, 'standby: window_results() too');
is($primary->safe_psql('postgres', 'SELECT sum(n) FROM w'), '1000', 'the primary reads it');

# 2. failover while writers run on the primary
my @writers;
for my $c (0 .. 2)
{
	my $script = $primary->basedir . "/w$c.sql";
	open my $fh, '>', $script or die;
	print $fh qq{
\\set k random(0, 19)
BEGIN;
INSERT INTO s VALUES (:k, $c);
INSERT INTO t VALUES (:k, $c);
COMMIT;
};
	close $fh;
	push @writers, IPC::Run::start(
		[ 'pgbench', '-n', '-c', '1', '-T', '30', '-f', $script, '-d', $primary->connstr('postgres') ],
		'>', \my $o, '2>', \my $e);
}
sleep(3);
$primary->stop('immediate');
$_->kill_kill for @writers;
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'promoted');
ok($standby->poll_query_until('postgres',
	"SELECT count(*) = count(pid) AND count(*) = 3 FROM rtstream.stats"), 'rtstream runs on the new primary');
$standby->safe_psql('postgres', 'SELECT rtstream.sync()');

ok($standby->poll_query_until('postgres', 'SELECT count(*) >= 1 FROM rtstream.gaps'),
	'failover: the gap is recorded');
my ($ordered, $reason) = split /\|/, $standby->safe_psql('postgres',
	'SELECT from_lsn < to_lsn, reason FROM rtstream.gaps ORDER BY id LIMIT 1');
is($ordered, 't', 'failover: the gap is a range of WAL');
like($reason, qr/was missing \(a failover/, 'failover: the gap says why');
like(slurp_file($standby->logfile), qr/ERROR:  rtstream lost the transactions committed between/,
	'failover: said in the log');

# nothing counted twice: the state holds at most the rows committed
is($standby->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT k, count(*) AS n, sum(v) AS total FROM t GROUP BY k) tr
  FULL JOIN w ON w.k = tr.k
 WHERE coalesce(w.n, 0) > coalesce(tr.n, 0)}), '0',
	'failover: no group holds more rows than were committed');
cmp_ok($standby->safe_psql('postgres', 'SELECT sum(n) FROM w'), '>=', 1000,
	'failover: the checkpointed rows are there');

# every row committed after the promotion counts exactly once
$standby->safe_psql('postgres', 'CREATE TABLE base AS SELECT k, n, total FROM w');
for my $i (1 .. 5)
{
	$standby->safe_psql('postgres', qq{
BEGIN;
INSERT INTO s SELECT g % 20, g + $i FROM generate_series(1, 200) g;
INSERT INTO t2 SELECT g % 20, g + $i FROM generate_series(1, 200) g;
COMMIT;
});
}
$standby->safe_psql('postgres', 'SELECT rtstream.sync()');
my ($l, $r, $rows) = rts_diff($standby,
	'SELECT k, n::numeric, total::numeric FROM w',
	q{SELECT k, sum(n)::numeric, sum(total)::numeric FROM
	    (SELECT k, n, total FROM base UNION ALL SELECT k, count(*), sum(v) FROM t2 GROUP BY k) x
	  GROUP BY k});
is("$l $r", '0 0', 'failover: every row committed after the promotion counts exactly once')
  or diag($rows);
$standby->stop;

# 3. no free replication slot
my $few = rts_node('few_slots', databases => '', workers => 1,
	init => { allows_streaming => 'logical' },
	conf => "max_replication_slots = 1\nmax_wal_senders = 2\n");
$few->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('someone_else')");
$few->safe_psql('postgres', 'CREATE EXTENSION rtstream; CREATE TABLE s (k int)');
my $got = '';
for (1 .. 60)
{
	($ret, $out, $err) = $few->psql('postgres', "SELECT rtstream.create_stream('s')",
		on_error_stop => 1);
	if ($err =~ /max_replication_slots/)
	{
		$got = $err;
		last;
	}
	$few->safe_psql('postgres', "SELECT rtstream.drop_stream('s')") if $ret == 0;
	sleep(0.5);
}
like($got, qr/ERROR:  rtstream cannot start in database "postgres"/, 'no free slot: an ERROR');
like($got, qr/HINT:  Raise max_replication_slots/, 'no free slot: the hint names the setting');
sleep(3);
my @logged = (slurp_file($few->logfile) =~ /^.*ERROR:  all replication slots are in use.*$/mg);
cmp_ok(scalar(@logged), '<=', 2, 'no free slot: the router logs it once, not once a second')
  or diag(join("\n", @logged));
$few->stop;

done_testing();
