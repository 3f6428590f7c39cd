# A server without the required settings gets a clear ERROR, never a crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# no shared_preload_libraries
my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->append_conf('postgresql.conf', "wal_level = logical\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION rtstream');
$node->safe_psql('postgres', 'CREATE TABLE t (k int)');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT rtstream.create_stream('t')");
isnt($ret, 0, 'create_stream fails without the preload');
like($err, qr/ERROR:  rtstream must be loaded via shared_preload_libraries/, 'error names the setting');
like($err, qr/HINT:  Add rtstream to shared_preload_libraries/, 'hint says what to do');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT rtstream.create_window('w', 'SELECT k, count(*) FROM t GROUP BY k', size => '1 minute')");
like($err, qr/rtstream must be loaded via shared_preload_libraries/, 'create_window too');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '0', 'nothing changed');
$node->stop;

# wal_level below logical
my $node2 = PostgreSQL::Test::Cluster->new('replica_wal');
$node2->init;
$node2->append_conf('postgresql.conf',
	"shared_preload_libraries = 'rtstream'\nwal_level = replica\nrtstream.databases = 'postgres'\n");
$node2->start;
$node2->safe_psql('postgres', 'CREATE EXTENSION rtstream');
$node2->safe_psql('postgres', 'CREATE TABLE t (k int)');
($ret, $out, $err) = $node2->psql('postgres', "SELECT rtstream.create_stream('t')");
like($err, qr/ERROR:  rtstream requires wal_level = logical/, 'wal_level error');
like($err, qr/HINT:  Set wal_level = logical/, 'wal_level hint');
ok($node2->poll_query_until('postgres', 'SELECT true'), 'server still up');
$node2->stop;

# a database that is not in rtstream.databases
my $node3 = PostgreSQL::Test::Cluster->new('other_db');
$node3->init;
$node3->append_conf('postgresql.conf',
	"shared_preload_libraries = 'rtstream'\nwal_level = logical\nrtstream.databases = 'postgres'\n");
$node3->start;
$node3->safe_psql('postgres', 'CREATE DATABASE other');
$node3->safe_psql('other', 'CREATE EXTENSION rtstream');
$node3->safe_psql('other', 'CREATE TABLE t (k int)');
($ret, $out, $err) = $node3->psql('other', "SELECT rtstream.create_stream('t')");
like($err, qr/ERROR:  rtstream does not run in database "other"/, 'database list error');
like($err, qr/HINT:  Add the database to rtstream.databases/, 'database list hint');
$node3->stop;

done_testing();
