# Bounded memory: new groups are refused beyond rtstream.memory_limit,
# counted and warned about once, existing groups stay exact.  Rows that
# cannot be applied go to rtstream.dead_letters, the others count.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RtsTest;

my $node = rts_node('limits');
$node->append_conf('postgresql.conf', "rtstream.memory_limit = '2MB'\n");
$node->restart;
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE s (k int, v int);
CREATE TABLE t (k int, v int);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
SELECT rtstream.create_window('w_small', 'SELECT k % 3 AS b, count(*) AS n FROM s GROUP BY k % 3', size => '1 day');
});
rts_wait_ready($node);

# first a few keys, then far more keys than 2MB can hold
$node->safe_psql('postgres', q{
INSERT INTO s SELECT i % 50, i FROM generate_series(1, 1000) i;
INSERT INTO t SELECT i % 50, i FROM generate_series(1, 1000) i;
SELECT rtstream.sync();
INSERT INTO s SELECT 1000 + i, 1 FROM generate_series(1, 200000) i;
INSERT INTO t SELECT 1000 + i, 1 FROM generate_series(1, 200000) i;
INSERT INTO s SELECT i % 50, i FROM generate_series(1, 1000) i;
INSERT INTO t SELECT i % 50, i FROM generate_series(1, 1000) i;
SELECT rtstream.sync();
});
my $refused = $node->safe_psql('postgres',
	"SELECT sum(refused_groups) FROM rtstream.window_stats WHERE window_name = 'w'");
ok($refused > 0, "new groups refused beyond the limit ($refused)");
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT k, count(*), sum(v) FROM t WHERE k < 50 GROUP BY k
                      EXCEPT SELECT k, n, total FROM w WHERE k < 50) d}), '0',
	'the groups held before stay exact');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM w_small'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM t'), 'the other window is complete');
my $log = slurp_file($node->logfile);
my $warnings = () = $log =~ /rtstream window "w" reached rtstream.memory_limit/g;
ok($warnings >= 1 && $warnings <= 2, "warned once per window and worker ($warnings), not per row");
ok($node->safe_psql('postgres', 'SELECT 1') == 1, 'the server carries on');

# dropping the big window gives its memory back
$node->safe_psql('postgres', q{SELECT rtstream.drop_window('w'); SELECT rtstream.sync();});

# dead letters: a row whose argument raises an error
$node->safe_psql('postgres', q{
CREATE TABLE d (k int, v int);
CREATE TABLE d_truth (k int, v int);
SELECT rtstream.create_stream('d', partition_by => 'k');
SELECT rtstream.create_window('w_div', 'SELECT k, count(*) AS n, sum(1000 / v) AS q FROM d GROUP BY k', size => '1 day');
INSERT INTO d SELECT i % 5, i % 7 FROM generate_series(1, 700) i;
INSERT INTO d_truth SELECT i % 5, i % 7 FROM generate_series(1, 700) i;
SELECT rtstream.sync();
});
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT k, count(*), sum(1000 / v) FROM d_truth WHERE v <> 0 GROUP BY k
                      EXCEPT SELECT k, n, q FROM w_div) d}), '0', 'the good rows count');
is($node->safe_psql('postgres', "SELECT count(*) FROM rtstream.dead_letters WHERE window_name = 'w_div'"),
	'100', 'each failing row is a dead letter');
like($node->safe_psql('postgres', "SELECT error || ' ' || row_data FROM rtstream.dead_letters LIMIT 1"),
	qr/division by zero \(\d+,0\)/, 'with the error and the row');
is($node->safe_psql('postgres', "SELECT sum(dead_letters) FROM rtstream.stats WHERE process <> 'router'"),
	'100', 'and counted in stats');

$node->stop;
done_testing();
