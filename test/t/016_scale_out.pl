# Issue 13: windows over several PostgreSQL servers through postgres_fdw.
# Four local servers: a coordinator (rtstream, postgres_fdw, the truth
# table) and the nodes n1, n2, n3 (rtstream), each a postgres_fdw foreign
# server of the coordinator.  The stream clicks is distributed over n1 and
# n2 (n3 joins later).  Every check compares, on the coordinator, the view
# (the current window) AND rtstream.window_results() (every open window) of
# every window with plain SQL over the truth table, which gets the same rows
# in the same transactions:
#   clicks_tumble  1 minute, by page (the partition key): count, sum, avg,
#                  min, max over float8
#   clicks_1m      1 minute sliding by 10 seconds, by page
#   clicks_region  1 minute sliding by 30 seconds, by region (not the
#                  partition key: every group is split over the nodes)
#   clicks_cat     1 minute, by region: sum, avg, max of numeric (the
#                  catalog path's combine functions)
#   clicks_all     1 minute, one global group
#   clicks_users   1 minute, by region: count(DISTINCT user_id) (skipped,
#                  and reported, if it cannot be created)
# Every row's time is within three minutes and every window allows an hour
# of lateness: no window closes, results do not depend on arrival order.
#
# 1. Rows through the coordinator (INSERT, COPY, small transactions, NULL
#    group keys, ~2000 keys): exact; rtstream.nodes lists both nodes with
#    disjoint partitions covering 0..63 and nothing pending after sync();
#    the rows are really spread (each node's own results hold rows, every
#    page on one node only, a node's rows = what its rtstream.deliveries
#    says it applied).
# 2. Rows straight into n1's and n2's stream tables (clients routing
#    themselves; pages that also got rows through the coordinator, and
#    pages owned by the other node): exact on the coordinator.
# 3. Concurrent pgbench writers through the coordinator, with aborted
#    transactions and rolled-back savepoints (and explicit ones): exact.
# 4. add_node('clicks', 'n3') while writers run: reads during the writes
#    never count more rows than were committed; after: exact; n3 owns about
#    1/3 of the partitions, which are exactly those that left n1 and n2;
#    groups split between an old owner and n3 combine.  Then
#    remove_node('clicks', 'n1') under load: n1 'draining', gets no new
#    rows, is still read; exact; remove_node(..., drop => true) raises
#    object_not_in_prerequisite_state while n1 still holds groups.
# 5. n2 stopped (immediate) while writers run through the coordinator:
#    writers do not fail; reading raises an ERROR naming n2; with
#    rtstream.allow_partial_results a WARNING naming n2 and exactly the
#    other nodes' part; rtstream.nodes shows rows pending and last_error
#    for n2; n2 started: exact (nothing lost, nothing doubled).
# 6. The coordinator killed mid-delivery of a large COPY: an immediate stop
#    as soon as one node has committed its part; and a SIGKILL of the
#    rtstream shipper while it delivers (a crash restart): exact after.
# 7. Two-phase commit through the coordinator: prepared rows count only at
#    COMMIT PREPARED, never after ROLLBACK PREPARED, also with an immediate
#    stop of the coordinator in between.
# 8. A non-owner role gains nothing: add_node/remove_node raise
#    insufficient_privilege on the coordinator; on a node, rows or a
#    position sent through rtstream.inbox for a stream it does not own
#    raise insufficient_privilege, and rtstream.deliveries and the windows
#    are unchanged (the coordinator's deliveries still count after).
# 9. History exactly once across nodes (a stream of its own over n2 and
#    n3): each window closed on every node is in the coordinator's history table
#    once, combined from every node, equal to the truth, and the others are
#    in window_results; then n3 leaves the ring: the history goes on as
#    time moves on through n2 alone (as one server holding every row would
#    close them), and remove_node(..., drop => true) succeeds once n3's
#    windows are in the history.
# 10. An ordinary role's distributed stream and window with history: the
#    triggers the shipper fires for it (on its inbox foreign table, on its
#    history table) run as that role, not as a superuser; results exact.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IPC::Run;
use RtsTest;

my $t_begin = time;
my $coord = rts_node('coord', conf => "max_prepared_transactions = 10\n");
my %node = map { $_ => rts_node($_) } qw(n1 n2 n3);
my $xfer = PostgreSQL::Test::Utils::tempdir;

sub sq
{
	my ($sql) = @_;
	return $coord->safe_psql('postgres', $sql);
}

sub elapsed
{
	my ($what) = @_;
	note(sprintf('%s: %.1f s', $what, time - $t_begin));
}

# The rows of the tests: row i of a deterministic sequence.  Pages p0 ..
# p1999 and NULL, times within [12:00:00, 12:03:00), latencies multiples of
# 0.25 (float8 sums are exact whatever the order), regions r0 .. r4 and
# NULL, numeric amounts, 700 users.
my $gen = q{
CREATE FUNCTION gen(i0 bigint, n int)
RETURNS TABLE (ts timestamptz, page text, latency_ms float8, region text, amount numeric, user_id int)
LANGUAGE sql IMMUTABLE AS $$
  SELECT '2026-06-01 12:00:00+00'::timestamptz + ((i * 7) % 180) * interval '1 second',
         CASE WHEN i % 97 = 0 THEN NULL ELSE 'p' || (i * 7919 % 2000) END,
         ((i * 13) % 4000) / 4.0::float8,
         CASE WHEN i % 11 = 0 THEN NULL ELSE 'r' || (i % 5) END,
         round(((i * 17) % 10000) / 100.0, 2),
         (i * 101 % 700)::int
    FROM generate_series(i0, i0 + n - 1) i
$$;
};

for my $n (sort keys %node)
{
	$node{$n}->safe_psql('postgres', "CREATE EXTENSION rtstream;\n$gen");
	rts_wait_ready($node{$n});
}

my $servers = join('', map {
	my $h = $node{$_}->host;
	my $p = $node{$_}->port;
	"CREATE SERVER $_ FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$h', port '$p', dbname 'postgres', async_capable 'true');\n"
	  . "CREATE USER MAPPING FOR CURRENT_USER SERVER $_;\n"
} sort keys %node);
sq("CREATE EXTENSION rtstream;\nCREATE EXTENSION postgres_fdw;\n$servers");
rts_wait_ready($coord);
sq(q{
SET timezone = 'UTC';
CREATE TABLE clicks (ts timestamptz NOT NULL, page text, latency_ms float8, region text, amount numeric, user_id int);
CREATE TABLE truth (LIKE clicks);
-- each node's own results of clicks_tumble, copied here
CREATE TABLE node_res (node text, window_start timestamptz, window_end timestamptz, page text,
                       hits bigint, total_ms float8, min_ms float8, max_ms float8);
-- every slide position holding t (setup.sql)
CREATE FUNCTION et_windows(t timestamptz, size interval, slide interval,
                           OUT ws timestamptz, OUT we timestamptz)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
    SELECT e - size, e
      FROM generate_series(
             to_timestamp(floor(extract(epoch FROM t) / extract(epoch FROM slide))
                          * extract(epoch FROM slide)) + slide,
             to_timestamp(floor(extract(epoch FROM t) / extract(epoch FROM slide))
                          * extract(epoch FROM slide)) + size,
             slide) e
$$;
-- the end of the current window: the first slide boundary after newest
CREATE FUNCTION cur_end(newest timestamptz, slide interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_timestamp((floor(extract(epoch FROM newest) / extract(epoch FROM slide)) + 1)
                        * extract(epoch FROM slide))
$$;
} . $gen);

my $t0 = time;
sq(q{
SELECT rtstream.create_stream('clicks', partition_by => 'page', nodes => ARRAY['n1', 'n2']);
SELECT rtstream.create_window('clicks_tumble',
  $$SELECT page, count(*) AS hits, sum(latency_ms) AS total_ms, avg(latency_ms) AS avg_ms,
           min(latency_ms) AS min_ms, max(latency_ms) AS max_ms FROM clicks GROUP BY page$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 hour');
SELECT rtstream.create_window('clicks_1m',
  $$SELECT page, count(*) AS hits, avg(latency_ms) AS avg_ms FROM clicks GROUP BY page$$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts', allowed_lateness => '1 hour');
SELECT rtstream.create_window('clicks_region',
  $$SELECT region, count(*) AS hits, count(page) AS with_page, sum(latency_ms) AS total_ms,
           max(ts) AS last_ts FROM clicks GROUP BY region$$,
  size => '1 minute', slide => '30 seconds', time_column => 'ts', allowed_lateness => '1 hour');
SELECT rtstream.create_window('clicks_cat',
  $$SELECT region, sum(amount) AS amount, avg(amount) AS avg_amount, max(amount) AS max_amount
      FROM clicks GROUP BY region$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 hour');
SELECT rtstream.create_window('clicks_all',
  $$SELECT count(*) AS n, count(page) AS with_page, sum(latency_ms) AS total_ms FROM clicks$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 hour');
});
note(sprintf('create_stream and five windows on two nodes: %.2f s', time - $t0));

# each window: its columns as compared (floats rounded where the order of
# additions could matter), and the same over the truth table
my @windows = (
	{
		name => 'clicks_tumble', size => '1 minute', slide => '1 minute', group => 'page',
		got => 'page, hits, total_ms, round(avg_ms::numeric, 9), min_ms, max_ms',
		truth => 'page, count(*) AS hits, sum(latency_ms) AS total_ms, round(avg(latency_ms)::numeric, 9) AS avg_ms, min(latency_ms) AS min_ms, max(latency_ms) AS max_ms'
	},
	{
		name => 'clicks_1m', size => '1 minute', slide => '10 seconds', group => 'page',
		got => 'page, hits, round(avg_ms::numeric, 9)',
		truth => 'page, count(*) AS hits, round(avg(latency_ms)::numeric, 9) AS avg_ms'
	},
	{
		name => 'clicks_region', size => '1 minute', slide => '30 seconds', group => 'region',
		got => 'region, hits, with_page, total_ms, last_ts',
		truth => 'region, count(*) AS hits, count(page) AS with_page, sum(latency_ms) AS total_ms, max(ts) AS last_ts'
	},
	{
		name => 'clicks_cat', size => '1 minute', slide => '1 minute', group => 'region',
		got => 'region, amount, round(avg_amount, 12), max_amount',
		truth => 'region, sum(amount) AS amount, round(avg(amount), 12) AS avg_amount, max(amount) AS max_amount'
	},
	{
		name => 'clicks_all', size => '1 minute', slide => '1 minute', group => undef,
		got => 'n, with_page, total_ms',
		truth => 'count(*) AS n, count(page) AS with_page, sum(latency_ms) AS total_ms'
	},
	{
		name => 'clicks_users', size => '1 minute', slide => '1 minute', group => 'region',
		got => 'region, users',
		truth => 'region, count(DISTINCT user_id) AS users',
		create => q{SELECT rtstream.create_window('clicks_users',
  $$SELECT region, count(DISTINCT user_id) AS users FROM clicks GROUP BY region$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '1 hour')}
	});

# clicks_users: created on its own, so that a refusal leaves the others
{
	my $w = $windows[-1];
	my ($ret, $out, $err) = $coord->psql('postgres', "\\set VERBOSITY verbose\n$w->{create}");
	if (!is($ret, 0, 'a window with count(DISTINCT x) on a distributed stream can be created'))
	{
		diag($err);
		$w->{skip} = 1;
	}
}

# Run SQL, expecting an error: (ret, stderr) with the SQLSTATE in it.
sub sql_err
{
	my ($n, $sql) = @_;
	my ($ret, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	return ($ret, $err);
}

sub truth_sql
{
	my ($w, $current) = @_;
	my $where = $current
	  ? "WHERE w.we = cur_end((SELECT max(ts) FROM truth), '$w->{slide}')" : '';
	my $group = defined $w->{group} ? ", $w->{group}" : '';
	return "SELECT w.ws, w.we, $w->{truth} FROM truth, et_windows(ts, '$w->{size}', '$w->{slide}') w $where GROUP BY w.ws, w.we$group";
}

# rtstream.sync() on the coordinator; if it fails, say why (rtstream.nodes)
# and stop: every later check would wait for it in vain.
sub sync_or_die
{
	my ($what) = @_;
	my ($ret, $out, $err) = $coord->psql('postgres', 'SELECT rtstream.sync()');
	return if $ret == 0;
	fail("$what: rtstream.sync() on the coordinator");
	diag($err);
	diag("rtstream.nodes:\n" . $coord->safe_psql('postgres', 'SELECT * FROM rtstream.nodes'));
	die "rtstream.sync() failed ($what): no later check can pass";
}

# One comparison as one line: R|label|rows only in got|rows only in truth|
# up to 10 of those rows.
sub diff_line_sql
{
	my ($label, $got, $truth) = @_;
	return qq{WITH g AS MATERIALIZED ($got), t AS MATERIALIZED ($truth),
  lo AS MATERIALIZED (SELECT * FROM g EXCEPT ALL SELECT * FROM t),
  ro AS MATERIALIZED (SELECT * FROM t EXCEPT ALL SELECT * FROM g)
SELECT 'R|$label|' || (SELECT count(*) FROM lo) || '|' || (SELECT count(*) FROM ro) || '|'
  || coalesce((SELECT string_agg('rtstream only: ' || x::text, ' ;; ') FROM (SELECT x FROM lo x LIMIT 10) s), '')
  || ' ;; ' || coalesce((SELECT string_agg('truth only: ' || x::text, ' ;; ') FROM (SELECT x FROM ro x LIMIT 10) s), '');
};
}

# Run comparisons in one session (after sync()), one is() each.
sub run_diffs
{
	my ($what, $setup, @cmp) = @_;
	sync_or_die($what);
	my $sql = "SET work_mem = '256MB';\n$setup";
	$sql .= diff_line_sql(@$_) for @cmp;
	my ($ret, $out, $err) = $coord->psql('postgres', $sql);
	is($ret, 0, "$what: the windows read") or diag($err);
	my %res = map { my @f = split /\|/, $_, 5; ($f[1] => \@f) } grep { /^R\|/ } split /\n/, $out;
	for my $c (@cmp)
	{
		my $f = $res{ $c->[0] };
		is($f ? "$f->[2] $f->[3]" : 'no result', '0 0', "$what: $c->[0] equals the truth")
		  or diag(join("\n", split / ;; /, $f ? $f->[4] : $err));
	}
	my ($truth, $counted) = split /\|/, sq(q{SELECT (SELECT count(*) FROM truth),
	  (SELECT sum(hits) FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble))});
	ok($truth > 0, "$what: $truth rows committed");
	is($counted // 0, $truth, "$what: no row lost, none counted twice");
}

# Every window's view and window_results equal the truth.
sub check_all
{
	my ($what) = @_;
	my $t = time;
	my $setup = '';
	my @cmp;
	for my $w (@windows)
	{
		next if $w->{skip};
		$setup .= "CREATE TEMP TABLE tr_$w->{name} AS " . truth_sql($w, 0) . ";\n";
		push @cmp, [ "$w->{name} (view)",
			"SELECT window_start, window_end, $w->{got} FROM $w->{name}",
			"SELECT * FROM tr_$w->{name} WHERE we = cur_end((SELECT max(ts) FROM truth), '$w->{slide}')" ];
		push @cmp, [ "$w->{name} (window_results)",
			"SELECT window_start, window_end, $w->{got} FROM rtstream.window_results('$w->{name}', NULL::$w->{name})",
			"SELECT * FROM tr_$w->{name}" ];
	}
	run_diffs($what, $setup, @cmp);
	note(sprintf('%s: checked in %.1f s', $what, time - $t));
}

# Quicker: the global window's every open window, and the total.
sub check_light
{
	my ($what) = @_;
	my ($w) = grep { $_->{name} eq 'clicks_all' } @windows;
	run_diffs($what, '', [ 'clicks_all (window_results)',
		"SELECT window_start, window_end, $w->{got} FROM rtstream.window_results('clicks_all', NULL::clicks_all)",
		truth_sql($w, 0) ]);
}

# rtstream.nodes of clicks: { node => [state, partitions as text] }
sub nodes_now
{
	my %r;
	for my $l (split /\n/, sq(q{SELECT node, state, coalesce(array_to_string(partitions, ','), '')
	  FROM rtstream.nodes WHERE stream = 'clicks'::regclass ORDER BY node}))
	{
		my ($n, $s, $p) = split /\|/, $l, -1;
		$r{$n} = [ $s, $p ];
	}
	return \%r;
}

sub parts { my ($t) = @_; return { map { $_ => 1 } grep { $_ ne '' } split /,/, $t }; }

# The partitions of the active nodes are disjoint and cover 0..63.
sub check_cover
{
	my ($what, $nodes, @active) = @_;
	my %seen;
	my $dup = 0;
	for my $n (@active)
	{
		for my $p (keys %{ parts($nodes->{$n}[1]) })
		{
			$dup++ if $seen{$p}++;
		}
	}
	is($dup, 0, "$what: the partitions of " . join(', ', @active) . ' are disjoint');
	is(join(',', sort { $a <=> $b } keys %seen), join(',', 0 .. 63), "$what: they cover 0..63");
}

# Each node's own results of clicks_tumble (every open window), into
# node_res here.
sub load_node_results
{
	my (@names) = @_;
	sq('TRUNCATE node_res');
	for my $n (@names)
	{
		my $file = "$xfer/$n.copy";
		$node{$n}->safe_psql('postgres', "COPY (SELECT '$n', window_start, window_end, page, hits, total_ms, min_ms, max_ms
		  FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)) TO '$file'");
		sq("COPY node_res FROM '$file'");
	}
}

sub node_sum
{
	my ($n) = @_;
	return $node{$n}->safe_psql('postgres',
		"SELECT coalesce(sum(hits), 0) FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)");
}

my $write = q{
\set i0 random(1, 1000000000)
\set n random(1, 8)
BEGIN;
INSERT INTO clicks SELECT * FROM gen(:i0, :n);
INSERT INTO truth SELECT * FROM gen(:i0, :n);
COMMIT;
};
my $rollback = q{
\set i0 random(1, 1000000000)
BEGIN;
INSERT INTO clicks SELECT * FROM gen(:i0, 30);
ROLLBACK;
BEGIN;
INSERT INTO clicks SELECT * FROM gen(:i0, 5);
INSERT INTO truth SELECT * FROM gen(:i0, 5);
SAVEPOINT a;
INSERT INTO clicks SELECT * FROM gen(:i0 + 5, 7);
ROLLBACK TO SAVEPOINT a;
COMMIT;
};

sub writers
{
	my ($seconds, $clients) = @_;
	return rts_pgbench($coord, $seconds, scripts => [ [ $write, 9 ], [ $rollback, 1 ] ],
		clients => $clients // 4);
}

sub stop_writers
{
	my ($w, $what) = @_;
	my $out = rts_stop_writers($w);
	my $n = $out =~ /number of transactions actually processed: (\d+)/ ? $1 : 0;
	ok($n > 0, "$what: writers committed $n transactions");
	unlike(${ $w->{err} }, qr/ERROR|aborted/, "$what: no writer failed")
	  or diag(${ $w->{err} });
}

# 1. rows through the coordinator
{
	my $copy = "$xfer/case1.copy";
	sq("COPY (SELECT * FROM gen(100001, 10000)) TO '$copy'");
	my $small = join('', map {
		"BEGIN; INSERT INTO clicks SELECT * FROM gen($_, 1); INSERT INTO truth SELECT * FROM gen($_, 1); COMMIT;\n"
	} map { 150000 + $_ * 97 } 1 .. 40);    # every one a NULL page
	$t0 = time;
	sq(q{
BEGIN;
INSERT INTO clicks SELECT * FROM gen(1, 20000);
INSERT INTO truth SELECT * FROM gen(1, 20000);
COMMIT;
BEGIN;
INSERT INTO clicks VALUES ('2026-06-01 12:00:30+00', NULL, 1.5, NULL, NULL, NULL);
INSERT INTO truth VALUES ('2026-06-01 12:00:30+00', NULL, 1.5, NULL, NULL, NULL);
COMMIT;
} . "BEGIN;\nCOPY clicks FROM '$copy';\nCOPY truth FROM '$copy';\nCOMMIT;\n" . $small);
	sync_or_die('1');
	note(sprintf('30041 rows in 43 transactions, written and synced in %.2f s', time - $t0));
	# a check of the test itself
	is(sq('SELECT count(DISTINCT page) || \' \' || (count(*) FILTER (WHERE page IS NULL) > 0) FROM truth'),
		'2000 true', '1: 2000 pages, and NULL ones');
	check_all('1. through the coordinator (INSERT, COPY, NULL keys)');

	my $nodes = nodes_now();
	is(join(',', map { "$_:$nodes->{$_}[0]" } sort keys %$nodes), 'n1:active,n2:active',
		'1: rtstream.nodes lists n1 and n2, active');
	check_cover('1', $nodes, 'n1', 'n2');
	is(sq(q{SELECT string_agg(node || ':' || coalesce(pending_rows::text, 'NULL'), ',' ORDER BY node)
	  FROM rtstream.nodes WHERE stream = 'clicks'::regclass}), 'n1:0,n2:0',
		'1: nothing pending after sync()');

	load_node_results('n1', 'n2');
	for my $n ('n1', 'n2')
	{
		my $view = $node{$n}->safe_psql('postgres', 'SELECT coalesce(sum(hits), 0) FROM clicks_tumble');
		ok($view > 0, "1: $n\'s own view holds rows ($view)");
		my ($local, $applied) = split /\|/, $node{$n}->safe_psql('postgres',
			"SELECT (SELECT coalesce(sum(hits), 0) FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)),
			        (SELECT coalesce(sum(rows), 0) FROM rtstream.deliveries WHERE stream = 'clicks'::regclass)");
		ok($local > 0, "1: $n\'s own results hold $local rows");
		is($local, $applied, "1: $n holds what its rtstream.deliveries says it applied");
		is(sq("SELECT delivered_rows FROM rtstream.nodes WHERE node = '$n'"), $applied,
			"1: rtstream.nodes delivered_rows of $n = what $n applied");
	}
	is(sq('SELECT sum(hits) FROM node_res'), sq('SELECT count(*) FROM truth'),
		'1: the nodes hold every row once between them');
	is(sq('SELECT count(*) FROM (SELECT page FROM node_res GROUP BY page HAVING count(DISTINCT node) > 1) s'),
		'0', '1: every page (NULL too) is on one node only');
}
elapsed('case 1');

# 2. rows straight into the nodes' stream tables
{
	$node{n1}->safe_psql('postgres', 'INSERT INTO clicks SELECT * FROM gen(1, 3000)');
	sq('INSERT INTO truth SELECT * FROM gen(1, 3000)');
	$node{n2}->safe_psql('postgres', q{
BEGIN;
INSERT INTO clicks SELECT * FROM gen(200001, 3000);
INSERT INTO clicks VALUES ('2026-06-01 12:02:59+00', NULL, 0.25, 'r1', 1.00, 7);
COMMIT;
});
	sq(q{INSERT INTO truth SELECT * FROM gen(200001, 3000);
INSERT INTO truth VALUES ('2026-06-01 12:02:59+00', NULL, 0.25, 'r1', 1.00, 7)});
	# n1 got pages that n2 owns (gen(1, ...) spread over both)
	load_node_results('n1', 'n2');
	ok(sq('SELECT count(*) FROM (SELECT page FROM node_res GROUP BY page HAVING count(DISTINCT node) > 1) s') > 0,
		'2: some pages now have rows on both nodes');
	check_all('2. rows straight into the nodes');
}
elapsed('case 2');

# 3. concurrent writers, aborted transactions, rolled-back savepoints
{
	my $w = writers(4, 6);
	sleep 1;
	sq(q{
BEGIN;
INSERT INTO clicks SELECT * FROM gen(300001, 2000);
ROLLBACK;
BEGIN;
INSERT INTO clicks SELECT * FROM gen(310001, 500);
INSERT INTO truth SELECT * FROM gen(310001, 500);
SAVEPOINT a;
INSERT INTO clicks SELECT * FROM gen(320001, 800);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
INSERT INTO clicks SELECT * FROM gen(330001, 300);
INSERT INTO truth SELECT * FROM gen(330001, 300);
RELEASE SAVEPOINT b;
COMMIT;
});
	my ($ret, $out, $err) = $coord->psql('postgres', q{
BEGIN;
INSERT INTO clicks SELECT * FROM gen(340001, 700);
SELECT 1 / 0;
COMMIT;
});
	isnt($ret, 0, '3: a transaction failing after its rows is aborted');
	stop_writers($w, '3');
	check_all('3. concurrent writers, aborts and savepoints');
}
elapsed('case 3');

# 4. add_node under load, then remove_node under load
{
	my $before = nodes_now();
	my $w = writers(6);
	sleep 1.5;
	$t0 = time;
	sq(q{SELECT rtstream.add_node('clicks', 'n3')});
	note(sprintf('add_node under load: %.2f s', time - $t0));

	# reads during the writes: never more than was committed
	for my $i (1 .. 3)
	{
		sleep 0.7;
		my ($ret, $out, $err) = $coord->psql('postgres',
			q{SELECT coalesce(sum(hits), 0) FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)});
		my $committed = sq('SELECT count(*) FROM truth');
		is($ret, 0, "4: read $i during writes after add_node succeeds") or diag($err);
		ok($ret == 0 && $out <= $committed,
			"4: read $i during writes counts no more than was committed ($out <= $committed)");
		($ret, $out, $err) = $coord->psql('postgres', 'SELECT count(*) FROM clicks_1m');
		is($ret, 0, "4: the view clicks_1m reads during writes ($out groups)") or diag($err);
	}
	stop_writers($w, '4 (add_node)');
	check_all('4. after add_node under load');

	my $after = nodes_now();
	is(join(',', map { "$_:$after->{$_}[0]" } sort keys %$after), 'n1:active,n2:active,n3:active',
		'4: rtstream.nodes lists n1, n2, n3, active');
	check_cover('4 after add_node', $after, 'n1', 'n2', 'n3');
	my $p3 = parts($after->{n3}[1]);
	my $n3 = scalar(keys %$p3);
	note("n3 owns $n3 of 64 partitions: $after->{n3}[1]");
	ok($n3 >= 8 && $n3 <= 32, "4: n3 owns about a third of the partitions ($n3)");
	for my $n ('n1', 'n2')
	{
		my ($pb, $pa) = (parts($before->{$n}[1]), parts($after->{$n}[1]));
		my @gained = grep { !$pb->{$_} } keys %$pa;
		is(scalar(@gained), 0, "4: $n gained no partition");
		my @lost = sort { $a <=> $b } grep { !$pa->{$_} } keys %$pb;
		my @wrong = grep { !$p3->{$_} } @lost;
		is(scalar(@wrong), 0, "4: every partition $n lost went to n3 (" . scalar(@lost) . ' moved)');
	}
	ok(node_sum('n3') > 0, '4: n3 received rows');
	load_node_results('n1', 'n2', 'n3');
	my $split = sq(q{SELECT count(*) FROM (SELECT page FROM node_res GROUP BY page
	  HAVING bool_or(node = 'n3') AND bool_or(node <> 'n3')) s});
	ok($split > 0, "4: $split pages are split between a former owner and n3 (combined in the view)");

	# remove_node under load
	my $mid = $after;
	$w = writers(5);
	sleep 1.5;
	$t0 = time;
	sq(q{SELECT rtstream.remove_node('clicks', 'n1')});
	note(sprintf('remove_node under load: %.2f s', time - $t0));
	sleep 1;
	my $state = sq(q{SELECT state || ' ' || (partitions IS NULL) FROM rtstream.nodes WHERE stream = 'clicks'::regclass AND node = 'n1'});
	is($state, 'draining true', '4: n1 is draining, with no partitions');
	stop_writers($w, '4 (remove_node)');
	check_light('4. after remove_node under load');
	my $rm = nodes_now();
	check_cover('4 after remove_node', $rm, 'n2', 'n3');
	for my $n ('n2', 'n3')
	{
		my ($pb, $pa) = (parts($mid->{$n}[1]), parts($rm->{$n}[1]));
		is(scalar(grep { !$pa->{$_} } keys %$pb), 0, "4: $n kept its partitions when n1 left");
	}
	my $n1_rows = node_sum('n1');
	my $n1_applied = $node{n1}->safe_psql('postgres', 'SELECT sum(rows) FROM rtstream.deliveries');
	sq('BEGIN; INSERT INTO clicks SELECT * FROM gen(400001, 3000); INSERT INTO truth SELECT * FROM gen(400001, 3000); COMMIT;');
	check_all('4. rows after n1 left the ring');
	is(node_sum('n1'), $n1_rows, '4: a draining n1 gets no new rows');
	is($node{n1}->safe_psql('postgres', 'SELECT sum(rows) FROM rtstream.deliveries'), $n1_applied,
		'4: nor deliveries');

	my ($ret, $err) = sql_err($coord, q{SELECT rtstream.remove_node('clicks', 'n1', drop => true)});
	isnt($ret, 0, '4: remove_node(drop => true) fails while n1 holds groups');
	like($err, qr/ERROR:\s+55000:.*n1/, '4: ... with object_not_in_prerequisite_state naming n1')
	  or diag($err);
	is(sq(q{SELECT state FROM rtstream.nodes WHERE node = 'n1'}), 'draining', '4: n1 is still draining');
	check_light('4. after the refused drop');
}
elapsed('case 4');

# 5. a node down while writers run
{
	my $w = writers(5);
	sleep 1.5;
	$node{n2}->stop('immediate');
	my $down_at = time;
	stop_writers($w, '5 (n2 down)');

	# reading: an ERROR naming n2
	for my $q ('SELECT * FROM clicks_tumble',
		q{SELECT * FROM rtstream.window_results('clicks_1m', NULL::clicks_1m)})
	{
		my ($ret, $out, $err) = $coord->psql('postgres', $q);
		isnt($ret, 0, "5: n2 down: '$q' fails");
		my ($first) = grep { /ERROR/ } split /\n/, $err;
		like($first // '', qr/ERROR:.*"n2"/, '5: ... with an ERROR naming n2') or diag($err);
	}

	# a marker row committed last, on a page n3 owns: once n3 has it, n3
	# has every row the coordinator has for it
	my $p3 = sq(q{SELECT page FROM node_res WHERE node = 'n3' AND page IS NOT NULL ORDER BY page LIMIT 1});
	sq("BEGIN; INSERT INTO clicks VALUES ('2026-06-01 12:01:01+00', '$p3', 99999.75, 'r0', 0, 0);
	    INSERT INTO truth VALUES ('2026-06-01 12:01:01+00', '$p3', 99999.75, 'r0', 0, 0); COMMIT;");
	ok($node{n3}->poll_query_until('postgres',
		"SELECT max(max_ms) = 99999.75 FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble) WHERE page = '$p3'"),
		'5: n3 gets its rows while n2 is down');
	$node{$_}->safe_psql('postgres', 'SELECT rtstream.sync()') for ('n1', 'n3');

	my ($ret, $out, $err) = $coord->psql('postgres', q{
SET rtstream.allow_partial_results = on;
SELECT count(*) FROM clicks_tumble;
});
	is($ret, 0, '5: allow_partial_results: the view reads') or diag($err);
	like($err, qr/WARNING:.*"n2"/, '5: ... with a WARNING naming n2') or diag($err);
	unlike($err, qr/"n[13]"/, '5: ... and no other node') or diag($err);

	# the partial results are exactly n1's and n3's parts combined
	load_node_results('n1', 'n3');
	my $cmp = rts_diff_sql(q{SELECT window_start, window_end, page, hits, total_ms, min_ms, max_ms
	  FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)},
		q{SELECT window_start, window_end, page, sum(hits)::bigint, sum(total_ms), min(min_ms), max(max_ms)
	  FROM node_res GROUP BY 1, 2, 3});
	($ret, $out, $err) = $coord->psql('postgres', "SET rtstream.allow_partial_results = on;\n$cmp");
	my ($l, $r, $rows) = rts_diff_parse($out);
	is("$l $r", '0 0', "5: allow_partial_results: window_results = n1's and n3's parts only")
	  or diag("$err\n$rows");
	ok($coord->poll_query_until('postgres',
		q{SELECT pending_rows > 0 AND last_error IS NOT NULL FROM rtstream.nodes WHERE node = 'n2'}),
		'5: rtstream.nodes shows rows pending and last_error for n2');
	note('n2: ' . sq(q{SELECT pending_rows || ' pending, ' || failures || ' failures: ' || last_error FROM rtstream.nodes WHERE node = 'n2'}));
	is(sq(q{SELECT pending_rows FROM rtstream.nodes WHERE node = 'n3'}), '0', '5: nothing pending for n3');

	note(sprintf('n2 down for %.1f s', time - $down_at));
	$node{n2}->start;
	$t0 = time;
	check_all('5. n2 back');
	note(sprintf('n2 caught up and checked in %.1f s', time - $t0));
	is(sq(q{SELECT pending_rows FROM rtstream.nodes WHERE node = 'n2'}), '0', '5: nothing pending for n2 after');
}
elapsed('case 5');

# 6. the coordinator killed mid-delivery
{
	# rows a node has committed from the coordinator
	my $applied = sub {
		return join(',', map {
			$node{$_}->safe_psql('postgres', 'SELECT coalesce(sum(rows), 0) FROM rtstream.deliveries')
		} qw(n2 n3));
	};

	# an immediate stop as soon as one node has committed its part
	my $copy = "$xfer/case6a.copy";
	sq("COPY (SELECT * FROM gen(500001, 60000)) TO '$copy'");
	my $before = $applied->();
	sq("BEGIN;\nCOPY clicks FROM '$copy';\nCOPY truth FROM '$copy';\nCOMMIT;");
	my $end = time + 10;
	sleep 0.01 while $applied->() eq $before && time < $end;
	$coord->stop('immediate');
	note("rows applied by n2, n3 before the COPY: $before; at the stop: " . $applied->());
	$coord->start;
	rts_wait_ready($coord);
	check_all('6. an immediate stop of the coordinator mid-delivery of a large COPY');

	# SIGKILL of the shipper while it delivers
	$copy = "$xfer/case6b.copy";
	sq("COPY (SELECT * FROM gen(700001, 60000)) TO '$copy'");
	my $pid = sq(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'rtstream shipper'});
	ok($pid =~ /^\d+$/, "6: the rtstream shipper runs ($pid)");
	$before = $applied->();
	sq("BEGIN;\nCOPY clicks FROM '$copy';\nCOPY truth FROM '$copy';\nCOMMIT;");
	my $seen = '';
	$end = time + 10;
	while (time < $end)
	{
		$seen = sq("SELECT state || ': ' || query FROM pg_stat_activity WHERE pid = $pid");
		last if $seen =~ /^active/;
		sleep 0.005;
	}
	ok(kill('KILL', $pid), "6: SIGKILL the shipper ($seen)");
	note("rows applied by n2, n3 before the COPY: $before; at the kill: " . $applied->());
	ok($coord->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'rtstream shipper' AND pid <> $pid"),
		'6: the coordinator restarted, with a new shipper');
	rts_wait_ready($coord);
	check_all('6. SIGKILL of the shipper mid-delivery');
}
elapsed('case 6');

# 7. two-phase commit through the coordinator
{
	sq(q{
BEGIN;
INSERT INTO clicks SELECT * FROM gen(900001, 3000);
INSERT INTO truth SELECT * FROM gen(900001, 3000);
PREPARE TRANSACTION 'tp_commit';
BEGIN;
INSERT INTO clicks SELECT * FROM gen(910001, 3000);
INSERT INTO truth SELECT * FROM gen(910001, 3000);
PREPARE TRANSACTION 'tp_rollback';
BEGIN;
INSERT INTO clicks SELECT * FROM gen(920001, 2000);
INSERT INTO truth SELECT * FROM gen(920001, 2000);
PREPARE TRANSACTION 'tp_crash';
});
	check_light('7. three transactions prepared');
	sq(q{COMMIT PREPARED 'tp_commit'});
	check_light('7. after COMMIT PREPARED');
	sq(q{ROLLBACK PREPARED 'tp_rollback'});
	check_light('7. after ROLLBACK PREPARED');
	$coord->stop('immediate');
	$coord->start;
	rts_wait_ready($coord);
	is(sq('SELECT string_agg(gid, \',\') FROM pg_prepared_xacts'), 'tp_crash', '7: tp_crash survived the crash');
	check_light('7. after a crash with a transaction prepared');
	sq(q{COMMIT PREPARED 'tp_crash'});
	check_all('7. COMMIT PREPARED after the crash');
}
elapsed('case 7');

# 8. a non-owner role gains nothing
{
	sq('CREATE ROLE mallory LOGIN');
	my $cat = sq('SELECT string_agg(node || state, \',\' ORDER BY node) FROM rtstream.stream_nodes');
	for my $q (q{SELECT rtstream.add_node('clicks', 'n1')},
		q{SELECT rtstream.remove_node('clicks', 'n2')},
		q{SELECT rtstream.remove_node('clicks', 'n1', drop => true)})
	{
		my ($ret, $err) = sql_err($coord, "SET ROLE mallory;\n$q");
		like($err, qr/ERROR:\s+42501:/, "8: mallory: $q: insufficient_privilege") or diag($err);
	}
	is(sq('SELECT string_agg(node || state, \',\' ORDER BY node) FROM rtstream.stream_nodes'), $cat,
		'8: the nodes of clicks are unchanged');

	my $n2 = $node{n2};
	$n2->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
	my $deliveries = q{SELECT string_agg(source || ' ' || stream::text || ' ' || lsn || ' ' || seq || ' ' || rows, ', ' ORDER BY source, stream::text) FROM rtstream.deliveries};
	my $del_before = $n2->safe_psql('postgres', $deliveries);
	my $ndel = $n2->safe_psql('postgres', 'SELECT count(*) FROM rtstream.deliveries');
	my $win_before = $n2->safe_psql('postgres',
		q{SELECT sum(hits) || ' ' || count(*) FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)});
	my $source = $n2->safe_psql('postgres', 'SELECT source FROM rtstream.deliveries ORDER BY applied_at DESC LIMIT 1');
	ok($source ne '', "8: the coordinator's source on n2: $source");
	my $row = q{ARRAY[ROW('2026-06-01 12:00:00+00', 'p1', 1, 'r1', 1, 1)::public.clicks]::text};
	my @attacks = (
		[ 'rows, with the coordinator\'s source and a position far ahead',
		  "INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows) VALUES ('$source', 'public.clicks', '{FFFFFFFF/FFFFFFFF}', '{0}', '{1}', $row)" ],
		[ 'a position only (no rows)',
		  "INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows) VALUES ('$source', 'public.clicks', '{FFFFFFFF/FFFFFFFF}', '{0}', '{0}', '{}')" ],
		[ 'a new source',
		  "INSERT INTO rtstream.inbox (source, stream, lsns, seqs, counts, rows) VALUES ('evil', 'public.clicks', '{0/10}', '{0}', '{1}', $row)" ],
		[ 'a position straight into rtstream.deliveries',
		  "INSERT INTO rtstream.deliveries (source, stream, lsn, seq) VALUES ('evil', 'public.clicks', 'FFFFFFFF/FFFFFFFF', 0)" ],
		[ 'a command dropping a window',
		  q{INSERT INTO rtstream.inbox (command) VALUES ('SELECT rtstream.drop_window(''clicks_tumble'')')} ],
	);
	for my $a (@attacks)
	{
		my ($ret, $err) = sql_err($n2, "SET ROLE mallory;\n$a->[1]");
		like($err, qr/ERROR:\s+42501:/, "8: mallory on n2, $a->[0]: insufficient_privilege") or diag($err);
	}
	my ($ret, $out, $err) = $n2->psql('postgres', qq{SET ROLE mallory;
UPDATE rtstream.deliveries SET lsn = 'FFFFFFFF/FFFFFFFF';
DELETE FROM rtstream.deliveries;});
	note("mallory's UPDATE and DELETE of rtstream.deliveries: $ret $out $err");
	is($n2->safe_psql('postgres', 'SELECT count(*) FROM rtstream.deliveries'), $ndel,
		'8: no rtstream.deliveries row added or removed');
	is($n2->safe_psql('postgres', $deliveries), $del_before, '8: no rtstream.deliveries position moved');
	$n2->safe_psql('postgres', 'SELECT rtstream.sync()');
	is($n2->safe_psql('postgres',
		q{SELECT sum(hits) || ' ' || count(*) FROM rtstream.window_results('clicks_tumble', NULL::clicks_tumble)}),
		$win_before, "8: n2's window is unchanged");
	is($n2->safe_psql('postgres', q{SELECT count(*) FROM rtstream.windows WHERE name = 'clicks_tumble'}), '1',
		'8: the window still exists on n2');

	# the coordinator's rows still count
	sq('BEGIN; INSERT INTO clicks SELECT * FROM gen(950001, 5000); INSERT INTO truth SELECT * FROM gen(950001, 5000); COMMIT;');
	check_all('8. after the attempts');
}
elapsed('case 8');

# 9. History exactly once across nodes, on a stream of its own (over n2 and
# n3), so that the windows above stay open.
sub poll_sq
{
	my ($sql, $seconds) = @_;
	my $end = time + $seconds;
	while (time < $end)
	{
		return 1 if sq($sql) eq 't';
		sleep 0.25;
	}
	return 0;
}

{
	sq(q{
CREATE TABLE views (ts timestamptz NOT NULL, page text, latency_ms float8);
CREATE TABLE views_truth (LIKE views);
SELECT rtstream.create_stream('views', partition_by => 'page', nodes => ARRAY['n2', 'n3']);
});
	my ($ret, $err) = sql_err($coord, q{SELECT rtstream.create_window('views_1m',
  $$SELECT page, count(*) AS hits, sum(latency_ms) AS total_ms FROM views GROUP BY page$$,
  size => '1 minute', time_column => 'ts', allowed_lateness => '10 minutes', history => true,
  notify => true)});
	# a listener on the coordinator: the NOTIFY of each closed window
	my ($lin, $lout, $lerr) = ('', '', '');
	my $listener = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $coord->connstr('postgres') ],
		'<', \$lin, '>', \$lout, '2>', \$lerr);
	$lin .= "LISTEN views_1m; SELECT 'listening';\n";
	$listener->pump until $lout =~ /listening/;
	{
		is($ret, 0, '9: a window with history over a distributed stream is created') or diag($err);
		my $ins = sub {
			my ($sel) = @_;
			sq("BEGIN; INSERT INTO views $sel; INSERT INTO views_truth $sel; COMMIT;");
		};
		my $truth = q{SELECT w.ws, w.we, page, count(*), sum(latency_ms) FROM views_truth, et_windows(ts, '1 minute', '1 minute') w
		  WHERE w.we <= '%s' GROUP BY 1, 2, 3};
		my $hist = 'SELECT window_start, window_end, page, hits, total_ms FROM views_1m_history';
		my $hist_check = sub {
			my ($what, $wm) = @_;
			my $t = sprintf($truth, $wm);
			ok(poll_sq("SELECT count(*) >= (SELECT count(*) FROM ($t) t) FROM views_1m_history", 15),
				"9: $what: the history gets every window closed at $wm");
			my ($l, $r, $rows) = rts_diff($coord, $hist, $t);
			is("$l $r", '0 0', "9: $what: the history equals the truth: each closed window once, combined from every node")
			  or diag("first = history, second = truth\n$rows");
			is(sq('SELECT count(*) FROM (SELECT window_end, page FROM views_1m_history GROUP BY 1, 2 HAVING count(*) > 1) s'),
				'0', "9: $what: no window appears twice");
		};
		# rows in 14:00 .. 14:05:30 (in any order: none is late), then
		# every page at 14:20 (every node's watermark: 14:10): the windows up
		# to 14:10 close
		$ins->(q{SELECT '2026-06-01 14:00:00+00'::timestamptz + (i * 7 % 330) * interval '1 second',
		  'q' || (i * 7919 % 500), (i % 400) / 4.0 FROM generate_series(1, 20000) i});
		$ins->(q{SELECT '2026-06-01 14:20:00+00', 'q' || i, 1 FROM generate_series(0, 499) i});
		sync_or_die('9');
		$hist_check->('both nodes past 14:10', '2026-06-01 14:10:00+00');
		my ($l, $r, $rows) = rts_diff($coord,
			q{SELECT window_start, window_end, page, hits, total_ms FROM rtstream.window_results('views_1m', NULL::views_1m)},
			q{SELECT w.ws, w.we, page, count(*), sum(latency_ms) FROM views_truth, et_windows(ts, '1 minute', '1 minute') w
			  WHERE w.we > '2026-06-01 14:10:00+00' GROUP BY 1, 2, 3});
		is("$l $r", '0 0', '9: window_results holds the windows not in the history') or diag($rows);

		# n3 leaves the ring; time moves on through n2 alone.  A server
		# holding every row would close the 14:20 window (watermark 14:30);
		# n3 gets no more rows, so its own watermark stays at 14:10.
		sq(q{SELECT rtstream.remove_node('views', 'n3')});
		$ins->(q{SELECT '2026-06-01 14:40:00+00', 'q' || i, 2 FROM generate_series(0, 499) i});
		sync_or_die('9');
		$hist_check->('n3 draining, n2 past 14:30', '2026-06-01 14:30:00+00');
		my $dropped = 0;
		my $t_end = time + 10;
		while (time < $t_end)
		{
			($ret, $err) = sql_err($coord, q{SELECT rtstream.remove_node('views', 'n3', drop => true)});
			if ($ret == 0)
			{
				$dropped = 1;
				last;
			}
			sleep 1;
		}
		ok($dropped, "9: remove_node('views', 'n3', drop => true) succeeds once n3's windows are in the history")
		  or diag($err);
		if ($dropped)
		{
			is(sq(q{SELECT string_agg(node, ',') FROM rtstream.stream_nodes WHERE stream = 'views'::regclass}),
				'n2', '9: n3 is forgotten');
			$ins->(q{SELECT '2026-06-01 15:00:00+00', 'q' || i, 3 FROM generate_series(0, 499) i});
			sync_or_die('9');
			$hist_check->('after the drop, n2 past 14:50', '2026-06-01 14:50:00+00');
		}

		# one NOTIFY per closed window, in order, from the first window with
		# rows to the history's progress, sent with the history rows
		my $expect = sq(q{SELECT string_agg(to_char(e AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', ',' ORDER BY e)
		  FROM generate_series((SELECT min(window_end) FROM views_1m_history),
		                       (SELECT emitted_until FROM rtstream.history_progress p
		                          JOIN rtstream.windows w ON w.id = p.window_id WHERE w.name = 'views_1m'),
		                       '1 minute') e});
		my ($last) = $expect =~ /([^,]+)$/;
		my $deadline = time + 20;
		while (time < $deadline)
		{
			$lin .= "SELECT 'tick';\n";
			$listener->pump_nb;
			last if defined $last && index($lout, qq{payload "$last"}) >= 0;
			sleep 0.2;
		}
		my @got;
		push @got, $1 while $lout =~ /Asynchronous notification "views_1m" with payload "([^"]*)"/g;
		is(join(',', @got), $expect,
			'9: NOTIFY views_1m once per closed window, in order, from the coordinator');
	}
	$lin .= "\\q\n";
	$listener->finish;
}
elapsed('case 9');

# 10. An ordinary role's distributed stream: what the shipper runs for it
# (a trigger on its inbox foreign table fired by each delivery, a trigger
# on its history table fired by the history writer, its window's
# aggregates) runs as that role, never as a superuser, and its rows and
# history are exact.
{
	my @nodes = qw(n1 n2);
	sq(q{
CREATE ROLE alice LOGIN;
GRANT CREATE ON SCHEMA public TO alice;
CREATE TABLE who (what text, usr name, superuser boolean);
GRANT INSERT ON who TO alice;
} . join('', map { "GRANT USAGE ON FOREIGN SERVER $_ TO alice;
"
	  . "CREATE USER MAPPING FOR alice SERVER $_ OPTIONS (user '"
	  . $node{$_}->safe_psql('postgres', 'SELECT current_user')
	  . "', password_required 'false');
" } @nodes));
	$coord->safe_psql('postgres', q{
SET ROLE alice;
CREATE TABLE a_s (ts timestamptz NOT NULL, page text, v int);
CREATE TABLE a_truth (LIKE a_s);
SELECT rtstream.create_stream('a_s', partition_by => 'page', nodes => ARRAY['n1', 'n2']);
SELECT rtstream.create_window('a_w', $$SELECT page, count(*) AS n, sum(v) AS s FROM a_s GROUP BY page$$,
  size => '1 minute', time_column => 'ts', history => true);
CREATE FUNCTION a_who() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO public.who SELECT TG_TABLE_NAME, current_user, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user;
  RETURN NEW;
END $f$;
CREATE TRIGGER a_who BEFORE INSERT ON a_s__n1 FOR EACH ROW EXECUTE FUNCTION a_who();
CREATE TRIGGER a_who BEFORE INSERT ON a_w_history FOR EACH ROW EXECUTE FUNCTION a_who();
BEGIN;
INSERT INTO a_s SELECT '2026-06-01 16:00:00+00'::timestamptz + i * interval '1 second', 'p' || (i % 20), i FROM generate_series(0, 299) i;
INSERT INTO a_truth SELECT '2026-06-01 16:00:00+00'::timestamptz + i * interval '1 second', 'p' || (i % 20), i FROM generate_series(0, 299) i;
COMMIT;
SELECT rtstream.sync();
});
	my ($l, $r, $rows) = rts_diff($coord,
		q{SELECT window_start, window_end, page, n, s FROM rtstream.window_results('a_w', NULL::a_w)},
		q{SELECT date_trunc('minute', ts), date_trunc('minute', ts) + interval '1 minute', page, count(*), sum(v)
		    FROM a_truth WHERE ts >= '2026-06-01 16:04:00+00' GROUP BY 1, 2, 3});
	is("$l $r", '0 0', "10: an ordinary role's distributed window equals the truth") or diag($rows);
	ok(poll_sq(q{SELECT count(*) > 0 FROM a_w_history}, 15), '10: its history is written');
	($l, $r, $rows) = rts_diff($coord,
		q{SELECT window_start, window_end, page, n, s FROM a_w_history},
		q{SELECT date_trunc('minute', ts), date_trunc('minute', ts) + interval '1 minute', page, count(*), sum(v)
		    FROM a_truth WHERE ts < (SELECT max(window_end) FROM a_w_history) GROUP BY 1, 2, 3});
	is("$l $r", '0 0', '10: its history equals the truth') or diag($rows);
	is(sq(q{SELECT string_agg(DISTINCT what || ':' || usr || ':' || superuser, ',') FROM who}),
		'a_s__n1:alice:false,a_w_history:alice:false',
		'10: the shipper fired its triggers as alice, never as a superuser');
}
elapsed('case 10');

$coord->stop;
$node{$_}->stop for sort keys %node;
done_testing();
