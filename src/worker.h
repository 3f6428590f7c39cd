/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  An aggregation worker's own state, shared by worker.c (applying
 *	  batches) and worker_windows.c (its windows, checkpoints, recovery).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_WORKER_H
#define RTS_WORKER_H

#include "access/xlogdefs.h"
#include "executor/tuptable.h"
#include "utils/hsearch.h"

#include "rtstream.h"
#include "aggstate.h"
#include "batch.h"

/* Local states of one (group, pane) during a batch. */
typedef struct LocalCell
{
	uint64		key;			/* entry id << 32 | pane index */
	int64		pane_no;
	RtsState	states[FLEXIBLE_ARRAY_MEMBER];	/* one per aggregate */
} LocalCell;

/* A window as this worker holds it. */
typedef struct WorkerWindow
{
	RtsWindowDef *def;
	MemoryContext cxt;			/* holds def */
	uint32		load_no;		/* wstate.loads when it was loaded: a window
								 * altered or loaded again has a new one */
	struct RtsPendingWindow *pending;	/* worker_stream.c: its pending
										 * states last used, for ... */
	uint64		pending_for;	/* ... this transaction and subtransaction */
	int			slot;			/* index in db->windows */
	RtsPaneTable *table;
	TupleTableSlot *tts;
	TupleTableSlot *row;		/* the row being applied: tts, or the slot of
								 * another window of the stream (apply_tuple) */
	struct RtsKeyClass *keys;	/* windows sharing its group keys
								 * (worker_keys.c), and its place there */
	int			key_member;
	HTAB	   *cells;			/* local states during a batch */
	/* one row's evaluated arguments: aggregate a's start at argoff[a] */
	int		   *argoff;
	Datum	   *args;
	bool	   *argnulls;
	bool	   *pass;			/* aggregate a's FILTER passed */

	/* event time during a batch (eventtime.h), Unix microseconds */
	int64		wm;				/* the window's watermark at batch start */
	int64	   *part_newest;	/* per partition: newest time applied */
	int64		keep;			/* panes kept (rts_keep_from) at batch start */
	int64		emitted;		/* history written up to, at batch start */
	bool		batch_rows;		/* the batch applied rows to the window */
	TimestampTz idle_advanced_at;	/* worker 0: idle advance done up to */
	int64		pending_emitted;	/* worker 0: history progress to publish
									 * once committed */
	XLogRecPtr	pending_lsn;
	int64		pending_session_keep;
	TimestampTz session_keep_at;	/* worker 0: last session_keep_tick */
	XLogRecPtr	emitted_lsn;	/* slot's emitted_lsn at batch start */
	int64		pruned_for;		/* keep of the last closed-store prune */
	bool		check_failed;	/* this drain: its owner may not run it
								 * (worker_run.c) */
	bool		warned_history;	/* worker 0: its history table is gone */
	TimestampTz history_failed_at;	/* worker 0: last failure to write it */
	int64		notified_until; /* worker 0, notify without history: windows
								 * ending up to here were told (notify.c) */
} WorkerWindow;

typedef struct WorkerState
{
	RtsDatabaseShared *db;
	RtsWorkerShared *shared;
	int			index;
	List	   *windows;		/* of WorkerWindow */
	MemoryContext batch_cxt;	/* local states of a batch, aggcontext */

	/*
	 * skip_lsn[p]: batches of partition p ending at or before it are in a
	 * loaded checkpoint (the progress itself is in shared->applied_lsn and
	 * friends, see rtstream.h).
	 */
	XLogRecPtr	skip_lsn[RTS_NPARTITIONS];
	int			owner[RTS_NPARTITIONS];	/* worker of each partition */
	TimestampTz last_checkpoint;
	uint32		loads;			/* windows loaded so far (load_no) */
} WorkerState;

extern WorkerState wstate;

extern WorkerWindow *rts_worker_find_window(int32 id);
extern void rts_worker_window_load(int32 id, XLogRecPtr created_lsn);
extern void rts_worker_window_drop(int32 id);
extern void rts_worker_forget_all(void);
extern void rts_worker_load_catalog(XLogRecPtr created_lsn);
extern void rts_worker_restore(void);
extern void rts_worker_checkpoint(void);
extern RtsWindowSlot *rts_worker_slot(WorkerWindow *ww);
extern void rts_worker_window_alter(int32 id);
extern void rts_worker_drop_table(int s, RtsWindowDef *def);
extern void rts_worker_table_rebuild(WorkerWindow *ww, const char *data, Size len);

/* worker_run.c */
extern bool rts_progress_take(RtsProgress *p, RtsQueueItem *item, bool commit);
extern void rts_run_check_windows(void);
extern List *rts_run_takers(RtsQueueItem *item, bool commit);
extern void rts_run_commit(RtsQueueItem *item, bool worker_took, List *takers);
extern void rts_run_settle(void);
extern bool rts_run_mid_transaction(void);
extern XLogRecPtr rts_run_durable(XLogRecPtr lsn);
extern void rts_run_restored(WorkerWindow *ww, const XLogRecPtr *worker_skip);

/* worker.c, for worker_stream.c */
typedef struct RtsPendingTxn RtsPendingTxn;
typedef struct RtsPendingWindow RtsPendingWindow;
extern List *rts_owner_groups(List *targets);
extern List *rts_batch_begin(List *windows);
extern void rts_batch_end(List *windows);
extern int	rts_pane_target(WorkerWindow *ww, uint32 entry_id, RtsGroupEntry *e,
							int64 tu);
extern void rts_refuse_group(WorkerWindow *ww);
extern void rts_apply_rows_pending(RtsBatchHeader *hdr, char *batch, Size len,
								   RtsPendingTxn *ptxn, List *windows);
extern void rts_apply_item(RtsQueueItem *item, char *batch, List *exclude);
extern void rts_dead_letters_adopt(List *deferred, XLogRecPtr lsn);
extern void rts_worker_relock(void);

/* worker_stream.c: transactions applied while they run */
extern bool rts_stream_item(RtsQueueItem *item, char *batch);
extern void rts_stream_forget_all(void);
extern void rts_stream_tick(void);
extern bool rts_stream_waiting(void);
extern RtsPendingWindow *rts_pending_window(RtsPendingTxn *ptxn, WorkerWindow *ww);
extern void rts_pending_accumulate(RtsPendingWindow *pw, WorkerWindow *ww,
								   int64 tu, int partition);
extern void rts_pending_null_time(RtsPendingWindow *pw);
extern List **rts_pending_dead_letters(RtsPendingWindow *pw);
extern MemoryContext rts_pending_context(RtsPendingTxn *ptxn);

/* idle.c */
extern void rts_idle_advance(WorkerWindow *ww, RtsWindowSlot *slot, TimestampTz now);

/* history.c */
extern void rts_history_tick(void);
extern void rts_history_load_progress(WorkerWindow *ww);

/* worker_keys.c */
typedef struct RtsKeyClass RtsKeyClass;
extern void rts_keys_invalidate(void);
extern void rts_keys_new_call(void);
extern StringInfo rts_keys_build(WorkerWindow *ww, uint32 *hash);
extern RtsGroupEntry *rts_keys_lookup(WorkerWindow *ww, int64 tu, uint32 *id);
extern uint64 rts_keys_call(void);
extern int	rts_keys_members(WorkerWindow *ww, int *member);

/* notify.c */
extern void rts_notify_closed(RtsWindowDef *def, int64 from, int64 to);
extern void rts_notify_tick(WorkerWindow *ww, RtsWindowSlot *slot);

/*
 * A group key's bytes with their hash, as the key of a worker's private
 * maps from keys (simplehash): equal keys have equal bytes (groupkey.c).
 */
typedef struct RtsKeyRef
{
	uint32		hash;
	uint32		len;
	const char *bytes;
} RtsKeyRef;

#define RTS_KEYREF_EQUAL(a, b) \
	((a).hash == (b).hash && (a).len == (b).len && \
	 memcmp((a).bytes, (b).bytes, (a).len) == 0)

/* Ask for the cache line at p, about to be written. */
#if defined(__GNUC__) || defined(__clang__)
#define prefetch_line(p)	__builtin_prefetch(p, 1)
#else
#define prefetch_line(p)	((void) (p))
#endif

#endif							/* RTS_WORKER_H */
