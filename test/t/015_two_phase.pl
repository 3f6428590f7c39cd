# Issue 13: two-phase commit.  A prepared transaction's captured rows count
# exactly once, at COMMIT PREPARED, and never after ROLLBACK PREPARED, also
# across a crash between the two.  Every case is compared with a truth table
# written in the same (prepared) transactions.
#
# 1. PREPARE, then COMMIT PREPARED from another session: nothing counts
#    before, everything once after, at the COMMIT PREPARED's commit time; a
#    window created in between counts the rows (it counts the transactions
#    that commit after it).
# 2. PREPARE, then ROLLBACK PREPARED (rows already in WAL): nothing counts.
# 3. Savepoints and an exception block in a prepared transaction: the rows
#    of rolled-back subtransactions do not count.
# 4. Thirty prepared transactions ended in a shuffled order, some rolled
#    back, while plain and two-phase writers run.
# 5. The slot holds WAL for a prepared transaction: after worker checkpoints
#    and more committed traffic its restart_lsn stays before the prepared
#    transaction (its confirmed position moves on); an immediate stop, a
#    start, COMMIT PREPARED: counted once.  Once it is committed the slot
#    moves on.
# 6. An immediate stop with prepared transactions in doubt (explicit ones
#    and two-phase writers caught between PREPARE and COMMIT PREPARED):
#    after the start they count in no window until committed; those
#    committed count once, those rolled back never.
# 7. A new node: a prepared transaction open while rtstream makes its slot
#    holds the router back (making a logical slot waits for the running
#    transactions); a transaction that began meanwhile gets the "began
#    before" ERROR rather than rows that could be missed; once the prepared
#    transaction ends, two-phase rows count.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use List::Util qw(shuffle);
use Time::HiRes qw(time sleep);
use RtsTest;

my $node = rts_node('two_phase', conf => "max_prepared_transactions = 64\n");
rts_setup($node);
rts_wait_ready($node);
$node->safe_psql('postgres', 'CREATE TABLE plain (x int)');

# The same rows into the stream and the truth table: keys $k0 .. $k0 + 49,
# times within the event-time window that rts_check reads.
sub ins
{
	my ($k0, $n) = @_;
	my $sel = "SELECT $k0 + g % 50, g % 997, '2026-06-01 00:30:00+00'::timestamptz + (g % 50) * interval '1 second' FROM generate_series(1, $n) g";
	return "INSERT INTO s $sel;\nINSERT INTO t $sel;\n";
}

sub sq
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# rows counted by w_day for keys in [lo, hi)
sub counted
{
	my ($lo, $hi) = @_;
	return sq("SELECT rtstream.sync(); SELECT coalesce(sum(n), 0) FROM w_day WHERE k >= $lo AND k < $hi") =~ s/^\n*//r;
}

sub prepared_gids
{
	return sq("SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts");
}

# Two-phase writers: each transaction prepared, then committed by its own
# session ("-" ends a pgbench variable name inside the literal).
my $twophase = q{
\set k random(1, 200)
\set n random(1, 20)
\set r random(1, 2000000000)
BEGIN;
INSERT INTO s SELECT :k + g, g * :k % 1000, '2026-06-01 00:30:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, :n) g;
INSERT INTO t SELECT :k + g, g * :k % 1000, '2026-06-01 00:30:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, :n) g;
PREPARE TRANSACTION 'pb-:client_id-:r';
\sleep 20 ms
COMMIT PREPARED 'pb-:client_id-:r';
};

sub processed
{
	my ($out) = @_;
	return $out =~ /number of transactions actually processed: (\d+)/ ? $1 : 0;
}

# rows committed the ordinary way, so that the truth is never empty
sq("BEGIN;\n" . ins(1000, 500) . "COMMIT;");

# 1. PREPARE, then COMMIT PREPARED from another session
{
	# a commit-time window of one second: where the rows land in time
	sq("SELECT rtstream.create_window('w_ct', 'SELECT count(*) AS n FROM s WHERE k >= 10000 AND k < 10100', size => '1 second')");
	sq("BEGIN;\n" . ins(10000, 3000) . "PREPARE TRANSACTION 'p_commit';");
	my $prepared_at = sq('SELECT clock_timestamp()');
	is(prepared_gids(), 'p_commit', 'the transaction is prepared');
	is(counted(10000, 10100), '0', 'prepared rows do not count before COMMIT PREPARED');
	rts_check($node, 'with a transaction prepared');

	# counts the transactions that commit after it, p_commit included
	sq("SELECT rtstream.create_window('w_late', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day')");
	sleep(2.2);
	my $before = sq('SELECT clock_timestamp()');
	sq("COMMIT PREPARED 'p_commit'");
	my $after = sq('SELECT clock_timestamp()');

	# the router is woken by COMMIT PREPARED: no sync() here
	my $t0 = time;
	$node->poll_query_until('postgres',
		'SELECT coalesce(sum(n), 0) = 3000 FROM w_day WHERE k >= 10000 AND k < 10100')
	  or die 'the committed prepared transaction never counted';
	note(sprintf('counted %.3f s after COMMIT PREPARED returned', time - $t0));

	is(prepared_gids(), '', 'no prepared transaction left');
	is(counted(10000, 10100), '3000', 'COMMIT PREPARED: every row counts once');
	rts_check($node, 'after COMMIT PREPARED from another session');
	my ($l, $r, $rows) = rts_diff($node, 'SELECT k, n, total FROM w_late',
		'SELECT k, count(*), sum(v) FROM t WHERE k >= 10000 GROUP BY k');
	is("$l $r", '0 0', 'a window created between PREPARE and COMMIT PREPARED counts the rows')
	  or diag($rows);

	# at the COMMIT PREPARED's time, not the PREPARE's
	my $in = sq("SELECT string_agg(n::text, ',') FROM rtstream.window_results('w_ct', NULL::w_ct) WHERE n > 0");
	is($in, '3000', 'the rows are in one commit-time window');
	is(sq("SELECT count(*) FROM rtstream.window_results('w_ct', NULL::w_ct)
	      WHERE n > 0 AND window_end > '$before' AND window_start <= '$after'
	        AND window_start > '$prepared_at'"), '1',
		'that window holds the COMMIT PREPARED time, after the PREPARE');
	sq("SELECT rtstream.drop_window('w_ct')");
}

# 2. PREPARE, then ROLLBACK PREPARED: small batches put the rows in WAL
# before the PREPARE
{
	sq("BEGIN;\nSET LOCAL rtstream.batch_size = 1;\n" . ins(11000, 3000)
		  . "PREPARE TRANSACTION 'p_rollback';");
	is(prepared_gids(), 'p_rollback', 'prepared');
	sq("ROLLBACK PREPARED 'p_rollback'");
	is(counted(11000, 11100), '0', 'ROLLBACK PREPARED: no row counts');
	rts_check($node, 'after ROLLBACK PREPARED');
	my ($l, $r, $rows) = rts_diff($node, 'SELECT k, n, total FROM w_late',
		'SELECT k, count(*), sum(v) FROM t WHERE k >= 10000 GROUP BY k');
	is("$l $r", '0 0', 'ROLLBACK PREPARED: nothing in the window created meanwhile either')
	  or diag($rows);
}

# 3. savepoints and an exception block in a prepared transaction
{
	sq("BEGIN;\nSET LOCAL rtstream.batch_size = 1;\n"
		  . ins(12000, 500)
		  . "SAVEPOINT a;\n" . ins(12100, 800) . "ROLLBACK TO SAVEPOINT a;\n"
		  . "SAVEPOINT b;\n" . ins(12200, 300)
		  . "SAVEPOINT c;\n" . ins(12300, 400) . "ROLLBACK TO SAVEPOINT c;\n"
		  . "RELEASE SAVEPOINT b;\n"
		  . "DO \$\$ BEGIN " . ins(12400, 600) . " RAISE EXCEPTION 'no'; EXCEPTION WHEN raise_exception THEN NULL; END \$\$;\n"
		  . ins(12500, 100)
		  . "PREPARE TRANSACTION 'p_savepoints';");
	is(counted(12000, 12600), '0', 'savepoints: nothing before COMMIT PREPARED');
	sq("COMMIT PREPARED 'p_savepoints'");
	is(counted(12000, 12600), '900', 'savepoints: the rows of the released savepoint and the top level count');
	is(counted(12100, 12200) + counted(12300, 12500), 0,
		'savepoints: rolled-back subtransactions and the exception block leave nothing');
	rts_check($node, 'a prepared transaction with savepoints');
}

# 4. thirty prepared transactions ended in another order, with writers
{
	my $w = rts_start_writers($node, 10);
	my $pb = rts_pgbench($node, 10, scripts => [ [ $twophase, 1 ] ], clients => 2);
	my @gids;
	for my $i (1 .. 30)
	{
		sq("BEGIN;\nSET LOCAL rtstream.batch_size = 1;\n" . ins(13000 + $i * 50, 20 * $i)
			  . "PREPARE TRANSACTION 'm$i';");
		push @gids, $i;
	}
	srand(15);
	my @order = shuffle(@gids);
	note('ending order: ' . join(' ', @order));
	for my $i (@order)
	{
		sq($i % 5 == 0 ? "ROLLBACK PREPARED 'm$i'" : "COMMIT PREPARED 'm$i'");
	}
	rts_stop_writers($w);
	my $out = rts_stop_writers($pb);
	ok(processed($out) > 0, 'two-phase writers committed ' . processed($out) . ' transactions');
	is(prepared_gids(), '', 'none left prepared');
	is(counted(13050, 14600), sq('SELECT count(*) FROM t WHERE k >= 13050 AND k < 14600'),
		'the 24 committed count, the 6 rolled back do not');
	rts_check($node, 'thirty prepared transactions ended in a shuffled order, with writers');
}

my $slot = sq("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'rtstream_%'");

# 5. the slot holds WAL for a prepared transaction, through checkpoints
my $held_lsn;
{
	# $held_lsn: after the prepared transaction's first record
	$held_lsn = sq("BEGIN;\nINSERT INTO plain VALUES (1);\nSELECT pg_current_wal_insert_lsn();\n"
		  . ins(16000, 2000) . "PREPARE TRANSACTION 'p_held';");
	my $w = rts_start_writers($node, 3);
	rts_stop_writers($w);
	my $ckpt = sq('SELECT rtstream.checkpoint()');
	sq('CHECKPOINT');
	$w = rts_start_writers($node, 2);
	rts_stop_writers($w);
	$ckpt = sq('SELECT rtstream.checkpoint()');
	sq('CHECKPOINT');
	ok($node->poll_query_until('postgres',
		"SELECT confirmed_flush_lsn >= '$ckpt' FROM pg_replication_slots WHERE slot_name = '$slot'"),
		'the slot is confirmed past the prepared transaction');
	ok(sq("SELECT restart_lsn < '$held_lsn' FROM pg_replication_slots WHERE slot_name = '$slot'") eq 't',
		"its restart_lsn stays before the prepared transaction's first record ($held_lsn)");

	$node->stop('immediate');
	$node->start;
	rts_wait_ready($node);
	is(prepared_gids(), 'p_held', 'the prepared transaction survived the crash');
	is(counted(16000, 16100), '0', 'after the crash: not counted yet');
	rts_check($node, 'after the crash, with a transaction prepared');
	sq("COMMIT PREPARED 'p_held'");
	is(counted(16000, 16100), '2000', 'COMMIT PREPARED after the crash: counted once');
	rts_check($node, 'COMMIT PREPARED after workers checkpointed and a crash');
}

# 6. a crash with prepared transactions in doubt
{
	sq("BEGIN;\n" . ins(15000, 2000) . "PREPARE TRANSACTION 'c_commit';");
	sq("BEGIN;\nSET LOCAL rtstream.batch_size = 1;\n" . ins(15100, 2000)
		  . "PREPARE TRANSACTION 'c_rollback';");
	my $w = rts_start_writers($node, 8);
	my $pb = rts_pgbench($node, 8, scripts => [ [ $twophase, 1 ] ], clients => 4);
	sleep 3;
	$node->stop('immediate');
	rts_stop_writers($w);
	rts_stop_writers($pb);
	$node->start;
	rts_wait_ready($node);
	my @doubt = split /,/, prepared_gids();
	my @pb = grep { /^pb-/ } @doubt;
	ok((grep { $_ eq 'c_commit' } @doubt) && (grep { $_ eq 'c_rollback' } @doubt),
		'after the crash: both explicit prepared transactions are in doubt');
	note(scalar(@pb) . ' two-phase writers caught between PREPARE and COMMIT PREPARED');
	rts_check($node, 'after the crash, with prepared transactions in doubt');

	sq("COMMIT PREPARED 'c_commit'");
	sq("ROLLBACK PREPARED 'c_rollback'");
	for my $gid (@pb)
	{
		sq($gid =~ /[02468]$/ ? "COMMIT PREPARED '$gid'" : "ROLLBACK PREPARED '$gid'");
	}
	is(prepared_gids(), '', 'all ended');
	is(counted(15000, 15100), '2000', 'committed after the crash: counted once');
	is(counted(15100, 15200), '0', 'rolled back after the crash: never counted');
	rts_check($node, 'prepared transactions in doubt at a crash, then committed or rolled back');
}

# the prepared transaction ended, the slot moves on
{
	my $moved = 0;
	for (1 .. 30)
	{
		sq("INSERT INTO s VALUES (1, 1, '2026-06-01 00:30:00+00'); INSERT INTO t VALUES (1, 1, '2026-06-01 00:30:00+00')");
		sq('SELECT rtstream.checkpoint()');
		sq('CHECKPOINT');
		if (sq("SELECT restart_lsn > '$held_lsn' FROM pg_replication_slots WHERE slot_name = '$slot'") eq 't')
		{
			$moved = 1;
			last;
		}
		sleep 1;
	}
	ok($moved, 'with no prepared transaction left, the restart_lsn moves past it');
	rts_check($node, 'the end');
}
$node->stop;

# 7. a prepared transaction open while rtstream makes its slot (no other
# logical decoding on this node, whose serialized snapshot could be used)
{
	my $n2 = rts_node('slot_wait', conf => "max_prepared_transactions = 4\n");
	$n2->safe_psql('postgres', q{
CREATE TABLE plain (x int);
BEGIN;
INSERT INTO plain VALUES (1);
PREPARE TRANSACTION 'blocker';
});
	$n2->safe_psql('postgres', q{
BEGIN;
CREATE EXTENSION rtstream;
CREATE TABLE s (k int NOT NULL, v int NOT NULL);
CREATE TABLE t (LIKE s);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
COMMIT;
});
	my ($ret, $out, $err) = $n2->psql('postgres', "SELECT rtstream.sync('3 seconds')");
	like($err, qr/timed out waiting for the router/,
		'an open prepared transaction holds back the making of the slot');
	($ret, $out, $err) = $n2->psql('postgres', q{
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL;
INSERT INTO s VALUES (1, 1);
PREPARE TRANSACTION 'too_early';
});
	like($err, qr/began before rtstream had started/,
		'a transaction that began before the slot gets an ERROR, and is never prepared');
	is($n2->safe_psql('postgres', 'SELECT string_agg(gid, \',\') FROM pg_prepared_xacts'),
		'blocker', 'only the blocker is prepared');

	# the slot is made once the decoder has seen the blocker end (a
	# running-transactions record, which a CHECKPOINT writes)
	$n2->safe_psql('postgres', "ROLLBACK PREPARED 'blocker'");
	my $ready = 0;
	for (1 .. 60)
	{
		$n2->safe_psql('postgres', 'CHECKPOINT');
		($ret) = $n2->psql('postgres', "SELECT rtstream.sync('1 second')");
		if ($ret == 0)
		{
			$ready = 1;
			last;
		}
	}
	ok($ready, 'the slot is made once the prepared transaction has ended');
	$n2->safe_psql('postgres', q{
BEGIN;
INSERT INTO s SELECT g % 10, g FROM generate_series(1, 1000) g;
INSERT INTO t SELECT g % 10, g FROM generate_series(1, 1000) g;
PREPARE TRANSACTION 'late';
});
	$n2->safe_psql('postgres', "COMMIT PREPARED 'late'");
	my ($l, $r, $rows) = rts_diff($n2, 'SELECT k, n, total FROM w',
		'SELECT k, count(*), sum(v) FROM t GROUP BY k');
	is($n2->safe_psql('postgres', 'SELECT rtstream.sync(); SELECT sum(n) FROM w') =~ s/^\n*//r,
		'1000', 'once the slot is made, a prepared transaction counts');
	is("$l $r", '0 0', 'and equals the truth') or diag($rows);
	$n2->stop;
}

done_testing();
