/*-------------------------------------------------------------------------
 *
 * worker_windows.c
 *	  A worker's windows: loading them (as their owners), giving their
 *	  tables another ring size, dropping them.  Their checkpoints are in
 *	  worker_checkpoint.c.
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

#include "state_serial.h"
#include "eventtime.h"
#include "owner.h"
#include "worker.h"

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
	ww->load_no = ++wstate.loads;
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
			rts_table_create(area, def);
		t = dsa_get_address(area, db->windows[s].tables[wstate.index]);
		t->created_lsn = created_lsn;
		memcpy(t->run.skip_lsn, wstate.skip_lsn, sizeof(t->run.skip_lsn));
	}
	ww->table = dsa_get_address(area, db->windows[s].tables[wstate.index]);
	LWLockRelease(&wstate.shared->lock);
	/* a table kept from before a worker restart: the same layout */
	if (ww->table->nwords != def->nwords || ww->table->pane_shift != def->pane_shift ||
		ww->table->pane_no_word != def->pane_no_word)
		elog(ERROR, "rtstream window \"%s\" has panes of another layout", def->name);
	ww->idle_advanced_at = GetCurrentTimestamp();
	ww->pruned_for = RTS_TIME_UNKNOWN;
	ww->notified_until = RTS_TIME_UNKNOWN;
	db->windows[s].lateness_us = def->lateness_us;
	db->windows[s].history = OidIsValid(def->history);
	db->windows[s].history_rel = def->history;
	db->windows[s].geom = def->geom;
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
	rts_keys_invalidate();
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
void
rts_worker_table_rebuild(WorkerWindow *ww, const char *data, Size len)
{
	RtsWindowSlot *slot = rts_worker_slot(ww);
	dsa_area   *area = rts_dsa();
	RtsPaneTable *old = ww->table;
	dsa_pointer oldp,
				newp;
	RtsPaneTable *t;

	newp = rts_table_create(area, ww->def);
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
	/* the key maps point into the old table (a new one may reuse its address) */
	rts_keys_invalidate();
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
	rts_worker_table_rebuild(ww, buf.data, buf.len);
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
	rts_keys_invalidate();
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
void
rts_worker_drop_table(int s, RtsWindowDef *def)
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
	rts_keys_invalidate();
		rts_worker_drop_table(ww->slot, ww->def);
		MemoryContextDelete(ww->cxt);
		return;
	}
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wstate.db->windows[s].window_id == id)
			rts_worker_drop_table(s, NULL);
}

/* Drop every window and table of this worker (the extension is gone). */
void
rts_worker_forget_all(void)
{
	rts_stream_forget_all();
	while (wstate.windows != NIL)
		rts_worker_window_drop(((WorkerWindow *) linitial(wstate.windows))->def->id);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wstate.db->windows[s].window_id != 0 &&
			DsaPointerIsValid(wstate.db->windows[s].tables[wstate.index]))
			rts_worker_drop_table(s, NULL);
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		wstate.skip_lsn[p] = InvalidXLogRecPtr;
	pg_atomic_write_u64(&wstate.shared->durable_lsn, 0);
	wstate.shared->progress.applied_lsn = InvalidXLogRecPtr;
	wstate.shared->progress.in_txn_lsn = InvalidXLogRecPtr;
	wstate.shared->progress.in_txn_items = 0;
	wstate.shared->progress.replay_skip = 0;
}

