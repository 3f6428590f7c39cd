/*-------------------------------------------------------------------------
 *
 * worker_run.c
 *	  Whether, and from where, a worker applies each of its windows: the
 *	  owner's privileges checked at run time, stalls, and the catch-up
 *	  through a replay of the WAL a stalled window missed.
 *
 *	  At the start of each drain a worker checks, for every window, that
 *	  the window's owner may still run it, as if the owner ran its query:
 *	  SELECT on the stream, INSERT on its history table and dead-letter
 *	  table (and DELETE on the history when it has a retention).  A window
 *	  whose check fails stops at its next transaction boundary (STALLED,
 *	  see panes.h): its rows are not applied, the error is logged once and
 *	  shown in rtstream.window_stats, and the check is tried again after
 *	  1 s, 2 s, 4 s, ... up to a minute.  Its progress holds the slot back
 *	  (rts_run_durable), so the WAL it missed is kept.  Once the check
 *	  passes, the window asks the router to decode again from the slot's
 *	  confirmed position and takes the replayed items at its own progress
 *	  (CATCHING_UP) until it reaches the worker's: every transaction counts
 *	  once.  The other windows skip the replay as any replay.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "eventtime.h"
#include "owner.h"
#include "worker.h"

#define RUN_RETRY_MAX_MS	60000

/*
 * Take an item into a progress: true if it is new to it (not part of a
 * transaction it holds, nor an item of its transaction in progress that a
 * restarted router sends again).
 */
bool
rts_progress_take(RtsProgress *p, RtsQueueItem *item, bool commit)
{
	if (item->router_gen != p->router_gen)
	{
		p->router_gen = item->router_gen;
		p->replay_skip = p->in_txn_lsn != InvalidXLogRecPtr ? p->in_txn_items : 0;
		p->in_txn_items = 0;
	}
	if (item->commit_lsn <= p->applied_lsn)
		return false;
	if (commit)
	{
		p->applied_lsn = item->commit_lsn;
		p->in_txn_lsn = InvalidXLogRecPtr;
		p->in_txn_items = 0;
		p->replay_skip = 0;
		return true;
	}
	if (item->commit_lsn != p->in_txn_lsn)
	{
		p->in_txn_lsn = item->commit_lsn;
		p->in_txn_items = 0;
		p->replay_skip = 0;
	}
	p->in_txn_items++;
	if (p->replay_skip > 0)
	{
		p->replay_skip--;
		return false;
	}
	return true;
}

/* Set a window's run state on this worker; progress from applied. */
static void
run_set(WorkerWindow *ww, RtsRunState state, XLogRecPtr applied)
{
	RtsWindowRun *run = &ww->table->run;
	RtsWindowSlot *slot = rts_worker_slot(ww);

	LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
	run->state = state;
	if (state == RTS_RUN_RUNNING)
	{
		memset(&run->progress, 0, sizeof(run->progress));
		run->failures = 0;
		run->error[0] = '\0';
		run->error_at = 0;
	}
	else
	{
		run->progress.applied_lsn = applied;
		run->progress.in_txn_lsn = InvalidXLogRecPtr;
		run->progress.in_txn_items = 0;
		run->progress.replay_skip = 0;
	}
	LWLockRelease(&wstate.shared->lock);
	/* 0 means running: a window behind with nothing applied holds 1 */
	pg_atomic_write_u64(&slot->behind_lsn[wstate.index],
						state == RTS_RUN_RUNNING ? 0 : Max(applied, 1));
}

/* Stop applying a window, between two of its transactions. */
static void
run_stall(WorkerWindow *ww, XLogRecPtr applied)
{
	run_set(ww, RTS_RUN_STALLED, applied);
	elog(DEBUG1, "rtstream worker %d stalls window \"%s\" at %X/%X",
		 wstate.index, ww->def->name, LSN_FORMAT_ARGS(applied));
}

/*
 * Raise an ERROR if the owner may not run the window as it is: the
 * privileges its query and its writes need.  The owner is read again
 * first: ALTER VIEW ... OWNER TO takes effect here.
 */
static void
check_owner_privileges(WorkerWindow *ww)
{
	RtsWindowDef *def = ww->def;
	Oid			owner = rts_view_owner(def->view);
	Oid			rel = InvalidOid;
	const char *what = NULL;
	const char *privilege = NULL;

	if (OidIsValid(owner))
		def->owner = owner;
	/* a stream dropped after its windows: their DROP message is on its way */
	if (get_rel_name(def->stream) == NULL)
		return;
	if (pg_class_aclcheck(def->stream, def->owner, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(def->stream, def->owner, ACL_SELECT,
								  ACLMASK_ALL) != ACLCHECK_OK)
	{
		rel = def->stream;
		what = "stream";
		privilege = "SELECT";
	}
	else if (OidIsValid(def->history) && get_rel_name(def->history) != NULL &&
			 pg_class_aclcheck(def->history, def->owner, ACL_INSERT) != ACLCHECK_OK)
	{
		rel = def->history;
		what = "history table";
		privilege = "INSERT";
	}
	else if (OidIsValid(def->history) && def->retention_us > 0 &&
			 get_rel_name(def->history) != NULL &&
			 pg_class_aclcheck(def->history, def->owner, ACL_DELETE) != ACLCHECK_OK)
	{
		rel = def->history;
		what = "history table";
		privilege = "DELETE";
	}
	else if (OidIsValid(def->dead_letter_table) &&
			 get_rel_name(def->dead_letter_table) != NULL &&
			 pg_class_aclcheck(def->dead_letter_table, def->owner,
							   ACL_INSERT) != ACLCHECK_OK)
	{
		rel = def->dead_letter_table;
		what = "dead letter table";
		privilege = "INSERT";
	}
	if (!OidIsValid(rel))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s", get_rel_name(rel)),
			 errdetail("rtstream window \"%s\" runs with the rights of its owner %s, who lacks %s on its %s; the window stopped advancing.",
					   def->name, GetUserNameFromId(def->owner, true)
					   ? GetUserNameFromId(def->owner, true) : "(dropped role)",
					   privilege, what),
			 errhint("GRANT %s ON %s TO %s; the window then catches up, every committed row counted once.",
					 privilege, get_rel_name(rel),
					 GetUserNameFromId(def->owner, true)
					 ? GetUserNameFromId(def->owner, true) : "its owner")));
}

/*
 * The check of one window: false, with the error recorded (and logged if
 * it is new), if its owner may not run it.
 */
static bool
check_window(WorkerWindow *ww, TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;
	RtsWindowRun *run = &ww->table->run;
	bool		ok = true;

	PG_TRY();
	{
		check_owner_privileges(ww);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		is_new;

		/* only catalog lookups ran: nothing to release */
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		is_new = strcmp(run->error, edata->message) != 0;
		if (is_new)
			EmitErrorReport();	/* once, not at every retry */
		FlushErrorState();
		LWLockAcquire(&wstate.shared->lock, LW_EXCLUSIVE);
		if (is_new)
		{
			strlcpy(run->error, edata->message, RTS_ERROR_LEN);
			run->error_at = now;
		}
		run->failures = Min(run->failures + 1, 16);
		run->retry_at = TimestampTzPlusMilliseconds(now,
													Min(1000L << Min(run->failures - 1, 6),
														RUN_RETRY_MAX_MS));
		LWLockRelease(&wstate.shared->lock);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * A stalled window holding more WAL than rtstream.stalled_wal_limit gives
 * up the transactions it missed, alone: the gap is recorded, and it stays
 * stalled from the worker's position, so the slot can move on.
 */
static void
stalled_wal_limit(WorkerWindow *ww)
{
	RtsWindowRun *run = &ww->table->run;
	RtsWorkerShared *me = wstate.shared;
	XLogRecPtr	insert = GetXLogInsertRecPtr();
	XLogRecPtr	from = run->progress.applied_lsn;
	XLogRecPtr	to = me->progress.applied_lsn;
	char	   *reason;

	/* only rows that came after it are lost: without them it holds nothing */
	if (insert <= from || insert - from <= rts_stalled_wal_bytes() ||
		me->progress.in_txn_lsn != InvalidXLogRecPtr || to <= from ||
		me->last_commit_lsn <= from)
		return;
	reason = psprintf("window \"%s\" was stalled (%s) past rtstream.stalled_wal_limit",
					  ww->def->name, run->error);
	PG_TRY();
	{
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rtstream window \"%s\" gives up the transactions committed between %X/%X and %X/%X on worker %d",
						ww->def->name, LSN_FORMAT_ARGS(from), LSN_FORMAT_ARGS(to),
						wstate.index),
				 errdetail("It was stalled: %s; it held more WAL than rtstream.stalled_wal_limit.", run->error),
				 errhint("The gap is recorded in rtstream.gaps; grant the privilege back to let the window run again.")));
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
	rts_record_gap(wstate.db, from, to, ww->def->name, reason);
	run_stall(ww, to);
}

/*
 * At the start of a drain, in a transaction: check every window, stall
 * those that fail at their transaction boundary, and resume the stalled
 * ones that pass.
 */
void
rts_run_check_windows(void)
{
	TimestampTz now = GetCurrentTimestamp();
	RtsWorkerShared *me = wstate.shared;
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowRun *run = &ww->table->run;

		if (run->state == RTS_RUN_STALLED)
		{
			/*
			 * No rows came to this worker since the window stalled: it has
			 * missed nothing, and need not hold the WAL of that while.
			 */
			if (me->last_commit_lsn <= run->progress.applied_lsn &&
				me->progress.in_txn_lsn == InvalidXLogRecPtr &&
				me->progress.applied_lsn > run->progress.applied_lsn)
				run_set(ww, RTS_RUN_STALLED, me->progress.applied_lsn);
			stalled_wal_limit(ww);
		}
		if (run->state == RTS_RUN_STALLED && now < run->retry_at)
		{
			ww->check_failed = true;
			continue;
		}
		ww->check_failed = !check_window(ww, now);
		switch (run->state)
		{
			case RTS_RUN_RUNNING:
				if (ww->check_failed)
				{
					/* else at the commit of the transaction in progress */
					if (me->progress.in_txn_lsn == InvalidXLogRecPtr)
						run_stall(ww, me->progress.applied_lsn);
				}
				else if (run->error[0] != '\0')
					run_set(ww, RTS_RUN_RUNNING, 0);
				break;
			case RTS_RUN_CATCHING_UP:
				if (ww->check_failed && run->progress.in_txn_lsn == InvalidXLogRecPtr)
					run_stall(ww, run->progress.applied_lsn);
				break;
			case RTS_RUN_STALLED:
				if (!ww->check_failed)
				{
					LWLockAcquire(&me->lock, LW_EXCLUSIVE);
					run->state = RTS_RUN_CATCHING_UP;
					run->resume_gen = wstate.db->router_gen + 1;
					run->failures = 0;
					run->error[0] = '\0';
					run->error_at = 0;
					LWLockRelease(&me->lock);
					ereport(LOG,
							(errmsg("rtstream window \"%s\" resumes on worker %d: catching up from %X/%X",
									ww->def->name, wstate.index,
									LSN_FORMAT_ARGS(run->progress.applied_lsn))));
					pg_atomic_fetch_add_u32(&wstate.db->replay_requests, 1);
					if (wstate.db->router_latch)
						SetLatch(wstate.db->router_latch);
				}
				break;
		}
	}
}

/* The windows behind the worker that take this item (and count it taken). */
List *
rts_run_takers(RtsQueueItem *item, bool commit)
{
	List	   *takers = NIL;
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowRun *run = &ww->table->run;

		if (run->state == RTS_RUN_CATCHING_UP &&
			(int32) (item->router_gen - run->resume_gen) >= 0 &&
			rts_progress_take(&run->progress, item, commit))
			takers = lappend(takers, ww);
	}
	return takers;
}

/*
 * After a commit marker, which the worker took (worker_took) and the
 * windows behind it in takers took: publish their newest times, stall the
 * windows whose check failed, and let the windows that have caught up run
 * with the others.
 */
void
rts_run_commit(RtsQueueItem *item, bool worker_took, List *takers)
{
	RtsWorkerShared *me = wstate.shared;
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowRun *run = &ww->table->run;
		bool		took = list_member_ptr(takers, ww);

		if (run->state == RTS_RUN_RUNNING && worker_took)
		{
			rts_publish_newest(rts_worker_slot(ww), wstate.index,
							   rts_table_newest(ww->table), item->commit_lsn);
			if (ww->check_failed)
				run_stall(ww, item->commit_lsn);
		}
		else if (run->state == RTS_RUN_CATCHING_UP && took)
		{
			rts_publish_newest(rts_worker_slot(ww), wstate.index,
							   rts_table_newest(ww->table), item->commit_lsn);
			if (ww->check_failed)
				run_stall(ww, run->progress.applied_lsn);
			else if (run->progress.applied_lsn >= me->progress.applied_lsn &&
					 me->progress.in_txn_lsn == InvalidXLogRecPtr)
				run_set(ww, RTS_RUN_RUNNING, 0);
			else
				pg_atomic_write_u64(&rts_worker_slot(ww)->behind_lsn[wstate.index],
									Max(run->progress.applied_lsn, 1));
		}
	}
}

/*
 * With the queue empty: a window catching up whose replay has passed the
 * worker's progress holds everything the worker does (the replay had no
 * item for it after its last one).
 */
void
rts_run_settle(void)
{
	RtsWorkerShared *me = wstate.shared;
	RtsDatabaseShared *db = wstate.db;
	ListCell   *lc;
	uint32		gen = db->router_gen;
	XLogRecPtr	decoded;

	/* the router sets decoded_lsn back before it bumps its generation */
	pg_read_barrier();
	decoded = pg_atomic_read_u64(&db->decoded_lsn);
	pg_read_barrier();
	if (pg_atomic_read_u64(&me->ring.read_pos) != pg_atomic_read_u64(&me->ring.write_pos) ||
		me->progress.in_txn_lsn != InvalidXLogRecPtr ||
		decoded < me->progress.applied_lsn)
		return;
	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowRun *run = &ww->table->run;

		/* its commit marker was taken before a restart of this worker */
		if (run->state == RTS_RUN_CATCHING_UP &&
			run->progress.in_txn_lsn != InvalidXLogRecPtr &&
			decoded >= run->progress.in_txn_lsn)
		{
			run->progress.applied_lsn = Max(run->progress.applied_lsn,
											run->progress.in_txn_lsn);
			run->progress.in_txn_lsn = InvalidXLogRecPtr;
			run->progress.in_txn_items = 0;
			run->progress.replay_skip = 0;
		}
		if (run->state == RTS_RUN_CATCHING_UP &&
			(int32) (gen - run->resume_gen) >= 0 &&
			run->progress.in_txn_lsn == InvalidXLogRecPtr &&
			!ww->check_failed)
			run_set(ww, RTS_RUN_RUNNING, 0);
	}
}

/* Whether a window catching up holds part of a transaction. */
bool
rts_run_mid_transaction(void)
{
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		RtsWindowRun *run = &((WorkerWindow *) lfirst(lc))->table->run;

		if (run->state != RTS_RUN_RUNNING &&
			run->progress.in_txn_lsn != InvalidXLogRecPtr)
			return true;
	}
	return false;
}

/* What a checkpoint at lsn makes durable: no more than the windows behind hold. */
XLogRecPtr
rts_run_durable(XLogRecPtr lsn)
{
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		RtsWindowRun *run = &((WorkerWindow *) lfirst(lc))->table->run;

		if (run->state != RTS_RUN_RUNNING)
			lsn = Min(lsn, Max(run->progress.applied_lsn, 1));
	}
	return lsn;
}

/*
 * A window restored from checkpoints that hold some of its partitions at
 * an older LSN than the worker's (it was behind when they were written):
 * it catches up from the oldest, skipping per partition what it holds.
 */
void
rts_run_restored(WorkerWindow *ww, const XLogRecPtr *worker_skip)
{
	RtsWindowRun *run = &ww->table->run;
	XLogRecPtr	oldest = InvalidXLogRecPtr;
	bool		behind = false;

	for (int p = 0; p < RTS_NPARTITIONS; p++)
	{
		if (wstate.owner[p] != wstate.index)
			continue;
		if (run->skip_lsn[p] < worker_skip[p])
			behind = true;
		if (oldest == InvalidXLogRecPtr || run->skip_lsn[p] < oldest)
			oldest = run->skip_lsn[p];
	}
	if (!behind)
		return;
	run_set(ww, RTS_RUN_CATCHING_UP, oldest);
	/* any generation will do: a router that starts replays from the slot */
	run->resume_gen = wstate.db->router_gen;
}
