/*-------------------------------------------------------------------------
 *
 * worker_stream.c
 *	  Transactions applied while they run (rtstream.apply_in_progress).
 *
 *	  The router hands a worker the batches of a large transaction before it
 *	  commits (router.c, RTS_ITEM_STREAMED), numbered, then its commit or the
 *	  abort of it or of one of its subtransactions.  The worker aggregates
 *	  each such batch aside, in private memory: per window and per
 *	  subtransaction that wrote the rows, one cell of partial states per
 *	  (pane, group) -- the rows of a batch with the same pane and group are
 *	  pre-aggregated there before they touch shared memory.  At the commit
 *	  it merges the cells into the window's panes with the aggregates'
 *	  combine functions (every rtstream aggregate has one), so the work left
 *	  after a large COPY commits is proportional to the groups it touched,
 *	  not to its rows; at an abort it drops the cells of what aborted.
 *	  Nothing shared changes before the commit: readers, checkpoints and
 *	  the history see committed transactions only, as before.
 *
 *	  A row's time and values are evaluated when it arrives, as the
 *	  window's owner; its fate at the commit, pane by pane, against the
 *	  window's watermark and the panes it keeps then: all rows of a pane
 *	  are late or none (eventtime.h), so a cell is merged or counted late as
 *	  a whole.  The rows of a commit-time window take their pane from the
 *	  commit, so its cells are per group only.
 *
 *	  Windows that need the rows themselves at the commit keep the batches
 *	  instead, and apply them at the commit by the ordinary path: session
 *	  windows, windows keeping late rows as dead letters, windows not
 *	  running (stalled, catching up) and windows that a replay after a
 *	  restart may hold part of already.  DDL batches of the transaction are
 *	  kept the same way.  A window whose rows do not aggregate (more than
 *	  one cell for two rows: about one row per group and pane) or whose
 *	  cells of the transaction outgrow PENDING_CELLS_MEMORY switches to
 *	  keeping the rest of its batches: cells would cost more than rows.
 *	  Kept batches past rtstream.decoding_memory go to a temporary file.
 *
 *	  What this worker holds of running transactions is in its private
 *	  memory: a new router generation drops it (everything comes again), and
 *	  a batch missing from the numbering (this worker restarted meanwhile),
 *	  a window loaded or altered while the transaction ran, or an error in
 *	  the middle of a batch makes the transaction incomplete here.  At its
 *	  commit the worker then asks the router to decode again and ignores
 *	  the rest of the generation: the replay brings the transaction whole.
 *	  A transaction that ended without an abort record (a crash) is dropped
 *	  once it is neither running nor committed (rts_stream_tick).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/buffile.h"
#include "storage/procarray.h"
#include "utils/memutils.h"

#include "eventtime.h"
#include "owner.h"
#include "worker.h"

/* A cell: a window's partial states of one (pane, group) of a transaction. */
typedef struct PendingKey
{
	int64		pane_no;		/* RTS_PANE_EMPTY for commit-time windows */
	uint32		hash;			/* of the group key and the pane */
	uint32		len;
	const char *bytes;			/* the group key (rts_groupkey_build) */
} PendingKey;

typedef struct PendingCell
{
	PendingKey	key;
	uint32		group_hash;		/* the group key's own hash, for the table */
	uint32		nrows;
	int64		tu;				/* a row's time: the cell's pane */
	RtsState   *states;			/* catalog-path aggregates, NULL if none */
	RtsPane		pane;			/* native aggregates; nwords words follow */
} PendingCell;

/* Keys of up to this many bytes live in the cell (after the words). */
#define PENDING_INLINE_KEY	16

/* A window's cells of one transaction may take this much memory at most. */
#define PENDING_CELLS_MEMORY	((Size) rts_decoding_memory_kb * 1024 * 16)

/* Rows a window takes as cells before its aggregation is judged. */
#define PENDING_JUDGE_ROWS	65536

/* A window's pending states from one subtransaction. */
typedef struct PendingMode PendingMode;

struct RtsPendingWindow
{
	RtsPendingTxn *ptxn;
	PendingMode *mode;			/* its window's, for the whole transaction */
	int32		window_id;
	uint32		load_no;
	TransactionId subxid;
	MemoryContext cxt;			/* its transaction's */
	HTAB	   *cells;
	uint64		null_time_rows;
	int64	   *part_newest;	/* newest time per partition; for a
								 * commit-time window, whether it had rows */
	List	   *dead_letters;	/* rows that failed, written at the commit */
};

/*
 * How a window takes a transaction: decided at its first batch, and
 * changed once at most, from cells to kept batches.
 */
struct PendingMode
{
	int32		window_id;
	uint32		load_no;
	bool		cells;			/* its batches go to cells now ... */
	bool		had_cells;		/* ... or did before */
	uint64		rows;			/* rows into cells */
	uint64		ncells;
	Size		cell_size;		/* bytes per cell */
	bool		any_catalog;	/* an aggregate without a native state */
	PendingMode *leader;		/* NULL: its own cells; else the window whose
								 * cells it takes (share_cells) ... */
	RtsStateAt *from;			/* ... and where each of its aggregates' states
								 * lies in them */
};

/*
 * A batch kept for the commit, with the windows that took it as cells
 * (the batches go to every other window then).  In memory, or in the
 * transaction's file (data not set, its place in the file instead).
 */
typedef struct PendingBatch
{
	TransactionId subxid;
	uint32		len;
	int			nexclude;
	int32	   *exclude;
	bool		in_file;
	char	   *data;
} PendingBatch;

/*
 * Windows with the same GROUP BY (a key class, worker_keys.c) look their
 * cells up once per row: per key, each member's last cell, which a row of
 * the same key usually hits again (rows come roughly in time order).  A
 * cache over the windows' cell tables, per transaction and subtransaction;
 * dropped when windows are loaded (key classes are made again).
 */
/* A slot of a class's map (open addressing: one probe reads no entry). */
typedef struct ClassSlot
{
	RtsKeyRef	key;			/* bytes: a copy after last[] */
	char		status;
	PendingCell **last;			/* per member; a key of up to
								 * PENDING_INLINE_KEY bytes follows */
} ClassSlot;

#define SH_PREFIX		classmap
#define SH_ELEMENT_TYPE	ClassSlot
#define SH_KEY_TYPE		RtsKeyRef
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	((k).hash)
#define SH_EQUAL(tb, a, b)	RTS_KEYREF_EQUAL(a, b)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct PendingClass
{
	const void *kc;				/* the key class (by its first member) */
	TransactionId subxid;
	int			nmembers;
	classmap_hash *map;
	uint64		call;			/* the row of last */
	PendingCell **last;
} PendingClass;

struct RtsPendingTxn
{
	TransactionId xid;			/* hash key: the top-level transaction */
	uint64		serial;			/* never reused, unlike xid (a replay) */
	uint64		subserial;		/* serial of the subtransaction being
								 * applied, for WorkerWindow.pending_for */
	uint32		router_gen;
	uint32		nitems;			/* batches received: the next one's seq */
	bool		broken;			/* incomplete here: decode it again */
	MemoryContext cxt;			/* everything of it */
	TransactionId subxid;		/* of the batch being applied */
	List	   *windows;		/* of RtsPendingWindow */
	List	   *modes;			/* of PendingMode */
	List	   *streams;		/* OIDs of the streams it wrote to */
	List	   *kept;			/* of PendingBatch, in order */
	Size		kept_bytes;		/* in memory */
	BufFile    *file;			/* kept batches past rtstream.decoding_memory */
	List	   *classes;		/* of PendingClass */
	uint32		classes_loads;	/* wstate.loads they were made at */
};

static HTAB *pending = NULL;
static uint64 pending_serials = 0;
static uint32 pending_gen = 0;
static bool ignoring = false;	/* items of generation pending_gen wait for
								 * the router's replay */
static XLogRecPtr replay_until = InvalidXLogRecPtr;	/* ... which must bring
													 * the commit at this LSN */
static TimestampTz last_tick = 0;

static uint32
pendingkey_hash(const void *key, Size keysize)
{
	return ((const PendingKey *) key)->hash;
}

static int
pendingkey_match(const void *key1, const void *key2, Size keysize)
{
	const PendingKey *a = key1;
	const PendingKey *b = key2;

	if (a->hash != b->hash || a->pane_no != b->pane_no || a->len != b->len)
		return 1;
	return memcmp(a->bytes, b->bytes, a->len);
}

MemoryContext
rts_pending_context(RtsPendingTxn *ptxn)
{
	return ptxn->cxt;
}

List **
rts_pending_dead_letters(RtsPendingWindow *pw)
{
	return &pw->dead_letters;
}

static void
pending_drop(RtsPendingTxn *ptxn)
{
	if (ptxn->file)
		BufFileClose(ptxn->file);
	MemoryContextDelete(ptxn->cxt);
	(void) hash_search(pending, &ptxn->xid, HASH_REMOVE, NULL);
}

/* Forget every transaction in progress (a new generation, a new catalog). */
void
rts_stream_forget_all(void)
{
	HASH_SEQ_STATUS seq;
	RtsPendingTxn *ptxn;

	if (pending == NULL)
		return;
	hash_seq_init(&seq, pending);
	while ((ptxn = hash_seq_search(&seq)) != NULL)
		pending_drop(ptxn);
}

static RtsPendingTxn *
pending_txn(TransactionId xid, uint32 router_gen, bool create)
{
	RtsPendingTxn *ptxn;
	bool		found;

	if (pending == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TransactionId);
		ctl.entrysize = sizeof(RtsPendingTxn);
		ctl.hcxt = TopMemoryContext;
		pending = hash_create("rtstream transactions in progress", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	ptxn = hash_search(pending, &xid, create ? HASH_ENTER : HASH_FIND, &found);
	if (create && !found)
	{
		memset((char *) ptxn + sizeof(TransactionId), 0,
			   sizeof(RtsPendingTxn) - sizeof(TransactionId));
		ptxn->router_gen = router_gen;
		ptxn->serial = ++pending_serials;
		ptxn->cxt = AllocSetContextCreate(TopMemoryContext,
										  "rtstream transaction in progress",
										  ALLOCSET_DEFAULT_SIZES);
	}
	return ptxn;
}

/*
 * Whether a window pre-aggregates a running transaction whose batch is at
 * msg_lsn (its commit comes later): not if it needs the rows at the commit,
 * is not running, or may hold the transaction already (a window created
 * after it started, or restored from a checkpoint it may be in: its
 * skip_lsn is at or past the batch).
 */
static bool
window_pre_aggregates(WorkerWindow *ww, XLogRecPtr msg_lsn)
{
	RtsPaneTable *t = ww->table;

	if (t->run.state != RTS_RUN_RUNNING || RTS_IS_SESSION(ww->def) ||
		ww->def->late_policy == RTS_LATE_DEAD_LETTER ||
		t->created_lsn >= msg_lsn)
		return false;
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		if (t->run.skip_lsn[p] >= msg_lsn)
			return false;
	return true;
}

static PendingMode *
pending_mode_find(RtsPendingTxn *ptxn, WorkerWindow *ww)
{
	ListCell   *lc;

	foreach(lc, ptxn->modes)
	{
		PendingMode *mode = lfirst(lc);

		if (mode->window_id == ww->def->id)
			return mode;
	}
	return NULL;
}

static PendingMode *
pending_mode_new(RtsPendingTxn *ptxn, WorkerWindow *ww, XLogRecPtr msg_lsn)
{
	PendingMode *mode;
	MemoryContext old;

	mode = MemoryContextAllocZero(ptxn->cxt, sizeof(PendingMode));
	mode->window_id = ww->def->id;
	mode->load_no = ww->load_no;
	mode->cells = window_pre_aggregates(ww, msg_lsn);
	mode->had_cells = mode->cells;
	for (int a = 0; a < ww->def->naggs; a++)
		if (ww->def->aggs[a].fast == RTS_FAST_NONE)
			mode->any_catalog = true;
	old = MemoryContextSwitchTo(ptxn->cxt);
	ptxn->modes = lappend(ptxn->modes, mode);
	MemoryContextSwitchTo(old);
	return mode;
}

/* The window of id, if it is still loaded as it was (load_no). */
static WorkerWindow *
pending_window_now(int32 id, uint32 load_no)
{
	WorkerWindow *ww = rts_worker_find_window(id);

	return (ww != NULL && ww->load_no == load_no) ? ww : NULL;
}

/*
 * Stream slicing for the cells: whether window w may take the cells of
 * window lead instead of making its own, and if so where each of its
 * aggregates' states lies in them (from).  The two must see the same rows
 * with the same values (stream, WHERE, time column, GROUP BY, owner and
 * search_path), and lead must make every native state w makes (the same
 * aggregate of the same arguments and FILTER, in whatever pane words); a
 * cell of lead must then lie in one pane of w: lead's panes divide w's,
 * from origins a whole number of lead's panes apart (a commit-time
 * window's cells are per group only, so any shapes do).  The panes, their
 * lateness and everything after the commit stay each window's own
 * (merge_cell).
 */
static bool
share_cells(WorkerWindow *lead, WorkerWindow *w, RtsStateAt *from)
{
	RtsWindowDef *a = lead->def;
	RtsWindowDef *b = w->def;

	if (a->stream != b->stream || a->owner != b->owner ||
		a->time_attno != b->time_attno || a->ngroups != b->ngroups ||
		a->dead_letter_table != b->dead_letter_table ||
		strcmp(a->search_path ? a->search_path : "",
			   b->search_path ? b->search_path : "") != 0 ||
		!equal(a->quals, b->quals))
		return false;
	for (int i = 0; i < a->ngroups; i++)
		if (!equal(a->groups[i].expr, b->groups[i].expr))
			return false;
	if (a->time_attno != 0 &&
		!(a->geom.timezone[0] == '\0' && b->geom.timezone[0] == '\0' &&
		  b->geom.pane_us % a->geom.pane_us == 0 &&
		  (b->geom.origin_us - a->geom.origin_us) % a->geom.pane_us == 0))
		return false;
	for (int i = 0; i < b->naggs; i++)
	{
		RtsAggDef  *y = &b->aggs[i];
		int			j;

		for (j = 0; j < a->naggs; j++)
		{
			RtsAggDef  *x = &a->aggs[j];

			if (x->fast != RTS_FAST_NONE && x->fast == y->fast &&
				x->var_final == y->var_final && equal(x->aggref, y->aggref))
				break;
		}
		if (j == a->naggs)
			return false;
		from[i].word = a->aggs[j].word;
		from[i].count_word = a->aggs[j].count_word;
		from[i].null_bit = a->aggs[j].null_bit;
	}
	return true;
}

/*
 * Finest panes first, then most aggregates (those may lead the others),
 * then the oldest window.
 */
static int
share_order(const ListCell *x, const ListCell *y)
{
	RtsWindowDef *a = ((WorkerWindow *) lfirst(x))->def;
	RtsWindowDef *b = ((WorkerWindow *) lfirst(y))->def;

	if (a->geom.pane_us != b->geom.pane_us)
		return a->geom.pane_us < b->geom.pane_us ? -1 : 1;
	if (a->naggs != b->naggs)
		return a->naggs > b->naggs ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id ? 1 : 0;
}

/*
 * The first batch of a stream in a transaction: which of its windows
 * (those of the stream, with their modes) take another's cells.  Only
 * windows that make cells at this point do; a leader's judgement
 * (pending_judge) then holds for its followers too.
 */
static void
pending_share(RtsPendingTxn *ptxn, List *windows, List *modes)
{
	List	   *candidates = NIL;
	List	   *leaders = NIL;
	ListCell   *lc,
			   *mc;

	forboth(lc, windows, mc, modes)
	{
		PendingMode *mode = lfirst(mc);

		if (mode->cells && !mode->any_catalog)
			candidates = lappend(candidates, lfirst(lc));
	}
	list_sort(candidates, share_order);
	foreach(lc, candidates)
	{
		WorkerWindow *ww = lfirst(lc);
		PendingMode *mode = pending_mode_find(ptxn, ww);
		RtsStateAt *from = MemoryContextAlloc(ptxn->cxt,
											  sizeof(RtsStateAt) * Max(ww->def->naggs, 1));
		ListCell   *ld;

		foreach(ld, leaders)
		{
			WorkerWindow *lead = lfirst(ld);

			if (share_cells(lead, ww, from))
			{
				mode->leader = pending_mode_find(ptxn, lead);
				mode->from = from;
				elog(DEBUG1, "rtstream window \"%s\" takes the cells of window \"%s\" in transaction %u",
					 ww->def->name, lead->def->name, ptxn->xid);
				break;
			}
		}
		if (mode->leader == NULL)
		{
			pfree(from);
			leaders = lappend(leaders, ww);
		}
	}
	list_free(candidates);
	list_free(leaders);
}

/* The pending states of a window for the subtransaction being applied. */
RtsPendingWindow *
rts_pending_window(RtsPendingTxn *ptxn, WorkerWindow *ww)
{
	ListCell   *lc;
	RtsPendingWindow *pw;
	MemoryContext old;
	HASHCTL		ctl;

	if (ww->pending_for == ptxn->subserial && ww->pending != NULL)
		return ww->pending;
	foreach(lc, ptxn->windows)
	{
		pw = lfirst(lc);
		if (pw->window_id == ww->def->id && pw->subxid == ptxn->subxid)
		{
			ww->pending = pw;
			ww->pending_for = ptxn->subserial;
			return pw;
		}
	}
	old = MemoryContextSwitchTo(ptxn->cxt);
	pw = palloc0(sizeof(RtsPendingWindow));
	pw->ptxn = ptxn;
	pw->mode = pending_mode_find(ptxn, ww);	/* pending_batch made it */
	pw->window_id = ww->def->id;
	pw->load_no = ww->load_no;
	pw->subxid = ptxn->subxid;
	pw->cxt = ptxn->cxt;
	pw->part_newest = palloc(sizeof(int64) * RTS_NPARTITIONS);
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		pw->part_newest[p] = RTS_TIME_NONE;
	ctl.keysize = sizeof(PendingKey);
	ctl.entrysize = offsetof(PendingCell, pane) + offsetof(RtsPane, words) +
		sizeof(Datum) * ww->def->nwords + PENDING_INLINE_KEY;
	pw->mode->cell_size = ctl.entrysize + 32;	/* with dynahash's share */
	ctl.hash = pendingkey_hash;
	ctl.match = pendingkey_match;
	ctl.hcxt = ptxn->cxt;
	pw->cells = hash_create("rtstream pending states", 256, &ctl,
							HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	ptxn->windows = lappend(ptxn->windows, pw);
	MemoryContextSwitchTo(old);
	ww->pending = pw;
	ww->pending_for = ptxn->subserial;
	return pw;
}

void
rts_pending_null_time(RtsPendingWindow *pw)
{
	pw->null_time_rows++;
}

/* The current row's entry in the cache of ww's key class. */
static PendingCell **
class_entry(RtsPendingTxn *ptxn, WorkerWindow *ww, StringInfo keybuf,
			uint32 group_hash, int *member)
{
	int			nmembers = rts_keys_members(ww, member);
	const void *kc = ww->keys;
	PendingClass *pc = NULL;
	ListCell   *lc;
	RtsKeyRef	key;
	ClassSlot  *slot;
	bool		found;

	if (ptxn->classes_loads != wstate.loads)
	{
		/* key classes were made again: the caches are stale */
		ptxn->classes = NIL;	/* their memory goes with the transaction */
		ptxn->classes_loads = wstate.loads;
	}
	foreach(lc, ptxn->classes)
	{
		PendingClass *c = lfirst(lc);

		if (c->kc == kc && c->subxid == ptxn->subxid)
		{
			pc = c;
			break;
		}
	}
	if (pc == NULL)
	{
		/* the transaction's memory, not the batch's: the list too */
		MemoryContext old = MemoryContextSwitchTo(ptxn->cxt);

		pc = palloc0(sizeof(PendingClass));
		pc->kc = kc;
		pc->subxid = ptxn->subxid;
		pc->nmembers = nmembers;
		pc->map = classmap_create(ptxn->cxt, 256, NULL);
		ptxn->classes = lappend(ptxn->classes, pc);
		MemoryContextSwitchTo(old);
	}
	if (pc->call == rts_keys_call() && pc->last != NULL)
		return pc->last;
	key.hash = group_hash;
	key.len = keybuf->len;
	key.bytes = keybuf->data;
	slot = classmap_insert(pc->map, key, &found);
	if (!found)
	{
		/* a short key lives after last[] */
		PendingCell **last = MemoryContextAllocZero(ptxn->cxt,
													sizeof(PendingCell *) * nmembers +
													PENDING_INLINE_KEY);
		char	   *copy = (char *) &last[nmembers];

		if (key.len > PENDING_INLINE_KEY)
			copy = MemoryContextAlloc(ptxn->cxt, key.len);
		memcpy(copy, key.bytes, key.len);
		slot->key.bytes = copy;
		slot->last = last;
	}
	else
	{
		/*
		 * The class's windows take their cells next, one after the other:
		 * cells are cold (one per window, group and pane), so ask for them
		 * all now, their key and their words.
		 */
		for (int m = 0; m < nmembers; m++)
			if (slot->last[m] != NULL)
			{
				prefetch_line(slot->last[m]);
				prefetch_line(&slot->last[m]->pane);
			}
	}
	pc->last = slot->last;
	pc->call = rts_keys_call();
	return pc->last;
}

/*
 * The current row (its key built by rts_keys_build, its arguments by
 * row_evaluate) into its cell: the transitions of worker.c's row path, on
 * private states.  tu is its event time, RTS_TIME_NONE for a commit-time
 * window.
 */
void
rts_pending_accumulate(RtsPendingWindow *pw, WorkerWindow *ww, int64 tu,
					   int partition)
{
	RtsWindowDef *def = ww->def;
	uint32		group_hash;
	StringInfo	keybuf = rts_keys_build(ww, &group_hash);
	PendingCell **last;
	int			member;
	PendingKey	key;
	PendingCell *cell;
	bool		found;

	key.pane_no = def->time_attno ? rts_pane_of(&def->geom, tu) : RTS_PANE_EMPTY;
	last = class_entry(pw->ptxn, ww, keybuf, group_hash, &member);
	cell = last[member];
	if (cell == NULL || cell->key.pane_no != key.pane_no)
	{
		key.hash = hash_combine(group_hash, hash_bytes_uint32((uint32) key.pane_no));
		key.len = keybuf->len;
		key.bytes = keybuf->data;
		cell = hash_search(pw->cells, &key, HASH_ENTER, &found);
		if (!found)
		{
			char	   *copy = (char *) &cell->pane.words[def->nwords];

			if (key.len > PENDING_INLINE_KEY)
			{
				copy = MemoryContextAlloc(pw->cxt, key.len);
				pw->mode->ncells++; /* about a cell's worth more */
			}
			memcpy(copy, key.bytes, key.len);
			cell->key.bytes = copy;
			cell->group_hash = group_hash;
			cell->nrows = 0;
			cell->tu = tu;
			rts_pane_reset(def, &cell->pane, key.pane_no);
			cell->states = NULL;
			if (pw->mode->any_catalog)
			{
				cell->states = MemoryContextAlloc(pw->cxt, sizeof(RtsState) * def->naggs);
				/* initial values are copied into the aggregate context: ours */
				for (int a = 0; a < def->naggs; a++)
					if (def->aggs[a].fast == RTS_FAST_NONE)
						cell->states[a] = rts_state_initial(&def->aggs[a]);
			}
			pw->mode->ncells++;
		}
		last[member] = cell;
	}
	pw->mode->rows++;
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];
		Datum	   *args = &ww->args[ww->argoff[a]];
		bool	   *argnulls = &ww->argnulls[ww->argoff[a]];

		if (!ww->pass[a])
			continue;
		if (agg->fast != RTS_FAST_NONE)
			rts_fast_accum(agg, &cell->pane, agg->nargs ? args[0] : (Datum) 0,
						   agg->nargs ? argnulls[0] : false);
		else
			rts_state_transition(agg, &cell->states[a], args, argnulls);
	}
	cell->nrows++;
	if (def->time_attno == 0)
		pw->part_newest[partition] = PG_INT64_MAX;	/* had rows */
	else if (pw->part_newest[partition] == RTS_TIME_NONE ||
			 tu > pw->part_newest[partition])
		pw->part_newest[partition] = tu;
}

/*
 * A batch kept for the commit, with the subtransaction that wrote it and
 * the windows that took it as cells; past rtstream.decoding_memory of
 * them, into the transaction's temporary file.
 */
static void
pending_keep(RtsPendingTxn *ptxn, const char *batch, uint32 len, List *cells)
{
	MemoryContext old = MemoryContextSwitchTo(ptxn->cxt);
	PendingBatch *pb = palloc(sizeof(PendingBatch));
	ListCell   *lc;
	int			i = 0;

	pb->subxid = ptxn->subxid;
	pb->len = len;
	pb->nexclude = list_length(cells);
	pb->exclude = palloc(sizeof(int32) * Max(pb->nexclude, 1));
	foreach(lc, cells)
		pb->exclude[i++] = ((WorkerWindow *) lfirst(lc))->def->id;
	pb->in_file = ptxn->file != NULL ||
		ptxn->kept_bytes + len > (Size) rts_decoding_memory_kb * 1024;
	pb->data = NULL;
	if (pb->in_file)
	{
		/* in order: each is read back after the ones before */
		if (ptxn->file == NULL)
			ptxn->file = BufFileCreateTemp(true);
		BufFileWrite(ptxn->file, (void *) batch, len);
	}
	else
	{
		pb->data = palloc(len);
		memcpy(pb->data, batch, len);
		ptxn->kept_bytes += len;
	}
	ptxn->kept = lappend(ptxn->kept, pb);
	MemoryContextSwitchTo(old);
}

/*
 * Whether a window's cells pay: once it has taken enough rows, it must
 * have one cell for two rows at most, and stay within
 * PENDING_CELLS_MEMORY.  If not, it keeps the rest of its batches.
 */
static void
pending_judge(PendingMode *mode)
{
	if (!mode->cells || mode->rows < PENDING_JUDGE_ROWS)
		return;
	if (mode->ncells * 2 > mode->rows ||
		mode->ncells * mode->cell_size > PENDING_CELLS_MEMORY)
		mode->cells = false;
}

/* A batch of a running transaction. */
static void
pending_batch(RtsQueueItem *item, char *batch, RtsBatchHeader *hdr)
{
	RtsPendingTxn *ptxn = pending_txn(item->xid, item->router_gen, true);
	List	   *cells = NIL;
	List	   *apply = NIL;
	List	   *windows = NIL;	/* the stream's, and ... */
	List	   *modes = NIL;	/* ... how each takes the transaction */
	bool		keep = false;
	bool		seen;
	ListCell   *lc,
			   *mc;

	if (item->seq != ptxn->nitems)
		ptxn->broken = true;	/* we missed batches: restarted meanwhile */
	ptxn->nitems = item->seq + 1;
	if (ptxn->broken)
		return;
	/* format 2 batches do not say: then its top level (see router.c) */
	ptxn->subxid = hdr->version >= 3 && TransactionIdIsValid(hdr->xid) ?
		hdr->xid : item->xid;
	/* a new serial per batch: cheap, and never stale after an abort */
	ptxn->subserial = ++pending_serials;
	if (hdr->kind != RTS_BATCH_ROWS)
	{
		pending_keep(ptxn, batch, item->len, NIL);
		return;
	}
	seen = list_member_oid(ptxn->streams, hdr->stream);
	if (!seen)
	{
		MemoryContext old = MemoryContextSwitchTo(ptxn->cxt);

		ptxn->streams = lappend_oid(ptxn->streams, hdr->stream);
		MemoryContextSwitchTo(old);
	}
	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		PendingMode *mode;

		if (ww->def->stream != hdr->stream)
			continue;
		mode = pending_mode_find(ptxn, ww);
		if (mode == NULL && !seen)
			mode = pending_mode_new(ptxn, ww, item->commit_lsn);
		else if (mode == NULL || mode->load_no != ww->load_no)
		{
			/*
			 * Loaded (created, altered) since this worker had batches of
			 * the stream in this transaction: it missed them, or its
			 * states have another layout.  The replay brings them.
			 */
			ptxn->broken = true;
			break;
		}
		if (mode->leader == NULL)
			pending_judge(mode);
		else if (pending_window_now(mode->leader->window_id,
									mode->leader->load_no) == NULL)
		{
			/*
			 * The window whose cells it takes was dropped: nobody makes
			 * them any more.  The replay brings the transaction whole.
			 */
			ptxn->broken = true;
			break;
		}
		windows = lappend(windows, ww);
		modes = lappend(modes, mode);
	}
	if (ptxn->broken)
	{
		list_free(windows);
		list_free(modes);
		return;
	}
	if (!seen)
		pending_share(ptxn, windows, modes);

	/*
	 * cells: the windows that take the batch as cells (kept batches skip
	 * them at the commit); apply: those that make cells of it, all but the
	 * followers of another's
	 */
	forboth(lc, windows, mc, modes)
	{
		WorkerWindow *ww = lfirst(lc);
		PendingMode *mode = lfirst(mc);

		if (mode->leader != NULL)
		{
			mode->cells = mode->leader->cells;
			mode->had_cells |= mode->cells;
		}
		if (!mode->cells)
			keep = true;
		else
		{
			cells = lappend(cells, ww);
			if (mode->leader == NULL)
				apply = lappend(apply, ww);
		}
	}
	if (keep)
		pending_keep(ptxn, batch, item->len, cells);
	PG_TRY();
	{
		rts_apply_rows_pending(hdr, batch, item->len, ptxn, apply);
	}
	PG_CATCH();
	{
		/* part of the batch is in the cells: not this way, then */
		ptxn->broken = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
	list_free(cells);
	list_free(apply);
	list_free(windows);
	list_free(modes);
}

/* A subtransaction (or the transaction) aborted: drop what it wrote. */
static void
pending_abort(RtsPendingTxn *ptxn, TransactionId subxid)
{
	ListCell   *lc;

	if (subxid == ptxn->xid)
	{
		pending_drop(ptxn);
		return;
	}
	foreach(lc, ptxn->windows)
	{
		RtsPendingWindow *pw = lfirst(lc);

		if (pw->subxid == subxid)
			ptxn->windows = foreach_delete_current(ptxn->windows, lc);
	}
	foreach(lc, ptxn->kept)
	{
		PendingBatch *pb = lfirst(lc);

		/* one in the file stays there, unread (pending_commit) */
		if (pb->subxid == subxid)
			pb->subxid = InvalidTransactionId;
	}
	/* the memory goes with the transaction */
}

/*
 * The transaction is incomplete here: have the router decode again from
 * its slot (the transaction is after it: not applied, so not in a
 * checkpoint) and take nothing more of this generation meanwhile.
 */
static void
pending_replay(RtsQueueItem *item, const char *why)
{
	ereport(LOG,
			(errmsg("rtstream worker %d asks the router to decode again: %s",
					wstate.index, why)));
	pg_atomic_fetch_add_u32(&wstate.db->replay_requests, 1);
	if (wstate.db->router_latch)
		SetLatch(wstate.db->router_latch);
	ignoring = true;
	pending_gen = item->router_gen;
	replay_until = Max(replay_until, item->commit_lsn);
	rts_stream_forget_all();
}

/*
 * Whether every window that takes the transaction took all of its batches:
 * one loaded (created, altered, restored) while it ran did not.
 */
static bool
pending_complete(RtsPendingTxn *ptxn, XLogRecPtr commit_lsn)
{
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		ListCell   *mc;
		bool		decided = false;

		if (!list_member_oid(ptxn->streams, ww->def->stream) ||
			commit_lsn <= ww->table->created_lsn)
			continue;
		foreach(mc, ptxn->modes)
		{
			PendingMode *mode = lfirst(mc);

			if (mode->window_id == ww->def->id)
			{
				if (mode->load_no != ww->load_no)
					return false;
				decided = true;
			}
		}
		if (!decided)
			return false;
	}
	return true;
}

/*
 * Fold one cell into its group's pane; late cells are counted.  from: where
 * the window's states lie in a cell of another window, NULL for its own.
 */
static void
merge_cell(WorkerWindow *ww, PendingCell *cell, const RtsStateAt *from,
		   int64 commit_tu, XLogRecPtr commit_lsn)
{
	RtsWindowDef *def = ww->def;
	RtsPaneTable *t = ww->table;
	dsa_area   *area = rts_dsa();
	int64		tu = def->time_attno ? cell->tu : commit_tu;
	int64		hist = RTS_TIME_NONE;
	bool		late;
	uint32		entry_id;
	RtsGroupEntry *e;
	int			pane_idx;
	RtsPane    *pane;

	/* the rules of row_fate, for a whole pane (eventtime.h) */
	late = rts_row_late(def, tu, ww->wm) ||
		(ww->keep != PG_INT64_MIN && rts_pane_of(&def->geom, tu) < ww->keep);
	if (ww->emitted != RTS_TIME_NONE && ww->emitted != RTS_TIME_UNKNOWN)
		hist = rts_history_watermark(def, ww->emitted);
	if (!late && hist != RTS_TIME_NONE && rts_row_late(def, tu, hist))
	{
		if (commit_lsn <= ww->emitted_lsn)
			return;				/* replayed, and in the history already */
		late = true;
	}
	if (late)
	{
		t->late_rows += cell->nrows;
		pg_atomic_fetch_add_u64(&wstate.shared->late_rows, cell->nrows);
		return;
	}
	e = rts_table_lookup(area, t, cell->group_hash, cell->key.bytes,
						 cell->key.len, &entry_id);
	pane_idx = e ? rts_pane_target(ww, entry_id, e, tu) : -1;
	if (pane_idx < 0)
	{
		rts_refuse_group(ww);
		return;
	}
	pane = rts_entry_pane(t, e, pane_idx);
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (from != NULL)
			rts_fast_combine_at(agg, pane->words, &pane->flags, &from[a], &cell->pane);
		else if (agg->fast != RTS_FAST_NONE)
			rts_fast_combine(agg, pane->words, &pane->flags, &cell->pane);
		else
		{
			RtsState	acc = rts_state_from_pane(area, agg, pane);

			rts_state_combine(agg, &acc, cell->states[a]);
			rts_worker_relock();
			rts_state_to_pane(area, t, agg, pane, acc);
		}
	}
	if (!t->has_time || rts_from_unix(tu) > t->max_time)
		t->max_time = rts_from_unix(tu);
	t->has_time = true;
	t->rows += cell->nrows;
	ww->batch_rows = true;
	pg_atomic_fetch_add_u64(&wstate.shared->rows_applied, cell->nrows);
}

/*
 * The pending states of one window and subtransaction into the panes of
 * the windows that take them: that window and those that took its cells
 * (share_cells).  Each cell is read once for all of them; each window
 * judges it against its own watermark and panes.  The dead letters are
 * the window's own.
 */
static void
merge_cells(List *takers, RtsPendingWindow *pw, RtsQueueItem *item)
{
	int			n = list_length(takers);
	WorkerWindow **ws = palloc(sizeof(WorkerWindow *) * n);
	const RtsStateAt **from = palloc(sizeof(RtsStateAt *) * n);
	int64	   *commit_tu = palloc(sizeof(int64) * n);
	HASH_SEQ_STATUS seq;
	PendingCell *cell;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, takers)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsPaneTable *t = ww->table;

		ws[i] = ww;
		from[i] = ww->def->id == pw->window_id ? NULL :
			pending_mode_find(pw->ptxn, ww)->from;
		/* a commit time is never late: as row_time */
		commit_tu[i] = rts_to_unix(item->commit_time);
		if (t->has_time && commit_tu[i] < rts_to_unix(t->max_time))
			commit_tu[i] = rts_to_unix(t->max_time);
		i++;
	}
	hash_seq_init(&seq, pw->cells);
	while ((cell = hash_seq_search(&seq)) != NULL)
		for (i = 0; i < n; i++)
			merge_cell(ws[i], cell, from[i], commit_tu[i], item->commit_lsn);
	for (i = 0; i < n; i++)
	{
		WorkerWindow *ww = ws[i];
		RtsPaneTable *t = ww->table;

		if (pw->null_time_rows > 0)
		{
			t->null_time_rows += pw->null_time_rows;
			pg_atomic_fetch_add_u64(&wstate.shared->null_time_rows, pw->null_time_rows);
		}
		for (int p = 0; p < RTS_NPARTITIONS; p++)
		{
			int64		newest = pw->part_newest[p];

			if (newest == RTS_TIME_NONE)
				continue;
			if (ww->def->time_attno == 0)
				newest = commit_tu[i];
			if (ww->part_newest[p] == RTS_TIME_NONE || newest > ww->part_newest[p])
				ww->part_newest[p] = newest;
		}
		if (ww->def->id == pw->window_id)
			rts_dead_letters_adopt(pw->dead_letters, item->commit_lsn);
	}
	pfree(ws);
	pfree(from);
	pfree(commit_tu);
}

/* The window whose cells ww takes: its own, or its leader's. */
static int32
cells_source(RtsPendingTxn *ptxn, WorkerWindow *ww)
{
	PendingMode *mode = pending_mode_find(ptxn, ww);

	return mode->leader ? mode->leader->window_id : ww->def->id;
}

/*
 * The pending states of the windows that pre-aggregated the transaction
 * into their panes, under our lock, each window's as its owner.
 */
static void
pending_merge(RtsPendingTxn *ptxn, RtsQueueItem *item, List *windows)
{
	List	   *groups;
	ListCell   *lc;

	if (windows == NIL)
		return;
	groups = rts_batch_begin(windows);
	foreach(lc, groups)
	{
		List	   *group = lfirst(lc);
		RtsWindowDef *gdef = ((WorkerWindow *) linitial(group))->def;
		RtsOwnerSwitch sw = {0};
		List	   *sources = NIL;
		ListCell   *wc;

		/* combine functions are the owner's code */
		rts_owner_enter(gdef->owner, gdef->search_path, &sw);
		foreach(wc, group)
			sources = list_append_unique_int(sources, cells_source(ptxn, lfirst(wc)));
		foreach(wc, sources)
		{
			int32		from = lfirst_int(wc);
			List	   *takers = NIL;
			ListCell   *tc;

			/* a leader and its followers have one owner (share_cells) */
			foreach(tc, group)
				if (cells_source(ptxn, lfirst(tc)) == from)
					takers = lappend(takers, lfirst(tc));
			foreach(tc, ptxn->windows)
			{
				RtsPendingWindow *pw = lfirst(tc);

				if (pw->window_id == from)
					merge_cells(takers, pw, item);
			}
			list_free(takers);
		}
		list_free(sources);
		rts_worker_relock();
		rts_owner_leave(&sw);
		list_free(group);
	}
	list_free(groups);
	rts_batch_end(windows);
	/* rows of it are in our state: a checkpoint is due by WAL too */
	wstate.shared->last_commit_lsn = item->commit_lsn;
}

/*
 * The transaction committed: the pre-aggregated states into their
 * windows, then its kept batches by the ordinary path, as the batches of a
 * committed transaction (not to the windows that pre-aggregated it), then
 * its commit marker.  The states go first: a kept DDL batch may drop or
 * alter their window (ALTER keeps its table, and the states were made
 * with the definition before).
 */
static void
pending_commit(RtsPendingTxn *ptxn, RtsQueueItem *item)
{
	RtsQueueItem citem = *item;
	char		buf[RTS_BATCH_HEADER_SIZE];
	RtsBatchHeader *hdr = (RtsBatchHeader *) buf;
	List	   *merged = NIL;
	ListCell   *lc;
	char	   *filebuf = NULL;
	Size		filebuf_size = 0;

	if (ptxn == NULL || ptxn->broken || ptxn->nitems != item->seq ||
		!pending_complete(ptxn, item->commit_lsn))
	{
		if (ptxn != NULL)
			pending_drop(ptxn);
		pending_replay(item, "a transaction it was given while it ran is incomplete here");
		return;
	}
	citem.flags = 0;
	citem.seq = 0;

	/* the windows that take its states: still the same, and running */
	foreach(lc, ptxn->modes)
	{
		PendingMode *mode = lfirst(lc);
		WorkerWindow *ww;

		if (!mode->had_cells)
			continue;
		ww = pending_window_now(mode->window_id, mode->load_no);
		if (ww != NULL && ww->table->run.state == RTS_RUN_RUNNING)
			merged = lappend(merged, ww);
	}
	/* new to this worker, as rts_progress_take will find at the marker */
	if (item->commit_lsn > wstate.shared->progress.applied_lsn)
		pending_merge(ptxn, item, merged);
	list_free(merged);

	if (ptxn->file != NULL && BufFileSeek(ptxn->file, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of rtstream: %m")));
	foreach(lc, ptxn->kept)
	{
		PendingBatch *pb = lfirst(lc);
		List	   *exclude = NIL;
		char	   *data = pb->data;

		if (pb->in_file)
		{
			if (pb->len > filebuf_size)
			{
				filebuf_size = Max(pb->len, 2 * filebuf_size);
				filebuf = filebuf ? repalloc(filebuf, filebuf_size) :
					MemoryContextAlloc(ptxn->cxt, filebuf_size);
			}
			if (BufFileRead(ptxn->file, filebuf, pb->len) != pb->len)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read a temporary file of rtstream: %m")));
			data = filebuf;
		}
		if (!TransactionIdIsValid(pb->subxid))
			continue;			/* its subtransaction aborted */
		for (int i = 0; i < pb->nexclude; i++)
			exclude = lappend_int(exclude, pb->exclude[i]);
		citem.len = pb->len;
		rts_apply_item(&citem, data, exclude);
		list_free(exclude);
	}

	memset(buf, 0, sizeof(buf));
	hdr->kind = RTS_BATCH_COMMIT;
	hdr->version = RTS_BATCH_VERSION;
	citem.len = sizeof(buf);
	rts_apply_item(&citem, buf, NIL);
	pending_drop(ptxn);
}

/*
 * An item of a transaction still running, or its end: true if it was one
 * (handled here), false for an ordinary item.
 */
bool
rts_stream_item(RtsQueueItem *item, char *batch)
{
	RtsBatchHeader hdr;
	RtsPendingTxn *ptxn;

	if (item->router_gen != pending_gen)
	{
		/* the router started again: whatever was running comes again */
		rts_stream_forget_all();
		pending_gen = item->router_gen;
		ignoring = false;
	}
	if (ignoring)
		return true;			/* the replay brings it again */
	if (!(item->flags & RTS_ITEM_STREAMED))
		return false;
	memcpy(&hdr, batch, sizeof(hdr));
	switch (hdr.kind)
	{
		case RTS_BATCH_STREAM_COMMIT:
			pending_commit(pending_txn(item->xid, 0, false), item);
			break;
		case RTS_BATCH_STREAM_ABORT:
			ptxn = pending_txn(item->xid, 0, false);
			if (ptxn != NULL)
				pending_abort(ptxn, TransactionIdIsValid(hdr.xid) ? hdr.xid : item->xid);
			break;
		default:
			pending_batch(item, batch, &hdr);
			break;
	}
	return true;
}

/*
 * Whether this worker waits for the router's replay of a transaction it
 * holds incompletely: until it has applied it, what it took from its queue
 * is not all applied (rtstream.sync() must wait).
 */
bool
rts_stream_waiting(void)
{
	if (ignoring)
		return true;
	if (replay_until != InvalidXLogRecPtr &&
		wstate.shared->progress.applied_lsn >= replay_until)
		replay_until = InvalidXLogRecPtr;
	return replay_until != InvalidXLogRecPtr;
}

/*
 * Now and then, with nothing queued: drop the transactions that ended
 * without an abort record (a crash; the decoder forgets them without a
 * word): neither running nor committed.
 */
void
rts_stream_tick(void)
{
	HASH_SEQ_STATUS seq;
	RtsPendingTxn *ptxn;
	TimestampTz now = GetCurrentTimestamp();

	if (pending == NULL || hash_get_num_entries(pending) == 0 ||
		!TimestampDifferenceExceeds(last_tick, now, 5000))
		return;
	last_tick = now;
	hash_seq_init(&seq, pending);
	while ((ptxn = hash_seq_search(&seq)) != NULL)
	{
		/* in this order: a committing transaction is in the clog first */
		if (!TransactionIdIsInProgress(ptxn->xid) &&
			!TransactionIdDidCommit(ptxn->xid))
			pending_drop(ptxn);
	}
}
