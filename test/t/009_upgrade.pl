# ALTER EXTENSION rtstream UPDATE from 0.1 gives the same objects as a
# fresh install of the current version, and the updated extension works:
# a window created after the update with history and lateness equals plain
# SQL.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RtsTest;

my $node = rts_node('upgrade');

# every function (signature, body, security, ACL), column (type, NOT NULL,
# default), constraint, trigger and table ACL of the schema
my $objects = q{
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') -> '
       || pg_get_function_result(p.oid) || ' ' || p.prosecdef || ' '
       || coalesce(array_to_string(p.proconfig, ','), '') || ' ' || md5(p.prosrc) || ' '
       || coalesce(array_to_string(p.proacl, ','), '')
  FROM pg_proc p WHERE p.pronamespace = 'rtstream'::regnamespace
UNION ALL
SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
       || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'rtstream'::regnamespace
UNION ALL
SELECT conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'rtstream'::regnamespace
UNION ALL
SELECT tgname || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'rtstream.windows'::regclass
UNION ALL
SELECT c.relname || ' acl ' || coalesce(array_to_string(c.relacl, ','), '')
  FROM pg_class c WHERE c.relnamespace = 'rtstream'::regnamespace
ORDER BY 1
};

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION rtstream');
my $fresh = $node->safe_psql('fresh', $objects);
my $version = $node->safe_psql('fresh',
	"SELECT extversion FROM pg_extension WHERE extname = 'rtstream'");
isnt($version, '0.1', "the default version is $version");

$node->safe_psql('postgres', q{CREATE EXTENSION rtstream VERSION '0.1'});

# before the update, the SQL of 0.1 meets this library: a clear ERROR
$node->safe_psql('postgres', q{CREATE TABLE old (k int); SELECT rtstream.create_stream('old')});
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT rtstream.create_window('old_w', 'SELECT count(*) FROM old', '1 day')});
like($err, qr/ERROR:  the rtstream extension is older than its library.*HINT:  Run ALTER EXTENSION rtstream UPDATE/s,
	'a window through the SQL of 0.1 is refused with a HINT to update');
is($node->safe_psql('postgres', 'SELECT count(*) FROM rtstream.windows'), '0', 'and nothing was created');
$node->safe_psql('postgres', 'ALTER EXTENSION rtstream UPDATE');
is( $node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'rtstream'"),
	$version, "updated to $version");
my $updated = $node->safe_psql('postgres', $objects);
is($updated, $fresh, 'the updated extension has the objects of a fresh install');

# the updated extension works
rts_wait_ready($node);
$node->safe_psql('postgres', q{
SET timezone = 'UTC';
CREATE TABLE u (k int, v int, ts timestamptz);
CREATE TABLE u_truth (LIKE u);
SELECT rtstream.create_stream('u', partition_by => 'k');
SELECT rtstream.create_window('u_w', 'SELECT k, count(*) AS n, sum(v) AS s FROM u GROUP BY k',
  size => '1 minute', time_column => 'ts', allowed_lateness => '10 seconds', history => true);
WITH r AS (SELECT i % 5 AS k, i AS v, timestamptz '2026-05-01 00:00:00+00' + i * interval '1 second' AS ts
             FROM generate_series(0, 599) i),
     s AS (INSERT INTO u SELECT * FROM r RETURNING 1)
INSERT INTO u_truth SELECT * FROM r;
SELECT rtstream.sync();
});
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
  (SELECT window_start, window_end, k, n, s FROM u_w_history
   EXCEPT ALL
   SELECT date_bin('1 minute', ts, 'epoch'), date_bin('1 minute', ts, 'epoch') + interval '1 minute',
          k, count(*), sum(v)
     FROM u_truth WHERE ts < '2026-05-01 00:09:00+00' GROUP BY 1, 2, 3)
  UNION ALL
  (SELECT date_bin('1 minute', ts, 'epoch'), date_bin('1 minute', ts, 'epoch') + interval '1 minute',
          k, count(*), sum(v)
     FROM u_truth WHERE ts < '2026-05-01 00:09:00+00' GROUP BY 1, 2, 3
   EXCEPT ALL
   SELECT window_start, window_end, k, n, s FROM u_w_history)) d}),
	'0',
	'history of a window created after the update equals plain SQL');

$node->stop;
done_testing();
