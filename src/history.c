/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The history tables of closed windows, and the partial sessions no
 *	  open session needs any more.  Worker 0 does both between its batches,
 *	  after advancing idle windows (idle.c).
 *
 *	  History, exactly once.  The windows closed by the watermark (and not
 *	  yet written) are combined across workers and appended to the history
 *	  table in one transaction that also records, in
 *	  rtstream.history_progress, the window end up to which the history is
 *	  complete.  Workers keep every pane of a window not yet written (in the
 *	  ring or in the closed store, and in their checkpoints), and drop them
 *	  only once the progress is committed: after a crash the state of every
 *	  window not in the history comes back from the checkpoints and the
 *	  replay, and a window in it is never written again.
 *
 *	  The watermark is read with every worker's lock held: a batch applied
 *	  after it judges its rows against a watermark at least as new (it only
 *	  rises), so rows of a window already written count as late, never
 *	  silently.
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
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "combine.h"
#include "history.h"
#include "owner.h"
#include "eventtime.h"
#include "worker.h"

/*
 * Read a window's history progress into its slot; in a transaction.  Any
 * worker may, the value is the same.
 */
void
rts_history_load_progress(WorkerWindow *ww)
{
	RtsWindowSlot *slot = rts_worker_slot(ww);
	int64		emitted;
	XLogRecPtr	lsn;

	if (rts_atomic_read_time(&slot->emitted_until) != RTS_TIME_UNKNOWN)
		return;
	emitted = rts_history_progress(ww->def->id, &lsn);
	if (lsn != InvalidXLogRecPtr)
		pg_atomic_write_u64(&slot->emitted_lsn, lsn);
	rts_atomic_raise_time(&slot->emitted_until, emitted);
}

/*
 * A window's row of rtstream.history_progress: the window end up to which
 * its history is complete (RTS_TIME_NONE if none yet), and in *lsn the LSN
 * it holds (InvalidXLogRecPtr if none).  In a transaction.
 */
int64
rts_history_progress(int32 window_id, XLogRecPtr *lsn)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(window_id)};
	int64		emitted = RTS_TIME_NONE;

	*lsn = InvalidXLogRecPtr;
	SPI_connect();
	if (SPI_execute_with_args("SELECT emitted_until, lsn FROM rtstream.history_progress "
							  "WHERE window_id = $1", 1, types, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.history_progress");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			emitted = rts_to_unix(DatumGetTimestampTz(d));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
			*lsn = DatumGetLSN(d);
	}
	SPI_finish();
	return emitted;
}

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Sliding windows: each window of a group ending in (emitted, target],
 * from the group's panes.
 */
static void
emit_group_windows(RtsWindowDef *def, dsa_area *area, RtsCombineGroup *g,
				   int64 emitted, int64 target, RtsCombineOut *out)
{
	const RtsGeometry *geom = &def->geom;
	int64		after = emitted == RTS_TIME_NONE ? PG_INT64_MIN :
		rts_pane_of(geom, emitted);
	int64		upto = rts_pane_of(geom, target);
	int64	   *ends = NULL;
	int			nends = 0,
				maxends = 0;
	ListCell   *lc;

	/* the ends of the windows holding each pane, within (after, upto] */
	foreach(lc, g->panes)
	{
		int64		q = rts_pane_no(def, (RtsPane *) lfirst(lc));
		int64		e = rts_end_oldest_holding(geom, q);
		int64		last = Min(rts_end_newest_holding(geom, q), upto);

		if (e <= after)
			e = rts_end_floor(geom, after) + geom->every;
		for (; e <= last; e += geom->every)
		{
			if (nends == maxends)
			{
				maxends = Max(maxends * 2, 16);
				ends = ends ? repalloc(ends, sizeof(int64) * maxends) :
					palloc(sizeof(int64) * maxends);
			}
			ends[nends++] = e;
		}
	}
	if (nends == 0)
		return;
	qsort(ends, nends, sizeof(int64), int64_cmp);
	for (int i = 0; i < nends; i++)
	{
		int64		first = rts_window_first(geom, ends[i]);

		if (i > 0 && ends[i] == ends[i - 1])
			continue;
		rts_combine_init(def, g);
		foreach(lc, g->panes)
		{
			RtsPane    *p = lfirst(lc);
			int64		no = rts_pane_no(def, p);

			if (no >= first && no < ends[i])
				rts_combine_add(def, area, g, p);
		}
		rts_combine_emit(def, g, out, rts_pane_start(geom, first),
						 rts_pane_start(geom, ends[i]));
	}
	pfree(ends);
}

/*
 * The windows closed by watermark wm and not yet written (ending after
 * emitted), combined from the pane tables into out; the new progress, or
 * RTS_TIME_UNKNOWN if nothing closed.  Sessions: session_keep_in is what
 * the tables keep (RTS_TIME_NONE: everything); *session_keep gets what
 * must be kept once these are written.  The caller holds whatever protects
 * the tables (the workers' locks; a coordinator's tables are its own).
 */
int64
rts_history_collect(RtsWindowDef *def, dsa_area *area, RtsPaneTable **tables,
					int ntables, int64 wm, int64 emitted, int64 session_keep_in,
					RtsCombineOut *out, int64 *session_keep)
{
	int64		target_try = wm == RTS_TIME_NONE ? RTS_TIME_NONE :
		rts_history_target(def, wm);
	HTAB	   *groups;
	HASH_SEQ_STATUS seq;
	RtsCombineGroup *g;
	int64		keep;

	if (target_try == RTS_TIME_NONE ||
		(emitted != RTS_TIME_NONE && target_try <= emitted))
		return RTS_TIME_UNKNOWN;

	/*
	 * What was written is not collected again; partial sessions of sessions
	 * still open are, whenever they ended.
	 */
	if (RTS_IS_SESSION(def))
		keep = session_keep_in == RTS_TIME_NONE ? PG_INT64_MIN : session_keep_in;
	else if (emitted == RTS_TIME_NONE)
		keep = PG_INT64_MIN;
	else
		keep = rts_window_first(&def->geom,
								rts_pane_of(&def->geom, emitted) + def->geom.every);
	*session_keep = RTS_TIME_NONE;
	groups = rts_combine_groups();
	rts_agg_context_set(CurrentMemoryContext);
	for (int i = 0; i < ntables; i++)
		rts_combine_collect(groups, def, area, tables[i], keep);
	hash_seq_init(&seq, groups);
	while ((g = hash_seq_search(&seq)) != NULL)
	{
		if (RTS_IS_SESSION(def))
			rts_combine_sessions(def, area, g, emitted, target_try, out,
								 session_keep);
		else
			emit_group_windows(def, area, g, emitted, target_try, out);
		CHECK_FOR_INTERRUPTS();
	}
	/* sessions: what is kept from now on (published once written) */
	if (*session_keep == RTS_TIME_NONE || *session_keep > target_try)
		*session_keep = target_try;
	return target_try;
}

/*
 * Combine the windows closed since the last call; returns the new
 * progress, or RTS_TIME_UNKNOWN if nothing closed.  Takes every worker's
 * lock.
 */
static int64
collect_closed(WorkerWindow *ww, RtsWindowSlot *slot, int64 emitted,
			   RtsCombineOut *out, int64 *wm_out, XLogRecPtr *lsn_out,
			   int64 *session_keep)
{
	RtsDatabaseShared *db = wstate.db;
	RtsWindowDef *def = ww->def;
	dsa_area   *area = rts_dsa();
	int			nworkers = db->nworkers;
	int64		target = RTS_TIME_UNKNOWN;

	for (int w = 0; w < nworkers; w++)
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);
	PG_TRY();
	{
		int64		wm = rts_window_watermark(db, slot);
		RtsPaneTable *tables[RTS_MAX_WORKERS];
		int			ntables = 0;

		*wm_out = wm;
		/* every row of the transactions up to here is in the panes read */
		*lsn_out = PG_UINT64_MAX;
		for (int w = 0; w < nworkers; w++)
		{
			dsa_pointer tp = slot->tables[w];

			*lsn_out = Min(*lsn_out, rts_worker_caught_up(db, w));
			if (DsaPointerIsValid(tp))
				tables[ntables++] = dsa_get_address(area, tp);
		}
		target = rts_history_collect(def, area, tables, ntables, wm, emitted,
									 rts_atomic_read_time(&slot->session_keep),
									 out, session_keep);
	}
	PG_FINALLY();
	{
		for (int w = nworkers - 1; w >= 0; w--)
			if (LWLockHeldByMe(&db->workers[w].lock))
				LWLockRelease(&db->workers[w].lock);
	}
	PG_END_TRY();
	return target;
}

#define HISTORY_CHUNK_ROWS	10000

/*
 * Insert the rows of a tuplestore into a history table, in chunks of
 * HISTORY_CHUNK_ROWS rows: one INSERT ... SELECT FROM unnest() of one array
 * per column each (a row at a time costs a statement per row).  A column
 * type without an array type falls back to one INSERT per row.
 */
void
rts_history_insert_rows(RtsWindowDef *def, const char *relname, TupleDesc desc,
						Tuplestorestate *store)
{
	int			ncols = desc->natts;
	Oid		   *types = palloc(sizeof(Oid) * ncols);
	int16	   *typlen = palloc(sizeof(int16) * ncols);
	bool	   *typbyval = palloc(sizeof(bool) * ncols);
	char	   *typalign = palloc(sizeof(char) * ncols);
	Datum	  **colvals = palloc(sizeof(Datum *) * ncols);
	bool	  **colnulls = palloc(sizeof(bool *) * ncols);
	Datum	   *params = palloc(sizeof(Datum) * ncols);
	char	   *pnulls = palloc(sizeof(char) * ncols);
	bool		arrays = true;
	StringInfoData sql;
	SPIPlanPtr	plan;
	TupleTableSlot *tts;
	MemoryContext chunk_cxt,
				old;
	int			n = 0;
	bool		more = true;

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (window_start, window_end", relname);
	for (int i = 0; i < def->noutputs; i++)
		appendStringInfo(&sql, ", %s", quote_identifier(def->outputs[i].name));
	for (int i = 0; i < ncols; i++)
	{
		Oid			elem = TupleDescAttr(desc, i)->atttypid;

		types[i] = get_array_type(elem);
		arrays = arrays && OidIsValid(types[i]);
		get_typlenbyvalalign(elem, &typlen[i], &typbyval[i], &typalign[i]);
		colvals[i] = palloc(sizeof(Datum) * HISTORY_CHUNK_ROWS);
		colnulls[i] = palloc(sizeof(bool) * HISTORY_CHUNK_ROWS);
	}
	appendStringInfoString(&sql, arrays ? ") SELECT * FROM unnest(" : ") VALUES (");
	for (int i = 0; i < ncols; i++)
	{
		if (!arrays)
			types[i] = TupleDescAttr(desc, i)->atttypid;
		appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
	}
	appendStringInfoChar(&sql, ')');
	plan = SPI_prepare(sql.data, ncols, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the history insert of window \"%s\": %s",
			 def->name, SPI_result_code_string(SPI_result));

	chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "rtstream history chunk",
									  ALLOCSET_DEFAULT_SIZES);
	tts = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	while (more)
	{
		more = tuplestore_gettupleslot(store, true, false, tts);
		if (more)
		{
			slot_getallattrs(tts);
			old = MemoryContextSwitchTo(chunk_cxt);
			for (int i = 0; i < ncols; i++)
			{
				colnulls[i][n] = tts->tts_isnull[i];
				colvals[i][n] = tts->tts_isnull[i] ? (Datum) 0 :
					datumCopy(tts->tts_values[i], typbyval[i], typlen[i]);
			}
			MemoryContextSwitchTo(old);
			n++;
		}
		if (n > 0 && (!arrays || n == HISTORY_CHUNK_ROWS || !more))
		{
			old = MemoryContextSwitchTo(chunk_cxt);
			for (int i = 0; i < ncols; i++)
			{
				pnulls[i] = ' ';
				if (arrays)
				{
					int			dims[1] = {n};
					int			lbs[1] = {1};

					params[i] = PointerGetDatum(construct_md_array(colvals[i], colnulls[i], 1,
																   dims, lbs,
																   TupleDescAttr(desc, i)->atttypid,
																   typlen[i], typbyval[i],
																   typalign[i]));
				}
				else
				{
					params[i] = colvals[i][0];
					pnulls[i] = colnulls[i][0] ? 'n' : ' ';
				}
			}
			MemoryContextSwitchTo(old);
			if (SPI_execute_plan(plan, params, pnulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not append to the history of window \"%s\"", def->name);
			MemoryContextReset(chunk_cxt);
			n = 0;
			CHECK_FOR_INTERRUPTS();
		}
	}
	ExecDropSingleTupleTableSlot(tts);
	MemoryContextDelete(chunk_cxt);
}

/* Append the closed windows of a window with history; in a transaction. */
static void
write_history(WorkerWindow *ww, RtsWindowSlot *slot)
{
	RtsWindowDef *def = ww->def;
	int64		emitted = rts_atomic_read_time(&slot->emitted_until);
	int64		target;
	int64		wm = RTS_TIME_NONE;
	char	   *relname;
	TupleDesc	desc;
	Tuplestorestate *store;
	RtsCombineOut out;
	int			ncols = def->noutputs + 2;
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	RtsOwnerSwitch sw = {0};

	if (emitted == RTS_TIME_UNKNOWN)
		return;					/* not loaded yet */
	relname = get_rel_name(def->history);
	if (relname == NULL)
	{
		if (ww->warned_history)
			return;
		ww->warned_history = true;
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("history table of rtstream window \"%s\" does not exist",
						def->name),
				 errhint("Turn the history off with rtstream.alter_window('%s', history => false), or on again to create the table.",
						 def->name)));
		return;
	}
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(def->history)),
										 relname);

	/* the rows, built under the workers' locks */
	desc = CreateTemplateTupleDesc(ncols);
	TupleDescInitEntry(desc, 1, "window_start", TIMESTAMPTZOID, -1, 0);
	TupleDescInitEntry(desc, 2, "window_end", TIMESTAMPTZOID, -1, 0);
	for (int i = 0; i < def->noutputs; i++)
		TupleDescInitEntry(desc, i + 3, def->outputs[i].name, def->outputs[i].type,
						   def->outputs[i].typmod, 0);
	store = tuplestore_begin_heap(false, false, work_mem);
	rts_combine_out_init(&out, def, store, desc);

	/*
	 * Combining and finalising run the aggregates' functions, and the writes
	 * into the history fire its triggers: all as the window's owner.  Only
	 * the progress, in rtstream's own table, is written as the worker.
	 */
	rts_owner_enter(def->owner, def->search_path, &sw);
	target = collect_closed(ww, slot, emitted, &out, &wm, &lsn, &ww->pending_session_keep);
	if (target == RTS_TIME_UNKNOWN)
	{
		rts_owner_leave(&sw);
		tuplestore_end(store);
		return;
	}

	SPI_connect();
	if (out.rows > 0)
		rts_history_insert_rows(def, relname, desc, store);
	if (def->retention_us > 0 && wm != RTS_TIME_NONE)
	{
		Oid			rtypes[1] = {TIMESTAMPTZOID};
		Datum		rvals[1] = {TimestampTzGetDatum(rts_from_unix(wm - def->retention_us))};

		if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE window_end < $1", relname),
								  1, rtypes, rvals, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not prune the history of window \"%s\"", def->name);
	}
	rts_owner_leave(&sw);
	{
		Oid			ptypes[3] = {INT4OID, TIMESTAMPTZOID, LSNOID};
		Datum		pvals[3] = {Int32GetDatum(def->id),
			TimestampTzGetDatum(rts_from_unix(target)), LSNGetDatum(lsn)};

		if (SPI_execute_with_args("INSERT INTO rtstream.history_progress (window_id, emitted_until, lsn) "
								  "VALUES ($1, $2, $3) ON CONFLICT (window_id) "
								  "DO UPDATE SET emitted_until = excluded.emitted_until, "
								  "lsn = greatest(history_progress.lsn, excluded.lsn)",
								  3, ptypes, pvals, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write rtstream.history_progress");
	}
	SPI_finish();
	/*
	 * Sent at commit, with the rows (sessions: when one closed); the first
	 * time, from the oldest window with rows.
	 */
	if (out.rows > 0 || !RTS_IS_SESSION(def))
		rts_notify_closed(def, emitted == RTS_TIME_NONE && out.rows > 0 ?
						  out.min_end - 1 : emitted, target);
	tuplestore_end(store);

	/* published only once committed: the workers then drop those panes */
	ww->pending_emitted = target;
	ww->pending_lsn = lsn;
}

/* Whether the watermark has closed windows not in the history yet. */
static bool
history_due(WorkerWindow *ww, RtsWindowSlot *slot)
{
	int64		emitted = rts_atomic_read_time(&slot->emitted_until);
	int64		wm = rts_window_watermark(wstate.db, slot);
	int64		target;

	if (emitted == RTS_TIME_UNKNOWN || wm == RTS_TIME_NONE)
		return false;
	target = rts_history_target(ww->def, wm);
	return emitted == RTS_TIME_NONE || target > emitted;
}

/*
 * Sessions without history: once a second, find which partial sessions no
 * open session needs any more (the workers then free them).
 */
static void
session_keep_tick(WorkerWindow *ww, RtsWindowSlot *slot, TimestampTz now)
{
	RtsDatabaseShared *db = wstate.db;
	RtsWindowDef *def = ww->def;
	dsa_area   *area = rts_dsa();
	int			nworkers = db->nworkers;
	MemoryContext cxt,
				old;
	int64		open_start = RTS_TIME_NONE;
	int64		wm = RTS_TIME_NONE;
	RtsOwnerSwitch sw = {0};

	if (!TimestampDifferenceExceeds(ww->session_keep_at, now, 1000))
		return;
	ww->session_keep_at = now;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "rtstream sessions",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	/* combining runs the aggregates' functions: the owner's code */
	rts_owner_enter(def->owner, def->search_path, &sw);
	for (int w = 0; w < nworkers; w++)
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);
	PG_TRY();
	{
		HTAB	   *groups = rts_combine_groups();
		HASH_SEQ_STATUS seq;
		RtsCombineGroup *g;
		int64		keep = rts_atomic_read_time(&slot->session_keep);

		wm = rts_window_watermark(db, slot);
		if (wm != RTS_TIME_NONE)
		{
			for (int w = 0; w < nworkers; w++)
			{
				dsa_pointer tp = slot->tables[w];

				if (DsaPointerIsValid(tp))
					rts_combine_collect(groups, def, area, dsa_get_address(area, tp),
										keep == RTS_TIME_NONE ? PG_INT64_MIN : keep);
			}
			hash_seq_init(&seq, groups);
			while ((g = hash_seq_search(&seq)) != NULL)
				rts_combine_sessions(def, area, g, rts_history_target(def, wm),
									 rts_history_target(def, wm), NULL,
									 &open_start);
		}
	}
	PG_FINALLY();
	{
		for (int w = nworkers - 1; w >= 0; w--)
			if (LWLockHeldByMe(&db->workers[w].lock))
				LWLockRelease(&db->workers[w].lock);
	}
	PG_END_TRY();
	rts_owner_leave(&sw);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	/* closed sessions end at or before rts_history_target: not needed */
	if (wm != RTS_TIME_NONE)
		rts_atomic_raise_time(&slot->session_keep,
							  open_start == RTS_TIME_NONE ? rts_history_target(def, wm) :
							  Min(open_start, rts_history_target(def, wm)));
}

static bool
window_behind(RtsWindowSlot *slot)
{
	for (int w = 0; w < wstate.db->nworkers; w++)
		if (pg_atomic_read_u64(&slot->behind_lsn[w]) != 0)
			return true;
	return false;
}

void
rts_history_tick(void)
{
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowSlot *slot = rts_worker_slot(ww);

		/*
		 * A window stalled or catching up on some worker has rows still to
		 * come in order: its watermark and history wait for them.
		 */
		if (window_behind(slot))
			continue;
		rts_idle_advance(ww, slot, now);
		if (RTS_IS_SESSION(ww->def) && !RTS_KEEPS_HISTORY(ww->def))
		{
			/* combining runs the owner's functions: in a transaction */
			StartTransactionCommand();
			session_keep_tick(ww, slot, now);
			CommitTransactionCommand();
		}
		if (ww->def->notify && !OidIsValid(ww->def->history) && !RTS_IS_SESSION(ww->def))
			rts_notify_tick(ww, slot);
		if (!OidIsValid(ww->def->history) || !history_due(ww, slot) ||
			!TimestampDifferenceExceeds(ww->history_failed_at, now, 1000))
			continue;

		/* each window in its own transaction: one failing stops no other */
		ww->pending_emitted = RTS_TIME_UNKNOWN;
		PG_TRY();
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			write_history(ww, slot);
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			ww->history_failed_at = now;
			ww->pending_emitted = RTS_TIME_UNKNOWN;
		}
		PG_END_TRY();
		if (ww->pending_emitted != RTS_TIME_UNKNOWN)
		{
			if (ww->pending_lsn > pg_atomic_read_u64(&slot->emitted_lsn))
				pg_atomic_write_u64(&slot->emitted_lsn, ww->pending_lsn);
			if (RTS_IS_SESSION(ww->def))
				rts_atomic_raise_time(&slot->session_keep, ww->pending_session_keep);
			rts_atomic_raise_time(&slot->emitted_until, ww->pending_emitted);
		}
	}
}
