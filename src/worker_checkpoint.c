/*-------------------------------------------------------------------------
 *
 * worker_checkpoint.c
 *	  A worker's checkpoints: writing its windows' state to
 *	  rtstream.checkpoints, and restoring it at start.
 *
 *	  Exactly once.  A checkpoint of worker w, written in one transaction,
 *	  holds the state of its windows and an LSN L: every transaction ending
 *	  at or before L that had rows for w is in that state, and no later one.
 *	  The same transaction records L for the partitions w owns in
 *	  rtstream.checkpoint_partitions.  At start every worker loads the
 *	  partition LSNs and skips replayed batches of partition p ending at or
 *	  before skip_lsn[p]; the router confirms its slot only up to the oldest
 *	  durable checkpoint, so the replay covers everything after.  States of
 *	  former workers are loaded by worker (former % rtstream.workers), and
 *	  merged, so changing the number of workers loses and repeats nothing.
 *	  A window behind its worker (worker_run.c) is checkpointed with its own
 *	  LSN per partition (checkpoints.partition_lsns).
 *
 *	  A window created after a checkpoint is not loaded at start: it comes
 *	  back with its DDL message in the replay, with the LSN from which it
 *	  counts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "eventtime.h"
#include "owner.h"
#include "state_serial.h"
#include "worker.h"

static XLogRecPtr
spi_lsn(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
}

/* The columns of the restore's query of rtstream.checkpoints, in its order. */
enum
{
	CCOL_WORKER = 1,
	CCOL_WINDOW_ID,
	CCOL_LSN,
	CCOL_STATE,
	CCOL_PARTITION_LSNS
};

/* Whether rtstream.checkpoints has partition_lsns (version 0.3 on). */
static bool
checkpoint_has_partition_lsns(void)
{
	return SPI_execute("SELECT 1 FROM pg_attribute WHERE attrelid = 'rtstream.checkpoints'::regclass "
					   "AND attname = 'partition_lsns' AND NOT attisdropped", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1;
}

/*
 * A checkpoint of a window that was behind its worker holds its partitions
 * at their own LSNs (NULL for partitions of other workers).
 */
static void
restore_partition_lsns(WorkerWindow *ww, ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, LSNOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	for (int p = 0; p < Min(n, RTS_NPARTITIONS); p++)
		if (!nulls[p])
			ww->table->run.skip_lsn[p] = DatumGetLSN(elems[p]);
}

/* The partition LSNs of a window behind its worker, for its checkpoint. */
static ArrayType *
window_partition_lsns(WorkerWindow *ww)
{
	RtsWindowRun *run = &ww->table->run;
	Datum		elems[RTS_NPARTITIONS];
	bool		nulls[RTS_NPARTITIONS];
	int			dims[1] = {RTS_NPARTITIONS};
	int			lbs[1] = {1};

	for (int p = 0; p < RTS_NPARTITIONS; p++)
	{
		nulls[p] = wstate.owner[p] != wstate.index;
		elems[p] = LSNGetDatum(Max(run->progress.applied_lsn, run->skip_lsn[p]));
	}
	return construct_md_array(elems, nulls, 1, dims, lbs, LSNOID, 8,
							  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * Load this worker's windows and their checkpointed state; called at
 * start, in a transaction, with the extension present.
 */
void
rts_worker_restore(void)
{
	int			nworkers = wstate.db->nworkers;
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		args[2] = {Int32GetDatum(nworkers), Int32GetDatum(wstate.index)};
	MemoryContext caller = CurrentMemoryContext;
	List	   *load_ids = NIL;
	List	   *load_lsns = NIL;
	ListCell   *lc,
			   *lc2;
	bool		fresh_tables = true;
	XLogRecPtr	durable = InvalidXLogRecPtr;

	/* tables that survived a restart of this worker alone are newer */
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wstate.db->windows[s].window_id != 0 &&
			DsaPointerIsValid(wstate.db->windows[s].tables[wstate.index]))
			fresh_tables = false;

	SPI_connect();

	/* partitions' LSNs */
	if (SPI_execute("SELECT partition, lsn FROM rtstream.checkpoint_partitions",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.checkpoint_partitions");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			p = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1, &isnull));

		if (p >= 0 && p < RTS_NPARTITIONS)
			wstate.skip_lsn[p] = spi_lsn(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}

	/* windows that existed at some checkpoint, with the LSN they count from */
	if (SPI_execute("SELECT c.window_id, max(c.created_lsn) FROM rtstream.checkpoints c "
					"JOIN rtstream.windows w ON w.id = c.window_id "
					"WHERE c.window_id > 0 GROUP BY c.window_id ORDER BY 1",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.checkpoints");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
		XLogRecPtr	created = spi_lsn(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		MemoryContext old = MemoryContextSwitchTo(caller);
		XLogRecPtr *lsn = palloc(sizeof(XLogRecPtr));

		*lsn = created;
		load_ids = lappend_int(load_ids, id);
		load_lsns = lappend(load_lsns, lsn);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	/* after a restart of this worker alone, the windows of its tables */
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		dsa_pointer tp = wstate.db->windows[s].tables[wstate.index];

		if (wstate.db->windows[s].window_id != 0 && DsaPointerIsValid(tp))
			rts_worker_window_load(wstate.db->windows[s].window_id,
								   ((RtsPaneTable *) dsa_get_address(rts_dsa(), tp))->created_lsn);
	}
	forboth(lc, load_ids, lc2, load_lsns)
		rts_worker_window_load(lfirst_int(lc), *(XLogRecPtr *) lfirst(lc2));

	/* tables of windows dropped while this worker was away */
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wstate.db->windows[s].window_id != 0 &&
			DsaPointerIsValid(wstate.db->windows[s].tables[wstate.index]) &&
			rts_worker_find_window(wstate.db->windows[s].window_id) == NULL)
			rts_worker_drop_table(s, NULL);

	/* the states of the former workers that fall to this one */
	SPI_connect();
	if (SPI_execute_with_args(psprintf("SELECT worker, window_id, lsn, state, %s "
									   "FROM rtstream.checkpoints c "
									   "WHERE worker %% $1 = $2 ORDER BY worker, window_id",
									   checkpoint_has_partition_lsns() ?
									   "partition_lsns" : "NULL::pg_lsn[]"),
							  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.checkpoints");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int32		worker = DatumGetInt32(SPI_getbinval(tup, desc, CCOL_WORKER, &isnull));
		int32		id = DatumGetInt32(SPI_getbinval(tup, desc, CCOL_WINDOW_ID, &isnull));
		Datum		state = SPI_getbinval(tup, desc, CCOL_STATE, &isnull);
		WorkerWindow *ww = rts_worker_find_window(id);

		if (worker == wstate.index && id == 0)
			durable = spi_lsn(tup, desc, CCOL_LSN);
		if (ww == NULL || isnull || !fresh_tables)
			continue;
		{
			bytea	   *b = DatumGetByteaPP(state);
			RtsWindowSlot *slot = rts_worker_slot(ww);
			RtsOwnerSwitch sw = {0};
			Datum		lsns = SPI_getbinval(tup, desc, CCOL_PARTITION_LSNS, &isnull);

			/* merging combines states: the owner's functions */
			rts_owner_enter(ww->def->owner, ww->def->search_path, &sw);
			LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
			rts_table_merge(ww->def, rts_dsa(), ww->table, VARDATA_ANY(b),
							VARSIZE_ANY_EXHDR(b), worker != wstate.index,
							nworkers, rts_atomic_read_time(&slot->emitted_until),
							wstate.batch_cxt);
			LWLockRelease(&wstate.shared->lock);
			rts_owner_leave(&sw);
			if (!isnull)
				restore_partition_lsns(ww, DatumGetArrayTypeP(lsns));
		}
	}
	SPI_finish();

	/*
	 * Until its first checkpoint, this worker's partitions are durable up to
	 * their recorded LSNs.
	 */
	if (durable == InvalidXLogRecPtr)
	{
		for (int p = 0; p < RTS_NPARTITIONS; p++)
			if (wstate.owner[p] == wstate.index &&
				(durable == InvalidXLogRecPtr || wstate.skip_lsn[p] < durable))
				durable = wstate.skip_lsn[p];
	}
	if (fresh_tables)
	{
		foreach(lc, wstate.windows)
			rts_run_restored(lfirst(lc), wstate.skip_lsn);
	}
	durable = rts_run_durable(durable);
	pg_atomic_write_u64(&wstate.shared->durable_lsn, durable);
	if (fresh_tables)
		wstate.shared->progress.applied_lsn = Max(wstate.shared->progress.applied_lsn, durable);

	/* the newest times of the restored state, as of what it holds */
	{
		ListCell   *wlc;

		foreach(wlc, wstate.windows)
		{
			WorkerWindow *ww = lfirst(wlc);

			rts_publish_newest(rts_worker_slot(ww), wstate.index,
							   rts_table_newest(ww->table),
							   wstate.shared->progress.applied_lsn);
		}
	}
}

/* Row types of rtstream.checkpoints, in the order of insert_checkpoint_row. */
#define CKPT_NCOLS 6

/* Insert one row of rtstream.checkpoints: the worker's (ww NULL) or a window's. */
static void
insert_checkpoint_row(WorkerWindow *ww, XLogRecPtr lsn, bytea *state)
{
	Oid			types[CKPT_NCOLS] = {INT4OID, INT4OID, LSNOID, LSNOID, BYTEAOID, InvalidOid};
	Datum		vals[CKPT_NCOLS];
	char		nulls[CKPT_NCOLS] = {' ', ' ', 'n', ' ', 'n', 'n'};

	types[5] = get_array_type(LSNOID);
	vals[0] = Int32GetDatum(wstate.index);
	vals[1] = Int32GetDatum(ww ? ww->def->id : 0);
	vals[3] = LSNGetDatum(lsn);
	if (ww != NULL)
	{
		vals[2] = LSNGetDatum(ww->table->created_lsn);
		vals[4] = PointerGetDatum(state);
		nulls[2] = nulls[4] = ' ';
		if (ww->table->run.state != RTS_RUN_RUNNING)
		{
			vals[5] = PointerGetDatum(window_partition_lsns(ww));
			nulls[5] = ' ';
		}
	}
	if (SPI_execute_with_args("INSERT INTO rtstream.checkpoints "
							  "(worker, window_id, created_lsn, lsn, state, partition_lsns) "
							  "VALUES ($1, $2, $3, $4, $5, $6)",
							  CKPT_NCOLS, types, vals, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write rtstream.checkpoints");
}

/*
 * A window's state as a bytea, leaving out groups with nothing left; *live
 * is the number of groups written.
 */
static bytea *
serialize_window(WorkerWindow *ww, StringInfo buf, uint32 *live)
{
	RtsWindowSlot *slot = rts_worker_slot(ww);
	bytea	   *b;

	resetStringInfo(buf);
	*live = rts_table_serialize(ww->def, rts_dsa(), ww->table, wstate.db->nworkers,
								rts_keep_from(ww->def, rts_window_watermark(wstate.db, slot),
											  rts_atomic_read_time(&slot->emitted_until),
											  rts_atomic_read_time(&slot->session_keep)),
								buf);
	b = palloc(VARHDRSZ + buf->len);
	SET_VARSIZE(b, VARHDRSZ + buf->len);
	memcpy(VARDATA(b), buf->data, buf->len);
	return b;
}

/* Record, per partition this worker owns, the LSN its rows are durable to. */
static void
write_partition_lsns(XLogRecPtr lsn)
{
	Datum		parts[RTS_NPARTITIONS];
	Datum		plsns[RTS_NPARTITIONS];
	int			nparts = 0;
	Oid			types[2] = {INT4ARRAYOID, InvalidOid};
	Datum		vals[2];

	/*
	 * A partition of ours is durable up to lsn, or up to the LSN it was
	 * restored with if that is later (its older rows are in some loaded
	 * state, ours or another worker's).
	 */
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		if (wstate.owner[p] == wstate.index)
		{
			parts[nparts] = Int32GetDatum(p);
			plsns[nparts++] = LSNGetDatum(Max(lsn, wstate.skip_lsn[p]));
		}
	if (nparts == 0)
		return;
	types[1] = get_array_type(LSNOID);
	vals[0] = PointerGetDatum(construct_array(parts, nparts, INT4OID, 4, true,
											  TYPALIGN_INT));
	vals[1] = PointerGetDatum(construct_array(plsns, nparts, LSNOID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("INSERT INTO rtstream.checkpoint_partitions (partition, lsn) "
							  "SELECT * FROM unnest($1, $2) "
							  "ON CONFLICT (partition) DO UPDATE SET lsn = excluded.lsn",
							  2, types, vals, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write rtstream.checkpoint_partitions");
}

/*
 * The LSN the checkpoint is taken at: the last transaction applied, or,
 * with nothing queued, everything the router decoded before we looked (it
 * queues before it publishes).
 */
static XLogRecPtr
checkpoint_lsn(void)
{
	RtsWorkerShared *me = wstate.shared;
	XLogRecPtr	decoded = pg_atomic_read_u64(&wstate.db->decoded_lsn);
	XLogRecPtr	lsn = me->progress.applied_lsn;

	pg_read_barrier();
	if (pg_atomic_read_u64(&me->ring.read_pos) == pg_atomic_read_u64(&me->ring.write_pos))
		lsn = Max(lsn, decoded);
	return lsn;
}

/*
 * Rebuild the tables whose checkpoint showed most groups dead, from the
 * state just committed (no batch was applied since it was written).
 */
static void
compact_tables(List *ids, List *states)
{
	ListCell   *lc1,
			   *lc2;

	forboth(lc1, ids, lc2, states)
	{
		WorkerWindow *ww = rts_worker_find_window(lfirst_int(lc1));
		bytea	   *b = lfirst(lc2);

		if (ww != NULL)
		{
			elog(DEBUG1, "rtstream worker %d compacts window \"%s\": %u groups",
				 wstate.index, ww->def->name, ww->table->ngroups);
			rts_worker_table_rebuild(ww, VARDATA(b), VARSIZE(b) - VARHDRSZ);
		}
	}
}

/*
 * Write this worker's checkpoint, in one transaction that commits
 * synchronously.  Called between transactions of the stream (in_txn_lsn
 * unset), so the state is exactly that of the transactions up to the LSN.
 * Phases: the LSN; the rows (the worker's, then each window's, then the
 * partitions'); the commit, after which the router may release WAL; the
 * compaction of tables mostly dead.
 */
void
rts_worker_checkpoint(void)
{
	RtsWorkerShared *me = wstate.shared;
	XLogRecPtr	lsn;
	StringInfoData buf;
	static MemoryContext compact_cxt = NULL;
	List	   *compact_ids = NIL;
	List	   *compact_states = NIL;
	ListCell   *lc;

	Assert(me->progress.in_txn_lsn == InvalidXLogRecPtr);

	/* states of tables to compact after the commit (kept if it fails) */
	if (compact_cxt == NULL)
		compact_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream compaction",
											ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(compact_cxt);
	lsn = checkpoint_lsn();

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	(void) set_config_option("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	SPI_connect();
	{
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		vals[2] = {Int32GetDatum(wstate.db->nworkers), Int32GetDatum(wstate.index)};

		if (SPI_execute_with_args("DELETE FROM rtstream.checkpoints WHERE worker % $1 = $2",
								  2, types, vals, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not write rtstream.checkpoints");
	}
	insert_checkpoint_row(NULL, lsn, NULL);
	initStringInfo(&buf);
	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		uint32		live;
		bytea	   *b = serialize_window(ww, &buf, &live);

		/*
		 * Groups with nothing left are not written: when they are most of
		 * the table, it is rebuilt from this state once committed.
		 */
		if (ww->table->ngroups >= 1024 && live < ww->table->ngroups / 2)
		{
			MemoryContext old = MemoryContextSwitchTo(compact_cxt);
			bytea	   *copy = palloc(VARSIZE(b));

			memcpy(copy, b, VARSIZE(b));
			compact_ids = lappend_int(compact_ids, ww->def->id);
			compact_states = lappend(compact_states, copy);
			MemoryContextSwitchTo(old);
		}
		insert_checkpoint_row(ww, lsn, b);
	}
	write_partition_lsns(lsn);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* durable now: the router may release WAL up to here */
	me->progress.applied_lsn = lsn;
	pg_atomic_write_u64(&me->durable_lsn, rts_run_durable(lsn));
	me->checkpoint_time = GetCurrentTimestamp();
	wstate.last_checkpoint = me->checkpoint_time;
	if (wstate.db->router_latch)
		SetLatch(wstate.db->router_latch);

	compact_tables(compact_ids, compact_states);
	MemoryContextReset(compact_cxt);
}
