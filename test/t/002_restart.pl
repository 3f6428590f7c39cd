# Windows survive a restart as definitions, and count the rows committed
# after it; the postmaster survives a worker crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'rtstream'
wal_level = logical
max_worker_processes = 16
rtstream.databases = 'postgres'
rtstream.workers = 2
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE TABLE s (k int, v int);
SELECT rtstream.create_stream('s', partition_by => 'k');
SELECT rtstream.create_window('w', 'SELECT k, count(*) AS n, sum(v) AS t FROM s GROUP BY k', size => '1 day');
INSERT INTO s SELECT i % 10, i FROM generate_series(1, 1000) i;
SELECT rtstream.sync();
});
is($node->safe_psql('postgres', 'SELECT sum(n), sum(t) FROM w'), '1000|500500', 'rows counted');

$node->restart;
$node->safe_psql('postgres', q{
INSERT INTO s SELECT i % 10, 1 FROM generate_series(1, 500) i;
SELECT rtstream.sync();
});
my $after = $node->safe_psql('postgres', 'SELECT sum(n) FROM w');
ok($after >= 500, "rows after the restart are counted ($after)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM rtstream.windows'), '1', 'window kept');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM rtstream.stats WHERE pid IS NOT NULL"), '3', 'router and workers running');

# a killed worker: the postmaster restarts everything, the server stays up
my $pid = $node->safe_psql('postgres', "SELECT pid FROM rtstream.stats WHERE process = 'worker 0'");
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM rtstream.stats WHERE pid IS NOT NULL AND pid <> $pid"), 'workers back');
$node->safe_psql('postgres', q{
INSERT INTO s SELECT i % 10, 1 FROM generate_series(1, 100) i;
SELECT rtstream.sync();
});
ok($node->safe_psql('postgres', 'SELECT sum(n) FROM w') >= 100, 'counting again after the crash');
$node->stop;
done_testing();
