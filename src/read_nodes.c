/*-------------------------------------------------------------------------
 *
 * read_nodes.c
 *	  Reading a window of a distributed stream: its rows live on nodes
 *	  (postgres_fdw foreign servers), each aggregating its share in the same
 *	  window as a plain local one.  The coordinator fetches each node's
 *	  partial state (rtstream.window_state(), through the foreign table
 *	  <schema>."<window>__<node>"), merges the states into one table of a
 *	  backend-private DSA area, as a worker merges checkpoints, and emits
 *	  its rows as read.c does for the workers' tables.
 *
 *	  The nodes are read as the window's owner, as PostgreSQL reads a
 *	  foreign table under a view as the view's owner: postgres_fdw uses the
 *	  owner's user mapping.  By default every node is read by one query (a
 *	  UNION ALL, which postgres_fdw may run as an asynchronous Append), and
 *	  a node that fails fails the read; with rtstream.allow_partial_results
 *	  each node is read in a subtransaction of its own, and a node that
 *	  fails is left out with a WARNING.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "rtstream.h"
#include "eventtime.h"
#include "history.h"
#include "owner.h"
#include "nodes.h"
#include "read.h"
#include "state_serial.h"

/* The columns of rtstream.window_state(), as the queries below list them. */
enum
{
	NCOL_WATERMARK = 1,
	NCOL_NEWEST,
	NCOL_STATE
};

/* What the nodes sent: their states, newest times and watermarks. */
typedef struct NodeStates
{
	List	   *states;			/* of bytea *, one per node worker */
	int64		newest;			/* the newest of the nodes' newest times */
	int64		min_wm;			/* of the nodes that have a watermark */
	int64		max_wm;
} NodeStates;

/*
 * The nodes of a window's stream, by name; NIL if the stream is not
 * distributed (or rtstream.stream_nodes does not exist: an older version
 * of the extension).
 */
List *
rts_window_nodes(RtsWindowDef *def)
{
	RtsStreamNodes *sn = rts_stream_nodes(def->stream);
	List	   *nodes = NIL;

	/* from this backend's cache of rtstream.stream_nodes (nodes.c) */
	for (int i = 0; i < sn->nall; i++)
		nodes = lappend(nodes, pstrdup(NameStr(sn->all[i])));
	return nodes;
}

/* The query of one node: the rows of its foreign table for the window. */
static void
append_node_query(StringInfo sql, RtsWindowDef *def, const char *schema,
				  const char *node)
{
	appendStringInfo(sql, "SELECT watermark, newest, state FROM %s.%s",
					 quote_identifier(schema),
					 quote_identifier(psprintf("%s__%s", def->name, node)));
}

/* Add the rows of the last SPI query to ns, copied into cxt. */
static void
add_rows(NodeStates *ns, MemoryContext cxt)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		Datum		d;
		MemoryContext old;

		d = SPI_getbinval(tup, desc, NCOL_WATERMARK, &isnull);
		if (!isnull)
		{
			int64		wm = rts_to_unix(DatumGetTimestampTz(d));

			ns->min_wm = ns->min_wm == RTS_TIME_NONE ? wm : Min(ns->min_wm, wm);
			ns->max_wm = Max(ns->max_wm, wm);
		}
		d = SPI_getbinval(tup, desc, NCOL_NEWEST, &isnull);
		if (!isnull)
			ns->newest = Max(ns->newest, rts_to_unix(DatumGetTimestampTz(d)));
		d = SPI_getbinval(tup, desc, NCOL_STATE, &isnull);
		if (isnull)
			continue;
		old = MemoryContextSwitchTo(cxt);
		ns->states = lappend(ns->states, DatumGetByteaPCopy(d));
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Error context of fetch_all: which window, from which nodes. */
typedef struct FetchAllContext
{
	const char *window;
	StringInfoData nodes;
} FetchAllContext;

static void
fetch_all_context(void *arg)
{
	FetchAllContext *fc = arg;

	errcontext("reading rtstream window \"%s\" from nodes %s",
			   fc->window, fc->nodes.data);
}

/*
 * Every node in one query; an error of any node is the read's.  A node that
 * cannot be reached is named by postgres_fdw ("could not connect to server
 * ..."); the context names them all.
 */
static void
fetch_all(RtsWindowDef *def, const char *schema, List *nodes, NodeStates *ns,
		  MemoryContext cxt)
{
	StringInfoData sql;
	FetchAllContext fc;
	ErrorContextCallback errcb;
	ListCell   *lc;

	initStringInfo(&sql);
	fc.window = def->name;
	initStringInfo(&fc.nodes);
	foreach(lc, nodes)
	{
		if (lc != list_head(nodes))
		{
			appendStringInfoString(&sql, " UNION ALL ");
			appendStringInfoString(&fc.nodes, ", ");
		}
		append_node_query(&sql, def, schema, lfirst(lc));
		appendStringInfo(&fc.nodes, "\"%s\"", (char *) lfirst(lc));
	}
	errcb.callback = fetch_all_context;
	errcb.arg = &fc;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	if (SPI_execute(sql.data, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the nodes of rtstream window \"%s\"", def->name);
	error_context_stack = errcb.previous;
	add_rows(ns, cxt);
	pfree(sql.data);
	pfree(fc.nodes.data);
}

/*
 * One node, in a subtransaction (as a PL/pgSQL exception block): false,
 * with a WARNING, if it fails.  A cancel is not a node's failure: it is
 * thrown again.
 */
static bool
fetch_one(RtsWindowDef *def, const char *schema, const char *node,
		  NodeStates *ns, MemoryContext cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	NodeStates	one = *ns;

	one.states = NIL;			/* this node's, added once it succeeded */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		StringInfoData sql;

		initStringInfo(&sql);
		append_node_query(&sql, def, schema, node);
		if (SPI_execute(sql.data, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read node \"%s\" of rtstream window \"%s\"",
				 node, def->name);
		add_rows(&one, cxt);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("rtstream window \"%s\" is missing node \"%s\"",
						def->name, node),
				 edata->detail ?
				 errdetail("%s: %s", edata->message, edata->detail) :
				 errdetail("%s", edata->message)));
		FreeErrorData(edata);
		return false;
	}
	PG_END_TRY();
	oldcxt = MemoryContextSwitchTo(cxt);	/* not SPI's, freed by SPI_finish */
	one.states = list_concat(ns->states, one.states);
	MemoryContextSwitchTo(oldcxt);
	*ns = one;
	return true;
}

/*
 * The states of the window's nodes, in cxt, read as the window's owner
 * under SECURITY_RESTRICTED_OPERATION.  A switch inside a subtransaction
 * would be undone by its rollback (owner.c): the switch is made once,
 * around every subtransaction.
 */
static void
fetch_states(RtsWindowDef *def, List *nodes, NodeStates *ns, MemoryContext cxt)
{
	Oid			owner = rts_view_owner(def->view);
	char	   *schema = get_namespace_name(get_rel_namespace(def->view));
	RtsOwnerSwitch sw = {0};

	if (!OidIsValid(owner) || schema == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the view of rtstream window \"%s\" does not exist",
						def->name)));
	SPI_connect();
	rts_owner_enter(owner, def->search_path, &sw);
	if (!rts_allow_partial_results)
		fetch_all(def, schema, nodes, ns, cxt);
	else
	{
		ListCell   *lc;

		foreach(lc, nodes)
			(void) fetch_one(def, schema, lfirst(lc), ns, cxt);
	}
	rts_owner_leave(&sw);
	SPI_finish();
}

/*
 * Merge the nodes' states into one table.  rts_table_merge leaves out the
 * panes that the merged table's own newest time says are no longer needed,
 * but the nodes' watermarks may be behind their newest times (a worker not
 * caught up), and window_results starts from the watermark: every pane a
 * node sent must be kept.  For a definition with a history whose progress
 * is unknown, rts_keep_from keeps everything.
 */
RtsPaneTable *
rts_merge_node_states(RtsWindowDef *def, dsa_area *area, List *states)
{
	RtsWindowDef keep_all = *def;
	MemoryContext aggcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "rtstream node states",
												 ALLOCSET_DEFAULT_SIZES);
	RtsPaneTable *t;
	ListCell   *lc;

	keep_all.history = def->view;
	t = dsa_get_address(area, rts_table_create(area, def));
	foreach(lc, states)
	{
		bytea	   *b = lfirst(lc);

		/* foreign: a group may come from several nodes (mixed_until_pane) */
		rts_table_merge(&keep_all, area, t, VARDATA_ANY(b),
						VARSIZE_ANY_EXHDR(b), true, 0, RTS_TIME_NONE, aggcxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(aggcxt);
	return t;
}

/*
 * The watermark of a distributed window, from those of its nodes (each
 * judges its own rows).  A node drops the panes of the windows its own
 * watermark has closed, unless a history still needs them: with a
 * history, the nodes keep them until the coordinator's history, written
 * once every node has closed a window, holds it (history_nodes.c), so the
 * windows still open are those of the lowest watermark, whole.  Without
 * one, the windows between the lowest and the highest watermark would lack
 * the rows of the nodes ahead: the highest is taken, which is also the
 * watermark of one server holding every row.
 */
static int64
window_watermark(RtsWindowDef *def, NodeStates *ns)
{
	int64		wm = ns->min_wm;
	int64		emitted;
	XLogRecPtr	lsn;

	if (!OidIsValid(def->history))
		return ns->max_wm;

	/*
	 * What the history holds is closed, whatever the lowest node says (a
	 * node off the ring keeps the watermark of its last row).
	 */
	emitted = rts_history_progress(def->id, &lsn);
	if (emitted != RTS_TIME_NONE)
		wm = wm == RTS_TIME_NONE ? emitted : Max(wm, emitted);
	return wm;
}

/*
 * The rows of a distributed window, from its nodes.  The merged table
 * lives in a DSA area of this backend alone, with no size limit
 * (rtstream.memory_limit bounds the shared area only): it holds what the
 * nodes sent, already in this backend's memory.
 */
void
rts_read_nodes(RtsWindowDef *def, List *nodes, bool all_open,
			   RtsCombineOut *out)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "rtstream node read",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	NodeStates	ns = {NIL, RTS_TIME_NONE, RTS_TIME_NONE, RTS_TIME_NONE};
	dsa_area   *area;

	fetch_states(def, nodes, &ns, cxt);
	if (ns.states == NIL || ns.newest == RTS_TIME_NONE)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return;					/* no node has rows yet */
	}

	area = dsa_create(rts_shared->tranche_id);
	PG_TRY();
	{
		RtsPaneTable *t = rts_merge_node_states(def, area, ns.states);

		/* one table: its entries are whole groups, but for closed panes */
		rts_read_emit(def, area, &t, 1, true, ns.newest, window_watermark(def, &ns),
					  all_open, out);
	}
	PG_FINALLY();
	{
		dsa_detach(area);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
