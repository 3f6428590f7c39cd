/*-------------------------------------------------------------------------
 *
 * read.c
 *	  rtstream.window_rows(name): the rows of a window's view, and
 *	  rtstream.window_results(name): those of every window still open.  For
 *	  each group, the panes of a window are combined, across workers too (a
 *	  group key need not be the partition key), and finalised.  The cost is
 *	  O(groups x panes), whatever the history.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "lib/qunique.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "combine.h"
#include "eventtime.h"
#include "groupkey.h"
#include "read.h"

PG_FUNCTION_INFO_V1(rts_window_rows);
PG_FUNCTION_INFO_V1(rts_window_rows_at);
PG_FUNCTION_INFO_V1(rts_window_results);

/* Window definitions of this backend, valid while catalog_gen holds. */
typedef struct CachedWindow
{
	char		name[NAMEDATALEN];
	RtsWindowDef *def;
} CachedWindow;

static HTAB *window_cache = NULL;
static MemoryContext window_cache_cxt = NULL;
static uint32 window_cache_gen = 0;

/* A window's definition, cached for this backend. */
RtsWindowDef *
rts_reader_window(const char *name, RtsDatabaseShared *db)
{
	uint32		gen = pg_atomic_read_u32(&db->catalog_gen);
	CachedWindow *cw;
	bool		found;
	char		key[NAMEDATALEN];
	MemoryContext old;

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rtstream window \"%s\" does not exist", name)));
	if (window_cache == NULL || gen != window_cache_gen)
	{
		HASHCTL		ctl;

		if (window_cache_cxt)
			MemoryContextDelete(window_cache_cxt);
		window_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
												 "rtstream window cache",
												 ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(CachedWindow);
		ctl.hcxt = window_cache_cxt;
		window_cache = hash_create("rtstream windows", 16, &ctl,
								   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		window_cache_gen = gen;
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, NAMEDATALEN);
	cw = hash_search(window_cache, key, HASH_FIND, &found);
	if (found)
		return cw->def;

	old = MemoryContextSwitchTo(window_cache_cxt);
	{
		RtsWindowDef *def = rts_windef_load(0, name, false, false);

		/*
		 * rts_windef_load may leave def->name in SPI memory, freed when it
		 * returns (it is copied after an SPI call that switches back to
		 * SPI's context): the cache keeps its own copy.
		 */
		def->name = pstrdup(key);
		cw = hash_search(window_cache, key, HASH_ENTER, &found);
		cw->def = def;
	}
	MemoryContextSwitchTo(old);
	return cw->def;
}

/* An entry's panes in [first_pane, end_pane), in ring order; their number. */
static inline int
entry_panes(RtsPaneTable *t, RtsGroupEntry *e, int64 first_pane, int64 end_pane,
			RtsPane **panes)
{
	int			n = 0;

	for (int p = 0; p < t->npanes; p++)
	{
		RtsPane    *pane = rts_entry_pane(t, e, p);
		int64		no = rts_pane_no(t, pane);

		if (no >= first_pane && no < end_pane)
			panes[n++] = pane;
	}
	return n;
}

/*
 * The entries of t a read looks at: NULL for all of them, else those of
 * the keys of window_rows_at found in t, sorted, each once (*n of them).
 */
static uint32 *
entry_ids(dsa_area *area, RtsPaneTable *t, RtsCombineOut *out, int *n)
{
	uint32	   *ids;
	int			found = 0;

	if (!out->only)
		return NULL;
	ids = palloc(sizeof(uint32) * Max(out->nkeys, 1));
	for (int k = 0; k < out->nkeys; k++)
	{
		uint32		id;

		if (rts_table_find(area, t, out->key_hashes[k], out->keys[k].data,
						   out->keys[k].len, &id) != NULL)
			ids[found++] = id;
	}
	if (found > 1)
	{
		/* the same key twice (k IN (1, 1)) must give its group once */
		qsort(ids, found, sizeof(uint32), oid_cmp);
		found = qunique(ids, found, sizeof(uint32), oid_cmp);
	}
	*n = found;
	return ids;
}

/*
 * Groups that live in one worker only (the group key holds the partition
 * key): each entry is a whole group, finalised as it is met.
 */
static void
emit_disjoint(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
			  int64 end_pane, RtsCombineOut *out)
{
	int64		first_pane = rts_window_first(&def->geom, end_pane);
	int64		start_us = rts_pane_start(&def->geom, first_pane);
	int64		end_us = rts_pane_start(&def->geom, end_pane);
	int			nids = 0;
	uint32	   *ids = entry_ids(area, t, out, &nids);	/* not in groupcxt,
														 * reset per group */
	uint32		nentries = ids ? (uint32) nids : t->ngroups;
	MemoryContext groupcxt = AllocSetContextCreate(CurrentMemoryContext,
												   "rtstream group",
												   ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(groupcxt);
	RtsCombineGroup g;
	RtsPane    *panes[RTS_MAX_PANES];
	int			n;

	g.words = MemoryContextAlloc(old, sizeof(Datum) * Max(def->nwords, 1));
	g.states = MemoryContextAlloc(old, sizeof(RtsState) * Max(def->naggs, 1));
	rts_agg_context_set(groupcxt);
	for (uint32 k = 0; k < nentries; k++)
	{
		RtsGroupEntry *e = rts_table_entry(area, t, ids ? ids[k] : k);

		n = entry_panes(t, e, first_pane, end_pane, panes);
		if (n == 0)
			continue;
		g.key.len = e->keylen;
		g.key.bytes = rts_entry_key(area, e);
		rts_combine_init(def, &g);
		rts_combine_panes(def, area, &g, panes, n);
		rts_combine_emit(def, &g, out, start_us, end_us);
		MemoryContextReset(groupcxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(groupcxt);
}

/* Groups spread over workers: combined in a hash table first. */
static void
emit_merged(RtsWindowDef *def, dsa_area *area, RtsPaneTable **tables,
			int ntables, int64 end_pane, RtsCombineOut *out)
{
	int64		first_pane = rts_window_first(&def->geom, end_pane);
	int64		start_us = rts_pane_start(&def->geom, first_pane);
	int64		end_us = rts_pane_start(&def->geom, end_pane);
	HTAB	   *groups = rts_combine_groups();
	HASH_SEQ_STATUS seq;
	RtsCombineGroup *g;

	rts_agg_context_set(CurrentMemoryContext);
	for (int i = 0; i < ntables; i++)
	{
		RtsPaneTable *t = tables[i];
		int			nids = 0;
		uint32	   *ids = entry_ids(area, t, out, &nids);
		uint32		nentries = ids ? (uint32) nids : t->ngroups;

		for (uint32 k = 0; k < nentries; k++)
		{
			RtsGroupEntry *e = rts_table_entry(area, t, ids ? ids[k] : k);
			RtsPane    *panes[RTS_MAX_PANES];
			int			n = entry_panes(t, e, first_pane, end_pane, panes);

			if (n == 0)
				continue;
			rts_combine_panes(def, area,
							  rts_combine_group(groups, def,
												rts_entry_key(area, e),
												e->keylen, e->hash),
							  panes, n);
			CHECK_FOR_INTERRUPTS();
		}
		/* panes of windows still open that the ring gave up */
		for (uint32 c = 0; c < t->nclosed; c++)
		{
			RtsClosedPane *rec = rts_closed_pane(area, t, c);
			int64		no = rts_pane_no(t, &rec->pane);
			RtsGroupEntry *e;

			if (no < first_pane || no >= end_pane ||
				!rts_entry_id_in(ids, nids, rec->entry_id))
				continue;
			e = rts_table_entry(area, t, rec->entry_id);
			rts_combine_add(def, area,
							rts_combine_group(groups, def,
											  rts_entry_key(area, e),
											  e->keylen, e->hash),
							&rec->pane);
		}
		if (ids)
			pfree(ids);
	}
	hash_seq_init(&seq, groups);
	while ((g = hash_seq_search(&seq)) != NULL)
		rts_combine_emit(def, g, out, start_us, end_us);
	hash_destroy(groups);
}

/*
 * Open sessions: partial sessions of every worker, merged per group; those
 * ending after what the history holds once the watermark is wm (a session
 * ending at wm is open).
 */
static void
emit_sessions(RtsWindowDef *def, dsa_area *area, RtsPaneTable **tables,
			  int ntables, int64 wm, RtsCombineOut *out)
{
	HTAB	   *groups = rts_combine_groups();
	HASH_SEQ_STATUS seq;
	RtsCombineGroup *g;

	rts_agg_context_set(CurrentMemoryContext);
	for (int i = 0; i < ntables; i++)
	{
		int			nids = 0;
		uint32	   *ids = entry_ids(area, tables[i], out, &nids);

		rts_combine_collect_ids(groups, def, area, tables[i], PG_INT64_MIN,
								ids, nids);
	}
	hash_seq_init(&seq, groups);
	while ((g = hash_seq_search(&seq)) != NULL)
	{
		rts_combine_sessions(def, area, g,
							 wm == RTS_TIME_NONE ? PG_INT64_MIN :
							 rts_history_target(def, wm),
							 PG_INT64_MAX, out, NULL);
		CHECK_FOR_INTERRUPTS();
	}
	hash_destroy(groups);
}

/* The view's privileges hold for the functions that read the window too. */
void
rts_reader_check(RtsWindowDef *def)
{
	if (pg_class_aclcheck(def->view, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for rtstream window \"%s\"", def->name),
				 errhint("Reading a window needs SELECT on its view.")));
}

/* The directory slot of a window; -1 if no worker has loaded it yet. */
int
rts_reader_slot(RtsDatabaseShared *db, RtsWindowDef *def)
{
	Oid			ext = get_extension_oid("rtstream", false);
	int			slot = -1;

	LWLockAcquire(&db->lock, LW_SHARED);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (db->windows[s].window_id == def->id && db->windows[s].extension == ext)
			slot = s;
	LWLockRelease(&db->lock);
	return slot;
}

/*
 * Emit the rows of a window from tables that together hold its state: the
 * current window, or every window still open (all_open), as of the newest
 * time and the watermark wm (RTS_TIME_NONE if none).  disjoint: a group
 * lives in one table only (unless the tables say otherwise: closed panes,
 * mixed_until_pane).  Pane pointers must stay valid meanwhile (the
 * workers' locks, or a private area).
 */
void
rts_read_emit(RtsWindowDef *def, dsa_area *area, RtsPaneTable **tables,
			  int ntables, bool disjoint, int64 newest, int64 wm,
			  bool all_open, RtsCombineOut *out)
{
	const RtsGeometry *geom = &def->geom;
	int64		mixed_until = PG_INT64_MIN;
	int64		end,
				last_end;

	if (newest == RTS_TIME_NONE)
		return;					/* no rows yet */
	if (RTS_IS_SESSION(def))
	{
		emit_sessions(def, area, tables, ntables, wm, out);
		return;
	}
	for (int i = 0; i < ntables; i++)
	{
		mixed_until = Max(mixed_until, tables[i]->mixed_until_pane);
		if (tables[i]->nclosed > 0)
			disjoint = false;	/* entries are not whole groups */
	}

	end = last_end = rts_end_current(geom, newest);

	/*
	 * window_results: from the oldest window not closed to the newest
	 * holding the newest time (hopping windows that end after the current
	 * one hold rows too)
	 */
	if (all_open)
	{
		/* no watermark yet: as far back as the panes reach */
		end = wm != RTS_TIME_NONE ? rts_end_closed(geom, wm) + geom->every :
			rts_end_floor(geom, rts_pane_of(geom, newest) - def->npanes) +
			geom->every;
		last_end = rts_end_newest_holding(geom, rts_pane_of(geom, newest));
	}
	for (; end <= last_end; end += geom->every)
	{
		/* see RtsPaneTable.mixed_until_pane */
		if (disjoint && mixed_until < rts_window_first(geom, end))
		{
			for (int i = 0; i < ntables; i++)
				emit_disjoint(def, area, tables[i], end, out);
		}
		else
			emit_merged(def, area, tables, ntables, end, out);
	}
}

/* The rows of a window from this server's workers. */
static void
read_local(RtsWindowDef *def, RtsDatabaseShared *db, bool all_open,
		   RtsCombineOut *out)
{
	int			slot = rts_reader_slot(db, def);
	dsa_area   *area;
	int			nworkers;
	int			ntables = 0;
	RtsPaneTable *tables[RTS_MAX_WORKERS];

	if (slot < 0)
		return;					/* no worker has loaded it yet: no rows */

	area = rts_dsa();
	nworkers = db->nworkers;
	for (int w = 0; w < nworkers; w++)
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);

	PG_TRY();
	{
		int64		wm = rts_window_watermark(db, &db->windows[slot]);
		int64		newest = RTS_TIME_NONE;

		for (int w = 0; w < nworkers; w++)
		{
			dsa_pointer tp = db->windows[slot].tables[w];

			if (!DsaPointerIsValid(tp))
				continue;
			tables[ntables] = dsa_get_address(area, tp);
			newest = Max(newest, rts_table_newest(tables[ntables]));
			ntables++;
		}
		rts_read_emit(def, area, tables, ntables,
					  def->groups_disjoint || nworkers == 1,
					  newest, wm, all_open, out);
	}
	PG_FINALLY();
	{
		for (int w = nworkers - 1; w >= 0; w--)
			if (LWLockHeldByMe(&db->workers[w].lock))
				LWLockRelease(&db->workers[w].lock);
	}
	PG_END_TRY();
}

/* Keys a lookup may read one by one; past it, the whole window is read. */
#define RTS_LOOKUP_MAX_KEYS		10000

/*
 * window_rows_at(name, columns, VARIADIC values): the groups whose keys
 * the values of the view's columns make, if they give every GROUP BY value
 * with its own type (read_pushdown.c passes only such quals; a column that
 * is not a group key is ignored).  A column numbered -n has an array of
 * values (n = ANY (array), n IN (...)): the keys are then every
 * combination.  If they do not make keys, out is left as it is: every
 * group is read.
 */
static void
only_keys(FunctionCallInfo fcinfo, RtsWindowDef *def, RtsCombineOut *out)
{
	ArrayType  *cols = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *attnos;
	int			ncols;
	int			ng = Max(def->ngroups, 1);
	Datum	  **choices = palloc0(sizeof(Datum *) * ng);	/* per group */
	int		   *nchoices = palloc0(sizeof(int) * ng);
	int		   *pick = palloc0(sizeof(int) * ng);
	Datum	   *values = palloc0(sizeof(Datum) * ng);
	bool	   *nulls = palloc0(sizeof(bool) * ng);
	int64		nkeys = 1;

	deconstruct_array(cols, INT2OID, sizeof(int16), true, TYPALIGN_SHORT,
					  &attnos, NULL, &ncols);
	if (ncols != PG_NARGS() - 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rtstream.window_rows_at needs one value per column number")));
	for (int i = 0; i < ncols; i++)
	{
		int			attno = DatumGetInt16(attnos[i]);
		bool		many = attno < 0;
		int			col = Abs(attno) - 3;	/* after start, end */
		Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, i + 2);
		RtsGroupDef *g;
		int			gi;

		if (col < 0 || col >= def->noutputs || !def->outputs[col].is_group)
			continue;
		gi = def->outputs[col].index;
		g = &def->groups[gi];
		if (nchoices[gi] > 0)
			continue;			/* the first qual on it is enough */
		if (!many)
		{
			if (argtype != g->type)
				continue;
			choices[gi] = palloc(sizeof(Datum));
			choices[gi][0] = PG_GETARG_DATUM(i + 2);
			nchoices[gi] = 1;
		}
		else
		{
			ArrayType  *arr;
			bool	   *elnulls;
			Datum	   *elems;
			int			nelems;
			int			n = 0;
			int16		typlen;
			bool		typbyval;
			char		typalign;

			if (argtype != get_array_type(g->type))
				continue;
			arr = PG_GETARG_ARRAYTYPE_P(i + 2);
			if (ARR_ELEMTYPE(arr) != g->type)
				continue;
			get_typlenbyvalalign(g->type, &typlen, &typbyval, &typalign);
			deconstruct_array(arr, g->type, typlen, typbyval, typalign,
							  &elems, &elnulls, &nelems);
			/* a NULL element matches no row */
			for (int e = 0; e < nelems; e++)
				if (!elnulls[e])
					elems[n++] = elems[e];
			if (n == 0)
			{
				/* no value: no group */
				out->only = true;
				out->nkeys = 0;
				return;
			}
			choices[gi] = elems;
			nchoices[gi] = n;
		}
	}
	if (def->ngroups == 0)
		return;
	for (int gi = 0; gi < def->ngroups; gi++)
	{
		if (nchoices[gi] == 0)
			return;
		nkeys *= nchoices[gi];
		if (nkeys > RTS_LOOKUP_MAX_KEYS)
			return;
	}

	/* every combination of the groups' values, the last varying fastest */
	out->keys = palloc(sizeof(StringInfoData) * nkeys);
	out->key_hashes = palloc(sizeof(uint32) * nkeys);
	for (int k = 0; k < nkeys; k++)
	{
		for (int gi = 0; gi < def->ngroups; gi++)
			values[gi] = choices[gi][pick[gi]];
		initStringInfo(&out->keys[k]);
		rts_groupkey_encode(def, values, nulls, &out->keys[k]);
		out->key_hashes[k] = hash_bytes((unsigned char *) out->keys[k].data,
										out->keys[k].len);
		for (int gi = def->ngroups - 1; gi >= 0; gi--)
		{
			if (++pick[gi] < nchoices[gi])
				break;
			pick[gi] = 0;
		}
	}
	out->nkeys = (int) nkeys;
	out->only = true;
}

/*
 * The rows of a window: the current window (the view), or every window
 * still open (window_results); of a distributed stream, combined from the
 * partial states of its nodes.  at: window_rows_at, with key values.
 */
static Datum
window_read(FunctionCallInfo fcinfo, bool all_open, bool at)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RtsDatabaseShared *db;
	RtsWindowDef *def;
	RtsCombineOut out;
	List	   *nodes;

	rts_check_server();
	db = rts_my_database(false);
	def = rts_reader_window(name, db);
	rts_reader_check(def);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (rsinfo->setDesc->natts != def->noutputs + 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column definition list of rtstream window \"%s\" must have %d columns",
						name, def->noutputs + 2)));

	rts_combine_out_init(&out, def, rsinfo->setResult, rsinfo->setDesc);
	if (at)
		only_keys(fcinfo, def, &out);
	nodes = rts_window_nodes(def);
	if (nodes != NIL)
		rts_read_nodes(def, nodes, all_open, &out);
	else
		read_local(def, db, all_open, &out);
	PG_RETURN_NULL();
}

Datum
rts_window_rows(PG_FUNCTION_ARGS)
{
	return window_read(fcinfo, false, false);
}

/*
 * rtstream.window_rows_at(name, columns, VARIADIC values): the rows of the
 * view whose columns (numbers, as in the view) have those values; what
 * read_pushdown.c calls for the view's quals "column = value".  The
 * caller still applies the quals: only the group of the key is read when
 * the values give all of it, every group otherwise.
 */
Datum
rts_window_rows_at(PG_FUNCTION_ARGS)
{
	return window_read(fcinfo, false, true);
}

/*
 * rtstream.window_results(name [, rowtype]): every window still open, each
 * slide position, with the columns of the view.
 */
Datum
rts_window_results(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return window_read(fcinfo, true, false);
}
