# Issue 9: workers run each window's code with its owner's rights, never a
# superuser's.
#
# 1. mallory, an ordinary role, owns windows over a superuser's stream
#    whose user-written parts (WHERE, group key, aggregate argument,
#    FILTER, a user-defined aggregate's transition, combine and final
#    functions, triggers on the history table, a trigger and a DEFAULT on
#    her dead letter table, retention deletes) try to make her a superuser,
#    grant her a pg_* role and write a table she may not write.  Nothing of
#    it succeeds, the code ran (in the workers) as mallory only, and every
#    window still equals the same aggregate in plain SQL over a truth table
#    written in the same transactions.  The settings her code makes
#    (search_path, a custom GUC) do not reach the code of another owner's
#    window in the workers.
# 2. Under concurrent writers, alice loses SELECT on the stream: her window
#    stalls on every worker (window_stats.state, error), rtstream.sync()
#    warns about it instead of waiting, the other window keeps advancing;
#    with the grant back it replays what it missed and counts every
#    committed row exactly once; the workers never restart.
# 3. ALTER VIEW ... OWNER TO changes whose rights a window's code runs with.
# 4. rtstream.dead_letters shows a role only the dead letters of streams it
#    may read; a superuser sees all.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use RtsTest;

my $node = rts_node('trust');
$node->append_conf('postgresql.conf', "timezone = 'UTC'\n");
$node->restart;

# psql as another role (trust authentication on the test's socket): the
# objects are that role's, created in its own session.
sub connstr_as
{
	my ($user) = @_;
	return $node->connstr('postgres') . " user=$user";
}

sub psql_as
{
	my ($user, $sql) = @_;
	return $node->safe_psql('postgres', $sql, connstr => connstr_as($user));
}

# ($ret, $stdout, $stderr), not dying on an error
sub try_as
{
	my ($user, $sql) = @_;
	my ($ret, $out, $err) =
	  $node->psql('postgres', $sql, connstr => connstr_as($user));
	return ($ret, $out, $err);
}

# rts_diff, run as $user: mallory's windows use her functions, which must
# never run in a superuser's session (reading a view runs the combine and
# final functions of its aggregates in the reader's backend, as with any
# view).  An error is returned as the third value, not raised.
sub diff_as
{
	my ($user, $left, $right, $limit) = @_;
	my ($ret, $res, $err) = try_as($user, rts_diff_sql($left, $right, $limit));
	return ('error', 'error', $err) if $ret != 0;
	return rts_diff_parse($res);
}

# ---------------------------------------------------------------------------
# 1. Roles, a secret, a superuser's stream
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE EXTENSION rtstream;
CREATE ROLE alice LOGIN;
CREATE ROLE mallory LOGIN;
CREATE TABLE secret (x int);
INSERT INTO secret VALUES (42);
CREATE TABLE s (k int NOT NULL, v int NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE t (LIKE s);
SELECT rtstream.create_stream('s', partition_by => 'k');
GRANT SELECT, INSERT ON s TO mallory, alice;
GRANT SELECT ON t TO mallory;
GRANT CREATE ON SCHEMA public TO mallory, alice;
});
rts_wait_ready($node);
my $nworkers = $node->safe_psql('postgres',
	"SELECT count(*) FROM rtstream.stats WHERE process <> 'router'");
is( $node->safe_psql('postgres', q{
SELECT string_agg(rolname || ':' || rolsuper || ':' ||
                  (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid), ',' ORDER BY rolname)
  FROM pg_roles r WHERE rolname IN ('alice', 'mallory')}),
	'alice:false:0,mallory:false:0',
	'alice and mallory are ordinary roles, members of nothing');

# ---------------------------------------------------------------------------
# 2. mallory's windows try to escalate
# ---------------------------------------------------------------------------

# m_evil(tag) logs who runs it and where, then tries everything a superuser
# could do for mallory; it never raises (it catches the errors of its
# attempts).  The wrappers return the values the window queries use.
my $log2_offset = -s $node->logfile;
psql_as('mallory', q{
CREATE TABLE m_log (vector text, usr text, backend text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION m_evil(tag text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    b text;
BEGIN
    BEGIN
        SELECT a.backend_type INTO b FROM pg_stat_get_activity(pg_backend_pid()) a;
    EXCEPTION WHEN OTHERS THEN
        b := 'unknown';
    END;
    INSERT INTO m_log (vector, usr, backend) VALUES (tag, current_user, coalesce(b, 'unknown'));
    BEGIN
        ALTER ROLE mallory SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        GRANT pg_execute_server_program TO mallory;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        INSERT INTO secret VALUES (666);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        DELETE FROM secret;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    -- settings meant to outlive her code: they must not reach the next
    -- owner's code in the worker (public stays on the path for her own
    -- functions)
    PERFORM set_config('search_path', 'mallory_leak, public', false);
    PERFORM set_config('rtstream_test.leak', 'mallory', false);
    RETURN true;
END
$$;

-- (a) WHERE
CREATE FUNCTION m_where(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('where');
    RETURN v % 2 = 0;
END
$$;
-- (b) group key: GROUP BY refuses volatile functions, and a STABLE
-- function may still call a volatile one
CREATE FUNCTION m_key(k int) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM m_evil('groupkey');
    RETURN k % 5;
END
$$;
-- (c) aggregate argument
CREATE FUNCTION m_arg(v int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('argument');
    RETURN v * 2;
END
$$;
-- (d) FILTER
CREATE FUNCTION m_filter(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('filter');
    RETURN v % 3 = 0;
END
$$;

-- (e) user-defined aggregates: an int8 state (by value) and a composite
-- state (by reference); sum(v), and sum(v) - count(*)
CREATE FUNCTION m_sfunc(st int8, v int) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('sfunc');
    RETURN coalesce(st, 0) + coalesce(v, 0);
END
$$;
CREATE FUNCTION m_combine(a int8, b int8) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('combine');
    RETURN coalesce(a, 0) + coalesce(b, 0);
END
$$;
CREATE FUNCTION m_final(st int8) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('final');
    RETURN st;
END
$$;
CREATE AGGREGATE m_sum(int) (sfunc = m_sfunc, stype = int8, combinefunc = m_combine,
                             finalfunc = m_final, initcond = '0');
CREATE TYPE m_pair AS (s int8, c int8);
CREATE FUNCTION m_pair_add(st m_pair, v int) RETURNS m_pair LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('sfunc');
    RETURN ROW(coalesce(st.s, 0) + v, coalesce(st.c, 0) + 1)::m_pair;
END
$$;
CREATE FUNCTION m_pair_merge(a m_pair, b m_pair) RETURNS m_pair LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('combine');
    RETURN ROW(coalesce(a.s, 0) + coalesce(b.s, 0), coalesce(a.c, 0) + coalesce(b.c, 0))::m_pair;
END
$$;
CREATE FUNCTION m_pair_final(st m_pair) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('final');
    RETURN st.s - st.c;
END
$$;
CREATE AGGREGATE m_sum_less_count(int) (sfunc = m_pair_add, stype = m_pair,
                                        combinefunc = m_pair_merge, finalfunc = m_pair_final,
                                        initcond = '(0,0)');

-- (f), (g), (i) triggers; (h) a column default
CREATE FUNCTION m_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil(TG_ARGV[0]);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE FUNCTION m_default() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM m_evil('dl_default');
    RETURN 'from m_default';
END
$$;

-- dead letter tables with the columns of rtstream.dead_letters (and an id
-- of their own: the default of rtstream.dead_letters.id is a sequence of
-- rtstream's)
CREATE TABLE m_dead_g (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(),
                       stream regclass, window_name text, commit_lsn pg_lsn, error text NOT NULL,
                       row_data text);
CREATE TRIGGER m_dead_g_trg AFTER INSERT ON m_dead_g
    FOR EACH ROW EXECUTE FUNCTION m_trg('dl_trigger');
CREATE TABLE m_dead_h (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(),
                       stream regclass, window_name text, commit_lsn pg_lsn, error text NOT NULL,
                       row_data text, tag text DEFAULT m_default());

-- commit-time windows (a) to (e)
SELECT rtstream.create_window('m_a',
  'SELECT k, count(*) AS n, sum(v) AS total FROM s WHERE m_where(v) GROUP BY k', size => '1 day');
SELECT rtstream.create_window('m_b',
  'SELECT m_key(k) AS g, count(*) AS n, sum(v) AS total FROM s GROUP BY m_key(k)', size => '1 day');
SELECT rtstream.create_window('m_c',
  'SELECT k, count(*) AS n, sum(m_arg(v)) AS total FROM s GROUP BY k', size => '1 day');
SELECT rtstream.create_window('m_d',
  'SELECT k, count(*) AS n, count(*) FILTER (WHERE m_filter(v)) AS nf FROM s GROUP BY k', size => '1 day');
SELECT rtstream.create_window('m_e',
  'SELECT k, m_sum(v) AS total, m_sum_less_count(v) AS slc FROM s GROUP BY k', size => '1 day');
-- (f) history: worker 0 combines and finalises the closed windows (groups
-- span both workers: the group key is not the partition key) and inserts
-- them into mallory's table
SELECT rtstream.create_window('m_f',
  'SELECT v % 3 AS g, count(*) AS n, m_sum(v) AS total, m_sum_less_count(v) AS slc FROM s GROUP BY v % 3',
  size => '1 minute', time_column => 'ts', history => true);
CREATE TRIGGER m_f_trg AFTER INSERT ON m_f_history
    FOR EACH ROW EXECUTE FUNCTION m_trg('history_insert');
-- (g), (h) late rows into mallory's dead letter tables
SELECT rtstream.create_window('m_g', 'SELECT k, count(*) AS n FROM s GROUP BY k',
  size => '1 minute', time_column => 'ts', late_policy => 'dead_letter', dead_letter_table => 'm_dead_g');
SELECT rtstream.create_window('m_h', 'SELECT k, count(*) AS n FROM s GROUP BY k',
  size => '1 minute', time_column => 'ts', late_policy => 'dead_letter', dead_letter_table => 'm_dead_h');
-- (i) retention deletes from mallory's history table
SELECT rtstream.create_window('m_i', 'SELECT k % 4 AS g, count(*) AS n FROM s GROUP BY k % 4',
  size => '1 minute', time_column => 'ts', history => true, retention => '1 minute');
CREATE TRIGGER m_i_trg BEFORE DELETE ON m_i_history
    FOR EACH ROW EXECUTE FUNCTION m_trg('retention_delete');
});
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM rtstream.windows w JOIN pg_class c ON c.oid = w.view
 WHERE w.name LIKE 'm\_%' AND c.relowner = 'mallory'::regrole}),
	'9', "mallory owns the views of her 9 windows");
# A window of the superuser's on the same stream logs the settings its code
# runs with: what mallory's code set must not reach it.
$node->safe_psql('postgres', q{
CREATE TABLE p_log (usr text, sp text, leak text);
CREATE FUNCTION p_probe(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.p_log VALUES (current_user, current_setting('search_path'),
                                     current_setting('rtstream_test.leak', true));
    RETURN true;
END
$$;
SELECT rtstream.create_window('p_probe', 'SELECT k, count(*) AS n FROM s WHERE p_probe(v) GROUP BY k',
  size => '1 day');
});
rts_wait_ready($node);

# Rows, each transaction into the stream and the truth: event times in
# [T, T + 5 min), ascending in each partition (none late), then rows at
# T + 10 min on every worker (the watermark passes the first five windows:
# history, retention), then rows at T + 6 min 30 s, late (their window
# closed with no row), dead letters of m_g and m_h.
my $T = "timestamptz '2030-01-01 00:00:00+00'";
my ($rows_ret, $rows_out, $rows_err) = $node->psql('postgres', qq{
BEGIN;
INSERT INTO s SELECT i % 50, i, $T + ((i - 1) / 2) * interval '1 second' FROM generate_series(1, 600) i;
INSERT INTO t SELECT i % 50, i, $T + ((i - 1) / 2) * interval '1 second' FROM generate_series(1, 600) i;
COMMIT;
BEGIN;
INSERT INTO s SELECT k, 1, $T + interval '10 minutes' FROM generate_series(1, 64) k;
INSERT INTO t SELECT k, 1, $T + interval '10 minutes' FROM generate_series(1, 64) k;
COMMIT;
SELECT rtstream.sync();
BEGIN;
INSERT INTO s SELECT k, 2, $T + interval '6 minutes 30 seconds' FROM generate_series(1, 10) k;
INSERT INTO t SELECT k, 2, $T + interval '6 minutes 30 seconds' FROM generate_series(1, 10) k;
COMMIT;
SELECT rtstream.sync();
});
is($rows_ret, 0, "the rows are applied: rtstream.sync() returns") or diag($rows_err);
is( $node->safe_psql('postgres', q{
SELECT count(*) >= 674, count(*) FILTER (WHERE sp IS DISTINCT FROM '"$user", public'
                                       OR coalesce(leak, '') <> '')
  FROM p_log}),
	't|0', "no setting made by mallory's code reaches another owner's code in the workers");

is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'mallory is still not a superuser');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_auth_members WHERE member = 'mallory'::regrole"),
	'0', 'mallory was granted no role');
is($node->safe_psql('postgres', 'SELECT string_agg(x::text, \',\' ORDER BY x) FROM secret'),
	'42', 'secret still holds exactly its one row');
is($node->safe_psql('postgres', q{SELECT coalesce(string_agg(DISTINCT usr, ','), '(none)') FROM m_log}),
	'mallory', "mallory's code ran as mallory only")
  or diag($node->safe_psql('postgres',
	'SELECT vector, usr, backend, count(*) FROM m_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3'));
# worker 0 appends the history, the workers apply rows and dead letters:
# each vector ran outside any client session
my %ran = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
SELECT vector, count(*) FROM m_log WHERE backend <> 'client backend' GROUP BY vector});
for my $vector (qw(where groupkey argument filter sfunc combine final
	history_insert dl_trigger dl_default retention_delete))
{
	ok(($ran{$vector} // 0) > 0,
		"vector $vector ran in a worker (" . ($ran{$vector} // 0) . ' times)');
}
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM rtstream.window_stats
 WHERE window_name LIKE 'm\_%' AND (state IS DISTINCT FROM 'running' OR error IS NOT NULL OR error_at IS NOT NULL)}),
	'0', "mallory's windows are all running, without error");

# each window equals plain SQL over the truth (read as mallory)
my %truth = (
	m_a => [ 'SELECT k, n, total FROM m_a',
		'SELECT k, count(*), sum(v) FROM t WHERE v % 2 = 0 GROUP BY k' ],
	m_b => [ 'SELECT g, n, total FROM m_b',
		'SELECT k % 5, count(*), sum(v) FROM t GROUP BY k % 5' ],
	m_c => [ 'SELECT k, n, total FROM m_c',
		'SELECT k, count(*), sum(v * 2) FROM t GROUP BY k' ],
	m_d => [ 'SELECT k, n, nf FROM m_d',
		'SELECT k, count(*), count(*) FILTER (WHERE v % 3 = 0) FROM t GROUP BY k' ],
	m_e => [ 'SELECT k, total, slc FROM m_e',
		'SELECT k, sum(v)::int8, sum(v)::int8 - count(*) FROM t GROUP BY k' ],
	# the windows closed: [T, T + 5 min) (the late rows never count)
	m_f_history => [ 'SELECT * FROM m_f_history', qq{
SELECT to_timestamp(b * 60), to_timestamp(b * 60 + 60), v % 3, count(*), sum(v)::int8, sum(v)::int8 - count(*)
  FROM (SELECT floor(extract(epoch FROM ts) / 60)::bigint AS b, v FROM t
         WHERE ts < $T + interval '5 minutes') x
 GROUP BY b, v % 3} ],
);
for my $w (sort keys %truth)
{
	my ($wonly, $tonly, $rows) = diff_as('mallory', @{ $truth{$w} });
	is("$wonly $tonly", '0 0', "$w equals plain SQL over the truth") or diag($rows);
}
is( psql_as('mallory', 'SELECT count(*) FROM m_f_history'),
	$node->safe_psql('postgres', qq{
SELECT count(DISTINCT (floor(extract(epoch FROM ts) / 60), v % 3)) FROM t WHERE ts < $T + interval '5 minutes'}),
	'm_f: the closed windows are in the history');
is($ran{history_insert} // 0, psql_as('mallory', 'SELECT count(*) FROM m_f_history'),
	"m_f: the history trigger fired once per row appended");
# retention: watermark T + 10 min, retention 1 minute: every window of the
# first five minutes was appended and then deleted
is(psql_as('mallory', 'SELECT count(*) FROM m_i_history'), '0',
	'm_i: retention deleted every closed window from the history');
is( $ran{retention_delete} // 0,
	$node->safe_psql('postgres', qq{
SELECT count(DISTINCT (floor(extract(epoch FROM ts) / 60), k % 4)) FROM t WHERE ts < $T + interval '5 minutes'}),
	'm_i: the BEFORE DELETE trigger fired once per window and group deleted');
# late rows
is( psql_as('mallory', q{
SELECT count(*) || ' ' || count(*) FILTER (WHERE error LIKE 'late row%' AND window_name = 'm_g'
                                             AND stream = 's'::regclass) FROM m_dead_g}),
	'10 10', 'm_g: the late rows are in mallory\'s dead letter table');
is( psql_as('mallory', q{
SELECT count(*) || ' ' || count(*) FILTER (WHERE error LIKE 'late row%' AND tag = 'from m_default') FROM m_dead_h}),
	'10 10', 'm_h: the late rows are in mallory\'s dead letter table, with the default');
is($ran{dl_trigger} // 0, '10', 'm_g: the dead letter trigger fired once per late row');
is($ran{dl_default} // 0, '10', 'm_h: the dead letter default was evaluated once per late row');
# mallory's code catches its own errors: nothing reaches the workers (an
# error caught in a PL/pgSQL block aborts a subtransaction inside the
# worker's apply, which must leave the worker's state and locks intact)
{
	my @errors = slurp_file($node->logfile, $log2_offset) =~ /^([^\n]*(?:ERROR|FATAL|PANIC):[^\n]*)$/mg;
	is(scalar(@errors), 0, "no error logged while the workers ran mallory's code")
	  or diag(join("\n", @errors[0 .. ($#errors < 9 ? $#errors : 9)]));
}

# the workers stop running mallory's code for the rest of the test
psql_as('mallory', q{
SELECT rtstream.drop_window(name) FROM rtstream.windows WHERE name LIKE 'm\_%';
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM rtstream.windows WHERE name LIKE 'm\_%'}),
	'0', 'mallory dropped her windows');

# ---------------------------------------------------------------------------
# 3. alice loses SELECT on the stream under load, and gets it back
# ---------------------------------------------------------------------------
psql_as('alice', q{
SELECT rtstream.create_window('a_w', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
});
$node->safe_psql('postgres', q{
CREATE TABLE t3 (LIKE s);
SELECT rtstream.create_window('su_w', 'SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k', size => '1 day');
});
rts_wait_ready($node);
my $pids_sql = q{SELECT string_agg(process || ' ' || pid, ', ' ORDER BY process) FROM rtstream.stats};
my $pids_before = $node->safe_psql('postgres', $pids_sql);
my $log_offset = -s $node->logfile;

my $writers = rts_pgbench($node, 25, clients => 4, scripts => [ [ q{
\set k random(1, 200)
\set n random(1, 20)
BEGIN;
INSERT INTO s SELECT :k + g, g * :k % 1000, now() FROM generate_series(1, :n) g;
INSERT INTO t3 SELECT :k + g, g * :k % 1000, now() FROM generate_series(1, :n) g;
COMMIT;
\sleep 1 ms
}, 1 ] ]);
sleep(1.5);
$node->safe_psql('postgres', 'REVOKE SELECT ON s FROM alice');
my $stalled_at = time();
ok( $node->poll_query_until('postgres', qq{
SELECT count(*) FILTER (WHERE state = 'stalled' AND error LIKE '%permission denied%'
                         AND error_at IS NOT NULL) = $nworkers
  FROM rtstream.window_stats WHERE window_name = 'a_w'}),
	'REVOKE: a_w stalls on every worker');
note(sprintf('stalled within %.1f s', time() - $stalled_at));
like( $node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT error, ' / ') FROM rtstream.window_stats WHERE window_name = 'a_w'"),
	qr/permission denied for table s\b/, 'REVOKE: the error names the stream');
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM rtstream.window_stats WHERE window_name = 'su_w' AND state = 'running' AND error IS NULL}),
	$nworkers, 'REVOKE: su_w is running on every worker');
my $rows_sql = q{
SELECT (SELECT sum(rows) FROM rtstream.window_stats WHERE window_name = 'a_w') || ' ' ||
       (SELECT sum(rows) FROM rtstream.window_stats WHERE window_name = 'su_w') || ' ' ||
       (SELECT count(*) FROM t3)};
my ($a1, $s1, $t1) = split / /, $node->safe_psql('postgres', $rows_sql);
sleep(2);
my ($a2, $s2, $t2) = split / /, $node->safe_psql('postgres', $rows_sql);
is($a2, $a1, "REVOKE: a stalled window applies no row ($a1 rows)");
ok($s2 > $s1,
	"REVOKE: the other window keeps advancing ($s1 -> $s2 rows; truth $t1 -> $t2)");
{
	my $start = time();
	my ($ret, $out, $err) =
	  $node->psql('postgres', "SELECT rtstream.sync('30 seconds')");
	my $took = time() - $start;
	is($ret, 0, 'REVOKE: rtstream.sync() returns') or diag($err);
	like($err, qr/WARNING:[^\n]*\ba_w\b/, 'REVOKE: with a WARNING naming the stalled window');
	ok($took < 20, sprintf('REVOKE: without waiting for the stalled window (%.1f s)', $took));
}

$node->safe_psql('postgres', 'GRANT SELECT ON s TO alice');
my $granted_at = time();
rts_stop_writers($writers);
ok( $node->poll_query_until('postgres', qq{
SELECT count(*) FILTER (WHERE state = 'running' AND error IS NULL AND error_at IS NULL) = $nworkers
  FROM rtstream.window_stats WHERE window_name = 'a_w'}),
	'GRANT: a_w runs again on every worker');
note(sprintf('running again %.1f s after the grant', time() - $granted_at));
{
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT rtstream.sync()');
	is($ret, 0, 'GRANT: rtstream.sync() returns');
	unlike($err, qr/WARNING/, 'GRANT: without a warning');
}
for my $w (qw(a_w su_w))
{
	my ($wonly, $tonly, $rows) = rts_diff($node, "SELECT k, n, total FROM $w",
		'SELECT k, count(*), sum(v) FROM t3 GROUP BY k');
	is("$wonly $tonly", '0 0', "GRANT: $w equals the truth") or diag($rows);
}
my ($truth3, $a_n, $su_n) = split /\|/, $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM t3), (SELECT sum(n) FROM a_w), (SELECT sum(n) FROM su_w)');
ok($truth3 > 0, "GRANT: $truth3 rows committed");
is($a_n // 0, $truth3, 'GRANT: a_w counted every committed row exactly once');
is($su_n // 0, $truth3, 'GRANT: su_w counted every committed row exactly once');
is($node->safe_psql('postgres', $pids_sql), $pids_before,
	'the router and the workers kept running (same pids)');
{
	my $log = slurp_file($node->logfile, $log_offset);
	my @denied = $log =~ /^([^\n]*ERROR:[^\n]*permission denied for table s\b[^\n]*)$/mg;
	ok(@denied >= 1 && @denied <= $nworkers,
		'the permission error is logged once per worker at most (' . scalar(@denied) . ')')
	  or diag(join("\n", @denied[0 .. ($#denied < 9 ? $#denied : 9)]));
	unlike($log, qr/background worker "rtstream[^"]*" \(PID \d+\) (exited|was terminated)/,
		'no rtstream process exited');
}

# ---------------------------------------------------------------------------
# 4. ALTER VIEW ... OWNER TO: the new owner's rights from the next batch on
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE who_log (id bigint GENERATED ALWAYS AS IDENTITY, usr text, backend text);
GRANT INSERT ON who_log TO alice, mallory;
CREATE FUNCTION who() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    b text;
BEGIN
    BEGIN
        SELECT a.backend_type INTO b FROM pg_stat_get_activity(pg_backend_pid()) a;
    EXCEPTION WHEN OTHERS THEN
        b := 'unknown';
    END;
    INSERT INTO who_log (usr, backend) VALUES (current_user, coalesce(b, 'unknown'));
    RETURN true;
END
$$;
CREATE TABLE t4 (LIKE s);
});
psql_as('alice', q{
SELECT rtstream.create_window('a_who', 'SELECT k, count(*) AS n FROM s WHERE who() GROUP BY k', size => '1 day');
});
rts_wait_ready($node);
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO s SELECT k, k, now() FROM generate_series(1, 20) k;
INSERT INTO t4 SELECT k, k, now() FROM generate_series(1, 20) k;
COMMIT;
SELECT rtstream.sync();
});
{
	my ($users, $calls) = split / /, $node->safe_psql('postgres', q{
SELECT coalesce(string_agg(DISTINCT usr, ','), '(none)') || ' ' || count(*)
  FROM who_log WHERE backend <> 'client backend'});
	is($users, 'alice', "a_who: its WHERE runs as alice in the workers ($calls calls)");
}
my $mark = $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM who_log');
$node->safe_psql('postgres', 'ALTER VIEW a_who OWNER TO mallory');
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO s SELECT k, k, now() FROM generate_series(1, 20) k;
INSERT INTO t4 SELECT k, k, now() FROM generate_series(1, 20) k;
COMMIT;
SELECT rtstream.sync();
});
{
	my ($users, $calls) = split / /, $node->safe_psql('postgres', qq{
SELECT coalesce(string_agg(DISTINCT usr, ','), '(none)') || ' ' || count(*)
  FROM who_log WHERE id > $mark AND backend <> 'client backend'});
	is($users, 'mallory',
		"ALTER VIEW a_who OWNER TO mallory: from the next batch on as mallory ($calls calls)");
}
is( $node->safe_psql('postgres', 'SELECT sum(n) FROM a_who'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM t4'),
	'a_who counted every row, before and after the change of owner');
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM rtstream.window_stats WHERE window_name = 'a_who' AND state = 'running'}),
	$nworkers, 'a_who is running');

# ---------------------------------------------------------------------------
# 5. Dead letters: each role sees those of the streams it may read
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE d1 (k int, v int);
CREATE TABLE d2 (k int, v int);
SELECT rtstream.create_stream('d1', partition_by => 'k');
SELECT rtstream.create_stream('d2', partition_by => 'k');
GRANT SELECT ON d1 TO alice, mallory;
GRANT SELECT ON d2 TO alice;
});
psql_as('alice', q{
SELECT rtstream.create_window('w_d1', 'SELECT k, count(*) AS n, sum(100 / v) AS q FROM d1 GROUP BY k', size => '1 day');
SELECT rtstream.create_window('w_d2', 'SELECT k, count(*) AS n, sum(100 / v) AS q FROM d2 GROUP BY k', size => '1 day');
});
rts_wait_ready($node);
# v = 0 (division by zero): 10 rows of d1, 15 of d2
$node->safe_psql('postgres', q{
INSERT INTO d1 SELECT i % 5, i % 4 FROM generate_series(1, 40) i;
INSERT INTO d2 SELECT i % 5, i % 4 FROM generate_series(1, 60) i;
SELECT rtstream.sync();
});
my $dl_sql = q{
SELECT count(*) FILTER (WHERE window_name = 'w_d1') || ' ' ||
       count(*) FILTER (WHERE window_name = 'w_d2') || ' ' ||
       count(*) FILTER (WHERE stream = 'd2'::regclass)
  FROM rtstream.dead_letters};
is($node->safe_psql('postgres', $dl_sql), '10 15 15', 'dead letters: a superuser sees all');
like($node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT error, ' / ') FROM rtstream.dead_letters WHERE window_name IN ('w_d1', 'w_d2')"),
	qr/^division by zero$/, 'dead letters: with their error');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM w_d1'), '30', 'dead letters: the other rows count');
{
	my ($ret, $out, $err) = try_as('alice', $dl_sql);
	is("$ret $out", '0 10 15 15', 'dead letters: alice (SELECT on d1 and d2) sees those of both')
	  or diag($err);
	($ret, $out, $err) = try_as('mallory', $dl_sql);
	is("$ret $out", '0 10 0 0', 'dead letters: mallory (SELECT on d1 only) sees only those of d1')
	  or diag($err);
	($ret, $out, $err) = try_as('mallory', 'SELECT count(*) FROM rtstream.dead_letters');
	is( "$ret $out",
		'0 ' . $node->safe_psql('postgres', q{
SELECT count(*) FROM rtstream.dead_letters WHERE has_table_privilege('mallory', stream, 'SELECT')}),
		'dead letters: mallory sees exactly those of the streams she may read')
	  or diag($err);
}

# The README's recipe for a dead-letter table: LIKE rtstream.dead_letters
# INCLUDING DEFAULTS draws ids from rtstream's sequence; a worker inserting
# as an ordinary owner may use it.
$node->safe_psql('postgres', q{
CREATE TABLE d3 (ts timestamptz, k int);
SELECT rtstream.create_stream('d3');
GRANT SELECT, INSERT ON d3 TO alice;
});
psql_as('alice', q{
CREATE TABLE late_a (LIKE rtstream.dead_letters INCLUDING DEFAULTS);
SELECT rtstream.create_window('w_late_a', 'SELECT count(*) AS n FROM d3',
  size => '1 minute', time_column => 'ts', late_policy => 'dead_letter', dead_letter_table => 'late_a');
});
$node->safe_psql('postgres', q{
INSERT INTO d3 VALUES ('2026-01-01 00:10:00+00', 1);
SELECT rtstream.sync();
INSERT INTO d3 VALUES ('2026-01-01 00:00:00+00', 1);
SELECT rtstream.sync();
});
is(psql_as('alice', 'SELECT count(*), min(id) > 0, bool_and(error ~ $$late$$) FROM late_a'), '1|t|t',
	'dead letters: the README recipe works for an ordinary owner (late row in its own table)');

$node->stop;
done_testing();
