# Retained WAL stays small, and a lost slot never stops rtstream.
#
# The server keeps 48MB of WAL for a slot (max_slot_wal_keep_size: a
# CHECKPOINT invalidates a slot whose restart_lsn is more than 3 segments
# behind, so between 48 and 64MB); each burst of unrelated writes below is
# about 31MB of WAL, followed by a CHECKPOINT.
#
# 1. rtstream idle (every captured row checkpointed), then four bursts of
#    writes to a table that is no stream: the router confirms its slot up
#    to what it decoded, so the slot stays 'reserved' and holds little WAL
#    (without that, the second or third burst would lose the slot).  The
#    window still equals plain SQL over a truth table written in the same
#    transactions.
# 1b. The same with checkpoint_interval 1h: idle, the slot follows what is
#    decoded whatever the interval.  Then captured rows wait for a worker
#    checkpoint that the interval would not give for an hour: the workers
#    checkpoint anyway once the WAL they hold back passes
#    rtstream.checkpoint_wal_size (default: a quarter of
#    max_slot_wal_keep_size, 12MB here), so the slot is released and
#    bursts do not lose it.
# 2. A deliberately slow window keeps its worker busy in one transaction
#    (no checkpoint possible, checkpoint_wal_size raised to 1GB so that
#    none is due after it either) while bursts run: the slot is
#    invalidated.  The router survives it without a server restart: one
#    ERROR in the log, a row in rtstream.gaps covering the lost range, the
#    gaps counter in rtstream.stats, a new slot; windows keep their state
#    and every row committed after that counts exactly once; no restart
#    loop.
# 3. A stalled window (its owner lost SELECT) past rtstream.stalled_wal_limit
#    gives up the rows it missed, alone, with its own gap; the slot is not
#    lost and it counts the rows after its gap once the grant is back.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use RtsTest;

# rts_node's settings, and a small max_slot_wal_keep_size
my $node = rts_node('wal_retention', conf => q{
max_slot_wal_keep_size = 48MB
max_wal_size = 64MB
min_wal_size = 32MB
wal_keep_size = 0
checkpoint_timeout = '5min'
});

$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE s (k int NOT NULL, v int NOT NULL);
CREATE TABLE t (LIKE s);
CREATE TABLE t2 (LIKE s);
CREATE TABLE u (g int, x text);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w_day', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
});
rts_wait_ready($node);

my $slot = 'rtstream_' . $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $slot_status = "SELECT coalesce(string_agg(wal_status, ','), 'none') FROM pg_replication_slots WHERE slot_name LIKE 'rtstream%'";

# about 31MB of WAL in a table that is no stream, then a checkpoint
sub burst
{
	$node->safe_psql('postgres', q{
TRUNCATE u;
INSERT INTO u SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g;
CHECKPOINT;
});
}

# Wait until the slot is 'reserved' and holds less than $limit bytes,
# measured at the slot and in rtstream.stats.  The slot's restart_lsn only
# moves at a running-xacts record: a CHECKPOINT writes one, so ask for one
# while waiting instead of waiting for the bgwriter's (every 15 s).
sub wait_slot_small
{
	my ($what, $limit) = @_;
	my $q = qq{
SELECT sl.wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), sl.restart_lsn)::bigint,
       st.wal_retained_bytes
  FROM pg_replication_slots sl, rtstream.stats st
 WHERE sl.slot_name LIKE 'rtstream%' AND st.process = 'router'};
	my $deadline = time() + 45;
	my $last = '';
	while (time() < $deadline)
	{
		$last = $node->safe_psql('postgres', $q);
		my ($st, $held, $retained) = split /\|/, $last;
		if (   defined $retained
			&& $retained ne ''
			&& $st eq 'reserved'
			&& $held < $limit
			&& $retained < $limit)
		{
			pass("$what: the slot is reserved and holds little WAL ($held bytes, stats $retained)");
			return 1;
		}
		$node->safe_psql('postgres', 'CHECKPOINT');
		sleep(0.5);
	}
	fail("$what: the slot is reserved and holds less than $limit bytes");
	diag("wal_status|held|wal_retained_bytes: $last");
	diag("current LSN, slot restart_lsn|confirmed_flush_lsn: "
		  . $node->safe_psql('postgres', q{
SELECT pg_current_wal_lsn(), restart_lsn, confirmed_flush_lsn
  FROM pg_replication_slots WHERE slot_name LIKE 'rtstream%'}));
	diag("rtstream.stats process|lsn|checkpoint_lsn|wal_retained_bytes:\n"
		  . $node->safe_psql('postgres', q{
SELECT process, lsn, checkpoint_lsn, wal_retained_bytes FROM rtstream.stats ORDER BY process}));
	return 0;
}

# w_day equals plain SQL over $truth
sub check_w_day
{
	my ($what, $truth) = @_;
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	my ($l, $r, $rows) = rts_diff($node,
		'SELECT k, n::numeric, total::numeric FROM w_day',
		"SELECT k, count(*)::numeric, sum(v)::numeric FROM ($truth) x GROUP BY k");
	is("$l $r", '0 0', "$what: w_day equals plain SQL over the truth")
	  or diag($rows);
}

sub write_rows
{
	my ($truth, $from, $to) = @_;
	for my $i (0 .. 2)
	{
		$node->safe_psql('postgres', qq{
BEGIN;
INSERT INTO s SELECT g % 37, g * 3 + $i FROM generate_series($from, $to) g;
INSERT INTO $truth SELECT g % 37, g * 3 + $i FROM generate_series($from, $to) g;
COMMIT;
});
	}
}

# 1. idle, then unrelated bursts
{
	write_rows('t', 1, 2000);
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	ok($node->poll_query_until('postgres',
		"SELECT checkpoint_lsn >= '$lsn' FROM rtstream.stats WHERE process = 'router'"),
		'idle: the router confirms its slot up to what it decoded');
	wait_slot_small('idle', 8 * 1024 * 1024);

	for my $round (1 .. 4)
	{
		burst();
		ok($node->poll_query_until('postgres', "SELECT ($slot_status) <> 'lost'"),
			"idle, burst $round: the slot is not lost");
		is($node->safe_psql('postgres', $slot_status), 'reserved',
			"idle, burst $round: the slot is reserved");
		wait_slot_small("idle, burst $round", 8 * 1024 * 1024);
	}
	write_rows('t', 2001, 3000);
	check_w_day('after the bursts', 'SELECT * FROM t');
	my $retained = $node->safe_psql('postgres',
		"SELECT wal_retained_bytes FROM rtstream.stats WHERE process = 'router'");
	ok($retained ne '' && $retained < 64 * 1024 * 1024,
		"after the bursts: wal_retained_bytes is small ($retained)");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM rtstream.gaps'), '0',
		'after the bursts: no gap');
}

# 1b. checkpoint_interval 1h.  Idle first: the slot still follows what is
# decoded, whatever the interval.  Then captured rows wait for a checkpoint
# that the interval would not give for an hour: rtstream.checkpoint_wal_size
# (12MB here) does, and the slot follows again.
{
	$node->safe_psql('postgres', q{
ALTER SYSTEM SET rtstream.checkpoint_interval = '1h';
SELECT pg_reload_conf();
});
	sleep(1);
	$node->safe_psql('postgres', 'SELECT rtstream.checkpoint()');
	wait_slot_small('interval 1h, idle', 8 * 1024 * 1024);
	for my $round (1 .. 2)
	{
		burst();
		is($node->safe_psql('postgres', $slot_status), 'reserved',
			"interval 1h, idle, burst $round: the slot is reserved");
		wait_slot_small("interval 1h, idle, burst $round", 8 * 1024 * 1024);
	}

	write_rows('t', 3001, 4000);
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	for my $round (1 .. 2)
	{
		burst();
		is($node->safe_psql('postgres', $slot_status), 'reserved',
			"interval 1h, rows waiting, burst $round: the slot is reserved");
		wait_slot_small("interval 1h, rows waiting, burst $round: the workers checkpointed",
			8 * 1024 * 1024);
	}
	check_w_day('checkpoint_wal_size', 'SELECT * FROM t');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM rtstream.gaps'), '0',
		'checkpoint_wal_size: no gap');
}

# 2. the slot is lost while a slow window keeps its worker busy
{
	$node->safe_psql('postgres', q{
CREATE FUNCTION slow(int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.05);
  RETURN $1;
END $$;
CREATE TABLE s2 (k int NOT NULL, v int NOT NULL);
SELECT rtstream.create_stream('s2', partition_by => 'k');
SELECT rtstream.create_window('w_slow', 'SELECT count(*) AS n, sum(slow(v)) AS total FROM s2', size => '1 day');
ALTER SYSTEM SET rtstream.checkpoint_wal_size = '1GB';
SELECT pg_reload_conf();
});
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	$node->safe_psql('postgres', 'SELECT rtstream.checkpoint()');
	sleep(1);

	# gaps before this part (none, unless something above failed)
	my ($gap0, $gapstat0) = split /\|/, $node->safe_psql('postgres', q{
SELECT (SELECT coalesce(max(id), 0) FROM rtstream.gaps),
       (SELECT gaps FROM rtstream.stats WHERE process = 'router')});

	# one transaction of 200 rows on one worker: about 10 s to apply
	my $lsn_before = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	$node->safe_psql('postgres', 'INSERT INTO s2 SELECT 1, g FROM generate_series(1, 200) g');
	my $lsn_after = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');

	# bursts until the slot is lost (or already replaced by a new one)
	my $lost = 0;
	my $rounds = 0;
	my $seen = '';
	my $deadline = time() + 120;
	while (time() < $deadline)
	{
		burst();
		$rounds++;
		my ($st, $gaps) = split /\|/, $node->safe_psql('postgres',
			"SELECT ($slot_status), (SELECT count(*) FROM rtstream.gaps WHERE id > $gap0)");
		$seen .= " $st/$gaps";
		if ($st =~ /lost/ || $gaps > 0)
		{
			$lost = 1;
			last;
		}
	}
	ok($lost, "the slot was lost after $rounds bursts (wal_status/gaps:$seen)");

	ok($node->poll_query_until('postgres', "SELECT count(*) >= 1 FROM rtstream.gaps WHERE id > $gap0"),
		'the gap is recorded in rtstream.gaps');
	my $gap = $node->safe_psql('postgres', qq{
SELECT from_lsn < to_lsn, from_lsn <= '$lsn_before', to_lsn >= '$lsn_after',
       window_name IS NULL, position('$slot' in reason) > 0, reason ~* 'invalidat|lost',
       from_lsn || ' ' || to_lsn || ' ' || coalesce(window_name, '-') || ' ' || reason
  FROM rtstream.gaps WHERE id > $gap0 ORDER BY id LIMIT 1});
	my ($ordered, $from_ok, $to_ok, $all, $names_slot, $says, $text) = split /\|/, $gap;
	is($ordered, 't', "the gap has from_lsn < to_lsn ($text)");
	is($from_ok, 't', "the gap starts at or before the slow window's rows ($lsn_before)");
	is($to_ok, 't', "the gap ends after them ($lsn_after)");
	is($all, 't', 'the gap is for every window (window_name NULL)');
	is($names_slot, 't', "the gap's reason names the slot $slot");
	is($says, 't', "the gap's reason says the slot was invalidated or lost");
	my ($gaps_stat, $error) = split /\|/, $node->safe_psql('postgres',
		"SELECT gaps, coalesce(error, '(null)') FROM rtstream.stats WHERE process = 'router'");
	ok($gaps_stat >= $gapstat0 + 1,
		"rtstream.stats counts the gap ($gapstat0 -> $gaps_stat; router error: $error)");

	# back to checkpoints every second
	$node->safe_psql('postgres', q{
ALTER SYSTEM RESET rtstream.checkpoint_interval;
ALTER SYSTEM RESET rtstream.checkpoint_wal_size;
SELECT pg_reload_conf();
});
	ok($node->poll_query_until('postgres', qq{
SELECT (SELECT count(*) = 1 AND bool_and(wal_status = 'reserved') FROM pg_replication_slots
         WHERE slot_name LIKE 'rtstream%')
   AND (SELECT count(*) = count(pid) FROM rtstream.stats)}),
		'a new slot, reserved; the router and the workers run');
	rts_wait_ready($node);

	# rows committed from now on count exactly
	$node->safe_psql('postgres', q{
CREATE TABLE base1 AS SELECT k, n, total FROM w_day;
CREATE TABLE base2 AS SELECT n, total FROM w_slow;
});
	write_rows('t2', 1, 1500);
	$node->safe_psql('postgres', 'INSERT INTO s2 SELECT 1, g FROM generate_series(1, 5) g');
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	my ($l, $r, $rows) = rts_diff($node,
		'SELECT k, n::numeric, total::numeric FROM w_day',
		q{SELECT k, sum(n)::numeric, sum(total)::numeric
		    FROM (SELECT k, n, total FROM base1
		          UNION ALL SELECT k, count(*), sum(v) FROM t2 GROUP BY k) x
		   GROUP BY k});
	is("$l $r", '0 0', 'after the gap: w_day grew by exactly the rows committed since')
	  or diag($rows);
	is($node->safe_psql('postgres', q{
SELECT w.n - coalesce(b.n, 0), coalesce(w.total, 0) - coalesce(b.total, 0) FROM w_slow w, base2 b}),
		'5|15', 'after the gap: w_slow grew by exactly the rows committed since');
	# no row of s was in the gap, and windows keep their state through it
	check_w_day('after the gap', 'SELECT * FROM t UNION ALL SELECT * FROM t2');
	wait_slot_small('after the gap', 8 * 1024 * 1024);

	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started,
		'the server was not restarted');
	isnt($node->safe_psql('postgres',
		"SELECT coalesce(pid, 0) FROM rtstream.stats WHERE process = 'router'"),
		'0', 'the router runs');

	my $log = slurp_file($node->logfile);
	my @said = ($log =~ /^.*ERROR:.*rtstream.*replication slot "?rtstream_\d+"? was invalidated.*$/mg);
	ok(@said >= 1, 'the log says the slot was invalidated, as an ERROR')
	  or diag('no such line');
	my $ngaps = $node->safe_psql('postgres', 'SELECT count(*) FROM rtstream.gaps');
	is(scalar(@said), $ngaps, 'said once per gap') or diag(join("\n", @said));
	my @exits = ($log =~ /^.*rtstream router.*exited with exit code.*$/mg);
	ok(@exits < 10, 'no restart loop of the router (' . scalar(@exits) . ' exits)')
	  or diag(join("\n", @exits));
	my @bad = ($log =~ /^.*(?:terminated by signal|TRAP:|PANIC:|reinitializing).*$/mg);
	is(scalar(@bad), 0, 'no crash in the server log') or diag(join("\n", @bad));
}

# 3. A window whose owner lost SELECT stalls, holding the WAL of the rows it
#    missed for its catch-up.  Past rtstream.stalled_wal_limit (16MB here)
#    it gives them up alone: a gap for that window in rtstream.gaps, the
#    WAL released, the slot never lost, the other window exact; once the
#    grant is back it counts every row committed after its gap.
{
	$node->safe_psql('postgres', q{
ALTER SYSTEM SET rtstream.stalled_wal_limit = '16MB';
SELECT pg_reload_conf();
CREATE ROLE r3 LOGIN;
GRANT SELECT ON s TO r3;
GRANT CREATE ON SCHEMA public TO r3;
CREATE TABLE t3 (phase text, k int, v int);
SET ROLE r3;
SELECT rtstream.create_window('w_r3', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
RESET ROLE;
});
	my $gap0 = $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM rtstream.gaps');
	my $phase = sub {
		my ($name, $from, $to) = @_;
		$node->safe_psql('postgres', qq{
BEGIN;
INSERT INTO s SELECT g % 37, g FROM generate_series($from, $to) g;
INSERT INTO t2 SELECT g % 37, g FROM generate_series($from, $to) g;
INSERT INTO t3 SELECT '$name', g % 37, g FROM generate_series($from, $to) g;
COMMIT;
});
	};
	$phase->('A', 1, 500);
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	$node->safe_psql('postgres', 'REVOKE SELECT ON s FROM r3');
	ok($node->poll_query_until('postgres',
		"SELECT bool_and(state = 'stalled') FROM rtstream.window_stats WHERE window_name = 'w_r3'"),
		'stalled: w_r3 stalls once its owner lost SELECT');
	$phase->('B', 501, 1500);	# rows it misses while stalled
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	burst();
	ok($node->poll_query_until('postgres', qq{
SELECT count(*) >= 1 FROM rtstream.gaps WHERE id > $gap0 AND window_name = 'w_r3'}),
		'stalled: past rtstream.stalled_wal_limit the window records its own gap');
	burst();
	is($node->safe_psql('postgres', "SELECT count(*) FROM rtstream.gaps WHERE id > $gap0 AND window_name IS NULL"),
		'0', 'stalled: the slot was not lost (no gap for every window)');
	is($node->safe_psql('postgres', "SELECT bool_and(reason ~ 'stalled_wal_limit' AND from_lsn < to_lsn) FROM rtstream.gaps WHERE id > $gap0"),
		't', 'stalled: the gap says why, over a range');
	wait_slot_small('stalled past the limit', 24 * 1024 * 1024);
	is($node->safe_psql('postgres', "SELECT bool_and(state = 'stalled' AND error ~ 'permission denied') FROM rtstream.window_stats WHERE window_name = 'w_r3'"),
		't', 'stalled: still stalled, with its error');
	check_w_day('stalled: the other window', 'SELECT * FROM t UNION ALL SELECT * FROM t2');

	# all workers that missed rows have given them up (one gap each at most)
	sleep(2);
	$phase->('C', 1501, 1800);	# after its gaps, while still stalled
	$node->safe_psql('postgres', 'GRANT SELECT ON s TO r3');
	ok($node->poll_query_until('postgres',
		"SELECT bool_and(state = 'running') FROM rtstream.window_stats WHERE window_name = 'w_r3'"),
		'stalled: running again once the grant is back');
	$phase->('D', 1801, 2000);
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	my ($l, $r, $rows) = rts_diff($node,
		'SELECT k, n::numeric, total::numeric FROM w_r3',
		q{SELECT k, count(*)::numeric, sum(v)::numeric FROM t3 WHERE phase <> 'B' GROUP BY k});
	is("$l $r", '0 0', 'stalled: w_r3 holds the rows before its stall and after its gap, each once')
	  or diag($rows);
	check_w_day('stalled, after the grant', 'SELECT * FROM t UNION ALL SELECT * FROM t2');
}

$node->stop;
done_testing();
