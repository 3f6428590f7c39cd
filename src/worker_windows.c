/*-------------------------------------------------------------------------
 *
 * worker_windows.c
 *	  A worker's windows: loading and dropping them, writing their state to
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

#include "checkpoint.h"
#include "eventtime.h"
#include "owner.h"
#include "worker.h"

WorkerState wstate;

static void table_resize(WorkerWindow *ww);

WorkerWindow *
rts_worker_find_window(int32 id)
{
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);

		if (ww->def->id == id)
			return ww;
	}
	return NULL;
}

/* The directory slot of a window, taken if it has none yet. */
static int
window_slot(int32 id)
{
	RtsDatabaseShared *db = wstate.db;
	int			freeslot = -1;

	LWLockAcquire(&db->lock, LW_EXCLUSIVE);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		if (db->windows[s].window_id == id &&
			db->windows[s].extension == wstate.shared->extension)
		{
			LWLockRelease(&db->lock);
			return s;
		}
		if (db->windows[s].window_id == 0 && freeslot < 0)
			freeslot = s;
	}
	if (freeslot < 0)
	{
		LWLockRelease(&db->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rtstream supports at most %d windows per database",
						RTS_MAX_WINDOWS)));
	}
	db->windows[freeslot].window_id = id;
	db->windows[freeslot].extension = wstate.shared->extension;
	for (int w = 0; w < RTS_MAX_WORKERS; w++)
		db->windows[freeslot].tables[w] = InvalidDsaPointer;
	for (int w = 0; w < RTS_MAX_WORKERS; w++)
	{
		pg_atomic_write_u64(&db->windows[freeslot].newest[w], (uint64) RTS_TIME_NONE);
		pg_atomic_write_u64(&db->windows[freeslot].newest_lsn[w], 0);
		pg_atomic_write_u64(&db->windows[freeslot].last_arrival[w],
							(uint64) GetCurrentTimestamp());
		pg_atomic_write_u64(&db->windows[freeslot].behind_lsn[w], 0);
	}
	pg_atomic_write_u64(&db->windows[freeslot].emitted_until, (uint64) RTS_TIME_UNKNOWN);
	pg_atomic_write_u64(&db->windows[freeslot].watermark, (uint64) RTS_TIME_NONE);
	pg_atomic_write_u64(&db->windows[freeslot].emitted_lsn, 0);
	pg_atomic_write_u64(&db->windows[freeslot].session_keep, (uint64) RTS_TIME_NONE);
	LWLockRelease(&db->lock);
	return freeslot;
}

static void
release_slot_if_unused(int s)
{
	RtsDatabaseShared *db = wstate.db;
	bool		used = false;

	LWLockAcquire(&db->lock, LW_EXCLUSIVE);
	for (int w = 0; w < RTS_MAX_WORKERS; w++)
		if (DsaPointerIsValid(db->windows[s].tables[w]))
			used = true;
	if (!used)
		db->windows[s].window_id = 0;
	LWLockRelease(&db->lock);
}

void
rts_worker_window_load(int32 id, XLogRecPtr created_lsn)
{
	RtsDatabaseShared *db = wstate.db;
	WorkerWindow *ww;
	MemoryContext cxt,
				old;
	RtsWindowDef *def;
	int			s;
	dsa_area   *area = rts_dsa();
	RtsOwnerSwitch sw = {0};

	if (rts_worker_find_window(id) != NULL)
		return;
	cxt = AllocSetContextCreate(TopMemoryContext, "rtstream window",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	def = rts_windef_load(id, NULL, true, true);
	if (def == NULL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return;
	}
	/* planning folds constants: the owner's functions */
	rts_owner_enter(def->owner, def->search_path, &sw);
	rts_windef_prepare_exec(def);
	rts_owner_leave(&sw);
	ww = palloc0(sizeof(WorkerWindow));
	ww->def = def;
	ww->cxt = cxt;
	ww->tts = MakeSingleTupleTableSlot(def->streamdesc, &TTSOpsHeapTuple);
	{
		int			nargs = 0;

		ww->argoff = palloc(sizeof(int) * Max(def->naggs, 1));
		for (int a = 0; a < def->naggs; a++)
		{
			ww->argoff[a] = nargs;
			nargs += def->aggs[a].nargs;
		}
		ww->args = palloc(sizeof(Datum) * Max(nargs, 1));
		ww->argnulls = palloc(sizeof(bool) * Max(nargs, 1));
		ww->pass = palloc(sizeof(bool) * Max(def->naggs, 1));
	}
	if (def->any_local)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = offsetof(LocalCell, states) + sizeof(RtsState) * def->naggs;
		ctl.hcxt = cxt;
		ww->cells = hash_create("rtstream local states", 1024, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	MemoryContextSwitchTo(old);

	s = window_slot(id);
	ww->slot = s;
	LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
	if (!DsaPointerIsValid(db->windows[s].tables[wstate.index]))
	{
		RtsPaneTable *t;

		db->windows[s].tables[wstate.index] =
			rts_table_create(area, id, def->npanes, def->nwords);
		t = dsa_get_address(area, db->windows[s].tables[wstate.index]);
		t->created_lsn = created_lsn;
		memcpy(t->run.skip_lsn, wstate.skip_lsn, sizeof(t->run.skip_lsn));
	}
	ww->table = dsa_get_address(area, db->windows[s].tables[wstate.index]);
	LWLockRelease(&wstate.shared->lock);
	ww->idle_advanced_at = GetCurrentTimestamp();
	ww->pruned_for = RTS_TIME_UNKNOWN;
	db->windows[s].lateness_us = def->lateness_us;
	db->windows[s].history = OidIsValid(def->history);
	db->windows[s].history_rel = def->history;
	db->windows[s].slide_us = def->slide_us;
	db->windows[s].session = RTS_IS_SESSION(def);
	ww->part_newest = MemoryContextAlloc(cxt, sizeof(int64) * RTS_NPARTITIONS);
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		ww->part_newest[p] = RTS_TIME_NONE;
	if (ww->table->npanes != def->npanes)
	{
		rts_owner_enter(def->owner, def->search_path, &sw);
		table_resize(ww);
		rts_owner_leave(&sw);
	}
	rts_history_load_progress(ww);

	old = MemoryContextSwitchTo(TopMemoryContext);
	wstate.windows = lappend(wstate.windows, ww);
	MemoryContextSwitchTo(old);
	elog(DEBUG1, "rtstream worker %d loaded window \"%s\"", wstate.index, def->name);
}

RtsWindowSlot *
rts_worker_slot(WorkerWindow *ww)
{
	return &wstate.db->windows[ww->slot];
}

/*
 * Replace a window's table by one loaded from a serialized state: to give
 * it the ring size of its definition (alter_window changed the lateness),
 * or to drop its dead groups (table_compact).
 */
static void
table_rebuild(WorkerWindow *ww, const char *data, Size len)
{
	RtsWindowSlot *slot = rts_worker_slot(ww);
	dsa_area   *area = rts_dsa();
	RtsPaneTable *old = ww->table;
	dsa_pointer oldp,
				newp;
	RtsPaneTable *t;

	newp = rts_table_create(area, ww->def->id, ww->def->npanes, ww->def->nwords);
	t = dsa_get_address(area, newp);
	t->created_lsn = old->created_lsn;
	t->warned_memory = old->warned_memory;
	t->run = old->run;
	PG_TRY();
	{
		/* only this worker changes its tables: no lock needed to build it */
		rts_table_merge(ww->def, area, t, data, len, false,
						wstate.db->nworkers, RTS_TIME_NONE, wstate.batch_cxt);
	}
	PG_CATCH();
	{
		rts_table_destroy(area, newp, ww->def->word_typlen);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextReset(wstate.batch_cxt);
	LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
	oldp = slot->tables[wstate.index];
	slot->tables[wstate.index] = newp;
	ww->table = t;
	rts_table_destroy(area, oldp, ww->def->word_typlen);
	LWLockRelease(&wstate.shared->lock);
}

/* Give a window's table the ring size of its definition, keeping every pane. */
static void
table_resize(WorkerWindow *ww)
{
	StringInfoData buf;

	initStringInfo(&buf);
	rts_table_serialize(ww->def, rts_dsa(), ww->table, wstate.db->nworkers,
						PG_INT64_MIN, &buf);
	table_rebuild(ww, buf.data, buf.len);
	pfree(buf.data);
}

/* alter_window: reload the window's options, keeping its state. */
void
rts_worker_window_alter(int32 id)
{
	WorkerWindow *ww = rts_worker_find_window(id);

	if (ww == NULL)
		return;
	wstate.windows = list_delete_ptr(wstate.windows, ww);
	MemoryContextDelete(ww->cxt);
	/* the table stays in its slot: the new definition finds it there */
	rts_worker_window_load(id, InvalidXLogRecPtr);
}

/* Load every window of the catalog not loaded yet. */
void
rts_worker_load_catalog(XLogRecPtr created_lsn)
{
	List	   *ids = NIL;
	ListCell   *lc;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	if (SPI_execute("SELECT id FROM rtstream.windows ORDER BY id", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.windows");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(caller);

		ids = lappend_int(ids, id);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	foreach(lc, ids)
		rts_worker_window_load(lfirst_int(lc), created_lsn);
}

/* Free a directory slot's table of this worker; layout from def if known. */
static void
drop_table(int s, RtsWindowDef *def)
{
	RtsDatabaseShared *db = wstate.db;
	dsa_pointer tp;

	LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
	tp = db->windows[s].tables[wstate.index];
	db->windows[s].tables[wstate.index] = InvalidDsaPointer;
	if (DsaPointerIsValid(tp))
	{
		if (def != NULL)
			rts_table_destroy(rts_dsa(), tp, def->word_typlen);
		else
			dsa_free(rts_dsa(), tp);	/* unknown layout: leak its parts */
	}
	LWLockRelease(&wstate.shared->lock);
	release_slot_if_unused(s);
}

void
rts_worker_window_drop(int32 id)
{
	WorkerWindow *ww = rts_worker_find_window(id);

	if (ww != NULL)
	{
		wstate.windows = list_delete_ptr(wstate.windows, ww);
		drop_table(ww->slot, ww->def);
		MemoryContextDelete(ww->cxt);
		return;
	}
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wstate.db->windows[s].window_id == id)
			drop_table(s, NULL);
}

/* Drop every window and table of this worker (the extension is gone). */
void
rts_worker_forget_all(void)
{
	while (wstate.windows != NIL)
		rts_worker_window_drop(((WorkerWindow *) linitial(wstate.windows))->def->id);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wstate.db->windows[s].window_id != 0 &&
			DsaPointerIsValid(wstate.db->windows[s].tables[wstate.index]))
			drop_table(s, NULL);
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		wstate.skip_lsn[p] = InvalidXLogRecPtr;
	pg_atomic_write_u64(&wstate.shared->durable_lsn, 0);
	wstate.shared->progress.applied_lsn = InvalidXLogRecPtr;
	wstate.shared->progress.in_txn_lsn = InvalidXLogRecPtr;
	wstate.shared->progress.in_txn_items = 0;
	wstate.shared->progress.replay_skip = 0;
}

static XLogRecPtr
spi_lsn(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
}

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
			drop_table(s, NULL);

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
		int32		worker = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		int32		id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		Datum		state = SPI_getbinval(tup, desc, 4, &isnull);
		WorkerWindow *ww = rts_worker_find_window(id);

		if (worker == wstate.index && id == 0)
			durable = spi_lsn(tup, desc, 3);
		if (ww == NULL || isnull || !fresh_tables)
			continue;
		{
			bytea	   *b = DatumGetByteaPP(state);
			RtsWindowSlot *slot = rts_worker_slot(ww);
			RtsOwnerSwitch sw = {0};
			Datum		lsns = SPI_getbinval(tup, desc, 5, &isnull);

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

/*
 * Write this worker's checkpoint, in one transaction that commits
 * synchronously.  Called between transactions of the stream (in_txn_lsn
 * unset), so the state is exactly that of the transactions up to the LSN.
 */
void
rts_worker_checkpoint(void)
{
	RtsWorkerShared *me = wstate.shared;
	XLogRecPtr	decoded = pg_atomic_read_u64(&wstate.db->decoded_lsn);
	XLogRecPtr	lsn = wstate.shared->progress.applied_lsn;
	int			nworkers = wstate.db->nworkers;
	StringInfoData buf;
	Datum		parts[RTS_NPARTITIONS];
	Datum		plsns[RTS_NPARTITIONS];
	int			nparts = 0;
	static MemoryContext compact_cxt = NULL;
	List	   *compact_ids = NIL;
	List	   *compact_states = NIL;

	Assert(wstate.shared->progress.in_txn_lsn == InvalidXLogRecPtr);

	/* states of tables to compact after the commit (kept if it fails) */
	if (compact_cxt == NULL)
		compact_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream compaction",
											ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(compact_cxt);

	/*
	 * With nothing queued, everything the router decoded before we read
	 * decoded_lsn is applied: it queues before it publishes.
	 */
	pg_read_barrier();
	if (pg_atomic_read_u64(&me->ring.read_pos) == pg_atomic_read_u64(&me->ring.write_pos))
		lsn = Max(lsn, decoded);

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

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	(void) set_config_option("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	SPI_connect();
	{
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		vals[2] = {Int32GetDatum(nworkers), Int32GetDatum(wstate.index)};

		if (SPI_execute_with_args("DELETE FROM rtstream.checkpoints WHERE worker % $1 = $2",
								  2, types, vals, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not write rtstream.checkpoints");
	}

	initStringInfo(&buf);
	for (int i = -1; i < list_length(wstate.windows); i++)
	{
		Oid			types[6] = {INT4OID, INT4OID, LSNOID, LSNOID, BYTEAOID, InvalidOid};
		Datum		vals[6];
		char		nulls[6] = {' ', ' ', 'n', ' ', 'n', 'n'};

		types[5] = get_array_type(LSNOID);

		vals[0] = Int32GetDatum(wstate.index);
		vals[1] = Int32GetDatum(0);
		vals[3] = LSNGetDatum(lsn);
		if (i >= 0)
		{
			WorkerWindow *ww = list_nth(wstate.windows, i);
			RtsWindowSlot *slot = rts_worker_slot(ww);
			bytea	   *b;
			uint32		live;

			resetStringInfo(&buf);
			live = rts_table_serialize(ww->def, rts_dsa(), ww->table, nworkers,
								rts_keep_from(ww->def, rts_window_watermark(wstate.db, slot),
											  rts_atomic_read_time(&slot->emitted_until),
											  rts_atomic_read_time(&slot->session_keep)),
								&buf);
			b = palloc(VARHDRSZ + buf.len);
			SET_VARSIZE(b, VARHDRSZ + buf.len);
			memcpy(VARDATA(b), buf.data, buf.len);

			/*
			 * Groups with nothing left are not written: when they are most
			 * of the table, it is rebuilt from this state once committed.
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
			vals[1] = Int32GetDatum(ww->def->id);
			vals[2] = LSNGetDatum(ww->table->created_lsn);
			vals[4] = PointerGetDatum(b);
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
								  6, types, vals, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write rtstream.checkpoints");
	}
	if (nparts > 0)
	{
		Oid			types[2] = {INT4ARRAYOID, LSNOID + 0};
		Datum		vals[2];

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

	/* no batch was applied since the states were written */
	{
		ListCell   *lc1,
				   *lc2;

		forboth(lc1, compact_ids, lc2, compact_states)
		{
			WorkerWindow *ww = rts_worker_find_window(lfirst_int(lc1));
			bytea	   *b = lfirst(lc2);

			if (ww != NULL)
			{
				elog(DEBUG1, "rtstream worker %d compacts window \"%s\": %u groups",
					 wstate.index, ww->def->name, ww->table->ngroups);
				table_rebuild(ww, VARDATA(b), VARSIZE(b) - VARHDRSZ);
			}
		}
	}
	MemoryContextReset(compact_cxt);
}
