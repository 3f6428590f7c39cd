--
-- Only committed rows count: ROLLBACK, rolled-back savepoints, errors and
-- ROLLBACK PREPARED leave nothing; released savepoints keep their rows, a
-- prepared transaction's rows count at COMMIT PREPARED.  Small batches
-- (rtstream.batch_size = 1kB) make rows reach WAL before the commit, inside
-- the savepoints too.
--
CREATE TABLE tx (k int, v int);
CREATE TABLE tx_truth (LIKE tx);
SELECT rtstream.create_stream('tx', partition_by => 'k');
SELECT rtstream.create_window('tx_w', 'SELECT k, count(*) AS n, sum(v) AS s FROM tx GROUP BY k', size => '1 day');

CREATE FUNCTION tx_check() RETURNS TABLE (side text, row_text text) LANGUAGE sql AS $$
    SELECT * FROM rt_diff('(SELECT k, n, s FROM tx_w) w', 'SELECT k, count(*), sum(v) FROM tx_truth GROUP BY k')
$$;

-- committed, rolled back
BEGIN;
INSERT INTO tx SELECT i % 10, i FROM generate_series(1, 3000) i;
INSERT INTO tx_truth SELECT i % 10, i FROM generate_series(1, 3000) i;
COMMIT;
BEGIN;
INSERT INTO tx SELECT i % 10, 1000000 FROM generate_series(1, 3000) i;
ROLLBACK;
SELECT * FROM tx_check();

SET rtstream.batch_size = 1;
-- savepoints: rolled back, released, nested
BEGIN;
INSERT INTO tx SELECT i % 10, i FROM generate_series(1, 500) i;
INSERT INTO tx_truth SELECT i % 10, i FROM generate_series(1, 500) i;
SAVEPOINT a;
INSERT INTO tx SELECT i % 10, -1 FROM generate_series(1, 500) i;
ROLLBACK TO SAVEPOINT a;
INSERT INTO tx SELECT i % 10, 7 FROM generate_series(1, 50) i;
INSERT INTO tx_truth SELECT i % 10, 7 FROM generate_series(1, 50) i;
SAVEPOINT b;
INSERT INTO tx SELECT i % 10, 3 FROM generate_series(1, 400) i;
INSERT INTO tx_truth SELECT i % 10, 3 FROM generate_series(1, 400) i;
RELEASE SAVEPOINT b;
SAVEPOINT c;
INSERT INTO tx SELECT i % 10, 11 FROM generate_series(1, 300) i;
SAVEPOINT d;
INSERT INTO tx SELECT i % 10, 13 FROM generate_series(1, 300) i;
RELEASE SAVEPOINT d;
ROLLBACK TO SAVEPOINT c;
SAVEPOINT e;
INSERT INTO tx SELECT i % 10, 17 FROM generate_series(1, 300) i;
INSERT INTO tx_truth SELECT i % 10, 17 FROM generate_series(1, 300) i;
SAVEPOINT f;
INSERT INTO tx SELECT i % 10, 19 FROM generate_series(1, 300) i;
ROLLBACK TO SAVEPOINT f;
RELEASE SAVEPOINT e;
COMMIT;
SELECT * FROM tx_check();

-- PL/pgSQL exception blocks are subtransactions too
DO $$
BEGIN
    INSERT INTO tx SELECT i % 10, 23 FROM generate_series(1, 200) i;
    INSERT INTO tx_truth SELECT i % 10, 23 FROM generate_series(1, 200) i;
    BEGIN
        INSERT INTO tx SELECT i % 10, 29 FROM generate_series(1, 200) i;
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
END $$;
SELECT * FROM tx_check();

-- an error aborts the whole transaction, rows already in WAL included
BEGIN;
INSERT INTO tx SELECT i % 10, 31 FROM generate_series(1, 2000) i;
INSERT INTO tx SELECT i % 10, 1 / (i - 100) FROM generate_series(1, 2000) i;
COMMIT;
SELECT * FROM tx_check();
RESET rtstream.batch_size;

-- constraints of the stream are checked, as for any table
ALTER TABLE tx ADD CONSTRAINT v_positive CHECK (v > 0);
ALTER TABLE tx ALTER k SET NOT NULL;
INSERT INTO tx VALUES (1, -5);
INSERT INTO tx VALUES (NULL, 5);
INSERT INTO tx VALUES (1, 5);
INSERT INTO tx_truth VALUES (1, 5);
SELECT * FROM tx_check();

-- two-phase commit: rows count at COMMIT PREPARED, never after ROLLBACK PREPARED
BEGIN;
INSERT INTO tx VALUES (1, 1);
INSERT INTO tx_truth VALUES (1, 1);
PREPARE TRANSACTION 'tx_2pc';
SELECT gid FROM pg_prepared_xacts;
SELECT * FROM tx_check();
COMMIT PREPARED 'tx_2pc';
SELECT * FROM tx_check();
BEGIN;
INSERT INTO tx SELECT i % 10, 1000000 FROM generate_series(1, 3000) i;
PREPARE TRANSACTION 'tx_2pc';
ROLLBACK PREPARED 'tx_2pc';
SELECT count(*) FROM pg_prepared_xacts;
SELECT * FROM tx_check();
-- a prepared transaction that did not touch a stream is fine too
BEGIN;
INSERT INTO tx_truth VALUES (2, 2);
PREPARE TRANSACTION 'tx_2pc';
INSERT INTO tx VALUES (2, 2);
COMMIT PREPARED 'tx_2pc';
SELECT * FROM tx_check();
SELECT sum(n) AS rows_counted, (SELECT count(*) FROM tx_truth) AS rows_committed FROM tx_w;
-- rtstream DDL cannot be prepared (readers would keep the old definitions)
BEGIN;
SELECT rtstream.create_window('tx_w2', 'SELECT k, count(*) AS n FROM tx GROUP BY k', size => '1 day');
PREPARE TRANSACTION 'tx_ddl';
SELECT count(*) FROM pg_prepared_xacts;
SELECT count(*) FROM rtstream.windows WHERE name = 'tx_w2';
