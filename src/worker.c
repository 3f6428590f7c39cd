/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  An aggregation worker: takes items from its queue, in commit order,
 *	  and applies each row to the panes of every window of the row's
 *	  stream.  Its pane tables are in the DSA, where readers combine them.
 *	  Between transactions of the stream it checkpoints (worker_windows.c).
 *
 *	  A batch is applied under the worker's LWLock held exclusively, so a
 *	  reader sees whole batches.  Catalog-path states that live by
 *	  reference (internal, arrays, numerics) are brought into local memory
 *	  the first time a batch touches their pane, and written back, once,
 *	  when the batch is done.
 *
 *	  A row that raises an error (an overflow, a division by zero in an
 *	  argument) goes to rtstream.dead_letters with the error; the batch is
 *	  applied in a subtransaction so that the worker can go on after it.
 *	  Arguments and filters are evaluated before any state changes, but an
 *	  error inside an aggregate's transition leaves the aggregates before it
 *	  updated for that row.
 *
 *	  Event time (eventtime.h).  A row is judged late against the window's
 *	  watermark, read at the start of its batch under our lock, and against
 *	  the newest time of the rows before it in its own partition; a late
 *	  row is counted, and kept as a dead letter if the window says so.  A
 *	  row of a session window before the watermark is late unless it falls
 *	  into a session of its group still open in this worker (the rules:
 *	  eventtime.h), so its group is looked up first.  A
 *	  pane whose ring slot a newer pane needs moves to the closed store if
 *	  it is still needed (an open window, a window not yet in the history).
 *	  At the end of each transaction the worker publishes the newest time
 *	  it has applied, from which the watermark is computed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "eventtime.h"
#include "groupkey.h"
#include "owner.h"
#include "worker.h"

/* The worker's state (worker.h), shared with its other files. */
WorkerState wstate;

static MemoryContext row_cxt;
static volatile sig_atomic_t got_sigterm = false;
static TimestampTz checkpoint_failed_at = 0;

/* the transaction's context and owner while a drain runs its subtransaction */
static MemoryContext drain_cxt;
static ResourceOwner drain_owner;

/* rows that failed, written to rtstream.dead_letters after their batch */
typedef struct DeadLetter
{
	Oid			owner;			/* the window's owner and search_path, if */
	char	   *search_path;	/* the row failed in one */
	Oid			stream;
	Oid			table;			/* InvalidOid: rtstream.dead_letters */
	char	   *window;
	XLogRecPtr	lsn;
	char	   *error;
	char	   *row;
} DeadLetter;

static List *dead_letters = NIL;

static void
worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static LocalCell *
local_cell(WorkerWindow *ww, uint32 entry_id, int pane_idx, RtsPane *pane)
{
	uint64		key = ((uint64) entry_id << 32) | (uint32) pane_idx;
	bool		found;
	LocalCell  *cell = hash_search(ww->cells, &key, HASH_ENTER, &found);
	RtsWindowDef *def = ww->def;

	if (found && cell->pane_no == rts_pane_no(def, pane))
		return cell;
	cell->pane_no = rts_pane_no(def, pane);
	for (int a = 0; a < def->naggs; a++)
		if (def->aggs[a].state_local)
			cell->states[a] = rts_state_from_pane(rts_dsa(), &def->aggs[a], pane);
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

		if (rts_pane_no(def, pane) == cell->pane_no)
		{
			for (int a = 0; a < def->naggs; a++)
				if (def->aggs[a].state_local)
					rts_state_to_pane(area, ww->table, &def->aggs[a], pane,
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

	foreach(lc, wstate.windows)
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

/* Write one ring pane's local states back, before the pane moves or merges. */
static void
local_cell_flush_one(WorkerWindow *ww, uint32 entry_id, int pane_idx, RtsPane *pane)
{
	uint64		key = ((uint64) entry_id << 32) | (uint32) pane_idx;
	LocalCell  *cell;
	RtsWindowDef *def = ww->def;

	if (ww->cells == NULL)
		return;
	cell = hash_search(ww->cells, &key, HASH_FIND, NULL);
	if (cell == NULL)
		return;
	if (cell->pane_no == rts_pane_no(def, pane))
		for (int a = 0; a < def->naggs; a++)
			if (def->aggs[a].state_local)
				rts_state_to_pane(rts_dsa(), ww->table, &def->aggs[a], pane,
								  cell->states[a]);
	(void) hash_search(ww->cells, &key, HASH_REMOVE, NULL);
}

/*
 * Free ring pane idx of an entry for a new pane: a pane still needed
 * (rts_keep_from) moves to the closed store.  False if that is out of
 * memory.
 */
static bool
pane_vacate(WorkerWindow *ww, uint32 entry_id, RtsGroupEntry *e, int idx)
{
	RtsPaneTable *t = ww->table;
	RtsPane    *pane = rts_entry_pane(t, e, idx);

	if (!rts_pane_kept(ww->def, pane, ww->keep))
	{
		rts_pane_free_words(rts_dsa(), t, pane, ww->def->word_typlen);
		rts_pane_set_no(t, pane, RTS_PANE_EMPTY);
		return true;
	}
	local_cell_flush_one(ww, entry_id, idx, pane);
	return rts_closed_add(rts_dsa(), t, entry_id, pane);
}

/*
 * The session slot of a group for a row at time tu (Unix microseconds):
 * the session it joins (sessions it bridges are merged into it), or a new
 * one.  -1 if out of memory.
 *
 * A row joins a session when first - gap <= tu <= last + gap: rows exactly
 * gap apart are one session.  A row on time (tu >= watermark) reaches no
 * closed session: those end before the watermark.  A row before it comes
 * here only when it falls into an open session P with first <= tu
 * (session_open_at): a session it touches that starts before P touches P
 * already (one merged session, open), one that starts after P ends after
 * P (open too), so it reaches no closed session either.
 */
static int
session_slot(WorkerWindow *ww, uint32 entry_id, RtsGroupEntry *e, int64 tu)
{
	RtsWindowDef *def = ww->def;
	RtsPaneTable *t = ww->table;
	int			found = -1;
	int			victim = -1;

	for (int i = 0; i < t->npanes; i++)
	{
		RtsPane    *p = rts_entry_pane(t, e, i);
		int64		start = rts_pane_no(def, p);

		if (start == RTS_PANE_EMPTY)
			continue;
		/* the row touches this session */
		if (start <= tu + def->gap_us && tu <= rts_session_end(def, p))
		{
			if (found < 0)
			{
				found = i;
				continue;
			}
			/* the row bridges two sessions: merge p into the first */
			{
				RtsPane    *into = rts_entry_pane(t, e, found);

				local_cell_flush_one(ww, entry_id, found, into);
				local_cell_flush_one(ww, entry_id, i, p);
				rts_pane_combine(def, rts_dsa(), t, into, p);
				rts_pane_set_no(def, into, Min(rts_pane_no(def, into), start));
				into->words[RTS_SESSION_LAST_WORD] =
					Int64GetDatum(Max((int64) into->words[RTS_SESSION_LAST_WORD],
									  (int64) p->words[RTS_SESSION_LAST_WORD]));
				rts_pane_free_words(rts_dsa(), t, p, def->word_typlen);
				rts_pane_set_no(def, p, RTS_PANE_EMPTY);
			}
		}
	}
	if (found >= 0)
	{
		RtsPane    *p = rts_entry_pane(t, e, found);

		if (tu < rts_pane_no(def, p))
		{
			/* the start moves: a local cell is keyed by it */
			local_cell_flush_one(ww, entry_id, found, p);
			rts_pane_set_no(def, p, tu);
		}
		if (tu > (int64) p->words[RTS_SESSION_LAST_WORD])
			p->words[RTS_SESSION_LAST_WORD] = (Datum) tu;
		return found;
	}

	/* a new session: a free slot, else the one that ended first makes room */
	for (int i = 0; i < t->npanes; i++)
	{
		RtsPane    *p = rts_entry_pane(t, e, i);

		if (rts_pane_no(def, p) == RTS_PANE_EMPTY || !rts_pane_kept(def, p, ww->keep))
		{
			victim = i;
			break;
		}
		if (victim < 0 || rts_session_end(def, p) <
			rts_session_end(def, rts_entry_pane(t, e, victim)))
			victim = i;
	}
	if (!pane_vacate(ww, entry_id, e, victim))
		return -1;
	rts_pane_reset(def, rts_entry_pane(t, e, victim), tu);
	rts_entry_pane(t, e, victim)->words[RTS_SESSION_LAST_WORD] = (Datum) tu;
	return victim;
}

/*
 * A window's code that catches an error (a PL/pgSQL EXCEPTION block) rolls
 * back a subtransaction, which releases every LWLock we hold: take our lock
 * again before touching the panes.  No pane changes while that code runs,
 * but a reader may see part of the batch.
 */
static inline void
worker_relock(void)
{
	if (!LWLockHeldByMe(&wstate.shared->lock))
		LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
}

void
rts_worker_relock(void)
{
	worker_relock();
}

typedef enum ApplyResult
{
	APPLY_DONE,					/* applied, or filtered out */
	APPLY_LATE					/* late, by the window's late_policy */
} ApplyResult;

/*
 * Phase 1: the row's time, Unix microseconds, into *tu: its event time, or
 * its transaction's commit time.  False if it has none (a NULL event time:
 * counted and skipped by row_time).
 */
static bool
row_event_time(WorkerWindow *ww, int64 *tu)
{
	bool		isnull;
	Datum		d = slot_getattr(ww->row, ww->def->time_attno, &isnull);
	TimestampTz ts;

	if (isnull)
		return false;
	ts = DatumGetTimestampTz(d);
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("event time must be finite")));
	*tu = rts_to_unix(ts);
	return true;
}

static bool
row_time(WorkerWindow *ww, TimestampTz commit_time, int64 *tu)
{
	RtsWindowDef *def = ww->def;
	RtsPaneTable *t = ww->table;

	if (def->time_attno)
	{
		if (row_event_time(ww, tu))
			return true;
		t->null_time_rows++;
		pg_atomic_fetch_add_u64(&wstate.shared->null_time_rows, 1);
		return false;
	}

	/*
	 * Commit time: commits reach us in commit order, but their timestamps
	 * may be out of order by a little; a row is never late by its commit
	 * time.
	 */
	*tu = rts_to_unix(commit_time);
	if (t->has_time && *tu < rts_to_unix(t->max_time))
		*tu = rts_to_unix(t->max_time);
	return true;
}

typedef enum RowFate
{
	ROW_APPLY,					/* on time: apply it */
	ROW_IF_OPEN,				/* a session window's row before the
								 * watermark: applied if it falls into a
								 * session still open, else as *otherwise */
	ROW_SKIP,					/* replayed, already in the history */
	ROW_LATE					/* late: counted */
} RowFate;

static void
row_count_late(WorkerWindow *ww)
{
	ww->table->late_rows++;
	pg_atomic_fetch_add_u64(&wstate.shared->late_rows, 1);
}

/*
 * Phase 2: whether the row is late, against the window's watermark or that
 * of the rows before it in its partition (*part_newest: the partition's
 * newest time with this row).  A session window's row before it is late
 * only if its group has no session still open for it (ROW_IF_OPEN, with
 * the watermark to judge that against in *open_wm).
 */
static RowFate
row_fate(WorkerWindow *ww, int64 tu, XLogRecPtr lsn, int partition,
		 int64 *part_newest, int64 *open_wm, RowFate *otherwise)
{
	RtsWindowDef *def = ww->def;
	int64		wm;
	int64		hist = RTS_TIME_NONE;
	RowFate		fate = ROW_LATE;

	*part_newest = ww->part_newest[partition];
	if (*part_newest == RTS_TIME_NONE || tu > *part_newest)
		*part_newest = tu;
	wm = Max(ww->wm, rts_watermark(def, *part_newest));
	if (ww->emitted != RTS_TIME_NONE && ww->emitted != RTS_TIME_UNKNOWN)
		hist = rts_history_watermark(def, ww->emitted);
	if (!rts_row_late(def, tu, wm) &&
		hist != RTS_TIME_NONE && rts_row_late(def, tu, hist))
	{
		/*
		 * Its window is in the history, yet the watermark has not passed it:
		 * the watermark started again lower after a restart.  A row of a
		 * transaction the history already holds is replayed, and is skipped;
		 * a newer one is late.  (A session row: unless it falls into a
		 * session still open by the history's watermark.)
		 */
		if (lsn <= ww->emitted_lsn)
			fate = ROW_SKIP;
		wm = hist;
	}
	if (!rts_row_late(def, tu, wm))
		return ROW_APPLY;
	if (RTS_IS_SESSION(def))
	{
		*open_wm = hist != RTS_TIME_NONE ? Max(wm, hist) : wm;
		*otherwise = fate;
		return ROW_IF_OPEN;
	}
	if (fate == ROW_LATE)
		row_count_late(ww);
	return fate;
}

/*
 * Whether the group of a session window's row before the watermark wm (its
 * key, rts_keys_build) has a session still open in this worker that the row at
 * tu falls into: one ending at or after wm (last + gap >= wm) and starting
 * at or before tu.  Joining it leaves its start where it is, so the merged
 * session stays open and the row reaches no session closed, nor one in the
 * history (session_slot).  A row before the first row of every open
 * session is late, even within gap of it: it would move a start back,
 * toward sessions of the group, here or on another worker, that may be
 * closed.  Only the ring is searched: a session the ring gave up to the
 * closed store (more open sessions than panes) takes no row before the
 * watermark.
 */
static bool
session_open_at(WorkerWindow *ww, int64 tu, int64 wm)
{
	RtsPaneTable *t = ww->table;
	uint32		entry_id;
	RtsGroupEntry *e;
	uint32		hash;
	StringInfo	key = rts_keys_build(ww, &hash);

	e = rts_table_find(rts_dsa(), t, hash, key->data, key->len, &entry_id);
	if (e == NULL)
		return false;
	for (int i = 0; i < t->npanes; i++)
	{
		RtsPane    *p = rts_entry_pane(t, e, i);

		int64		start = rts_pane_no(ww->def, p);

		if (start != RTS_PANE_EMPTY && start <= tu &&
			rts_session_end(ww->def, p) >= wm)
			return true;
	}
	return false;
}

/*
 * Phase 3: everything that can fail on this row's values, before any state
 * changes: its group key (rts_keys_build, unless key_built), its aggregates'
 * FILTERs and arguments (into ww->pass, ww->args).
 */
static void
row_evaluate(WorkerWindow *ww, bool key_built)
{
	RtsWindowDef *def = ww->def;
	ExprContext *econtext = def->econtext;

	if (!key_built)
	{
		uint32		hash;

		(void) rts_keys_build(ww, &hash);
	}
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];
		Datum	   *args = &ww->args[ww->argoff[a]];
		bool	   *argnulls = &ww->argnulls[ww->argoff[a]];

		ww->pass[a] = (agg->filterstate == NULL || ExecQual(agg->filterstate, econtext));
		if (!ww->pass[a])
			continue;
		for (int i = 0; i < agg->nargs; i++)
		{
			if (agg->arg_attno)
				args[i] = slot_getattr(ww->row, agg->arg_attno, &argnulls[i]);
			else
				args[i] = ExecEvalExpr(agg->argstates[i], econtext, &argnulls[i]);
		}
	}
}

/*
 * Phase 4: the group's entry and the ring slot of the row's pane (or
 * session) in it, made ready for the row.  NULL when memory is exhausted:
 * the group is refused, counted, and warned about once.
 */
/*
 * The ring slot of the pane (or session) of time tu in a group's entry,
 * made ready for it; -1 when memory is exhausted.
 */
int
rts_pane_target(WorkerWindow *ww, uint32 entry_id, RtsGroupEntry *e, int64 tu)
{
	RtsWindowDef *def = ww->def;
	RtsPaneTable *t = ww->table;
	int64		pane_no;
	int			pane_idx;
	RtsPane    *pane;

	if (RTS_IS_SESSION(def))
		return session_slot(ww, entry_id, e, tu);
	pane_no = rts_pane_of(&def->geom, tu);
	pane_idx = rts_ring_slot(t, pane_no);
	pane = rts_entry_pane(t, e, pane_idx);
	if (rts_pane_no(t, pane) != pane_no)
	{
		if (!pane_vacate(ww, entry_id, e, pane_idx))
			return -1;
		rts_pane_reset(def, pane, pane_no);
	}
	return pane_idx;
}

/* A group refused for memory: counted, and warned about once. */
void
rts_refuse_group(WorkerWindow *ww)
{
	RtsPaneTable *t = ww->table;

	t->refused_groups++;
	pg_atomic_fetch_add_u64(&wstate.shared->refused_groups, 1);
	if (!t->warned_memory)
	{
		t->warned_memory = true;
		ereport(WARNING,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("rtstream window \"%s\" reached rtstream.memory_limit", ww->def->name),
				 errdetail("New groups are refused; the groups held stay exact."),
				 errhint("Increase rtstream.memory_limit; refused groups are counted in rtstream.stats.")));
	}
}

/*
 * Phase 4: the group's entry and the ring slot of the row's pane (or
 * session) in it, made ready for the row.  NULL when memory is exhausted:
 * the group is refused.
 */
static RtsGroupEntry *
row_target(WorkerWindow *ww, int64 tu, uint32 *entry_id, int *pane_idx)
{
	RtsGroupEntry *e;

	e = rts_keys_lookup(ww, tu, entry_id);
	if (e != NULL)
	{
		*pane_idx = rts_pane_target(ww, *entry_id, e, tu);
		if (*pane_idx >= 0)
			return e;
	}
	rts_refuse_group(ww);
	return NULL;
}

/* Phase 5: the row into its pane's aggregate states. */
static void
row_accumulate(WorkerWindow *ww, uint32 entry_id, int pane_idx, RtsPane *pane)
{
	RtsWindowDef *def = ww->def;
	LocalCell  *cell = NULL;

	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];
		Datum	   *args = &ww->args[ww->argoff[a]];
		bool	   *argnulls = &ww->argnulls[ww->argoff[a]];

		if (!ww->pass[a])
			continue;
		if (agg->fast != RTS_FAST_NONE)
			rts_fast_accum(agg, pane, agg->nargs ? args[0] : (Datum) 0,
						   agg->nargs ? argnulls[0] : false);
		else if (agg->state_local)
		{
			if (cell == NULL)
				cell = local_cell(ww, entry_id, pane_idx, pane);
			rts_state_transition(agg, &cell->states[a], args, argnulls);
			worker_relock();
		}
		else
		{
			RtsState	st = rts_state_from_pane(NULL, agg, pane);

			rts_state_transition(agg, &st, args, argnulls);
			worker_relock();
			rts_state_to_pane(NULL, ww->table, agg, pane, st);
		}
	}
}

/*
 * A row of a transaction still running, into its pending states
 * (worker_stream.c): its time and values now; its lateness and its pane of
 * commit time, at the commit.
 */
static ApplyResult
apply_row_pending(WorkerWindow *ww, RtsPendingWindow *pw, int partition)
{
	int64		tu = RTS_TIME_NONE;

	if (ww->def->time_attno && !row_event_time(ww, &tu))
	{
		rts_pending_null_time(pw);
		return APPLY_DONE;
	}
	row_evaluate(ww, false);
	rts_pending_accumulate(pw, ww, tu, partition);
	return APPLY_DONE;
}

/*
 * Apply one row to one window, in phases: the WHERE filter, the row's time,
 * lateness, the values, the target pane, the aggregates.  With pw, into the
 * pending states of a transaction still running instead.
 */
static ApplyResult
apply_row(WorkerWindow *ww, TimestampTz commit_time, XLogRecPtr lsn, int partition,
		  RtsPendingWindow *pw)
{
	RtsWindowDef *def = ww->def;
	RtsPaneTable *t = ww->table;
	int64		tu,
				part_newest,
				open_wm = RTS_TIME_NONE;
	RowFate		otherwise = ROW_LATE;
	bool		key_built = false;
	int			pane_idx;
	uint32		entry_id;
	RtsGroupEntry *e;

	def->econtext->ecxt_scantuple = ww->row;
	if (def->qualstate && !ExecQual(def->qualstate, def->econtext))
		return APPLY_DONE;
	if (pw != NULL)
		return apply_row_pending(ww, pw, partition);
	if (!row_time(ww, commit_time, &tu))
		return APPLY_DONE;
	switch (row_fate(ww, tu, lsn, partition, &part_newest, &open_wm, &otherwise))
	{
		case ROW_SKIP:
			return APPLY_DONE;
		case ROW_LATE:
			return APPLY_LATE;
		case ROW_IF_OPEN:
			/* its group decides: the key first */
			{
				uint32		hash;

				(void) rts_keys_build(ww, &hash);
			}
			key_built = true;
			worker_relock();
			if (!session_open_at(ww, tu, open_wm))
			{
				if (otherwise == ROW_SKIP)
					return APPLY_DONE;
				row_count_late(ww);
				return APPLY_LATE;
			}
			break;
		case ROW_APPLY:
			break;
	}
	row_evaluate(ww, key_built);
	worker_relock();
	e = row_target(ww, tu, &entry_id, &pane_idx);
	if (e == NULL)
		return APPLY_DONE;

	ww->part_newest[partition] = part_newest;
	ww->batch_rows = true;
	if (!t->has_time || rts_from_unix(tu) > t->max_time)
		t->max_time = rts_from_unix(tu);
	t->has_time = true;
	row_accumulate(ww, entry_id, pane_idx, rts_entry_pane(t, e, pane_idx));
	t->rows++;
	return APPLY_DONE;
}

/* A late row kept by late_policy 'dead_letter'. */
static void
late_dead_letter(WorkerWindow *ww, HeapTuple tuple, XLogRecPtr lsn)
{
	RtsWindowDef *def = ww->def;
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	DeadLetter *dl = palloc0(sizeof(DeadLetter));
	int64		wm = ww->wm;

	if (ww->emitted != RTS_TIME_NONE && ww->emitted != RTS_TIME_UNKNOWN)
		wm = Max(wm, rts_history_watermark(def, ww->emitted));

	dl->owner = def->owner;
	dl->search_path = def->search_path ? pstrdup(def->search_path) : NULL;
	dl->stream = tuple->t_tableOid;
	dl->window = pstrdup(def->name);
	dl->table = def->dead_letter_table;
	dl->lsn = lsn;
	dl->error = psprintf("late row: behind the watermark %s of window \"%s\"",
						 timestamptz_to_str(rts_from_unix(wm)), def->name);
	dl->row = OidOutputFunctionCall(F_RECORD_OUT,
									heap_copy_tuple_as_datum(tuple, def->streamdesc));
	dead_letters = lappend(dead_letters, dl);
	MemoryContextSwitchTo(old);
	pg_atomic_fetch_add_u64(&wstate.shared->dead_letters, 1);
}

/*
 * Apply one row to its windows, all of one owner, as that owner (sw);
 * errors go to the dead letters.  With ptxn, a row of a transaction still
 * running, into its pending states; its dead letters wait for the commit.
 */
static void
apply_tuple(List *targets, HeapTuple tuple, TimestampTz commit_time,
			XLogRecPtr lsn, int partition, RtsOwnerSwitch *sw,
			RtsPendingTxn *ptxn)
{
	MemoryContext outer_cxt = drain_cxt;
	ResourceOwner outer_owner = drain_owner;

	ListCell   *lc;
	WorkerWindow *volatile current = NULL;	/* read after a longjmp */
	RtsPendingWindow *volatile pw = NULL;
	TupleTableSlot *row = NULL;

	rts_keys_new_call();
	PG_TRY();
	{
		foreach(lc, targets)
		{
			current = lfirst(lc);
			if (ptxn != NULL)
				pw = rts_pending_window(ptxn, current);
			/* replayed, and in the state the window was restored with */
			else if (lsn <= current->table->run.skip_lsn[partition])
				continue;

			/*
			 * The row is stored and deformed once for the windows of its
			 * stream: their slots all have the stream's row type (a stream's
			 * columns cannot change under its windows, utility.c).
			 */
			if (row == NULL ||
				row->tts_tupleDescriptor->natts != current->def->streamdesc->natts)
			{
				row = current->tts;
				ExecStoreHeapTuple(tuple, row, false);
			}
			current->row = row;
			current->def->econtext->ecxt_per_tuple_memory = row_cxt;
			if (apply_row(current, commit_time, lsn, partition, pw) == APPLY_LATE &&
				current->def->late_policy == RTS_LATE_DEAD_LETTER)
				late_dead_letter(current, tuple, lsn);
		}
		if (row != NULL)
			ExecClearTuple(row);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		DeadLetter *dl;
		MemoryContext old;

		MemoryContextSwitchTo(outer_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(outer_cxt);
		CurrentResourceOwner = outer_owner;

		if (ptxn != NULL && pw == NULL && targets != NIL)
			pw = rts_pending_window(ptxn, linitial(targets));
		old = MemoryContextSwitchTo(pw ? rts_pending_context(ptxn) : TopTransactionContext);
		dl = palloc0(sizeof(DeadLetter));
		if (current)
		{
			dl->owner = current->def->owner;
			dl->search_path = current->def->search_path ?
				pstrdup(current->def->search_path) : NULL;
		}
		dl->stream = tuple->t_tableOid;
		dl->window = current ? pstrdup(current->def->name) : NULL;
		dl->lsn = lsn;
		dl->error = pstrdup(edata->message ? edata->message : "unknown error");
		if (current)
			dl->row = OidOutputFunctionCall(F_RECORD_OUT,
											heap_copy_tuple_as_datum(tuple, current->def->streamdesc));
		if (pw != NULL)
		{
			/* counted once its transaction commits (rts_dead_letters_adopt) */
			List	  **deferred = rts_pending_dead_letters(pw);

			*deferred = lappend(*deferred, dl);
		}
		else
		{
			dead_letters = lappend(dead_letters, dl);
			pg_atomic_fetch_add_u64(&wstate.shared->dead_letters, 1);
		}
		MemoryContextSwitchTo(old);
		FreeErrorData(edata);

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(outer_cxt);
		CurrentResourceOwner = outer_owner;
		/* pending states are ours alone: no lock for them */
		if (ptxn == NULL)
			LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
		/* the rollback made us the worker again */
		{
			RtsWindowDef *gdef = ((WorkerWindow *) linitial(targets))->def;

			rts_owner_enter(gdef->owner, gdef->search_path, sw);
		}
	}
	PG_END_TRY();
}

/*
 * The watermark that decides which panes a worker keeps.  With history,
 * the window's: a closed window is kept until it is written.  Without, the
 * oldest of this worker's partitions' own watermarks, when higher: panes
 * that no row of its partitions can reach any more are freed even while
 * another worker holds the window's watermark back (a transaction spanning
 * many windows would otherwise keep every pane it passes until all workers
 * have applied it; window_results then lacks this worker's part of windows
 * behind its partitions, until the watermark passes them too).
 */
static int64
keep_watermark(WorkerWindow *ww)
{
	int64		local = PG_INT64_MAX;

	if (RTS_KEEPS_HISTORY(ww->def) || RTS_IS_SESSION(ww->def) ||
		ww->wm == RTS_TIME_NONE)
		return ww->wm;
	for (int p = 0; p < RTS_NPARTITIONS; p++)
	{
		if (wstate.owner[p] != wstate.index)
			continue;
		if (ww->part_newest[p] == RTS_TIME_NONE)
			return ww->wm;		/* a partition without rows yet */
		local = Min(local, rts_watermark(ww->def, ww->part_newest[p]));
	}
	return local == PG_INT64_MAX ? ww->wm : Max(ww->wm, local);
}

/* Free the closed panes no longer needed, when that changed. */
static void
closed_prune(WorkerWindow *ww)
{
	RtsPaneTable *t = ww->table;

	if (t->nclosed == 0 || ww->keep == ww->pruned_for)
		return;
	ww->pruned_for = ww->keep;
	for (uint32 i = t->nclosed; i > 0; i--)
		if (!rts_pane_kept(ww->def, &rts_closed_pane(rts_dsa(), t, i - 1)->pane, ww->keep))
			rts_closed_remove(rts_dsa(), t, i - 1, ww->def->word_typlen);
}

/*
 * With nothing queued: free the closed panes the watermark has passed
 * since the last batch.  A large transaction passes its panes to the
 * closed store (its watermark moves only at its end); until they are
 * freed, readers cannot take a window's groups as whole (read.c).
 */
static void
idle_prune(void)
{
	ListCell   *lc;
	bool		locked = false;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowSlot *slot;

		if (ww->table->nclosed == 0)
			continue;
		if (!locked)
		{
			LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
			locked = true;
		}
		slot = rts_worker_slot(ww);
		ww->wm = rts_window_watermark(wstate.db, slot);
		ww->emitted = rts_atomic_read_time(&slot->emitted_until);
		ww->keep = rts_keep_from(ww->def, keep_watermark(ww), ww->emitted,
								 rts_atomic_read_time(&slot->session_keep));
		closed_prune(ww);
	}
	if (locked)
		LWLockRelease(&wstate.shared->lock);
}

/* After a batch: when the window last had rows, for idle_timeout. */
static void
note_arrival(WorkerWindow *ww)
{
	if (ww->batch_rows)
		pg_atomic_write_u64(&rts_worker_slot(ww)->last_arrival[wstate.index],
							(uint64) GetCurrentTimestamp());
}

/*
 * Before a batch, under our lock: the window's watermark, what its history
 * holds, and the panes it keeps.  The watermark is read under our lock:
 * history.c reads it under every worker's lock before it writes the
 * windows it closed.
 */
static void
window_batch_start(WorkerWindow *ww)
{
	RtsWindowSlot *slot = rts_worker_slot(ww);

	ww->wm = rts_window_watermark(wstate.db, slot);
	ww->emitted = rts_atomic_read_time(&slot->emitted_until);
	ww->emitted_lsn = pg_atomic_read_u64(&slot->emitted_lsn);
	ww->keep = rts_keep_from(ww->def, keep_watermark(ww), ww->emitted,
							 rts_atomic_read_time(&slot->session_keep));
	ww->batch_rows = false;
	closed_prune(ww);
}

/*
 * Changing windows' panes, by a batch (apply_rows) or a transaction's
 * pending states (worker_stream.c): our lock, each window made ready, and
 * the windows in groups of one owner, each to be applied as that owner.
 */
List *
rts_batch_begin(List *windows)
{
	ListCell   *lc;

	rts_agg_context_set(wstate.batch_cxt);
	LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
	foreach(lc, windows)
		window_batch_start(lfirst(lc));
	return rts_owner_groups(windows);
}

/* The end of rts_batch_begin: the lock given back, the arrivals noted. */
void
rts_batch_end(List *windows)
{
	ListCell   *lc;

	if (LWLockHeldByMe(&wstate.shared->lock))
		LWLockRelease(&wstate.shared->lock);
	foreach(lc, windows)
		note_arrival(lfirst(lc));
	MemoryContextReset(wstate.batch_cxt);
}

/* Whether a row of partition p ending at lsn is in every window's state. */
static bool
row_skipped_by_all(List *windows, XLogRecPtr lsn, int p)
{
	ListCell   *lc;

	foreach(lc, windows)
		if (lsn > ((WorkerWindow *) lfirst(lc))->table->run.skip_lsn[p])
			return false;
	return true;
}

/*
 * The windows of a batch in groups that run as one owner with one
 * search_path: each group is applied under one switch to its owner.
 */
List *
rts_owner_groups(List *targets)
{
	List	   *groups = NIL;
	ListCell   *lc;

	foreach(lc, targets)
	{
		WorkerWindow *ww = lfirst(lc);
		ListCell   *gc;
		bool		placed = false;

		foreach(gc, groups)
		{
			List	   *g = lfirst(gc);
			RtsWindowDef *first = ((WorkerWindow *) linitial(g))->def;

			if (first->owner == ww->def->owner &&
				strcmp(first->search_path ? first->search_path : "",
					   ww->def->search_path ? ww->def->search_path : "") == 0)
			{
				lfirst(gc) = lappend(g, ww);
				placed = true;
				break;
			}
		}
		if (!placed)
			groups = lappend(groups, list_make1(ww));
	}
	return groups;
}

/*
 * The next row of a batch, from *p (moved past it): the tuple (pointing
 * into the batch) and its partition.  False at the end, or at a row that
 * does not fit (the rest is ignored, with a warning).
 */
static bool
batch_next_row(char **p, char *end, Oid stream, HeapTuple tuple, int *partition)
{
	uint64		word;

	if (*p >= end)
		return false;
	memcpy(&word, *p, sizeof(uint64));
	tuple->t_len = RTS_ROW_LEN(word);
	if (sizeof(uint64) + MAXALIGN(tuple->t_len) > (Size) (end - *p))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rtstream ignores the rest of a malformed batch")));
		return false;
	}
	tuple->t_data = (HeapTupleHeader) (*p + sizeof(uint64));
	ItemPointerSetInvalid(&tuple->t_self);
	tuple->t_tableOid = stream;
	*p += sizeof(uint64) + MAXALIGN(tuple->t_len);
	*partition = RTS_ROW_PARTITION(word) % RTS_NPARTITIONS;
	return true;
}

/* Apply a batch of rows to the windows given (those that take it). */
static void
apply_rows(RtsBatchHeader *hdr, char *batch, Size len, RtsQueueItem *item,
		   List *windows)
{
	List	   *targets = NIL;
	List	   *groups;
	ListCell   *lc;
	char	   *end = batch + len;
	HeapTupleData tuple;
	uint32		skipped = 0;

	foreach(lc, windows)
	{
		WorkerWindow *ww = lfirst(lc);

		if (ww->def->stream == hdr->stream && item->commit_lsn > ww->table->created_lsn)
			targets = lappend(targets, ww);
	}
	if (targets != NIL)
	{
		groups = rts_batch_begin(targets);
		foreach(lc, groups)
		{
			List	   *group = lfirst(lc);
			RtsWindowDef *gdef = ((WorkerWindow *) linitial(group))->def;
			RtsOwnerSwitch sw = {0};
			char	   *p = batch + RTS_BATCH_HEADER_SIZE;
			ListCell   *wc;
			int			partition;

			rts_owner_enter(gdef->owner, gdef->search_path, &sw);
			while (batch_next_row(&p, end, hdr->stream, &tuple, &partition))
			{

				/* replayed, and its partition is already in a checkpoint */
				if (row_skipped_by_all(group, item->commit_lsn, partition))
				{
					if (lc == list_head(groups))
						skipped++;
					continue;
				}
				MemoryContextSwitchTo(row_cxt);
				apply_tuple(group, &tuple, item->commit_time, item->commit_lsn,
							partition, &sw, NULL);
				MemoryContextSwitchTo(drain_cxt);
				MemoryContextReset(row_cxt);
			}
			/* serial functions are the owner's code too */
			foreach(wc, group)
				local_cells_flush(lfirst(wc));
			worker_relock();
			rts_owner_leave(&sw);
			list_free(group);
		}
		list_free(groups);
		rts_batch_end(targets);
	}
	if (skipped > 0)
		pg_atomic_fetch_add_u64(&wstate.shared->replayed_skipped, 1);
	pg_atomic_fetch_add_u64(&wstate.shared->rows_applied, hdr->nrows - skipped);
	pg_atomic_fetch_add_u64(&wstate.shared->batches_applied, 1);
	list_free(targets);
}

/*
 * A batch of a transaction still running into the pending states of the
 * windows given (worker_stream.c decided they take it that way).  Nothing
 * shared changes, so no lock: the rows are evaluated as their windows'
 * owners, as at a commit, and their errors wait as dead letters.
 */
void
rts_apply_rows_pending(RtsBatchHeader *hdr, char *batch, Size len,
					   RtsPendingTxn *ptxn, List *windows)
{
	List	   *groups;
	ListCell   *lc;
	char	   *end = batch + len;
	HeapTupleData tuple;

	if (windows == NIL)
		return;
	rts_agg_context_set(rts_pending_context(ptxn));
	groups = rts_owner_groups(windows);
	foreach(lc, groups)
	{
		List	   *group = lfirst(lc);
		RtsWindowDef *gdef = ((WorkerWindow *) linitial(group))->def;
		RtsOwnerSwitch sw = {0};
		char	   *p = batch + RTS_BATCH_HEADER_SIZE;
		int			partition;

		rts_owner_enter(gdef->owner, gdef->search_path, &sw);
		while (batch_next_row(&p, end, hdr->stream, &tuple, &partition))
		{
			MemoryContextSwitchTo(row_cxt);
			apply_tuple(group, &tuple, 0, InvalidXLogRecPtr, partition, &sw, ptxn);
			MemoryContextSwitchTo(drain_cxt);
			MemoryContextReset(row_cxt);
		}
		rts_owner_leave(&sw);
		list_free(group);
	}
	list_free(groups);
	/* a row's error took the lock again (apply_tuple) */
	if (LWLockHeldByMe(&wstate.shared->lock))
		LWLockRelease(&wstate.shared->lock);
	rts_agg_context_set(wstate.batch_cxt);
	pg_atomic_fetch_add_u64(&wstate.shared->batches_applied, 1);
}

/*
 * The dead letters of a transaction applied while it ran, now that it
 * committed at lsn: written after the drain like the others.
 */
void
rts_dead_letters_adopt(List *deferred, XLogRecPtr lsn)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	ListCell   *lc;

	foreach(lc, deferred)
	{
		DeadLetter *src = lfirst(lc);
		DeadLetter *dl = palloc(sizeof(DeadLetter));

		*dl = *src;
		dl->search_path = src->search_path ? pstrdup(src->search_path) : NULL;
		dl->window = src->window ? pstrdup(src->window) : NULL;
		dl->error = pstrdup(src->error);
		dl->row = src->row ? pstrdup(src->row) : NULL;
		dl->lsn = lsn;
		dead_letters = lappend(dead_letters, dl);
		pg_atomic_fetch_add_u64(&wstate.shared->dead_letters, 1);
	}
	MemoryContextSwitchTo(old);
}

static void
insert_dead_letter(DeadLetter *dl, const char *table, const char *error)
{
	Oid			types[5] = {OIDOID, TEXTOID, LSNOID, TEXTOID, TEXTOID};
	Datum		vals[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	vals[0] = ObjectIdGetDatum(dl->stream);
	vals[1] = dl->window ? CStringGetTextDatum(dl->window) : (Datum) 0;
	nulls[1] = dl->window ? ' ' : 'n';
	vals[2] = LSNGetDatum(dl->lsn);
	vals[3] = CStringGetTextDatum(error);
	vals[4] = dl->row ? CStringGetTextDatum(dl->row) : (Datum) 0;
	nulls[4] = dl->row ? ' ' : 'n';
	SPI_execute_with_args(psprintf("INSERT INTO %s "
								   "(stream, window_name, commit_lsn, error, row_data) "
								   "VALUES ($1, $2, $3, $4, $5)", table),
						  5, types, vals, nulls, false, 0);
}

/*
 * Write a window's dead letter into its own dead_letter_table, as the
 * window's owner (its triggers and defaults are the owner's code), in a
 * subtransaction.  False, with the error in *error, if that failed.
 */
static bool
insert_user_dead_letter(DeadLetter *dl, char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *table;
	bool		ok = true;

	if (get_rel_name(dl->table) == NULL)
	{
		*error = pstrdup("dead letter table dropped");
		return false;
	}
	table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(dl->table)),
									   get_rel_name(dl->table));
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		RtsOwnerSwitch sw = {0};

		rts_owner_enter(dl->owner, dl->search_path, &sw);
		SPI_connect();
		insert_dead_letter(dl, table, dl->error);
		SPI_finish();
		rts_owner_leave(&sw);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		*error = pstrdup(edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/*
 * Write the drain's dead letters: those of a window with a dead_letter_table
 * there, as its owner; the others, and those its table refused (with why),
 * into rtstream.dead_letters, which runs no user code.
 */
static void
write_dead_letters(void)
{
	ListCell   *lc;

	if (dead_letters == NIL)
		return;
	foreach(lc, dead_letters)
	{
		DeadLetter *dl = lfirst(lc);
		char	   *error = dl->error;

		if (OidIsValid(dl->table) && OidIsValid(dl->owner))
		{
			char	   *why;

			if (insert_user_dead_letter(dl, &why))
				continue;
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("rtstream could not write a dead letter of window \"%s\" into its dead letter table: %s",
							dl->window, why),
					 errdetail("It is kept in rtstream.dead_letters.")));
			error = psprintf("%s (not written to its dead letter table: %s)",
							 dl->error, why);
		}
		SPI_connect();
		insert_dead_letter(dl, "rtstream.dead_letters", error);
		SPI_finish();
	}
	dead_letters = NIL;
}

/*
 * Apply one item to the windows that take it: the worker's running windows
 * if it is new to the worker (rts_progress_take), and the windows catching
 * up that it is new to (worker_run.c); rows to none of the windows whose
 * ids are in exclude (they have them already, worker_stream.c).
 */
void
rts_apply_item(RtsQueueItem *item, char *batch, List *exclude)
{
	RtsWorkerShared *me = wstate.shared;
	RtsBatchHeader hdr;
	bool		commit;
	bool		worker_took;
	List	   *takers;

	memcpy(&hdr, batch, sizeof(hdr));
	commit = hdr.kind == RTS_BATCH_COMMIT;
	worker_took = rts_progress_take(&me->progress, item, commit);
	takers = rts_run_takers(item, commit);
	if (commit)
	{
		/* the transaction's rows are all applied: publish their times */
		rts_run_commit(item, worker_took, takers);
		list_free(takers);
		return;
	}
	if (!worker_took && takers == NIL)
	{
		pg_atomic_fetch_add_u64(&me->replayed_skipped, 1);
		return;
	}
	if (hdr.kind == RTS_BATCH_ROWS)
	{
		List	   *windows = takers;
		ListCell   *lc;

		if (worker_took)
			foreach(lc, wstate.windows)
			{
				WorkerWindow *ww = lfirst(lc);

				if (ww->table->run.state == RTS_RUN_RUNNING)
					windows = lappend(windows, ww);
			}
		foreach(lc, windows)
		{
			if (list_member_int(exclude, ((WorkerWindow *) lfirst(lc))->def->id))
				windows = foreach_delete_current(windows, lc);
		}
		apply_rows(&hdr, batch, item->len, item, windows);
		list_free(windows);
		me->last_commit_lsn = item->commit_lsn;
		return;
	}
	list_free(takers);
	if (!worker_took)
		return;					/* DDL is the worker's, not a window's */
	switch (hdr.kind)
	{
		case RTS_BATCH_DDL:

			/*
			 * The DDL's commit record is decoded before the transaction leaves
			 * the proc array; wait until a new snapshot sees it.  A replayed
			 * DDL is harmless: a window is loaded once, by id, and a dropped
			 * one is no longer in the catalog.
			 */
			while (TransactionIdIsValid(item->xid) &&
				   TransactionIdIsInProgress(item->xid))
			{
				CHECK_FOR_INTERRUPTS();
				pg_usleep(1000L);
			}
			if (hdr.ddl_op == RTS_DDL_CREATE_WINDOW)
				rts_worker_window_load((int32) hdr.nrows, item->commit_lsn);
			else if (hdr.ddl_op == RTS_DDL_LOAD_CATALOG)
				rts_worker_load_catalog(item->commit_lsn);
			else if (hdr.ddl_op == RTS_DDL_DROP_WINDOW)
				rts_worker_window_drop((int32) hdr.nrows);
			else if (hdr.ddl_op == RTS_DDL_ALTER_WINDOW)
				rts_worker_window_alter((int32) hdr.nrows);
			break;
		default:
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("rtstream worker ignores an item of kind %d", hdr.kind)));
	}
	me->last_commit_lsn = item->commit_lsn;
}

/* Follow CREATE and DROP EXTENSION; in a transaction. */
static void
extension_check(void)
{
	Oid			ext = get_extension_oid("rtstream", true);

	if (ext == wstate.shared->extension)
		return;
	rts_worker_forget_all();
	wstate.shared->extension = ext;
	if (OidIsValid(ext))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		rts_worker_restore();
		PopActiveSnapshot();
	}
}

/*
 * Apply what is queued, in one transaction (catalog access and functions
 * called by aggregates need one).  Returns false if the queue was empty.
 */
static bool
drain_queue(char **buf, Size *bufsize)
{
	RtsWorkerShared *me = wstate.shared;
	RtsQueueItem item;
	char	   *batch;
	uint64		next_pos;
	uint64		applied_pos = 0;
	int			n = 0;

	if (pg_atomic_read_u64(&me->ring.read_pos) ==
		pg_atomic_read_u64(&me->ring.write_pos))
		return false;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	extension_check();
	rts_run_check_windows();

	/*
	 * The items run in a subtransaction, so that a failing row can be rolled
	 * back and the rest go on (apply_tuple).
	 */
	drain_cxt = CurrentMemoryContext;
	drain_owner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(drain_cxt);
	CurrentResourceOwner = drain_owner;
	while (n++ < 256 && !got_sigterm &&
		   rts_ring_get(&me->ring, &item, &batch, buf, bufsize, &next_pos))
	{
		bool		was_full = (pg_atomic_read_u64(&me->ring.write_pos) -
								next_pos) > me->ring.size / 2;

		PG_TRY();
		{
			/* a transaction still running, or its end: worker_stream.c */
			if (!rts_stream_item(&item, batch))
				rts_apply_item(&item, batch, NIL);
		}
		PG_CATCH();
		{
			/* an error outside the rows (catalog, memory): report, go on */
			MemoryContextSwitchTo(drain_cxt);
			EmitErrorReport();
			FlushErrorState();
			local_cells_discard();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextReset(wstate.batch_cxt);
			MemoryContextReset(row_cxt);
			BeginInternalSubTransaction(NULL);
			MemoryContextSwitchTo(drain_cxt);
			CurrentResourceOwner = drain_owner;
		}
		PG_END_TRY();
		applied_pos = next_pos;
		rts_ring_advance(&me->ring, next_pos);
		/* the router may be waiting for room only when the queue was full */
		if (was_full && wstate.db->router_latch)
			SetLatch(wstate.db->router_latch);
	}
	if (wstate.db->router_latch)
		SetLatch(wstate.db->router_latch);
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(drain_cxt);
	CurrentResourceOwner = drain_owner;
	write_dead_letters();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/*
	 * Applied, dead letters included: rtstream.sync() may return.  Not
	 * items skipped until the router decodes again (worker_stream.c).
	 */
	if (applied_pos != 0 && !rts_stream_waiting())
		pg_atomic_write_u64(&me->applied_pos, applied_pos);
	return true;
}

/*
 * A transaction whose commit marker we may have consumed before a restart
 * of this worker: with the queue empty and the router past its end, it is
 * complete.
 */
static void
settle_transaction(void)
{
	RtsWorkerShared *me = wstate.shared;
	XLogRecPtr	decoded = pg_atomic_read_u64(&wstate.db->decoded_lsn);

	pg_read_barrier();
	if (me->progress.in_txn_lsn != InvalidXLogRecPtr &&
		pg_atomic_read_u64(&me->ring.read_pos) == pg_atomic_read_u64(&me->ring.write_pos) &&
		decoded >= me->progress.in_txn_lsn)
	{
		me->progress.applied_lsn = Max(me->progress.applied_lsn, me->progress.in_txn_lsn);
		me->progress.in_txn_lsn = InvalidXLogRecPtr;
		me->progress.in_txn_items = 0;
		me->progress.replay_skip = 0;
	}
	rts_run_settle();
}

/*
 * Whether this worker holds back more WAL than rtstream.checkpoint_wal_size
 * for rows it was given and has not checkpointed yet.
 */
static bool
checkpoint_wal_due(void)
{
	XLogRecPtr	durable = pg_atomic_read_u64(&wstate.shared->durable_lsn);
	XLogRecPtr	insert = GetXLogInsertRecPtr();

	return durable < wstate.shared->last_commit_lsn && insert > durable &&
		insert - durable > rts_checkpoint_wal_bytes();
}

static void
maybe_checkpoint(bool force)
{
	RtsWorkerShared *me = wstate.shared;
	uint32		requested = pg_atomic_read_u32(&me->checkpoint_requests);
	TimestampTz now = GetCurrentTimestamp();

	if (!OidIsValid(wstate.shared->extension))
	{
		pg_atomic_write_u32(&me->checkpoints_done, requested);
		return;
	}
	if (!force && requested == pg_atomic_read_u32(&me->checkpoints_done) &&
		!TimestampDifferenceExceeds(wstate.last_checkpoint, now,
									rts_checkpoint_interval_s * 1000) &&
		!checkpoint_wal_due())
		return;
	if (!force && !TimestampDifferenceExceeds(checkpoint_failed_at, now, 1000))
		return;					/* after a failure, once a second at most */
	settle_transaction();
	if (wstate.shared->progress.in_txn_lsn != InvalidXLogRecPtr ||
		rts_run_mid_transaction())
		return;					/* between two batches of a transaction */

	PG_TRY();
	{
		rts_worker_checkpoint();
		pg_atomic_write_u32(&me->checkpoints_done, requested);
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		checkpoint_failed_at = now;
	}
	PG_END_TRY();
}

/*
 * Worker 0 advances idle windows and writes closed windows to their
 * history tables; an error is reported and tried again a second later.
 */
static void
history_tick(void)
{
	static TimestampTz failed_at = 0;

	if (wstate.index != 0 || !OidIsValid(wstate.shared->extension) ||
		!TimestampDifferenceExceeds(failed_at, GetCurrentTimestamp(), 1000))
		return;
	PG_TRY();
	{
		rts_history_tick();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		failed_at = GetCurrentTimestamp();
	}
	PG_END_TRY();
}

static void
worker_shmem_exit(int code, Datum arg)
{
	wstate.shared->latch = NULL;
	wstate.shared->pid = 0;
}

void
rts_worker_main(Datum arg)
{
	int			code = DatumGetInt32(arg);
	char	   *buf = NULL;
	Size		bufsize = 0;
	RtsWorkerShared *me;

	pqsignal(SIGTERM, worker_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	rts_set_background_priority();

	memset(&wstate, 0, sizeof(wstate));
	wstate.db = &rts_shared->dbs[code / RTS_MAX_WORKERS];
	wstate.index = code % RTS_MAX_WORKERS;
	wstate.shared = me = &wstate.db->workers[wstate.index];
	if (rts_flag(&wstate.db->dropping))
	{
		/* DROP DATABASE is under way: stay out, try again later */
		pg_usleep(1000000L);
		proc_exit(1);
	}
	if (!OidIsValid(wstate.db->dboid))
		proc_exit(0);			/* the entry was given back meanwhile */
	BackgroundWorkerInitializeConnectionByOid(wstate.db->dboid, InvalidOid, 0);

	me->pid = MyProcPid;
	me->latch = MyLatch;
	before_shmem_exit(worker_shmem_exit, 0);

	for (int p = 0; p < RTS_NPARTITIONS; p++)
		wstate.owner[p] = rts_partition_worker(p, wstate.db->nworkers);
	wstate.batch_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream batch",
											 ALLOCSET_DEFAULT_SIZES);
	row_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream row",
									ALLOCSET_DEFAULT_SIZES);

	/*
	 * If only this worker restarted, the shared state, the queue and the
	 * progress in shared memory are as it left them: keep them, unless the
	 * extension changed meanwhile (extension_check).
	 */
	wstate.last_checkpoint = GetCurrentTimestamp();

	StartTransactionCommand();
	if (OidIsValid(me->extension) &&
		me->extension == get_extension_oid("rtstream", true))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		rts_worker_restore();
		PopActiveSnapshot();
	}
	else
		extension_check();
	CommitTransactionCommand();
	pg_atomic_write_u64(&me->applied_pos, pg_atomic_read_u64(&me->ring.read_pos));

	while (!got_sigterm)
	{
		CHECK_FOR_INTERRUPTS();

		rts_set_background_priority();	/* a refused change again */

		/* every switch to a window's owner was undone (owner.c) */
		if (InSecurityRestrictedOperation())
			elog(FATAL, "rtstream worker still runs as a window's owner");
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			rts_set_background_priority();
			dsa_set_size_limit(rts_dsa(), (Size) rts_memory_limit_kb * 1024);
		}
		if (drain_queue(&buf, &bufsize))
		{
			maybe_checkpoint(false);
			history_tick();
			continue;
		}
		settle_transaction();
		idle_prune();
		maybe_checkpoint(false);
		history_tick();
		rts_stream_tick();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		StartTransactionCommand();
		extension_check();
		/* a stalled window is retried without traffic too */
		rts_run_check_windows();
		CommitTransactionCommand();
	}

	/*
	 * Clean shutdown: apply what is queued, then a last checkpoint.  Exit
	 * with 1, not 0: a static worker that exits with 0 is never restarted,
	 * and a SIGTERM may come from pg_terminate_backend() rather than from a
	 * server shutdown.
	 */
	got_sigterm = false;
	while (drain_queue(&buf, &bufsize) && !got_sigterm)
		;
	maybe_checkpoint(true);
	proc_exit(1);
}
