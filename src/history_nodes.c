/*-------------------------------------------------------------------------
 *
 * history_nodes.c
 *	  The history of distributed windows.
 *
 *	  Coordinator: the shipper, once a second, combines the windows every
 *	  node's watermark has closed (from the nodes' states, as a read does)
 *	  and appends them to the coordinator's history table, in one local
 *	  transaction that also records the progress in
 *	  rtstream.history_progress: each closed window is written once.  Only
 *	  then does it tell the nodes (rtstream._history_release) that they may
 *	  drop those panes; a node's window of a distributed window with history
 *	  keeps them until then (history_held), in its checkpoints too.  If the
 *	  release is lost, the next tick sends it again.
 *
 *	  Node: rtstream._history_publish() raises the window's progress in
 *	  shared memory once the release is recorded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "eventtime.h"
#include "history.h"
#include "nodes.h"
#include "owner.h"
#include "read.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(rts_history_publish);

/*
 * rtstream._history_publish(window_id, until, session_keep): the slot's
 * progress, as if this node's history writer had written up to until.
 * Called by rtstream._history_release (SECURITY DEFINER, which checks the
 * caller) only.
 */
Datum
rts_history_publish(PG_FUNCTION_ARGS)
{
	int32		window_id = PG_GETARG_INT32(0);
	RtsDatabaseShared *db;
	Oid			ext = get_extension_oid("rtstream", false);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	db = rts_my_database(false);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		RtsWindowSlot *slot = &db->windows[s];

		if (slot->window_id != window_id || slot->extension != ext)
			continue;
		if (!PG_ARGISNULL(2))
			rts_atomic_raise_time(&slot->session_keep,
								  rts_to_unix(PG_GETARG_TIMESTAMPTZ(2)));
		rts_atomic_raise_time(&slot->emitted_until,
							  rts_to_unix(PG_GETARG_TIMESTAMPTZ(1)));
	}
	PG_RETURN_VOID();
}

/* Windows whose nodes were told up to where the history holds them. */
typedef struct Released
{
	int32		window_id;		/* hash key */
	int64		until;
} Released;

static HTAB *released = NULL;
static TimestampTz last_tick = 0;
static MemoryContext tick_cxt = NULL;	/* reset at every tick */

/* What the nodes of a window hold, read one node at a time. */
typedef struct NodesHold
{
	List	   *states;			/* of bytea * */
	int64		wm;				/* lowest watermark of the nodes on the ring */
	bool		blocked;		/* a node on the ring has no watermark */
}			NodesHold;

static void
read_node(RtsWindowDef *def, const char *schema, const char *node,
		  bool draining, NodesHold * h, MemoryContext cxt)
{
	char	   *sql = psprintf("SELECT watermark, state FROM %s.%s",
							   quote_identifier(schema),
							   quote_identifier(psprintf("%s__%s", def->name, node)));
	int64		node_wm = RTS_TIME_NONE;

	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read node \"%s\" of rtstream window \"%s\"", node, def->name);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d = SPI_getbinval(tup, desc, 1, &isnull);

		if (!isnull)
			node_wm = rts_to_unix(DatumGetTimestampTz(d));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			h->states = lappend(h->states, DatumGetByteaPCopy(d));
			MemoryContextSwitchTo(old);
		}
	}
	SPI_freetuptable(SPI_tuptable);

	/*
	 * A node off the ring gets no more rows (but those written straight
	 * into it): its watermark stays where its last row left it, and would
	 * hold every later window back.  Its windows close with the others'.
	 */
	if (draining)
		return;

	/*
	 * A node on the ring with no watermark has not applied a row yet, maybe
	 * one already delivered to it: nothing is closed until it has.
	 */
	if (node_wm == RTS_TIME_NONE)
		h->blocked = true;
	else if (h->wm == RTS_TIME_NONE || node_wm < h->wm)
		h->wm = node_wm;
}

static TupleDesc
history_desc(RtsWindowDef *def)
{
	TupleDesc	desc = CreateTemplateTupleDesc(def->noutputs + 2);

	TupleDescInitEntry(desc, 1, "window_start", TIMESTAMPTZOID, -1, 0);
	TupleDescInitEntry(desc, 2, "window_end", TIMESTAMPTZOID, -1, 0);
	for (int i = 0; i < def->noutputs; i++)
		TupleDescInitEntry(desc, i + 3, def->outputs[i].name, def->outputs[i].type,
						   def->outputs[i].typmod, 0);
	return desc;
}

/*
 * One distributed window, in a transaction: write what every node has
 * closed and the history lacks; for sessions without a history, only work
 * out which partial sessions no open session needs.  Sets *until and
 * *session_keep to what the nodes may be told (RTS_TIME_UNKNOWN: nothing).
 */
static void
window_tick(RtsWindowDef *def, const char *schema, int64 *until,
			int64 *session_keep)
{
	RtsStreamNodes *sn = rts_stream_nodes(def->stream);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "rtstream node history",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	NodesHold	h = {NIL, RTS_TIME_NONE, false};
	RtsOwnerSwitch sw = {0};
	int64		emitted;
	XLogRecPtr	lsn;
	dsa_area   *area;
	bool		history = OidIsValid(def->history);
	char	   *relname = NULL;

	*until = *session_keep = RTS_TIME_UNKNOWN;
	SPI_connect();
	emitted = rts_history_progress(def->id, &lsn);
	if (history)
	{
		relname = get_rel_name(def->history);
		if (relname == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("history table of rtstream window \"%s\" does not exist", def->name)));
		relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(def->history)),
											 relname);
	}

	/* the nodes, read and combined as the window's owner */
	rts_owner_enter(def->owner, def->search_path, &sw);
	for (int i = 0; i < sn->nall; i++)
		read_node(def, schema, NameStr(sn->all[i]), sn->draining[i], &h, cxt);
	if (!h.blocked && h.wm != RTS_TIME_NONE)
	{
		TupleDesc	desc = history_desc(def);
		Tuplestorestate *store = tuplestore_begin_heap(false, false, work_mem);
		RtsCombineOut out;
		int64		target;

		rts_combine_out_init(&out, def, store, desc);
		area = dsa_create(rts_shared->tranche_id);
		PG_TRY();
		{
			RtsPaneTable *t = rts_merge_node_states(def, area, h.states);

			if (history)
				target = rts_history_collect(def, area, &t, 1, h.wm, emitted,
											 RTS_TIME_NONE, &out, session_keep);
			else
			{
				/* sessions without history: only what is still needed */
				RtsCombineOut none;

				rts_combine_out_init(&none, def, store, desc);
				target = rts_history_collect(def, area, &t, 1, h.wm, RTS_TIME_NONE,
											 RTS_TIME_NONE, &none, session_keep);
				tuplestore_clear(store);
				out.rows = 0;
			}
		}
		PG_FINALLY();
		{
			dsa_detach(area);
		}
		PG_END_TRY();
		if (history && target != RTS_TIME_UNKNOWN)
		{
			if (out.rows > 0)
				rts_history_insert_rows(def, relname, desc, store);
			if (def->retention_us > 0)
			{
				Oid			rtypes[1] = {TIMESTAMPTZOID};
				Datum		rvals[1] = {TimestampTzGetDatum(rts_from_unix(h.wm - def->retention_us))};

				if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE window_end < $1", relname),
										  1, rtypes, rvals, NULL, false, 0) != SPI_OK_DELETE)
					elog(ERROR, "could not prune the history of window \"%s\"", def->name);
			}
		}
		if (target != RTS_TIME_UNKNOWN)
			*until = target;
		else if (emitted != RTS_TIME_NONE)
			*until = emitted;
		tuplestore_end(store);
		if (history && target != RTS_TIME_UNKNOWN)
		{
			rts_owner_leave(&sw);
			/* the progress, in the same transaction: each window once */
			{
				Oid			ptypes[2] = {INT4OID, TIMESTAMPTZOID};
				Datum		pvals[2] = {Int32GetDatum(def->id),
				TimestampTzGetDatum(rts_from_unix(target))};

				if (SPI_execute_with_args("INSERT INTO rtstream.history_progress (window_id, emitted_until, lsn) "
										  "VALUES ($1, $2, '0/0') ON CONFLICT (window_id) "
										  "DO UPDATE SET emitted_until = excluded.emitted_until",
										  2, ptypes, pvals, NULL, false, 0) != SPI_OK_INSERT)
					elog(ERROR, "could not write rtstream.history_progress");
			}
			if (def->notify)
				rts_notify_closed(def, emitted == RTS_TIME_NONE && out.rows > 0 ?
								  out.min_end - 1 : emitted, target);
		}
	}
	rts_owner_leave(&sw);
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/*
 * Tell every node that the history holds the windows ending up to until:
 * they may drop those panes.  As the window's owner, through the stream's
 * inbox on each node.
 */
static void
release_nodes(RtsWindowDef *def, List *nodes, int64 until, int64 session_keep)
{
	RtsOwnerSwitch sw = {0};
	ListCell   *lc;
	char	   *cmd;
	Relation	rel = table_open(def->stream, AccessShareLock);
	char	   *nsp = get_namespace_name(RelationGetNamespace(rel));
	char	   *stream = pstrdup(RelationGetRelationName(rel));

	table_close(rel, AccessShareLock);
	cmd = psprintf("SELECT rtstream._history_release(%s, '%s'::timestamptz, %s)",
				   quote_literal_cstr(def->name),
				   timestamptz_to_str(rts_from_unix(until)),
				   session_keep == RTS_TIME_UNKNOWN || session_keep == RTS_TIME_NONE ? "NULL" :
				   psprintf("'%s'::timestamptz", timestamptz_to_str(rts_from_unix(session_keep))));
	SPI_connect();
	rts_owner_enter(def->owner, "pg_catalog, pg_temp", &sw);
	foreach(lc, nodes)
	{
		Oid			types[1] = {TEXTOID};
		Datum		vals[1] = {CStringGetTextDatum(cmd)};
		char	   *sql = psprintf("INSERT INTO %s.%s (command) VALUES ($1)",
								   quote_identifier(nsp),
								   quote_identifier(psprintf("%s__%s", stream, (char *) lfirst(lc))));

		if (SPI_execute_with_args(sql, 1, types, vals, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not release the history of window \"%s\" on node \"%s\"",
				 def->name, (char *) lfirst(lc));
	}
	rts_owner_leave(&sw);
	SPI_finish();
}

/* The distributed windows with a history, or of sessions. */
static List *
held_windows(void)
{
	List	   *ids = NIL;
	Oid			nsp = get_namespace_oid("rtstream", true);

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("stream_nodes", nsp)))
		return NIL;
	SPI_connect();
	if (SPI_execute("SELECT w.id FROM rtstream.windows w "
					"WHERE (w.history IS NOT NULL OR w.gap IS NOT NULL) "
					"AND EXISTS (SELECT 1 FROM rtstream.stream_nodes n WHERE n.stream = w.stream) "
					"ORDER BY w.id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.windows");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		ids = lappend_int(ids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return ids;
}

/*
 * The shipper, once a second: the history of every distributed window
 * with one, each in its own transactions.  An error is logged once per
 * distinct message and tried again at the next tick.
 */
void
rts_history_nodes_tick(void)
{
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext caller = CurrentMemoryContext;
	List	   *ids;
	ListCell   *lc;
	static char last_error[256];

	if (!TimestampDifferenceExceeds(last_tick, now, 1000))
		return;
	last_tick = now;
	if (released == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(Released);
		released = hash_create("rtstream released histories", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS);
	}

	if (tick_cxt == NULL)
		tick_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream node history tick",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(tick_cxt);
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		List	   *in_txn = held_windows();
		MemoryContext old = MemoryContextSwitchTo(tick_cxt);

		/* out of the transaction's memory */
		ids = list_copy(in_txn);
		MemoryContextSwitchTo(old);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(tick_cxt);

	foreach(lc, ids)
	{
		int32		id = lfirst_int(lc);
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			RtsWindowDef *def;
			int64		until,
						session_keep;
			Released   *r;
			bool		found;

			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			def = rts_windef_load(id, NULL, true, true);
			if (def != NULL && OidIsValid(def->owner))
			{
				char	   *schema = get_namespace_name(get_rel_namespace(def->view));

				window_tick(def, schema, &until, &session_keep);
				PopActiveSnapshot();
				CommitTransactionCommand();

				/* once the history is committed, the nodes may drop it */
				r = hash_search(released, &id, HASH_ENTER, &found);
				if (!found)
					r->until = RTS_TIME_NONE;
				if (until != RTS_TIME_UNKNOWN && (until > r->until || RTS_IS_SESSION(def)))
				{
					StartTransactionCommand();
					PushActiveSnapshot(GetTransactionSnapshot());
					def = rts_windef_load(id, NULL, true, true);
					if (def != NULL)
						release_nodes(def, rts_window_nodes(def), until, session_keep);
					PopActiveSnapshot();
					CommitTransactionCommand();
					r->until = until;
				}
			}
			else
			{
				PopActiveSnapshot();
				CommitTransactionCommand();
			}
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			if (strncmp(last_error, edata->message, sizeof(last_error) - 1) != 0)
				ereport(WARNING,
						(errcode(edata->sqlerrcode),
						 errmsg("rtstream could not write the history of a distributed window: %s",
								edata->message),
						 edata->detail ? errdetail("%s", edata->detail) : 0,
						 errhint("It is tried again every second; the nodes keep the windows meanwhile.")));
			strlcpy(last_error, edata->message, sizeof(last_error));
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(caller);
}
