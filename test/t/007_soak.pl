# A seeded, randomised soak: mixed commits, rollbacks, savepoint rollbacks
# and COPY over many keys, with faults at random moments; every window must
# equal the truth at the end.  SOAK_SECONDS (default 20) sets the length,
# SOAK_SEED the seed (printed, to replay a failure).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use RtsTest;

my $seconds = $ENV{SOAK_SECONDS} // 20;
my $seed = $ENV{SOAK_SEED} // int(time() * 1000) % 1000000;
srand($seed);
note("soak: $seconds s, seed $seed");
diag("soak seed $seed (SOAK_SEED=$seed to replay)");

my $node = rts_node('soak');
rts_setup($node);
rts_wait_ready($node);

# a COPY of random rows into the stream and the truth, in one transaction
sub copy_batch
{
	my $rows = '';
	my $n = 1 + int(rand(3000));
	for (1 .. $n)
	{
		my $k = int(rand(5000));
		$rows .= sprintf("%d\t%d\t2026-06-01 00:%02d:%02d+00\n", $k, int(rand(1000)), 20 + int(rand(30)), int(rand(60)));
	}
	my $abort = rand() < 0.2;
	my $sql = "BEGIN;\nCOPY s FROM STDIN;\n$rows\\.\nCOPY t FROM STDIN;\n$rows\\.\n"
	  . ($abort ? "ROLLBACK;\n" : "COMMIT;\n");
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-q', '-d', $node->connstr('postgres') ], '<', \$sql, '>', \$out, '2>', \$err);
	return $err eq '' ? $n : 0;
}

my @faults = ('none', 'none', 'kill worker', 'kill router', 'term worker', 'term router', 'immediate', 'restart');
my $end = time() + $seconds;
my $round = 0;
while (time() < $end)
{
	$round++;
	my $w = rts_start_writers($node, 2 + int(rand(3)), 1 + int(rand(4)));
	copy_batch() for 1 .. int(rand(3));
	sleep(rand(1.5));
	my $fault = $faults[ int(rand(@faults)) ];
	note("round $round: $fault");
	if ($fault =~ /^(kill|term) (worker|router)$/)
	{
		my $process = $2 eq 'worker' ? 'worker ' . int(rand(2)) : 'router';
		my $pid = $node->safe_psql('postgres', "SELECT pid FROM rtstream.stats WHERE process = '$process'");
		kill($1 eq 'kill' ? 'KILL' : 'TERM', $pid) if $pid;
	}
	elsif ($fault eq 'immediate')
	{
		$node->stop('immediate');
		rts_stop_writers($w);
		$node->start;
	}
	elsif ($fault eq 'restart')
	{
		$node->restart;
	}
	rts_stop_writers($w);
	rts_wait_ready($node);
}
rts_check($node, "after $round rounds of the soak (seed $seed)");
$node->stop;
done_testing();
