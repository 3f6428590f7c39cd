# Push, don't poll: create_window(..., notify => true) sends a NOTIFY on the
# channel named after the window, with the window's end as payload, once
# each window closes (after its history rows are committed, when there is
# history); history tables published with logical replication reach a
# subscriber.
#
# - a tumbling window with history: one NOTIFY per closed window, each
#   told only once its rows are in the history table;
# - a hopping window without history: one NOTIFY per closed window end;
# - a session window with history: a NOTIFY when sessions closed;
# - the payloads are exactly the ends plain SQL gives for the same rows;
# - CREATE PUBLICATION ... FOR TABLE <history> on the node, a subscription
#   on a second local node: the subscriber's copy equals the history.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep);
use RtsTest;

my $node = rts_node('notify', init => { allows_streaming => 'logical' });
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE ev (ts timestamptz NOT NULL, k text, v int);
CREATE TABLE ev_rows (LIKE ev);
SELECT rtstream.create_stream('ev', partition_by => 'k');
SELECT rtstream.create_window('w_tumble', 'SELECT k, count(*) AS n, sum(v) AS sv FROM ev GROUP BY k',
                              size => '10 seconds', time_column => 'ts', history => true, notify => true);
SELECT rtstream.create_window('w_hop', 'SELECT count(*) AS n FROM ev',
                              size => '10 seconds', slide => '4 seconds', time_column => 'ts', notify => true);
SELECT rtstream.create_window('w_sess', 'SELECT k, count(*) AS n FROM ev GROUP BY k',
                              gap => '5 seconds', time_column => 'ts', history => true, notify => true);
});
rts_wait_ready($node);

my ($ret, $out, $err) = $node->psql('postgres', q{
SELECT rtstream.create_window('w_bad', 'SELECT k, count(*) AS n FROM ev GROUP BY k',
                              gap => '5 seconds', time_column => 'ts', notify => true)});
like($err, qr/notify on a session window needs history => true/,
	'notify on a session window without history: an ERROR');

# A listener: psql reading commands from a pipe prints the notifications
# it received after each command.
my ($in, $lout, $lerr) = ('', '', '');
my $listener = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$lout, '2>', \$lerr);
$in .= "LISTEN w_tumble; LISTEN w_hop; LISTEN w_sess; SELECT 'listening';\n";
$listener->pump until $lout =~ /listening/;

# Phase 1: 60 rows 1 s apart, one transaction; sessions of k0 and k1 end
# with the phase.  Phase 2: rows 30 s later close every window of phase 1.
$node->safe_psql('postgres', q{
INSERT INTO ev_rows SELECT '2026-03-01 10:00:00+00'::timestamptz + g * interval '1 second',
                           'k' || (g % 2), g FROM generate_series(0, 59) g;
INSERT INTO ev SELECT * FROM ev_rows ORDER BY ts;
SELECT rtstream.sync();
INSERT INTO ev_rows VALUES ('2026-03-01 10:01:30+00', 'k0', 100), ('2026-03-01 10:01:30+00', 'k1', 100);
INSERT INTO ev VALUES ('2026-03-01 10:01:30+00', 'k0', 100), ('2026-03-01 10:01:30+00', 'k1', 100);
SELECT rtstream.sync();
});

# every window ending at or before the watermark 10:01:30 is closed
my %expect = (
	w_tumble => $node->safe_psql('postgres', q{
		SELECT string_agg(to_char(e AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', ',' ORDER BY e)
		  FROM generate_series('2026-03-01 10:00:10+00'::timestamptz, '2026-03-01 10:01:30+00', '10 seconds') e}),
	# hopping windows start at multiples of the slide: [4n, 4n + 10)
	w_hop => $node->safe_psql('postgres', q{
		SELECT string_agg(to_char(e AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', ',' ORDER BY e)
		  FROM generate_series('2026-03-01 09:59:56+00'::timestamptz + interval '10 seconds',
		                       '2026-03-01 10:01:30+00', '4 seconds') e}));

# wait until the listener has seen the last window of each
my $deadline = time + 60;
$in .= "SELECT 'tick';\n";
while (time < $deadline)
{
	$in .= "SELECT 'tick';\n";
	$listener->pump_nb;
	last if $lout =~ /"w_tumble" with payload "2026-03-01 10:01:30\+00"/
	  && $lout =~ /"w_hop" with payload "2026-03-01 10:01:30\+00"/
	  && $lout =~ /"w_sess"/;
	sleep 0.2;
}
$in .= "\\q\n";
$listener->finish;

my %got;
while ($lout =~ /Asynchronous notification "(\w+)" with payload "([^"]*)"/g)
{
	push @{ $got{$1} }, $2;
}
is(join(',', @{ $got{w_tumble} // [] }), $expect{w_tumble},
	'tumbling window with history: one NOTIFY per closed window, in order, the end as payload');
my $first_hop = $got{w_hop}[0] // '';
# without history the first window told is the first closed after the window saw a watermark
my @hop_expect = grep { $_ ge $first_hop } split /,/, $expect{w_hop};
is(join(',', @{ $got{w_hop} // [] }), join(',', @hop_expect),
	'hopping window without history: one NOTIFY per closed window end from the first, none twice');
# the first told is the window closed when the window first had a watermark
# (after phase 1: 10:00:59), or an earlier one
cmp_ok($first_hop, 'le', '2026-03-01 10:00:58+00',
	'hopping window: told from the windows of phase 1 on');
ok(scalar(@{ $got{w_sess} // [] }) >= 1, 'session window: told when sessions closed');

# each told window with rows is in the history table: the tell came with
# the rows
my $told_missing = $node->safe_psql('postgres', qq{
	SELECT count(*) FROM unnest('{$expect{w_tumble}}'::timestamptz[]) e
	 WHERE NOT EXISTS (SELECT 1 FROM w_tumble_history h WHERE h.window_end = e)
	   AND EXISTS (SELECT 1 FROM ev_rows r WHERE r.ts >= e - interval '10 seconds' AND r.ts < e)});
is($told_missing, '0', 'every window told is in the history table');
# and the history equals plain SQL over the rows
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  (SELECT window_start, window_end, k, n, sv FROM w_tumble_history
	   EXCEPT ALL
	   SELECT to_timestamp(floor(extract(epoch FROM ts) / 10) * 10), to_timestamp(floor(extract(epoch FROM ts) / 10) * 10 + 10),
	          k, count(*), sum(v) FROM ev_rows WHERE ts < '2026-03-01 10:01:30+00' GROUP BY 1, 2, 3)
	  UNION ALL
	  (SELECT to_timestamp(floor(extract(epoch FROM ts) / 10) * 10), to_timestamp(floor(extract(epoch FROM ts) / 10) * 10 + 10),
	          k, count(*), sum(v) FROM ev_rows WHERE ts < '2026-03-01 10:01:30+00' GROUP BY 1, 2, 3
	   EXCEPT ALL
	   SELECT window_start, window_end, k, n, sv FROM w_tumble_history)) d}),
	'0', 'the tumbling history equals plain SQL');

# Logical replication of a history table to a second local node
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->start;
$sub->safe_psql('postgres', q{
CREATE TABLE w_tumble_history (window_start timestamptz, window_end timestamptz, k text, n bigint, sv bigint)});
$node->safe_psql('postgres', q{CREATE PUBLICATION hist FOR TABLE w_tumble_history});
my $connstr = $node->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', qq{CREATE SUBSCRIPTION hist CONNECTION '$connstr' PUBLICATION hist});
$node->wait_for_catchup('hist');
$sub->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM w_tumble_history") or die "no initial copy";

# more windows close after the subscription: they arrive by replication
$node->safe_psql('postgres', q{
INSERT INTO ev_rows SELECT '2026-03-01 10:01:31+00'::timestamptz + g * interval '1 second', 'k' || (g % 2), g
  FROM generate_series(0, 49) g;
INSERT INTO ev SELECT * FROM ev_rows WHERE ts > '2026-03-01 10:01:30+00' ORDER BY ts;
SELECT rtstream.sync();
});
my $want = $node->safe_psql('postgres',
	"SELECT count(*) || ' ' || max(window_end) FROM w_tumble_history");
$node->wait_for_catchup('hist');
$sub->poll_query_until('postgres',
	"SELECT count(*) || ' ' || max(window_end) = '$want' FROM w_tumble_history")
  or diag("subscriber: " . $sub->safe_psql('postgres', "SELECT count(*), max(window_end) FROM w_tumble_history"));
my $pub_rows = $node->safe_psql('postgres',
	"SELECT string_agg(h::text, ';' ORDER BY window_end, k) FROM w_tumble_history h");
my $sub_rows = $sub->safe_psql('postgres',
	"SELECT string_agg(h::text, ';' ORDER BY window_end, k) FROM w_tumble_history h");
is($sub_rows, $pub_rows, 'the subscriber holds the same history rows');
like($want, qr/^\d+ 2026-03-01 10:02:/, 'windows closed after the subscription were replicated');

$sub->stop;
$node->stop;
done_testing();
