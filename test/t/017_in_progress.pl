# Transactions applied while they run (rtstream.apply_in_progress).  The
# router decodes with rtstream.decoding_memory = 64kB and captured rows go
# to WAL in batches of 8kB, so every transaction of more than a few batches
# is streamed to the workers before it ends; pg_stat_replication_slots
# (stream_txns, stream_count, stream_bytes of the slot rtstream_<db oid>)
# shows that it was, so that no case passes without streaming.  Every check
# compares a window with plain SQL over a truth table written in the same
# (sub)transactions as the stream: exact for integers, within 1e-9 relative
# for float8.  Rows that must never count (aborted transactions, rolled back
# savepoints, a transaction open at a crash) have keys of their own and
# event times a day ahead: applied by mistake they would add groups, close
# every window and make every later row late.
#
# 1. A 200k-row INSERT ... SELECT and a 100k-row COPY into a stream with an
#    event-time sliding window grouped by the partition key, a tumbling one
#    grouped by an expression (a NULL group, FILTER), a global one
#    (stddev_samp through the catalog, count(DISTINCT), bool_or) and a
#    processing-time one: streamed, and every window equals SQL.  Three more
#    windows, with the rows, key and aggregates (or some of them) of a
#    sliding and of the processing-time one in other shapes, take their
#    cells (stream slicing, said at DEBUG1), in this and every later case.
# 2. Large transactions that abort (ROLLBACK; a session that ends without
#    COMMIT) after being streamed: nothing of them counts.
# 3. Savepoints in a large transaction: a savepoint rolled back after its
#    rows were streamed, a released one, nested ones (the inner rolled back
#    after streaming, the outer released), a released savepoint inside one
#    rolled back, a PL/pgSQL exception block: only the surviving rows count.
# 4. Two sessions with interleaved large transactions, both streamed; one
#    commits and one aborts, in both orders.  (4b) A window whose cells
#    another takes is dropped while a large transaction streams: the other
#    still counts every row (the transaction is decoded again).
# 5. Faults: (a) an immediate stop with a large streamed transaction open;
#    an immediate stop after the commit of a large streamed transaction,
#    with no rtstream checkpoint since (once after rtstream.sync(), once at
#    once); (b) SIGTERM to a worker and (c) to the router while a large
#    transaction streams, then more rows and COMMIT: exact every time.
# 6. A session window, a window with late_policy 'dead_letter' and a plain
#    tumbling window, each on two identical streams fed the same rows
#    (late ones among them): stream sa with apply_in_progress on (its large
#    transaction streamed), sb with it off.  The session and dead-letter
#    windows keep the rows and apply them at the commit as before: equal on
#    both streams, and the dead-letter window equals SQL over the rows not
#    dead-lettered.  The plain window shows the documented difference: on
#    sa the streamed rows are judged late as a whole at the commit against
#    the watermark then, on sb row by row.  A 10-minute sliding window
#    with the rows, key and aggregates of the plain one takes its cells on
#    sa, yet judges them by its own windows: it equals a twin with one
#    aggregate of the catalog path more (its own cells), late rows
#    included.
# 7. Trust: an ordinary role's stream and window with a user-defined
#    aggregate whose PL/pgSQL transition and combine functions record who
#    runs them: transitions run in the workers while its large transaction
#    streams, combines in the workers at the commit, always as that role,
#    and it reads nothing it may not; results exact.
# 8. apply_in_progress off (reload): a large transaction is spilled, not
#    streamed, and counts exactly; then on again.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use RtsTest;

my $t_begin = time;

sub elapsed
{
	my ($what) = @_;
	note(sprintf('%s: %.1f s', $what, time - $t_begin));
}

# Checkpoints only when asked (rtstream.checkpoint() at the start of the
# cases that replay), so that a crash replays a known stretch of WAL.
my $node = rts_node('in_progress', conf => q{
rtstream.decoding_memory = '64kB'
rtstream.batch_size = '8kB'
rtstream.checkpoint_interval = '1h'
timezone = 'UTC'
});

sub sq
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Poll $sql until it returns 't', for at most $timeout seconds.
sub wait_until
{
	my ($sql, $timeout) = @_;
	my $end = time + ($timeout // 60);
	while (1)
	{
		return 1 if sq($sql) eq 't';
		return 0 if time > $end;
		sleep(0.1);
	}
}

# The router's slot statistics.  They are kept across clean restarts and
# reset by crash recovery; every case reads its own baseline.
my $slot_where = q{slot_name = 'rtstream_' || (SELECT oid FROM pg_database WHERE datname = 'postgres')};

sub slot_stats
{
	my ($txns, $count, $bytes, $spill) = split / /, sq(qq{
SELECT coalesce(sum(stream_txns), 0) || ' ' || coalesce(sum(stream_count), 0) || ' ' ||
       coalesce(sum(stream_bytes), 0) || ' ' || coalesce(sum(spill_txns), 0)
  FROM pg_stat_replication_slots WHERE $slot_where});
	return { txns => $txns, count => $count, bytes => $bytes, spill => $spill };
}

sub slot_text
{
	return sq(qq{
SELECT 'stream_txns ' || stream_txns || ', stream_count ' || stream_count || ', stream_bytes ' ||
       stream_bytes || ', spill_txns ' || spill_txns || ', total_txns ' || total_txns
  FROM pg_stat_replication_slots WHERE $slot_where});
}

sub slot_cond
{
	my ($cond) = @_;
	return "SELECT coalesce((SELECT $cond FROM pg_stat_replication_slots WHERE $slot_where), false)";
}

# How long to wait for streaming; once streaming was not seen, not long
# (against a build without it, every such check fails, quickly).
my $stream_timeout = 30;

sub streamed_ok
{
	my ($okay, $what) = @_;
	$stream_timeout = 5 unless $okay;
	ok($okay, $what) or diag('pg_stat_replication_slots: ' . slot_text());
}

# Wait until $n more transactions than in $base were streamed.
sub wait_stream_txns
{
	my ($base, $n, $what) = @_;
	my $want = $base->{txns} + $n;
	streamed_ok(wait_until(slot_cond("stream_txns >= $want"), $stream_timeout), $what);
}

# Bytes the decoder holds per row of gen() written to ev and ev_t, measured
# in case 1 on a transaction streamed whole.  Until then (and if nothing
# streamed), a value no transaction reaches.
my $row_bytes = 1_000_000;

# Wait until the transaction begun at $base has streamed at least as much
# as $rows rows of gen() (into ev and ev_t): used to know that rows about to
# be rolled back were streamed before.
sub wait_stream_rows
{
	my ($base, $rows, $what) = @_;
	my $want = $base->{bytes} + int($row_bytes * $rows);
	streamed_ok(wait_until(slot_cond("stream_bytes >= $want"), $stream_timeout), $what);
}

# Sessions that keep a transaction open.  on_error_stop => 0: an error
# comes back in stderr rather than ending psql.
sub session
{
	my ($user) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0,
		$user ? (extra_params => [ '-U', $user ]) : ());
	$s->set_query_timer_restart;
	return $s;
}

# Run $sql in session $s and wait for it (and for what start_in sent
# before); a failure is a failed test.
sub run_in
{
	my ($s, $sql, $what) = @_;
	my $out = eval { $s->query($sql) };
	my $err = $@ ne '' ? $@ : $s->{stderr};
	$s->{stderr} = '';
	if ($err ne '')
	{
		fail("$what: the session's statements succeed");
		diag($err);
		return undef;
	}
	return $out;
}

# Send $sql to session $s without waiting for it (the next run_in waits).
sub start_in
{
	my ($s, $sql) = @_;
	$s->query_until(qr/rts-sent\r?\n/, "\\echo rts-sent\n$sql\n");
}

sub end_session
{
	my ($s) = @_;
	eval { $s->quit };
}

sub psql_as
{
	my ($user, $sql) = @_;
	return $node->safe_psql('postgres', $sql, connstr => $node->connstr('postgres') . " user=$user");
}

# Compare two queries with the same column names: the rows are matched on
# @$keys (NULLs match), each key must be in both exactly once, @$exact
# columns must be equal and @$float ones within 1e-9 relative.  Returns
# (mismatching groups, rows of the first, rows of the second, up to 10
# mismatching groups as text).
sub same_sql
{
	my ($left, $right, $keys, $exact, $float) = @_;
	my @cols = (@$exact, @$float);
	my $sel = join(', ', @$keys, @cols);
	my @agg = map {
		("(array_agg($_) FILTER (WHERE rts_side = 1))[1] AS l_$_",
		 "(array_agg($_) FILTER (WHERE rts_side = 2))[1] AS r_$_")
	} @cols;
	my @bad = ('nl <> 1', 'nr <> 1');
	push @bad, "l_$_ IS DISTINCT FROM r_$_" for @$exact;
	push @bad,
	  "NOT coalesce(abs(l_${_}::float8 - r_${_}::float8) <= 1e-9 * greatest(abs(l_${_}::float8), abs(r_${_}::float8)), "
	  . "l_$_ IS NULL AND r_$_ IS NULL)"
	  for @$float;
	my $group = @$keys ? 'GROUP BY ' . join(', ', @$keys) : '';
	my $keysel = @$keys ? join(', ', @$keys) . ',' : '';
	my $aggs = join(",\n         ", @agg);
	my $bad = join("\n     OR ", @bad);
	return qq{
WITH rts_l AS MATERIALIZED ($left), rts_r AS MATERIALIZED ($right),
rts_g AS MATERIALIZED (
  SELECT $keysel count(*) FILTER (WHERE rts_side = 1) AS nl, count(*) FILTER (WHERE rts_side = 2) AS nr,
         $aggs
    FROM (SELECT 1 AS rts_side, $sel FROM rts_l UNION ALL SELECT 2, $sel FROM rts_r) rts_u
   $group),
rts_bad AS MATERIALIZED (SELECT * FROM rts_g WHERE $bad)
SELECT line FROM (
  SELECT 0 AS o, (SELECT count(*) FROM rts_bad) || ' ' || (SELECT count(*) FROM rts_l) || ' ' ||
                 (SELECT count(*) FROM rts_r) AS line
  UNION ALL
  (SELECT 1, rts_bad::text FROM rts_bad LIMIT 10)) rts_x
ORDER BY o, line};
}

# is() on same_sql, run as $as (a superuser if undef).
sub check_same
{
	my ($what, $left, $right, $keys, $exact, $float, $as) = @_;
	my $sql = same_sql($left, $right, $keys, $exact, $float // []);
	my $res = defined $as ? psql_as($as, $sql) : sq($sql);
	my ($head, @rows) = split /\n/, $res;
	my ($bad, $nl, $nr) = split / /, $head;
	is($bad, '0', "$what: equals plain SQL over the truth ($nl rows, truth $nr)")
	  or diag(join("\n", @rows));
	return $nr;
}

# ---------------------------------------------------------------------------
# The stream ev, its truth ev_t, its windows
# ---------------------------------------------------------------------------

# gen(tag, n): n deterministic rows.  Keys 1 .. 3000, v in -200 .. 799 and
# NULL for every 17th row, x >= 0 and NULL for every 23rd, u in 0 .. 499,
# event times within [T, T + 4 min), in no order.  bad: keys 100000 ..
# 100499 and times a day later, for rows that must never count.
my $T = '2030-01-01 00:00:00+00';
sq(qq{
CREATE EXTENSION rtstream;
CREATE TABLE ev (k int NOT NULL, v int, x float8, u int, ts timestamptz NOT NULL);
CREATE TABLE ev_t (LIKE ev);
CREATE FUNCTION gen(tag int, n int, bad boolean DEFAULT false)
RETURNS SETOF ev LANGUAGE sql IMMUTABLE AS \$\$
  SELECT CASE WHEN bad THEN 100000 + g % 500 ELSE 1 + (g * 7919 + tag * 101) % 3000 END,
         CASE WHEN g % 17 = 0 THEN NULL ELSE (g * 37 + tag * 11) % 1000 - 200 END,
         CASE WHEN g % 23 = 0 THEN NULL ELSE ((g * 7907 + tag * 13) % 100003) / 97.0::float8 END,
         (g * 11 + tag) % 500,
         timestamptz '$T' + CASE WHEN bad THEN interval '1 day' ELSE interval '0' END
           + ((g * 13 + tag * 7) % 240000) * interval '1 millisecond'
    FROM generate_series(1, n) g
\$\$;
SELECT rtstream.create_stream('ev', partition_by => 'k');
-- lateness 10 minutes, more than the 4 minutes the rows span: no row is
-- ever late, whether judged row by row or a transaction as a whole
SELECT rtstream.create_window('e_slide',
  'SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS sv, avg(x) AS ax, min(v) AS lo, max(x) AS hi FROM ev GROUP BY k',
  size => '2 minutes', slide => '30 seconds', time_column => 'ts', allowed_lateness => '10 minutes');
SELECT rtstream.create_window('e_tumble',
  'SELECT v % 10 AS g, count(*) AS n, count(*) FILTER (WHERE x > 500) AS nbig, sum(x) AS sx, min(x) AS lo, max(v) AS hi, sum(v) AS sv FROM ev GROUP BY v % 10',
  size => '1 minute', time_column => 'ts', allowed_lateness => '10 minutes');
SELECT rtstream.create_window('e_global',
  'SELECT count(*) AS n, count(x) AS nx, sum(v) AS sv, avg(v) AS av, stddev_samp(x) AS sdx, count(DISTINCT u) AS du, bool_or(v > 790) AS anyhi FROM ev',
  size => '1 minute', time_column => 'ts', allowed_lateness => '10 minutes');
-- commit time: one window of a day that began an hour ago holds the test
SELECT rtstream.create_window('p_all',
  'SELECT k % 7 AS g, count(*) AS n, sum(v) AS sv, min(v) AS lo, max(x) AS hi, avg(x) AS ax FROM ev GROUP BY k % 7',
  size => '1 day', origin => date_trunc('hour', now()) - interval '1 hour');
-- slicing: the rows, key and aggregates of e_slide and p_all in other
-- shapes, which take their cells (panes of 60 s over e_slide's 30 s; a
-- commit-time window of another size)
SELECT rtstream.create_window('e_slide4',
  'SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS sv, avg(x) AS ax, min(v) AS lo, max(x) AS hi FROM ev GROUP BY k',
  size => '4 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '10 minutes');
-- a follower with some of its leader's aggregates, in another order:
-- avg(v) owns its sum and count words, where e_avg's shares those of
-- sum(v) and count(v)
SELECT rtstream.create_window('e_avg',
  'SELECT k % 100 AS g, count(v) AS nv, sum(v) AS sv, avg(v) AS av, max(x) AS hi FROM ev GROUP BY k % 100',
  size => '2 minutes', slide => '30 seconds', time_column => 'ts', allowed_lateness => '10 minutes');
SELECT rtstream.create_window('e_avg4',
  'SELECT k % 100 AS g, max(x) AS hi, avg(v) AS av FROM ev GROUP BY k % 100',
  size => '4 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '10 minutes');
SELECT rtstream.create_window('p_all12',
  'SELECT k % 7 AS g, count(*) AS n, sum(v) AS sv, min(v) AS lo, max(x) AS hi, avg(x) AS ax FROM ev GROUP BY k % 7',
  size => '12 hours', origin => date_trunc('hour', now()) - interval '2 hours');
});
rts_wait_ready($node);

# the rows of gen() into the stream and the truth, in one (sub)transaction
sub ins
{
	my ($tag, $n, $bad) = @_;
	my $b = $bad ? 'true' : 'false';
	return "INSERT INTO ev SELECT * FROM gen($tag, $n, $b); INSERT INTO ev_t SELECT * FROM gen($tag, $n, $b);";
}

my $slide_truth = q{
SELECT to_timestamp(we - 120) AS window_start, to_timestamp(we) AS window_end, k,
       count(*) AS n, count(v) AS nv, sum(v) AS sv, avg(x) AS ax, min(v) AS lo, max(x) AS hi
  FROM (SELECT floor(extract(epoch FROM ts) / 30)::bigint * 30 AS b, * FROM ev_t) x,
       generate_series(b + 30, b + 120, 30) we
 GROUP BY we, k};
my %ev_check = (
	e_slide => [
		q{SELECT * FROM rtstream.window_results('e_slide', NULL::e_slide)},
		$slide_truth, [qw(window_start window_end k)], [qw(n nv sv lo hi)], [qw(ax)]
	],
	e_tumble => [
		q{SELECT * FROM rtstream.window_results('e_tumble', NULL::e_tumble)}, q{
SELECT to_timestamp(b * 60) AS window_start, to_timestamp(b * 60 + 60) AS window_end, v % 10 AS g,
       count(*) AS n, count(*) FILTER (WHERE x > 500) AS nbig, sum(x) AS sx, min(x) AS lo, max(v) AS hi, sum(v) AS sv
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint AS b, * FROM ev_t) x
 GROUP BY b, v % 10},
		[qw(window_start window_end g)], [qw(n nbig lo hi sv)], [qw(sx)]
	],
	e_global => [
		q{SELECT * FROM rtstream.window_results('e_global', NULL::e_global)}, q{
SELECT to_timestamp(b * 60) AS window_start, to_timestamp(b * 60 + 60) AS window_end,
       count(*) AS n, count(x) AS nx, sum(v) AS sv, avg(v) AS av, stddev_samp(x) AS sdx,
       count(DISTINCT u) AS du, bool_or(v > 790) AS anyhi
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint AS b, * FROM ev_t) x
 GROUP BY b},
		[qw(window_start window_end)], [qw(n nx sv av du anyhi)], [qw(sdx)]
	],
	p_all => [
		q{SELECT g, n, sv, lo, hi, ax FROM p_all}, q{
SELECT k % 7 AS g, count(*) AS n, sum(v) AS sv, min(v) AS lo, max(x) AS hi, avg(x) AS ax
  FROM ev_t GROUP BY k % 7},
		[qw(g)], [qw(n sv lo hi)], [qw(ax)]
	],
	e_slide4 => [
		q{SELECT * FROM rtstream.window_results('e_slide4', NULL::e_slide4)}, q{
SELECT to_timestamp(we - 240) AS window_start, to_timestamp(we) AS window_end, k,
       count(*) AS n, count(v) AS nv, sum(v) AS sv, avg(x) AS ax, min(v) AS lo, max(x) AS hi
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint * 60 AS b, * FROM ev_t) x,
       generate_series(b + 60, b + 240, 60) we
 GROUP BY we, k},
		[qw(window_start window_end k)], [qw(n nv sv lo hi)], [qw(ax)]
	],
	e_avg => [
		q{SELECT * FROM rtstream.window_results('e_avg', NULL::e_avg)}, q{
SELECT to_timestamp(we - 120) AS window_start, to_timestamp(we) AS window_end, k % 100 AS g,
       count(v) AS nv, sum(v) AS sv, avg(v) AS av, max(x) AS hi
  FROM (SELECT floor(extract(epoch FROM ts) / 30)::bigint * 30 AS b, * FROM ev_t) x,
       generate_series(b + 30, b + 120, 30) we
 GROUP BY we, k % 100},
		[qw(window_start window_end g)], [qw(nv sv hi)], [qw(av)]
	],
	e_avg4 => [
		q{SELECT * FROM rtstream.window_results('e_avg4', NULL::e_avg4)}, q{
SELECT to_timestamp(we - 240) AS window_start, to_timestamp(we) AS window_end, k % 100 AS g,
       max(x) AS hi, avg(v) AS av
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint * 60 AS b, * FROM ev_t) x,
       generate_series(b + 60, b + 240, 60) we
 GROUP BY we, k % 100},
		[qw(window_start window_end g)], [qw(hi)], [qw(av)]
	],
	p_all12 => [
		q{SELECT g, n, sv, lo, hi, ax FROM p_all12}, q{
SELECT k % 7 AS g, count(*) AS n, sum(v) AS sv, min(v) AS lo, max(x) AS hi, avg(x) AS ax
  FROM ev_t GROUP BY k % 7},
		[qw(g)], [qw(n sv lo hi)], [qw(ax)]
	],
	# the view: the window ending at the first slide boundary after the
	# newest event time
	e_slide_view => [
		q{SELECT * FROM e_slide},
		qq{SELECT * FROM ($slide_truth) x WHERE window_end =
  (SELECT to_timestamp(floor(extract(epoch FROM max(ts)) / 30)::bigint * 30 + 30) FROM ev_t)},
		[qw(window_start window_end k)], [qw(n nv sv lo hi)], [qw(ax)]
	],
);

# Every window of ev equals plain SQL over ev_t; no late row.
sub check_ev
{
	my ($what) = @_;
	rts_wait_ready($node);
	for my $w (qw(e_slide e_tumble e_global p_all e_slide_view e_slide4 e_avg e_avg4 p_all12))
	{
		check_same("$what: $w", @{ $ev_check{$w} });
	}
	is( sq(q{
SELECT coalesce(sum(late_rows), 0) || ' ' || coalesce(sum(null_time_rows), 0) || ' ' || count(*) FILTER (WHERE state <> 'running')
  FROM rtstream.window_stats WHERE window_name IN ('e_slide', 'e_tumble', 'e_global', 'p_all', 'e_slide4', 'e_avg', 'e_avg4', 'p_all12')}),
		'0 0 0', "$what: no late row, every ev window running");
}

sub truth_rows
{
	return sq('SELECT count(*) FROM ev_t');
}

# ---------------------------------------------------------------------------
# 1. A large INSERT ... SELECT and a large COPY
# ---------------------------------------------------------------------------
{
	# the workers say at DEBUG1 which windows take another's cells
	sq(q{ALTER SYSTEM SET log_min_messages = debug1});
	sq('SELECT pg_reload_conf()');
	sleep(1);
	my $log_offset = -s $node->logfile;
	my $b = slot_stats();
	sq("BEGIN;\n" . ins(1, 200000) . "\nCOMMIT;");
	sq('SELECT rtstream.sync()');
	wait_stream_txns($b, 1, 'case 1: the 200k-row INSERT ... SELECT was streamed');
	my $log = slurp_file($node->logfile, $log_offset);
	like($log, qr/rtstream window "e_slide4" takes the cells of window "e_slide"/,
		'case 1: e_slide4 takes the cells of e_slide');
	like($log, qr/rtstream window "e_avg4" takes the cells of window "e_avg"/,
		'case 1: e_avg4 takes the cells of e_avg (some of its aggregates)');
	# commit-time cells are per group only: either takes the other's
	like($log, qr/rtstream window "(p_all12|p_all)" takes the cells of window "(p_all|p_all12)"/,
		'case 1: p_all and p_all12 share their cells');
	unlike($log, qr/window "(e_tumble|e_global|e_slide|e_avg)" takes the cells/,
		'case 1: windows of other aggregates or keys or of finer panes make their own cells');
	sq(q{ALTER SYSTEM RESET log_min_messages});
	sq('SELECT pg_reload_conf()');
	my $a = slot_stats();
	if ($a->{txns} > $b->{txns} && $a->{bytes} > $b->{bytes})
	{
		$row_bytes = ($a->{bytes} - $b->{bytes}) / 200000;
		note(sprintf('case 1: %.1f bytes decoded per row (ev and ev_t)', $row_bytes));
	}

	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $file = "$dir/ev.copy";
	sq("COPY (SELECT * FROM gen(2, 100000)) TO '$file'");
	$b = slot_stats();
	sq("BEGIN;\nCOPY ev FROM '$file';\nCOPY ev_t FROM '$file';\nCOMMIT;");
	sq('SELECT rtstream.sync()');
	wait_stream_txns($b, 1, 'case 1: the 100k-row COPY was streamed');
	is(truth_rows(), '300000', 'case 1: 300000 rows committed');
	check_ev('case 1 (a large INSERT ... SELECT and a large COPY)');
}
elapsed('case 1');

# ---------------------------------------------------------------------------
# 2. Large transactions that abort after being streamed
# ---------------------------------------------------------------------------
{
	my $before = truth_rows();
	my $b = slot_stats();
	my $s = session();
	run_in($s, "BEGIN;\n" . ins(3, 100000, 1), 'case 2: ROLLBACK');
	wait_stream_txns($b, 1, 'case 2: the transaction to be rolled back streams while open');
	run_in($s, 'ROLLBACK;', 'case 2: ROLLBACK');

	# a session that ends with its transaction open: its backend aborts it
	$b = slot_stats();
	run_in($s, "BEGIN;\n" . ins(4, 50000, 1), 'case 2: session ending');
	wait_stream_txns($b, 1, 'case 2: the transaction of the session that ends streams while open');
	end_session($s);
	ok(wait_until(q{SELECT count(*) = 0 FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'}, 30),
		'case 2: the backend of the session that ended is gone');
	# a committed transaction after them
	sq("BEGIN;\n" . ins(5, 20000) . "\nCOMMIT;");
	is(truth_rows(), $before + 20000, 'case 2: only the 20000 rows after the aborts committed');
	check_ev('case 2 (aborted streamed transactions)');
}
elapsed('case 2');

# ---------------------------------------------------------------------------
# 3. Savepoints in a large transaction
# ---------------------------------------------------------------------------
{
	my $before = truth_rows();
	my $b = slot_stats();
	my $s = session();
	my $w = 'case 3';
	run_in($s, "BEGIN;\n" . ins(6, 30000), $w);                     # kept: 30000
	run_in($s, "SAVEPOINT s1;\n" . ins(40, 60000, 1), $w);
	wait_stream_rows($b, 30000 + 30000,
		'case 3: rows of savepoint s1 were streamed before ROLLBACK TO s1');
	run_in($s, "ROLLBACK TO SAVEPOINT s1;\n" . ins(7, 10000) . "\nRELEASE SAVEPOINT s1;", $w);    # kept: 10000
	run_in($s, "SAVEPOINT s2;\n" . ins(8, 30000) . "\nRELEASE SAVEPOINT s2;", $w);               # kept: 30000
	run_in($s, "SAVEPOINT o;\n" . ins(9, 20000) . "\nSAVEPOINT i;\n" . ins(41, 50000, 1), $w);   # kept: 20000
	wait_stream_rows($b, 30000 + 60000 + 10000 + 30000 + 20000 + 25000,
		'case 3: rows of the inner savepoint were streamed before ROLLBACK TO it');
	run_in($s, "ROLLBACK TO SAVEPOINT i;\n" . ins(10, 10000) . "\nRELEASE SAVEPOINT o;", $w);    # kept: 10000
	# a released savepoint inside one rolled back
	run_in($s, "SAVEPOINT o2;\nSAVEPOINT i2;\n" . ins(42, 30000, 1)
		  . "\nRELEASE SAVEPOINT i2;\nROLLBACK TO SAVEPOINT o2;\nRELEASE SAVEPOINT o2;", $w);
	# an exception block: an implicit savepoint rolled back
	run_in($s, 'DO $$ BEGIN ' . ins(43, 20000, 1)
		  . q{ RAISE EXCEPTION 'undo'; EXCEPTION WHEN raise_exception THEN NULL; END $$;}, $w);
	run_in($s, ins(11, 10000) . "\nCOMMIT;", $w);                    # kept: 10000
	end_session($s);
	wait_stream_txns($b, 1, 'case 3: the transaction was streamed');
	is(truth_rows(), $before + 110000, 'case 3: the 110000 rows outside rolled back savepoints committed');
	check_ev('case 3 (savepoints)');
}
elapsed('case 3');

# ---------------------------------------------------------------------------
# 4. Two sessions, interleaved large transactions
# ---------------------------------------------------------------------------
for my $round ([ 'commit first', 12 ], [ 'abort first', 16 ])
{
	my ($order, $tag) = @$round;
	my $w = "case 4 ($order)";
	my $before = truth_rows();
	my $b = slot_stats();
	my $c = session();    # commits
	my $r = session();    # rolls back
	run_in($c, 'BEGIN;', $w);
	run_in($r, 'BEGIN;', $w);
	for my $i (0, 1)
	{
		# both insert at once: their batches interleave in WAL
		start_in($c, ins($tag + $i, 25000));
		run_in($r, ins($tag + 2 + $i, 25000, 1), $w);
		run_in($c, 'SELECT 1;', $w);
	}
	wait_stream_txns($b, 2, "$w: both transactions stream while open");
	if ($order eq 'commit first')
	{
		run_in($c, 'COMMIT;', $w);
		run_in($r, 'ROLLBACK;', $w);
	}
	else
	{
		run_in($r, 'ROLLBACK;', $w);
		run_in($c, 'COMMIT;', $w);
	}
	end_session($_) for ($c, $r);
	is(truth_rows(), $before + 50000, "$w: the 50000 rows of the committed one");
	check_ev($w);
}
elapsed('case 4');

# ---------------------------------------------------------------------------
# 4b. The window whose cells another takes is dropped while a large
# transaction streams
# ---------------------------------------------------------------------------
{
	my $w = 'case 4b (a leader dropped)';
	sq(q{
CREATE TABLE dl_s (LIKE ev);
CREATE TABLE dl_t (LIKE ev);
SELECT rtstream.create_stream('dl_s', partition_by => 'k');
SELECT rtstream.create_window('dl_lead',
  'SELECT k % 50 AS g, count(*) AS n, sum(v) AS sv, max(x) AS hi FROM dl_s GROUP BY k % 50',
  size => '2 minutes', slide => '30 seconds', time_column => 'ts', allowed_lateness => '10 minutes');
SELECT rtstream.create_window('dl_fol',
  'SELECT k % 50 AS g, count(*) AS n, sum(v) AS sv FROM dl_s GROUP BY k % 50',
  size => '4 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '10 minutes');
});
	rts_wait_ready($node);
	my $log_offset = -s $node->logfile;
	my $b = slot_stats();
	my $s = session();
	run_in($s, "BEGIN;\nINSERT INTO dl_s SELECT * FROM gen(40, 60000);\nINSERT INTO dl_t SELECT * FROM gen(40, 60000);", $w);
	wait_stream_txns($b, 1, "$w: the transaction streams while open");
	sq(q{SELECT rtstream.drop_window('dl_lead')});
	run_in($s, "INSERT INTO dl_s SELECT * FROM gen(41, 60000);\nINSERT INTO dl_t SELECT * FROM gen(41, 60000);\nCOMMIT;", $w);
	end_session($s);
	sq('SELECT rtstream.sync()');
	check_same("$w: dl_fol",
		q{SELECT * FROM rtstream.window_results('dl_fol', NULL::dl_fol)}, q{
SELECT to_timestamp(we - 240) AS window_start, to_timestamp(we) AS window_end, k % 50 AS g,
       count(*) AS n, sum(v) AS sv
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint * 60 AS b, * FROM dl_t) x,
       generate_series(b + 60, b + 240, 60) we
 GROUP BY we, k % 50},
		[qw(window_start window_end g)], [qw(n sv)]);
	like(slurp_file($node->logfile, $log_offset), qr/asks the router to decode again/,
		"$w: the workers had the transaction decoded again");
	sq(q{SELECT rtstream.drop_stream('dl_s', cascade => true)});
}
elapsed('case 4b');

# ---------------------------------------------------------------------------
# 5. Faults
# ---------------------------------------------------------------------------

# (a) an immediate stop while a large streamed transaction is open: it never
# committed, nothing of it counts
{
	my $w = 'case 5a (immediate stop, transaction open)';
	sq('SELECT rtstream.checkpoint()');
	my $before = truth_rows();
	my $b = slot_stats();
	my $s = session();
	run_in($s, "BEGIN;\n" . ins(50, 60000, 1), $w);
	wait_stream_txns($b, 1, "$w: the open transaction streams");
	$node->stop('immediate');
	end_session($s);
	$node->start;
	rts_wait_ready($node);
	is(truth_rows(), $before, "$w: nothing of it committed");
	# rows after the restart
	sq("BEGIN;\n" . ins(51, 20000) . "\nCOMMIT;");
	check_ev($w);
}
elapsed('case 5a, open');

# an immediate stop after the commit of a large streamed transaction, no
# rtstream checkpoint since: replayed, counted once
for my $variant ('after rtstream.sync()', 'right after COMMIT')
{
	my $w = "case 5a (immediate stop $variant)";
	sq('SELECT rtstream.checkpoint()');
	my $before = truth_rows();
	my $b = slot_stats();
	my $tag = $variant =~ /sync/ ? 52 : 53;
	my $s = session();
	run_in($s, "BEGIN;\n" . ins($tag, 60000), $w);
	wait_stream_txns($b, 1, "$w: the transaction streams while open");
	my $lsn = run_in($s, 'SELECT pg_current_wal_insert_lsn();', $w) // '0/0';
	run_in($s, 'COMMIT;', $w);
	end_session($s);
	if ($variant =~ /sync/)
	{
		sq('SELECT rtstream.sync()');
		is( sq(qq{
SELECT count(*) FILTER (WHERE checkpoint_lsn IS NULL OR checkpoint_lsn < '$lsn') || ' ' || count(*)
  FROM rtstream.stats WHERE process LIKE 'worker%'}),
			'2 2', "$w: applied, and no worker checkpointed it");
	}
	$node->stop('immediate');
	$node->start;
	rts_wait_ready($node);
	is(truth_rows(), $before + 60000, "$w: its 60000 rows committed");
	check_ev($w);
}
elapsed('case 5a');

# (b), (c) SIGTERM while a large transaction streams: the process restarts
# (the worker alone); what was streamed before is lost with it, so the
# transaction must come again; more rows after the restart, then COMMIT
for my $victim ('worker 0', 'router')
{
	my $w = "case 5 (SIGTERM $victim while a large transaction streams)";
	my $tag = $victim eq 'router' ? 60 : 55;
	sq('SELECT rtstream.checkpoint()');
	my $before = truth_rows();
	my $pids = sq(q{SELECT string_agg(process || ' ' || pid, ', ' ORDER BY process) FROM rtstream.stats});
	my $b = slot_stats();
	my $s = session();
	run_in($s, "BEGIN;\n" . ins($tag, 40000), $w);
	wait_stream_txns($b, 1, "$w: the transaction streams while open");
	my $pid = rts_pid($node, $victim);
	# the signal comes while the next rows are inserted and streamed
	start_in($s, ins($tag + 1, 40000));
	sleep(0.3);
	ok(kill('TERM', $pid), "$w: SIGTERM $victim ($pid)");
	ok( wait_until(qq{
SELECT pid IS NOT NULL AND pid <> $pid FROM rtstream.stats WHERE process = '$victim'}, 60),
		"$w: the $victim is back");
	run_in($s, 'SELECT 1;', $w);
	run_in($s, ins($tag + 2, 20000) . "\nCOMMIT;", $w);
	end_session($s);
	is(truth_rows(), $before + 100000, "$w: its 100000 rows committed");
	check_ev($w);
	if ($victim =~ /^worker/)
	{
		# the other workers kept their pids
		my $others = sq(qq{
SELECT string_agg(process || ' ' || pid, ', ' ORDER BY process) FROM rtstream.stats
 WHERE process LIKE 'worker%' AND process <> '$victim'});
		my $expected = join(', ', grep { /^worker/ && !/^\Q$victim\E / } split(/, /, $pids));
		is($others, $expected, "$w: the other workers were not restarted");
	}
}
elapsed('case 5');

# ---------------------------------------------------------------------------
# 6. Sessions and dead letters: on (streamed) against off
# ---------------------------------------------------------------------------
# Streams sa and sb, the same windows on each: sessions (gap 30 s), a
# tumbling window keeping its late rows as dead letters, a plain tumbling
# window; lateness 1 minute, history.  Phase A (small): keys 1 .. 200 at
# T2 + 0 .. 9 minutes: the watermark is T2 + 8 min.  Phase B (60000 rows in
# one transaction): rows ascending from T2 + 9 min every 10 ms (keys in
# turn, so every partition's newest time moves on), among them
#   v >= 700000: 1 row in 97 at T2 + 2 min: behind the watermark of phase
#     A, late however judged;
#   530000 <= v < 700000: 1 row in 53 of the last 6000 at T2 + 10 min:
#     late row by row (their partition is at T2 + 18 min by then), not when
#     the transaction is judged as a whole at its commit (the watermark
#     is then T2 + 8 min).
# Phase C (small): keys 1 .. 200 an hour later: everything closes.
my $T2 = '2031-01-01 00:00:00+00';
sq(qq{
CREATE FUNCTION gen_b(n int) RETURNS TABLE (k int, v int, ts timestamptz) LANGUAGE sql IMMUTABLE AS \$\$
  SELECT g % 200 + 1,
         CASE WHEN g % 97 = 0 THEN 700000 + g
              WHEN g > n - 6000 AND g % 53 = 0 THEN 530000 + g
              ELSE g END,
         CASE WHEN g % 97 = 0 THEN timestamptz '$T2' + interval '2 minutes' + (g % 60) * interval '1 second'
              WHEN g > n - 6000 AND g % 53 = 0 THEN timestamptz '$T2' + interval '10 minutes' + (g % 60) * interval '1 second'
              ELSE timestamptz '$T2' + interval '9 minutes' + g * interval '10 milliseconds' END
    FROM generate_series(1, n) g
\$\$;
});
for my $x ('a', 'b')
{
	sq(qq{
CREATE TABLE s$x (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE s${x}_t (LIKE s$x);
CREATE TABLE s${x}_late (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
SELECT rtstream.create_stream('s$x', partition_by => 'k');
SELECT rtstream.create_window('s${x}_sess',
  'SELECT k, count(*) AS n, sum(v) AS total, max(ts) AS last FROM s$x GROUP BY k',
  gap => '30 seconds', time_column => 'ts', allowed_lateness => '1 minute', history => true);
SELECT rtstream.create_window('s${x}_dl',
  'SELECT k % 10 AS g, count(*) AS n, sum(v) AS total FROM s$x GROUP BY k % 10',
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 minute', history => true,
  late_policy => 'dead_letter', dead_letter_table => 's${x}_late');
SELECT rtstream.create_window('s${x}_cnt',
  'SELECT k % 10 AS g, count(*) AS n, sum(v) AS total FROM s$x GROUP BY k % 10',
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 minute', history => true);
SELECT rtstream.create_window('s${x}_long',
  'SELECT k % 10 AS g, count(*) AS n, sum(v) AS total FROM s$x GROUP BY k % 10',
  size => '10 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '1 minute',
  history => true);
SELECT rtstream.create_window('s${x}_long2',
  'SELECT k % 10 AS g, count(*) AS n, sum(v) AS total, bool_or(v > 0) AS anyp FROM s$x GROUP BY k % 10',
  size => '10 minutes', slide => '1 minute', time_column => 'ts', allowed_lateness => '1 minute',
  history => true);
});
}
rts_wait_ready($node);
for my $x ('a', 'b')
{
	my $sel = "SELECT k, i, timestamptz '$T2' + i * interval '1 minute' FROM generate_series(0, 9) i, generate_series(1, 200) k";
	sq("BEGIN;\nINSERT INTO s$x $sel;\nINSERT INTO s${x}_t $sel;\nCOMMIT;");
}
sq('SELECT rtstream.sync()');

# phase B into sa, streamed
{
	my $w = 'case 6 (sa, apply_in_progress on)';
	sq(q{ALTER SYSTEM SET log_min_messages = debug1});
	sq('SELECT pg_reload_conf()');
	sleep(1);
	my $log_offset = -s $node->logfile;
	my $b = slot_stats();
	my $s = session();
	run_in($s, "BEGIN;\nINSERT INTO sa SELECT * FROM gen_b(60000);\nINSERT INTO sa_t SELECT * FROM gen_b(60000);", $w);
	wait_stream_txns($b, 1, "$w: the transaction streams while open");
	run_in($s, 'COMMIT;', $w);
	end_session($s);
	sq('SELECT rtstream.sync()');
	like(slurp_file($node->logfile, $log_offset),
		qr/rtstream window "(sa_long|sa_cnt)" takes the cells of window "(sa_cnt|sa_long)"/,
		"$w: sa_cnt and sa_long share their cells");
	sq(q{ALTER SYSTEM RESET log_min_messages});
	sq('SELECT pg_reload_conf()');
}
elapsed('case 6, sa');

# ---------------------------------------------------------------------------
# 8. apply_in_progress off (and phase B of case 6 into sb meanwhile)
# ---------------------------------------------------------------------------
sub set_apply_in_progress
{
	my ($value) = @_;
	my $sql = $value eq 'default'
	  ? 'ALTER SYSTEM RESET rtstream.apply_in_progress'
	  : "ALTER SYSTEM SET rtstream.apply_in_progress = $value";
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	is($ret, 0, "case 8: $sql") or diag($err);
	sq('SELECT pg_reload_conf()');
	my $want = $value eq 'default' ? 'on' : $value;
	ok( wait_until(
			"SELECT coalesce(current_setting('rtstream.apply_in_progress', true), '') = '$want'", 10),
		"case 8: rtstream.apply_in_progress is $want after the reload");
	# the router and the workers take it at their next loop
	sleep(1);
	sq('SELECT rtstream.sync()');
}

set_apply_in_progress('off');
{
	my $w = 'case 8 (apply_in_progress off)';
	my $before = truth_rows();
	my $b = slot_stats();
	my $s = session();
	run_in($s, "BEGIN;\n" . ins(70, 80000), $w);
	# as long as the router would take to stream it
	sleep(2);
	run_in($s, 'COMMIT;', $w);
	sq('SELECT rtstream.sync()');
	# case 6, phase B into sb
	run_in($s, "BEGIN;\nINSERT INTO sb SELECT * FROM gen_b(60000);\nINSERT INTO sb_t SELECT * FROM gen_b(60000);", $w);
	sleep(1);
	run_in($s, 'COMMIT;', $w);
	end_session($s);
	sq('SELECT rtstream.sync()');
	my $a = slot_stats();
	is($a->{txns}, $b->{txns}, "$w: no transaction was streamed")
	  or diag('pg_stat_replication_slots: ' . slot_text());
	ok($a->{spill} >= $b->{spill} + 2, "$w: both large transactions were spilled instead")
	  or diag('pg_stat_replication_slots: ' . slot_text());
	is(truth_rows(), $before + 80000, "$w: its 80000 rows committed");
	check_ev($w);
}
set_apply_in_progress('default');
elapsed('case 8');

# ---------------------------------------------------------------------------
# 6, continued: phase C, then compare
# ---------------------------------------------------------------------------
for my $x ('a', 'b')
{
	my $sel = "SELECT k, 1, timestamptz '$T2' + interval '1 hour' FROM generate_series(1, 200) k";
	sq("BEGIN;\nINSERT INTO s$x $sel;\nINSERT INTO s${x}_t $sel;\nCOMMIT;");
}
sq('SELECT rtstream.sync()');
{
	my $w = 'case 6';
	my $late_sql = q{
SELECT coalesce(sum(late_rows), 0) FROM rtstream.window_stats WHERE window_name = '%s'};
	my %late = map { $_ => sq(sprintf($late_sql, $_)) }
	  qw(sa_sess sb_sess sa_dl sb_dl sa_cnt sb_cnt);
	my ($n700, $n530) = split /\|/, sq(q{
SELECT count(*) FILTER (WHERE v >= 700000), count(*) FILTER (WHERE v >= 530000) FROM sa_t});
	note("case 6: late rows: " . join(', ', map { "$_ $late{$_}" } sort keys %late)
		  . "; rows v >= 700000: $n700, v >= 530000: $n530");
	ok($n700 > 0 && $n530 > $n700, "$w: the data has both kinds of late rows ($n700, $n530)");

	# sessions and dead letters: the same on both streams
	is($late{sa_sess}, $late{sb_sess}, "$w: sessions: as many late rows on and off ($late{sb_sess})");
	ok($late{sb_sess} > 0, "$w: sessions: some rows were late");
	for my $what ('history', 'open')
	{
		my $q = sub {
			my ($win) = @_;
			return "SELECT window_start, window_end, k, n, total, last FROM "
			  . ($what eq 'history' ? "${win}_history" : "rtstream.window_results('$win', NULL::$win)");
		};
		my ($l, $r, $rows) = rts_diff($node, $q->('sa_sess'), $q->('sb_sess'));
		is("$l $r", '0 0', "$w: sessions ($what): the same with apply_in_progress on and off")
		  or diag($rows);
	}
	ok(sq('SELECT count(*) FROM sa_sess_history') > 200, "$w: sessions closed into the history");
	is( sq(q{
SELECT (SELECT sum(n) FROM sa_sess_history) + (SELECT coalesce(sum(n), 0) FROM rtstream.window_results('sa_sess', NULL::sa_sess))
       + (SELECT sum(late_rows) FROM rtstream.window_stats WHERE window_name = 'sa_sess')
       = (SELECT count(*) FROM sa_t)}), 't', "$w: sessions: every row counted or late, once");

	is($late{sa_dl}, $n530, "$w: dead letters (on): the rows late row by row are late");
	is($late{sb_dl}, $n530, "$w: dead letters (off): the rows late row by row are late");
	for my $x ('a', 'b')
	{
		my ($l, $r, $rows) = rts_diff($node, "SELECT (row_data::s$x).* FROM s${x}_late",
			"SELECT * FROM s${x}_t WHERE v >= 530000");
		is("$l $r", '0 0', "$w: s${x}_dl: the dead letters are exactly the late rows") or diag($rows);
	}
	{
		my ($l, $r, $rows) = rts_diff($node,
			q{SELECT row_data, regexp_replace(error, 'window "s._dl"', 'window') FROM sa_late},
			q{SELECT row_data, regexp_replace(error, 'window "s._dl"', 'window') FROM sb_late});
		is("$l $r", '0 0', "$w: dead letters: the same rows and errors on and off") or diag($rows);
	}

	# each tumbling window against SQL over the rows it should count
	my $tumble = q{
SELECT to_timestamp(b * 60) AS window_start, to_timestamp(b * 60 + 60) AS window_end, k %% 10 AS g,
       count(*) AS n, sum(v) AS total
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint AS b, k, v FROM (%s) r) x
 GROUP BY b, k %% 10};
	my %counted = (
		sa_dl => 'SELECT k, v, ts FROM sa_t WHERE v < 530000',
		sb_dl => 'SELECT k, v, ts FROM sb_t WHERE v < 530000',
		# the documented difference: on, the streamed transaction is judged
		# late as a whole at its commit, against the watermark of phase A
		sa_cnt => 'SELECT k, v, ts FROM sa_t WHERE v < 530000 OR v >= 530000 AND v < 700000',
		sb_cnt => 'SELECT k, v, ts FROM sb_t WHERE v < 530000',
	);
	for my $win (sort keys %counted)
	{
		check_same("$w: $win (history and open windows)",
			"SELECT * FROM ${win}_history UNION ALL SELECT * FROM rtstream.window_results('$win', NULL::$win)",
			sprintf($tumble, $counted{$win}),
			[qw(window_start window_end g)], [qw(n total)]);
	}
	is($late{sa_cnt}, $n700,
		"$w: sa_cnt (on): late only the rows behind the watermark at the commit");
	is($late{sb_cnt}, $n530, "$w: sb_cnt (off): late the rows late row by row");

	# s?_long takes the cells of s?_cnt on sa (rows, key and aggregates,
	# panes of 60 s), but judges them by its own windows: it equals its
	# twin s?_long2, which has an aggregate of the catalog path more and so
	# its own cells, in its history, its open windows and its late rows;
	# some of its windows closed while sa_cnt's rows of them were late, some
	# got them
	for my $x ('a', 'b')
	{
		my $hist = "SELECT window_start, window_end, g, n, total FROM %s_history UNION ALL "
		  . "SELECT window_start, window_end, g, n, total FROM rtstream.window_results('%s', NULL::%s)";
		check_same("$w: s${x}_long against s${x}_long2 (history and open windows)",
			sprintf($hist, ("s${x}_long") x 3), sprintf($hist, ("s${x}_long2") x 3),
			[qw(window_start window_end g)], [qw(n total)]);
		is(sq(sprintf($late_sql, "s${x}_long")), sq(sprintf($late_sql, "s${x}_long2")),
			"$w: s${x}_long: as many late rows as s${x}_long2");
	}
	ok(sq(sprintf($late_sql, 'sa_long')) < $late{sa_cnt},
		"$w: sa_long: fewer late rows than sa_cnt, whose cells it took");
}
elapsed('case 6');

# ---------------------------------------------------------------------------
# 7. Trust: an ordinary role's stream, window and aggregate
# ---------------------------------------------------------------------------
{
	my $w = 'case 7';
	sq(q{
CREATE ROLE rita LOGIN NOSUPERUSER;
CREATE TABLE secret (x int);
INSERT INTO secret VALUES (42);
GRANT CREATE ON SCHEMA public TO rita;
});
	# r_note(tag) records who runs it, where, and whether it could read
	# secret or make rita a superuser; it never raises.  The transition
	# records every 500th row, the combine every call.
	psql_as('rita', q{
CREATE TABLE rs (k int NOT NULL, v int NOT NULL);
CREATE TABLE rs_t (LIKE rs);
CREATE TABLE r_log (vector text, usr text, super boolean, backend text, read_secret boolean,
                    at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION r_note(tag text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b text;
    s int;
    got boolean := false;
BEGIN
    BEGIN
        SELECT a.backend_type INTO b FROM pg_stat_get_activity(pg_backend_pid()) a;
    EXCEPTION WHEN OTHERS THEN
        b := 'unknown';
    END;
    BEGIN
        SELECT x INTO s FROM secret LIMIT 1;
        got := true;
    EXCEPTION WHEN OTHERS THEN
        got := false;
    END;
    BEGIN
        ALTER ROLE rita SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    INSERT INTO r_log (vector, usr, super, backend, read_secret)
    VALUES (tag, current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
            coalesce(b, 'unknown'), got);
END
$$;
CREATE FUNCTION r_sfunc(st int8, v int) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    IF v % 500 = 0 THEN
        PERFORM r_note('sfunc');
    END IF;
    RETURN coalesce(st, 0) + v;
END
$$;
CREATE FUNCTION r_combine(a int8, b int8) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM r_note('combine');
    RETURN coalesce(a, 0) + coalesce(b, 0);
END
$$;
CREATE AGGREGATE r_sum(int) (sfunc = r_sfunc, stype = int8, combinefunc = r_combine, initcond = '0');
SELECT rtstream.create_stream('rs', partition_by => 'k');
SELECT rtstream.create_window('r_w', 'SELECT k % 20 AS g, count(*) AS n, r_sum(v) AS total FROM rs GROUP BY k % 20',
  size => '1 day', origin => date_trunc('hour', now()) - interval '1 hour');
});
	is(sq(q{SELECT c.relowner::regrole FROM rtstream.windows w JOIN pg_class c ON c.oid = w.view WHERE w.name = 'r_w'}),
		'rita', "$w: rita owns the window");
	rts_wait_ready($node);
	my $rows = sub {
		my ($n, $shift) = @_;
		my $sel = "SELECT g % 1000, (g * 7 + $shift) % 1000 FROM generate_series(1, $n) g";
		return "INSERT INTO rs $sel;\nINSERT INTO rs_t $sel;";
	};
	# a small transaction first: the streamed one merges into existing states
	psql_as('rita', "BEGIN;\n" . $rows->(1000, 0) . "\nCOMMIT;");
	sq('SELECT rtstream.sync()');

	my $b = slot_stats();
	my $s = session('rita');
	# calls recorded after this are the large transaction's (or reads')
	my $t0 = run_in($s, 'SELECT clock_timestamp();', $w) // '-infinity';
	run_in($s, "BEGIN;\n" . $rows->(40000, 3), $w);
	wait_stream_txns($b, 1, "$w: rita's transaction streams while open (apply_in_progress on again)");
	# give the workers time to apply what was streamed
	wait_until(qq{
SELECT count(*) > 0 FROM r_log WHERE vector = 'sfunc' AND backend <> 'client backend' AND at > '$t0'}, 10);
	my $tc = run_in($s, 'SELECT clock_timestamp();', $w) // 'infinity';
	run_in($s, 'COMMIT;', $w);
	end_session($s);
	sq('SELECT rtstream.sync()');

	my %log = map { my ($k, $v) = split /\|/; $k => $v } split /\n/, sq(qq{
SELECT 'sfunc_open', count(*) FROM r_log
 WHERE vector = 'sfunc' AND backend <> 'client backend' AND at > '$t0' AND at < '$tc'
UNION ALL
SELECT 'combine_commit', count(*) FROM r_log WHERE vector = 'combine' AND backend <> 'client backend' AND at >= '$tc'
UNION ALL
SELECT 'wrong_user', count(*) FROM r_log WHERE usr IS DISTINCT FROM 'rita' OR super IS DISTINCT FROM false
UNION ALL
SELECT 'read_secret', count(*) FROM r_log WHERE read_secret IS DISTINCT FROM false
UNION ALL
SELECT 'all', count(*) FROM r_log});
	note("case 7: r_log: " . join(', ', map { "$_ $log{$_}" } sort keys %log));
	ok($log{sfunc_open} > 0,
		"$w: transitions ran in a worker while the transaction was open ($log{sfunc_open} recorded)");
	ok($log{combine_commit} > 0,
		"$w: combines ran in a worker at the commit ($log{combine_commit} recorded)");
	is($log{wrong_user}, '0', "$w: every recorded call ran as rita, not a superuser ($log{all} calls)");
	is($log{read_secret}, '0', "$w: no call could read a table only a superuser may read");
	is(sq(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'rita'}), 'f', "$w: rita is still not a superuser");
	is(sq(q{SELECT count(*) FROM pg_auth_members WHERE member = 'rita'::regrole}), '0',
		"$w: rita was granted no role");
	is(sq(q{SELECT string_agg(x::text, ',') FROM secret}), '42', "$w: secret is unchanged");
	# read as rita: reading runs her combine and final functions
	check_same("$w: r_w", 'SELECT g, n, total FROM r_w',
		'SELECT k % 20 AS g, count(*) AS n, sum(v)::int8 AS total FROM rs_t GROUP BY k % 20',
		[qw(g)], [qw(n total)], [], 'rita');
	is( sq(q{SELECT count(*) FROM r_log WHERE usr IS DISTINCT FROM 'rita' OR super IS DISTINCT FROM false}),
		'0', "$w: and reading it as rita ran nothing as anyone else");
	is( sq(q{
SELECT count(*) FROM rtstream.window_stats WHERE window_name = 'r_w' AND (state <> 'running' OR error IS NOT NULL)}),
		'0', "$w: r_w runs without error");
}
elapsed('case 7');

# rtstream.background_nice (10 by default): the router and the workers run
# at that nice value, and on Linux with autogroups their autogroups too
# (the scheduler shares the CPU among autogroups first).  A refused change
# of an autogroup (one per 100 ms across the machine) is tried again from
# the main loops: give them a few seconds.
{
	my %want = ('router' => 10, 'worker 0' => 10, 'worker 1' => 10);
	for my $process (sort keys %want)
	{
		my $pid = sq("SELECT pid FROM rtstream.stats WHERE process = '$process'");
		my $stat = slurp_file("/proc/$pid/stat");
		# the fields after the command (in parentheses): nice is field 19
		my @f = split(/ /, substr($stat, rindex($stat, ')') + 2));
		is($f[16], $want{$process}, "background_nice: $process runs at nice 10");
		SKIP:
		{
			skip 'no autogroups on this kernel', 1 unless -r "/proc/$pid/autogroup";
			my $ag = '';
			for (1 .. 50)
			{
				$ag = slurp_file("/proc/$pid/autogroup");
				last if $ag =~ /nice 10\b/;
				select(undef, undef, undef, 0.2);
			}
			like($ag, qr/nice 10\b/, "background_nice: ${process}'s autogroup at nice 10");
		}
	}
}

# no process crashed (SIGTERM makes a process exit, not crash)
my $log = slurp_file($node->logfile);
my @bad = ($log =~ /^.*(?:terminated by signal|TRAP:|PANIC:).*$/mg);
is(scalar(@bad), 0, 'no crash in the server log') or diag(join("\n", @bad));

$node->stop;
elapsed('done');
done_testing();
