# Exactly once through faults: every committed row counts once in every
# window after a worker or the router is killed or terminated, after an
# immediate stop, a normal restart, and a restart with another number of
# workers.  Writers run during each fault.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RtsTest;

my $node = rts_node('crash');
rts_setup($node);
rts_wait_ready($node);

sub pid_of
{
	my ($process) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM rtstream.stats WHERE process = '$process'");
}

# faults that the postmaster handles with a crash restart
for my $victim ('worker 0', 'router')
{
	my $w = rts_start_writers($node, 6);
	sleep 2;
	my $pid = pid_of($victim);
	ok(kill('KILL', $pid), "SIGKILL $victim ($pid) under load");
	rts_stop_writers($w);
	rts_check($node, "after SIGKILL of the $victim");
}

# SIGTERM: the process checkpoints, exits and is restarted alone
for my $victim ('worker 1', 'router')
{
	my $w = rts_start_writers($node, 6);
	sleep 2;
	my $pid = pid_of($victim);
	ok(kill('TERM', $pid), "SIGTERM $victim ($pid) under load");
	rts_stop_writers($w);
	rts_check($node, "after SIGTERM of the $victim");
}

# immediate stop during writes
{
	my $w = rts_start_writers($node, 6);
	sleep 3;
	$node->stop('immediate');
	rts_stop_writers($w);
	$node->start;
	rts_check($node, 'after an immediate stop');
}

# an immediate stop, then a start with another number of workers: the
# replayed batches were written for the old number, the router splits them
{
	my $w = rts_start_writers($node, 6);
	sleep 3;
	$node->stop('immediate');
	rts_stop_writers($w);
	$node->append_conf('postgresql.conf', "rtstream.workers = 3\n");
	$node->start;
	rts_check($node, 'after an immediate stop and a start with 3 workers');
	$node->append_conf('postgresql.conf', "rtstream.workers = 2\n");
	$node->restart;
}

# a normal restart, and restarts with other numbers of workers: the
# partitions move along the ring and their state with them
for my $n (2, 3, 1, 2)
{
	my $w = rts_start_writers($node, 4);
	sleep 2;
	rts_stop_writers($w);
	$node->append_conf('postgresql.conf', "rtstream.workers = $n\n");
	$node->restart;
	rts_check($node, "after a restart with $n workers");
	is($node->safe_psql('postgres', "SELECT count(*) FROM rtstream.stats WHERE process <> 'router'"),
		$n, "$n workers run");
}

# WAL is released: the slot follows the checkpoints
my $lsn = $node->safe_psql('postgres', 'SELECT rtstream.checkpoint()');
ok($node->poll_query_until('postgres',
	"SELECT confirmed_flush_lsn >= '$lsn' FROM pg_replication_slots WHERE slot_name LIKE 'rtstream_%'"),
	'the slot is confirmed up to the checkpoint');

$node->stop;
done_testing();
