# Event time through faults, checked against plain SQL over a truth table
# that receives the same rows in the same transactions.
#
# Writers insert rows whose event times follow a moving clock (20 event
# seconds per wall-clock second, a little disorder), so that windows keep
# closing and the history tables keep growing while worker 0, another
# worker or the router is killed, the server stops immediately, or restarts
# with another number of workers.  After each fault the watermark is moved
# past every window written so far, and then every closed window
# (window_end <= closed_until) is in its history table exactly once, equal
# to the plain-SQL aggregate, and every open one is in window_results.
# Also: a session split between two workers by a change of
# rtstream.workers is appended whole, idle_timeout closes the last windows
# without new rows, and alter_window keeps a window's state across
# restarts.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use RtsTest;

my $node = rts_node('event_time');
$node->append_conf('postgresql.conf', "timezone = 'UTC'\n");
$node->restart;

# e: an event-time tumbling and a hopping window; ss: sessions.  t and st
# are the truths.  Lateness 40 event seconds = 2 s of wall clock: the
# writers' rows are never late.
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE e (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE t (LIKE e);
SELECT rtstream.create_stream('e', partition_by => 'k');
SELECT rtstream.create_window('h_tum',
  'SELECT k % 5 AS g, count(*) AS n, sum(v) AS total, max(v) AS hi FROM e GROUP BY k % 5',
  size => '5 seconds', time_column => 'ts', allowed_lateness => '40 seconds', history => true);
SELECT rtstream.create_window('h_hop',
  'SELECT k % 3 AS g, count(*) AS n, sum(v) AS total FROM e GROUP BY k % 3',
  size => '20 seconds', slide => '5 seconds', time_column => 'ts',
  allowed_lateness => '40 seconds', history => true);
CREATE TABLE ss (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE st (LIKE ss);
SELECT rtstream.create_stream('ss', partition_by => 'k');
SELECT rtstream.create_window('sess',
  'SELECT k, count(*) AS n, sum(v) AS total, min(v) AS lo FROM ss GROUP BY k',
  gap => '10 seconds', time_column => 'ts', allowed_lateness => '40 seconds', history => true);
});
rts_wait_ready($node);

# the plain-SQL windows over the truth tables
my %truth = (
	h_tum => q{
SELECT to_timestamp(b * 5) AS window_start, to_timestamp(b * 5 + 5) AS window_end,
       k % 5 AS g, count(*) AS n, sum(v) AS total, max(v) AS hi
  FROM (SELECT floor(extract(epoch FROM ts) / 5)::bigint AS b, k, v FROM t) x
 GROUP BY b, k % 5},
	h_hop => q{
SELECT to_timestamp(we - 20) AS window_start, to_timestamp(we) AS window_end,
       k % 3 AS g, count(*) AS n, sum(v) AS total
  FROM (SELECT floor(extract(epoch FROM ts) / 5)::bigint * 5 AS b, k, v FROM t) x,
       generate_series(b + 5, b + 20, 5) we
 GROUP BY we, k % 3},
	# a session starts where the previous row of the key is > gap older
	sess => q{
SELECT min(ts) AS window_start, max(ts) + interval '10 seconds' AS window_end,
       k, count(*) AS n, sum(v) AS total, min(v) AS lo
  FROM (SELECT *, sum(brk) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid
          FROM (SELECT k, v, ts,
                       CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) <= interval '10 seconds'
                            THEN 0 ELSE 1 END AS brk
                  FROM st) x) y
 GROUP BY k, sid},
);
my %group_cols = (h_tum => 'g', h_hop => 'g', sess => 'k');

# Writers.  :base is the event time (epoch) of the phase at wall-clock :t0;
# each transaction takes its time from the clock, its rows are up to 3
# event seconds older.  Rolled-back rows lie a day ahead: applied by
# mistake, they would close every window and make every later row late.
my $w_script = q{
\set k random(1, 200)
\set n random(1, 10)
\set j random(0, 3000)
BEGIN;
SELECT (:base + (extract(epoch FROM clock_timestamp()) - :t0) * 20)::numeric(20,3) AS et \gset
INSERT INTO e SELECT :k + g, (g * :k + :j) % 1000, to_timestamp(:et) - ((g * :j) % 3000) * interval '1 millisecond' FROM generate_series(1, :n) g;
INSERT INTO t SELECT :k + g, (g * :k + :j) % 1000, to_timestamp(:et) - ((g * :j) % 3000) * interval '1 millisecond' FROM generate_series(1, :n) g;
COMMIT;
\sleep 2 ms
};
my $r_script = q{
\set k random(1, 200)
BEGIN;
INSERT INTO e SELECT :k, 1, to_timestamp(:base + 86400) FROM generate_series(1, 20) g;
INSERT INTO ss SELECT :k % 30 + 1, 1, to_timestamp(:base + 86400) FROM generate_series(1, 5) g;
ROLLBACK;
BEGIN;
SELECT (:base + (extract(epoch FROM clock_timestamp()) - :t0) * 20)::numeric(20,3) AS et \gset
INSERT INTO e SELECT :k, 2, to_timestamp(:et) FROM generate_series(1, 3) g;
INSERT INTO t SELECT :k, 2, to_timestamp(:et) FROM generate_series(1, 3) g;
SAVEPOINT a;
INSERT INTO e SELECT :k, 3, to_timestamp(:base + 86400) FROM generate_series(1, 5) g;
ROLLBACK TO SAVEPOINT a;
COMMIT;
\sleep 2 ms
};
# sessions: key k is active 15 event seconds out of 45, its rows are a few
# event seconds apart, so that sessions end within and between its active
# spells
my $s_script = q{
\set k random(1, 30)
\set n random(1, 4)
\set j random(0, 2000)
BEGIN;
SELECT (:base + (extract(epoch FROM clock_timestamp()) - :t0) * 20)::numeric(20,3) AS et \gset
INSERT INTO ss SELECT :k, g * 1000 + :j, ts FROM (SELECT g, to_timestamp(:et) - ((g * :j) % 2000) * interval '1 millisecond' AS ts FROM generate_series(1, :n) g) x WHERE (floor(extract(epoch FROM ts) / 15)::bigint + :k) % 3 = 0;
INSERT INTO st SELECT :k, g * 1000 + :j, ts FROM (SELECT g, to_timestamp(:et) - ((g * :j) % 2000) * interval '1 millisecond' AS ts FROM generate_series(1, :n) g) x WHERE (floor(extract(epoch FROM ts) / 15)::bigint + :k) % 3 = 0;
COMMIT;
\sleep 20 ms
};

my $base0 = 1893456000;    # 2030-01-01 00:00:00 UTC
my $phase = 0;
my ($base, $t0);

sub start_writers
{
	my ($seconds) = @_;
	return rts_pgbench($node, $seconds,
		scripts => [ [ $w_script, 8 ], [ $r_script, 1 ], [ $s_script, 3 ] ],
		defines => { base => $base, t0 => $t0 });
}

sub new_phase
{
	$phase++;
	$base = $base0 + $phase * 86400;
	$t0 = sprintf('%.3f', time());
}

# Wait until the writers have been running for $seconds of this phase.
sub wait_phase
{
	my ($seconds) = @_;
	my $left = $t0 + $seconds - time();
	Time::HiRes::sleep($left) if $left > 0;
}

# The watermark past every row of this phase: one row per key 1..64 (every
# worker gets some) 12 hours ahead, in the streams and the truths.
sub close_phase
{
	$node->safe_psql('postgres', qq{
INSERT INTO e SELECT k, 7, to_timestamp($base + 43200) FROM generate_series(1, 64) k;
INSERT INTO t SELECT k, 7, to_timestamp($base + 43200) FROM generate_series(1, 64) k;
INSERT INTO ss SELECT k, 7, to_timestamp($base + 43200) FROM generate_series(1, 64) k;
INSERT INTO st SELECT k, 7, to_timestamp($base + 43200) FROM generate_series(1, 64) k;
SELECT rtstream.sync();
});
}

# Every closed window in the history exactly once and equal to the truth,
# every open one in window_results; no late row.  $closed: the expected
# closed_until (epoch) right after rtstream.sync(), if known.
sub check_window
{
	my ($what, $w, $closed) = @_;
	my $stats = $node->safe_psql('postgres', qq{
SELECT sum(late_rows), min(closed_until), max(closed_until),
       extract(epoch FROM min(closed_until))::bigint, min(watermark)
  FROM rtstream.window_stats WHERE window_name = '$w'});
	my ($late, $cmin, $cmax, $cepoch, $wm) = split /\|/, $stats;
	is($late, 0, "$what: $w: no late row");
	is($cmin, $cmax, "$what: $w: one closed_until ($cmin, watermark $wm)");
	is($cepoch, $closed, "$what: $w: rtstream.sync() waited for the history")
	  if defined $closed;
	my $c = "(SELECT min(closed_until) FROM rtstream.window_stats WHERE window_name = '$w')";

	my ($hist_only, $truth_only, $rows) = rts_diff($node,
		"SELECT * FROM ${w}_history",
		"SELECT * FROM ($truth{$w}) x WHERE window_end <= $c");
	is("$hist_only $truth_only", '0 0',
		"$what: $w: the history is every closed window of the truth, each once")
	  or diag($rows);
	my $g = $group_cols{$w};
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM (SELECT window_end, $g FROM ${w}_history GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0', "$what: $w: no duplicate (window_end, $g) in the history");
	# every window still open: also, for the hopping window, those ending
	# after the current one that already hold rows
	my ($open_only, $topen_only, $orows) = rts_diff($node,
		"SELECT * FROM rtstream.window_results('$w', NULL::$w)",
		"SELECT * FROM ($truth{$w}) x WHERE window_end > $c");
	is("$open_only $topen_only", '0 0',
		"$what: $w: window_results is every open window of the truth")
	  or diag($orows);
}

sub check_all
{
	my ($what) = @_;
	rts_wait_ready($node);
	close_phase();
	my $closed = $base + 43200 - 40;
	check_window($what, $_, $closed) for qw(h_tum h_hop sess);
	my ($rows, $hist, $sess) = split /\|/, $node->safe_psql('postgres', qq{
SELECT (SELECT count(*) FROM t WHERE ts < to_timestamp($base + 43200) AND ts >= to_timestamp($base)),
       (SELECT count(*) FROM h_tum_history WHERE window_end > to_timestamp($base)),
       (SELECT count(*) FROM sess_history WHERE window_end > to_timestamp($base))});
	ok($rows > 1000 && $hist > 20 && $sess > 20,
		"$what: rows written in the phase ($rows), windows ($hist) and sessions ($sess) closed");
}

# the fault comes while windows close and the history is written
sub writers_then
{
	my ($what, $fault) = @_;
	new_phase();
	my $w = start_writers(8);
	wait_phase(4);
	my $closed = $node->safe_psql('postgres',
		"SELECT count(*) FROM h_tum_history WHERE window_end > to_timestamp($base)");
	ok($closed > 0, "$what: windows closed before the fault ($closed)");
	$fault->();
	rts_stop_writers($w);
	# and writers again after it, in the same windows
	rts_wait_ready($node);
	$w = start_writers(2);
	rts_stop_writers($w);
	check_all($what);
}

for my $victim ('worker 0', 'worker 1', 'router')
{
	writers_then("SIGKILL $victim", sub {
		my $pid = rts_pid($node, $victim);
		ok(kill('KILL', $pid), "SIGKILL $victim ($pid) under load");
	});
}

writers_then('SIGTERM worker 0', sub {
	my $pid = rts_pid($node, 'worker 0');
	ok(kill('TERM', $pid), "SIGTERM worker 0 ($pid) under load");
});

writers_then('immediate stop', sub {
	$node->stop('immediate');
	$node->start;
});

writers_then('immediate stop and a start with 3 workers', sub {
	$node->stop('immediate');
	$node->append_conf('postgresql.conf', "rtstream.workers = 3\n");
	$node->start;
});
is($node->safe_psql('postgres', "SELECT count(*) FROM rtstream.stats WHERE process <> 'router'"),
	'3', '3 workers run');

writers_then('SIGKILL worker 2 of 3', sub {
	my $pid = rts_pid($node, 'worker 2');
	ok(kill('KILL', $pid), "SIGKILL worker 2 ($pid) under load");
});

writers_then('a restart with 2 workers', sub {
	$node->append_conf('postgresql.conf', "rtstream.workers = 2\n");
	$node->restart;
});
is($node->safe_psql('postgres', "SELECT count(*) FROM rtstream.stats WHERE process <> 'router'"),
	'2', '2 workers run');

# A session split between two workers: after an immediate stop, a start
# with 3 workers leaves the checkpointed part of each session with its
# former worker and sends the replayed rows to the new one.  The
# watermark then passes the end of the first part before the end of the
# session: the session must still be appended whole.
{
	$node->safe_psql('postgres', q{
CREATE TABLE sp (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE spt (LIKE sp);
SELECT rtstream.create_stream('sp', partition_by => 'k');
SELECT rtstream.create_window('sp_sess', 'SELECT k, count(*) AS n, sum(v) AS total FROM sp GROUP BY k',
  gap => '10 seconds', time_column => 'ts', allowed_lateness => '40 seconds', history => true);
});
	# only the checkpoint asked for below
	$node->append_conf('postgresql.conf', "rtstream.checkpoint_interval = '1h'\n");
	$node->reload;
	rts_wait_ready($node);
	$node->safe_psql('postgres', q{
INSERT INTO sp SELECT k, i, timestamptz '2033-01-01 00:00:00+00' + i * interval '1 second' FROM generate_series(1, 30) k, generate_series(0, 2) i;
INSERT INTO spt SELECT k, i, timestamptz '2033-01-01 00:00:00+00' + i * interval '1 second' FROM generate_series(1, 30) k, generate_series(0, 2) i;
SELECT rtstream.sync();
SELECT rtstream.checkpoint();
INSERT INTO sp SELECT k, i, timestamptz '2033-01-01 00:00:00+00' + i * interval '1 second' FROM generate_series(1, 30) k, generate_series(3, 5) i;
INSERT INTO spt SELECT k, i, timestamptz '2033-01-01 00:00:00+00' + i * interval '1 second' FROM generate_series(1, 30) k, generate_series(3, 5) i;
SELECT rtstream.sync();
});
	$node->stop('immediate');
	$node->append_conf('postgresql.conf', "rtstream.workers = 3\nrtstream.checkpoint_interval = '1s'\n");
	$node->start;
	rts_wait_ready($node);
	# the watermark to 00:00:13 (a row of another key at 00:00:53), then past everything
	$node->safe_psql('postgres', q{
INSERT INTO sp VALUES (1000, 0, '2033-01-01 00:00:53+00');
INSERT INTO spt VALUES (1000, 0, '2033-01-01 00:00:53+00');
SELECT rtstream.sync();
});
	is($node->safe_psql('postgres',
		"SELECT min(closed_until) FROM rtstream.window_stats WHERE window_name = 'sp_sess'"),
		'2033-01-01 00:00:12.999999+00', 'split sessions: the watermark between the parts\' ends');
	$node->safe_psql('postgres', q{
INSERT INTO sp SELECT k, 7, timestamptz '2033-01-01 12:00:00+00' FROM generate_series(1, 30) k;
INSERT INTO spt SELECT k, 7, timestamptz '2033-01-01 12:00:00+00' FROM generate_series(1, 30) k;
SELECT rtstream.sync();
});
	my ($h, $t, $rows) = rts_diff($node, 'SELECT * FROM sp_sess_history', q{
SELECT min(ts), max(ts) + interval '10 seconds', k, count(*), sum(v)
  FROM (SELECT *, sum(brk) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid
          FROM (SELECT k, v, ts,
                       CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) <= interval '10 seconds'
                            THEN 0 ELSE 1 END AS brk
                  FROM spt) x) y
 GROUP BY k, sid HAVING max(ts) + interval '10 seconds' < '2033-01-01 11:59:20+00'});
	is("$h $t", '0 0', 'split sessions: each session in the history whole, once') or diag($rows);
	$node->append_conf('postgresql.conf', "rtstream.workers = 2\n");
	$node->restart;
	rts_wait_ready($node);
}

# idle_timeout: the last windows close without any further row
{
	$node->safe_psql('postgres', q{
CREATE TABLE i_s (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE i_t (LIKE i_s);
SELECT rtstream.create_stream('i_s', partition_by => 'k');
SELECT rtstream.create_window('idle',
  'SELECT k % 4 AS g, count(*) AS n, sum(v) AS total FROM i_s GROUP BY k % 4',
  size => '10 seconds', time_column => 'ts', idle_timeout => '2 seconds', history => true);
});
	my $truth = q{
SELECT to_timestamp(b * 10) AS window_start, to_timestamp(b * 10 + 10) AS window_end,
       k % 4 AS g, count(*) AS n, sum(v) AS total
  FROM (SELECT floor(extract(epoch FROM ts) / 10)::bigint AS b, k, v FROM i_t) x
 GROUP BY b, k % 4};
	my $start = time();
	# 2031-01-01 00:00:00 to 00:00:28.9, every key on every worker
	$node->safe_psql('postgres', q{
INSERT INTO i_s SELECT i % 40, i, timestamptz '2031-01-01 00:00:00+00' + i * interval '100 ms' FROM generate_series(0, 289) i;
INSERT INTO i_t SELECT i % 40, i, timestamptz '2031-01-01 00:00:00+00' + i * interval '100 ms' FROM generate_series(0, 289) i;
SELECT rtstream.sync();
});
	my $before = $node->safe_psql('postgres',
		"SELECT max(closed_until) FROM rtstream.window_stats WHERE window_name = 'idle'");
	my $elapsed = time() - $start;
	SKIP:
	{
		skip "the insert took ${elapsed}s, idle_timeout may have passed", 1
		  if $elapsed > 1.5;
		is($before, '2031-01-01 00:00:20+00', 'idle: the last window is open at first');
	}
	ok($node->poll_query_until('postgres', q{
SELECT min(closed_until) >= '2031-01-01 00:00:30+00' FROM rtstream.window_stats WHERE window_name = 'idle'}),
		'idle: the last window closes without any further row');
	my $took = time() - $start;
	ok($took >= 2, sprintf('idle: not before idle_timeout (%.1fs)', $took));
	$node->safe_psql('postgres', 'SELECT rtstream.sync()');
	my ($h, $t, $rows) = rts_diff($node, 'SELECT * FROM idle_history', $truth);
	is("$h $t", '0 0', 'idle: the history is every window of the truth, each once') or diag($rows);
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM idle_history WHERE window_end = '2031-01-01 00:00:30+00'}), '4',
		'idle: the last window is in the history, every group');
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM rtstream.window_results('idle', NULL::idle)"), '0',
		'idle: no window is open');
	is($node->safe_psql('postgres',
		"SELECT sum(late_rows) FROM rtstream.window_stats WHERE window_name = 'idle'"), '0',
		'idle: no late row');
}

# alter_window keeps the state across restarts: one key (one worker, one
# watermark), 1 minute windows
{
	$node->safe_psql('postgres', q{
CREATE TABLE a_s (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE a_t (LIKE a_s);
SELECT rtstream.create_stream('a_s', partition_by => 'k');
SELECT rtstream.create_window('alt',
  'SELECT v % 3 AS g, count(*) AS n, sum(v) AS total FROM a_s GROUP BY v % 3',
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 minute', history => true);
-- T0 + 0:00 .. T0 + 5:50
INSERT INTO a_s SELECT 7, i, timestamptz '2032-01-01 00:00:00+00' + i * interval '10 seconds' FROM generate_series(0, 35) i;
INSERT INTO a_t SELECT 7, i, timestamptz '2032-01-01 00:00:00+00' + i * interval '10 seconds' FROM generate_series(0, 35) i;
SELECT rtstream.sync();
});
	my $truth = q{
SELECT to_timestamp(b * 60) AS window_start, to_timestamp(b * 60 + 60) AS window_end,
       v % 3 AS g, count(*) AS n, sum(v) AS total
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint AS b, v FROM a_t) x
 GROUP BY b, v % 3};
	my $check = sub {
		my ($what, $closed, $late) = @_;
		$node->safe_psql('postgres', 'SELECT rtstream.sync()');
		is($node->safe_psql('postgres', q{
SELECT min(closed_until) FROM rtstream.window_stats WHERE window_name = 'alt'}),
			$closed, "alter: $what: closed_until");
		is($node->safe_psql('postgres', q{
SELECT sum(late_rows) FROM rtstream.window_stats WHERE window_name = 'alt'}),
			$late, "alter: $what: late rows") if defined $late;
		my $c = "(SELECT min(closed_until) FROM rtstream.window_stats WHERE window_name = 'alt')";
		my ($h, $t, $rows) = rts_diff($node, 'SELECT * FROM alt_history',
			"SELECT * FROM ($truth) x WHERE window_end <= $c");
		is("$h $t", '0 0', "alter: $what: the history equals the truth") or diag($rows);
		is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT window_end, g FROM alt_history GROUP BY 1, 2 HAVING count(*) > 1) d}),
			'0', "alter: $what: no duplicate in the history");
		($h, $t, $rows) = rts_diff($node,
			"SELECT * FROM rtstream.window_results('alt', NULL::alt) WHERE window_end > $c",
			"SELECT * FROM ($truth) x WHERE window_end > $c");
		is("$h $t", '0 0', "alter: $what: the open windows equal the truth") or diag($rows);
	};
	$check->('lateness 1 minute', '2032-01-01 00:04:00+00', 0);

	$node->safe_psql('postgres',
		"SELECT rtstream.alter_window('alt', allowed_lateness => '20 minutes')");
	$node->restart;
	rts_wait_ready($node);
	is($node->safe_psql('postgres',
		"SELECT min(watermark) FROM rtstream.window_stats WHERE window_name = 'alt'"),
		'2031-12-31 23:45:50+00', 'alter: the newest time survived the restart, new lateness');
	$check->('after the restart with lateness 20 minutes', '2032-01-01 00:04:00+00');

	# newest T0 + 30:00, then rows from T0 + 29:50 down to T0 + 10:00: late
	# with 1 minute, not with 20; and 5 rows at T0 + 7:30, late with 20
	$node->safe_psql('postgres', q{
INSERT INTO a_s VALUES (7, 1000, '2032-01-01 00:30:00+00');
INSERT INTO a_t VALUES (7, 1000, '2032-01-01 00:30:00+00');
INSERT INTO a_s SELECT 7, i, timestamptz '2032-01-01 00:00:00+00' + i * interval '10 seconds' FROM generate_series(179, 60, -1) i;
INSERT INTO a_t SELECT 7, i, timestamptz '2032-01-01 00:00:00+00' + i * interval '10 seconds' FROM generate_series(179, 60, -1) i;
INSERT INTO a_s SELECT 7, 5000 + i, timestamptz '2032-01-01 00:07:30+00' FROM generate_series(1, 5) i;
});
	$check->('rows within the new lateness', '2032-01-01 00:10:00+00', 5);

	$node->safe_psql('postgres',
		"SELECT rtstream.alter_window('alt', allowed_lateness => '1 minute')");
	$node->restart;
	rts_wait_ready($node);
	$check->('back to 1 minute, after a restart', '2032-01-01 00:29:00+00');
}

# no process crashed except the ones killed
my $log = slurp_file($node->logfile);
my @bad = grep { !/signal 9: Killed/ } ($log =~ /^.*(?:terminated by signal|TRAP:|PANIC:).*$/mg);
is(scalar(@bad), 0, 'no crash in the server log') or diag(join("\n", @bad));

$node->stop;
done_testing();
