/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  An aggregation worker: takes batches from its queue, in commit order,
 *	  and applies each row to the panes of every window of the row's
 *	  stream.  Its pane tables are in the DSA, where readers combine them.
 *
 *	  A batch is applied under the worker's LWLock held exclusively, so a
 *	  reader sees whole batches.  Catalog-path states that live by
 *	  reference (internal, arrays, numerics) are brought into local memory
 *	  the first time a batch touches their pane, and written back, once,
 *	  when the batch is done.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "rtstream.h"
#include "aggstate.h"
#include "groupkey.h"

/* A window as this worker holds it. */
typedef struct WorkerWindow
{
	RtsWindowDef *def;
	MemoryContext cxt;			/* holds def */
	TransactionId created_xid;	/* rows of this transaction do not count */
	int			slot;			/* index in db->windows */
	RtsPaneTable *table;
	TupleTableSlot *tts;
	HTAB	   *cells;			/* local states during a batch */
} WorkerWindow;

/* Local states of one (group, pane) during a batch. */
typedef struct LocalCell
{
	uint64		key;			/* entry id << 32 | pane index */
	int64		pane_no;
	RtsState	states[RTS_MAX_AGGS];
} LocalCell;

static RtsDatabaseShared *wdb;
static RtsWorkerShared *me;
static int	my_index;
static List *windows = NIL;		/* of WorkerWindow */
static MemoryContext batch_cxt;
static MemoryContext row_cxt;
static StringInfoData keybuf;

static WorkerWindow *
find_window(int32 id)
{
	ListCell   *lc;

	foreach(lc, windows)
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
	int			freeslot = -1;

	LWLockAcquire(&wdb->lock, LW_EXCLUSIVE);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		if (wdb->windows[s].window_id == id)
		{
			LWLockRelease(&wdb->lock);
			return s;
		}
		if (wdb->windows[s].window_id == 0 && freeslot < 0)
			freeslot = s;
	}
	if (freeslot < 0)
	{
		LWLockRelease(&wdb->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rtstream supports at most %d windows per database",
						RTS_MAX_WINDOWS)));
	}
	wdb->windows[freeslot].window_id = id;
	for (int w = 0; w < RTS_MAX_WORKERS; w++)
		wdb->windows[freeslot].tables[w] = InvalidDsaPointer;
	LWLockRelease(&wdb->lock);
	return freeslot;
}

static void
release_slot_if_unused(int s)
{
	bool		used = false;

	LWLockAcquire(&wdb->lock, LW_EXCLUSIVE);
	for (int w = 0; w < RTS_MAX_WORKERS; w++)
		if (DsaPointerIsValid(wdb->windows[s].tables[w]))
			used = true;
	if (!used)
		wdb->windows[s].window_id = 0;
	LWLockRelease(&wdb->lock);
}

static void
window_load(int32 id, TransactionId created_xid)
{
	WorkerWindow *ww;
	MemoryContext cxt,
				old;
	RtsWindowDef *def;
	int			s;
	dsa_area   *area = rts_dsa();

	if (find_window(id) != NULL)
		return;
	cxt = AllocSetContextCreate(TopMemoryContext, "rtstream window",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	def = rts_windef_load(id, NULL, true);
	if (def == NULL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return;
	}
	rts_windef_prepare_exec(def);
	ww = palloc0(sizeof(WorkerWindow));
	ww->def = def;
	ww->cxt = cxt;
	ww->created_xid = created_xid;
	ww->tts = MakeSingleTupleTableSlot(def->streamdesc, &TTSOpsHeapTuple);
	if (def->any_local)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(LocalCell);
		ctl.hcxt = cxt;
		ww->cells = hash_create("rtstream local states", 1024, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	MemoryContextSwitchTo(old);

	s = window_slot(id);
	ww->slot = s;
	LWLockAcquire(&me->lock, LW_EXCLUSIVE);
	/* a table left by an earlier run of this worker is kept */
	if (!DsaPointerIsValid(wdb->windows[s].tables[my_index]))
		wdb->windows[s].tables[my_index] =
			rts_table_create(area, id, def->npanes, def->nwords);
	ww->table = dsa_get_address(area, wdb->windows[s].tables[my_index]);
	LWLockRelease(&me->lock);

	old = MemoryContextSwitchTo(TopMemoryContext);
	windows = lappend(windows, ww);
	MemoryContextSwitchTo(old);
	elog(DEBUG1, "rtstream worker %d loaded window \"%s\"", my_index, def->name);
}

static void
window_drop(int32 id)
{
	WorkerWindow *ww = find_window(id);
	int			s = -1;

	if (ww != NULL)
	{
		s = ww->slot;
		windows = list_delete_ptr(windows, ww);
	}
	else
	{
		for (int i = 0; i < RTS_MAX_WINDOWS; i++)
			if (wdb->windows[i].window_id == id)
				s = i;
	}
	if (s >= 0)
	{
		dsa_pointer tp;

		LWLockAcquire(&me->lock, LW_EXCLUSIVE);
		tp = wdb->windows[s].tables[my_index];
		wdb->windows[s].tables[my_index] = InvalidDsaPointer;
		if (DsaPointerIsValid(tp))
		{
			if (ww != NULL)
				rts_table_destroy(rts_dsa(), tp, ww->def->word_typlen);
			else
				dsa_free(rts_dsa(), tp);	/* unknown layout: leak its parts */
		}
		LWLockRelease(&me->lock);
		release_slot_if_unused(s);
	}
	if (ww != NULL)
		MemoryContextDelete(ww->cxt);
}

/* Load every window of the catalog (at start). */
static void
windows_load_all(void)
{
	List	   *ids = NIL;
	ListCell   *lc;

	if (!OidIsValid(get_extension_oid("rtstream", true)))
		return;
	SPI_connect();
	if (SPI_execute("SELECT id FROM rtstream.windows ORDER BY id", true, 0) == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 1, &isnull);
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			ids = lappend_int(ids, DatumGetInt32(d));
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	foreach(lc, ids)
		window_load(lfirst_int(lc), InvalidTransactionId);

	/* tables of windows dropped while this worker was away */
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (wdb->windows[s].window_id != 0 &&
			DsaPointerIsValid(wdb->windows[s].tables[my_index]) &&
			find_window(wdb->windows[s].window_id) == NULL)
			window_drop(wdb->windows[s].window_id);
}

static LocalCell *
local_cell(WorkerWindow *ww, uint32 entry_id, int pane_idx, RtsPane *pane)
{
	uint64		key = ((uint64) entry_id << 32) | (uint32) pane_idx;
	bool		found;
	LocalCell  *cell = hash_search(ww->cells, &key, HASH_ENTER, &found);
	RtsWindowDef *def = ww->def;

	if (found && cell->pane_no == pane->pane_no)
		return cell;
	cell->pane_no = pane->pane_no;
	for (int a = 0; a < def->naggs; a++)
		if (def->aggs[a].state_local)
			cell->states[a] = rts_state_from_pane(rts_dsa(), &def->aggs[a], a, pane);
	return cell;
}

/* Write the batch's local states back into their panes. */
static void
local_cells_flush(WorkerWindow *ww)
{
	HASH_SEQ_STATUS seq;
	LocalCell  *cell;
	RtsWindowDef *def = ww->def;
	dsa_area   *area = rts_dsa();

	if (ww->cells == NULL)
		return;
	hash_seq_init(&seq, ww->cells);
	while ((cell = hash_seq_search(&seq)) != NULL)
	{
		RtsGroupEntry *e = rts_table_entry(area, ww->table, (uint32) (cell->key >> 32));
		RtsPane    *pane = rts_entry_pane(ww->table, e, (int) (cell->key & 0xFFFFFFFF));

		if (pane->pane_no == cell->pane_no)
		{
			for (int a = 0; a < def->naggs; a++)
				if (def->aggs[a].state_local)
					rts_state_to_pane(area, ww->table, &def->aggs[a], a, pane,
									  cell->states[a]);
		}
		(void) hash_search(ww->cells, &cell->key, HASH_REMOVE, NULL);
	}
}

/* Forget the local states of a batch that failed. */
static void
local_cells_discard(void)
{
	ListCell   *lc;

	foreach(lc, windows)
	{
		WorkerWindow *ww = lfirst(lc);
		HASH_SEQ_STATUS seq;
		LocalCell  *cell;

		if (ww->cells == NULL)
			continue;
		hash_seq_init(&seq, ww->cells);
		while ((cell = hash_seq_search(&seq)) != NULL)
			(void) hash_search(ww->cells, &cell->key, HASH_REMOVE, NULL);
	}
}

/* Apply one row to one window. */
static void
apply_row(WorkerWindow *ww, TimestampTz commit_time)
{
	RtsWindowDef *def = ww->def;
	RtsPaneTable *t = ww->table;
	ExprContext *econtext = def->econtext;
	TupleTableSlot *tts = ww->tts;
	TimestampTz ts;
	int64		pane_no,
				end_pane;
	int			pane_idx;
	uint32		entry_id;
	RtsGroupEntry *e;
	RtsPane    *pane;
	LocalCell  *cell = NULL;

	econtext->ecxt_scantuple = tts;
	if (def->qualstate && !ExecQual(def->qualstate, econtext))
		return;

	if (def->time_attno)
	{
		bool		isnull;
		Datum		d = slot_getattr(tts, def->time_attno, &isnull);

		if (isnull)
		{
			t->null_time_rows++;
			pg_atomic_fetch_add_u64(&me->null_time_rows, 1);
			return;
		}
		ts = DatumGetTimestampTz(d);
	}
	else
		ts = commit_time;

	if (!t->has_time || ts > t->max_time)
	{
		t->max_time = ts;
		t->has_time = true;
	}
	pane_no = rts_floor_div(ts + RTS_UNIX_EPOCH_OFFSET_US, def->pane_us);
	/* panes of the current window, the one ending after the newest time */
	end_pane = (rts_floor_div(t->max_time + RTS_UNIX_EPOCH_OFFSET_US,
							  def->slide_us) + 1) * (def->slide_us / def->pane_us);
	if (pane_no < end_pane - def->npanes)
	{
		t->late_rows++;
		pg_atomic_fetch_add_u64(&me->late_rows, 1);
		return;
	}

	rts_groupkey_build(def, tts, econtext, &keybuf);
	e = rts_table_lookup(rts_dsa(), t, hash_bytes((unsigned char *) keybuf.data, keybuf.len),
						 keybuf.data, keybuf.len, &entry_id);
	if (e == NULL)
	{
		t->refused_groups++;
		pg_atomic_fetch_add_u64(&me->refused_groups, 1);
		if (!t->warned_memory)
		{
			t->warned_memory = true;
			ereport(WARNING,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("rtstream window \"%s\" reached rtstream.memory_limit; new groups are refused",
							def->name),
					 errhint("Increase rtstream.memory_limit; refused groups are counted in rtstream.stats.")));
		}
		return;
	}

	pane_idx = (int) (pane_no - rts_floor_div(pane_no, def->npanes) * def->npanes);
	pane = rts_entry_pane(t, e, pane_idx);
	if (pane->pane_no != pane_no)
	{
		rts_pane_free_words(rts_dsa(), t, pane, def->word_typlen);
		rts_pane_reset(def, pane, pane_no);
	}

	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];
		Datum		args[FUNC_MAX_ARGS];
		bool		argnulls[FUNC_MAX_ARGS];

		if (agg->filterstate && !ExecQual(agg->filterstate, econtext))
			continue;
		for (int i = 0; i < agg->nargs; i++)
		{
			if (agg->arg_attno)
				args[i] = slot_getattr(tts, agg->arg_attno, &argnulls[i]);
			else
				args[i] = ExecEvalExpr(agg->argstates[i], econtext, &argnulls[i]);
		}
		if (agg->fast != RTS_FAST_NONE)
			rts_fast_accum(agg, a, pane, agg->nargs ? args[0] : (Datum) 0,
						   agg->nargs ? argnulls[0] : false);
		else if (agg->state_local)
		{
			if (cell == NULL)
				cell = local_cell(ww, entry_id, pane_idx, pane);
			rts_state_transition(agg, &cell->states[a], args, argnulls);
		}
		else
		{
			RtsState	st = rts_state_from_pane(NULL, agg, a, pane);

			rts_state_transition(agg, &st, args, argnulls);
			rts_state_to_pane(NULL, t, agg, a, pane, st);
		}
	}
	t->rows++;
}

static void
apply_rows(RtsBatchHeader *hdr, char *batch, Size len, TimestampTz commit_time,
		   TransactionId xid)
{
	List	   *targets = NIL;
	ListCell   *lc;
	char	   *p = batch + RTS_BATCH_HEADER_SIZE;
	char	   *end = batch + len;
	HeapTupleData tuple;

	foreach(lc, windows)
	{
		WorkerWindow *ww = lfirst(lc);

		if (ww->def->stream == hdr->stream && ww->created_xid != xid)
			targets = lappend(targets, ww);
	}
	if (targets != NIL)
	{
		rts_agg_context_set(batch_cxt);
		LWLockAcquire(&me->lock, LW_EXCLUSIVE);
		while (p < end)
		{
			uint64		tuplen;
			MemoryContext old;

			memcpy(&tuplen, p, sizeof(uint64));
			tuple.t_len = (uint32) tuplen;
			tuple.t_data = (HeapTupleHeader) (p + sizeof(uint64));
			ItemPointerSetInvalid(&tuple.t_self);
			tuple.t_tableOid = hdr->stream;
			p += sizeof(uint64) + MAXALIGN(tuplen);

			old = MemoryContextSwitchTo(row_cxt);
			foreach(lc, targets)
			{
				WorkerWindow *ww = lfirst(lc);

				ExecStoreHeapTuple(&tuple, ww->tts, false);
				ww->def->econtext->ecxt_per_tuple_memory = row_cxt;
				apply_row(ww, commit_time);
				ExecClearTuple(ww->tts);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		foreach(lc, targets)
			local_cells_flush(lfirst(lc));
		LWLockRelease(&me->lock);
		MemoryContextReset(batch_cxt);
	}
	pg_atomic_fetch_add_u64(&me->rows_applied, hdr->nrows);
	pg_atomic_fetch_add_u64(&me->batches_applied, 1);
	list_free(targets);
}

static void
apply_item(RtsQueueItem *item, char *batch)
{
	RtsBatchHeader hdr;

	memcpy(&hdr, batch, sizeof(hdr));
	if (hdr.kind == RTS_BATCH_ROWS)
		apply_rows(&hdr, batch, item->len, item->commit_time, item->xid);
	else if (hdr.kind == RTS_BATCH_DDL)
	{
		/*
		 * The DDL's commit record is decoded before the transaction leaves
		 * the proc array; wait until a new snapshot sees it.
		 */
		while (TransactionIdIsInProgress(item->xid))
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(1000L);
		}
		if (hdr.ddl_op == RTS_DDL_CREATE_WINDOW)
			window_load((int32) hdr.nrows, item->xid);
		else if (hdr.ddl_op == RTS_DDL_DROP_WINDOW)
			window_drop((int32) hdr.nrows);
	}
	me->last_commit_lsn = item->commit_lsn;
}

/*
 * Apply what is queued, in one transaction (catalog access and functions
 * called by aggregates need one).  Returns false if the queue was empty.
 */
static bool
drain_queue(char **buf, Size *bufsize)
{
	RtsQueueItem item;
	uint64		next_pos;
	int			n = 0;

	if (pg_atomic_read_u64(&me->ring.read_pos) ==
		pg_atomic_read_u64(&me->ring.write_pos))
		return false;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	while (n++ < 256 && rts_ring_get(&me->ring, &item, buf, bufsize, &next_pos))
	{
		PG_TRY();
		{
			apply_item(&item, *buf);
		}
		PG_CATCH();
		{
			/*
			 * A batch that cannot be applied is reported and skipped; the
			 * rows of it applied before the error stay applied.
			 */
			EmitErrorReport();
			FlushErrorState();
			LWLockReleaseAll();
			local_cells_discard();
			pg_atomic_fetch_add_u64(&me->failed_batches, 1);
			AbortCurrentTransaction();
			MemoryContextReset(batch_cxt);
			MemoryContextReset(row_cxt);
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
		}
		PG_END_TRY();
		pg_atomic_write_u64(&me->applied_pos, next_pos);
		if (wdb->router_latch)
			SetLatch(wdb->router_latch);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return true;
}

static void
worker_shmem_exit(int code, Datum arg)
{
	me->latch = NULL;
	me->pid = 0;
}

void
rts_worker_main(Datum arg)
{
	int			code = DatumGetInt32(arg);
	char	   *buf = NULL;
	Size		bufsize = 0;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	wdb = &rts_shared->dbs[code / RTS_MAX_WORKERS];
	my_index = code % RTS_MAX_WORKERS;
	me = &wdb->workers[my_index];
	BackgroundWorkerInitializeConnection(wdb->dbname, NULL, 0);

	me->pid = MyProcPid;
	me->latch = MyLatch;
	before_shmem_exit(worker_shmem_exit, 0);

	batch_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream batch",
									  ALLOCSET_DEFAULT_SIZES);
	row_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream row",
									ALLOCSET_DEFAULT_SIZES);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&keybuf);
		MemoryContextSwitchTo(old);
	}

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	windows_load_all();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* items already applied by an earlier run of this worker are done */
	pg_atomic_write_u64(&me->applied_pos, pg_atomic_read_u64(&me->ring.read_pos));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			dsa_set_size_limit(rts_dsa(), (Size) rts_memory_limit_kb * 1024);
		}
		if (drain_queue(&buf, &bufsize))
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
