/*-------------------------------------------------------------------------
 *
 * read.c
 *	  rtstream.window_rows(name): the rows of a window's view.  For each
 *	  group, the panes of the current window are combined, across workers
 *	  too (a group key need not be the partition key), and finalised.
 *	  The cost is O(groups x panes), whatever the history.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "aggstate.h"
#include "groupkey.h"

PG_FUNCTION_INFO_V1(rts_window_rows);

/* Window definitions of this backend, valid while catalog_gen holds. */
typedef struct CachedWindow
{
	char		name[NAMEDATALEN];
	RtsWindowDef *def;
} CachedWindow;

static HTAB *window_cache = NULL;
static MemoryContext window_cache_cxt = NULL;
static uint32 window_cache_gen = 0;

/* A group being combined: its key and its accumulated states. */
typedef struct ReaderKey
{
	uint32		hash;
	uint32		len;
	const char *bytes;
} ReaderKey;

typedef struct ReaderGroup
{
	ReaderKey	key;
	uint64		flags;			/* native states: RTS_FLAG_NULL bits */
	Datum	   *words;			/* native states */
	RtsState   *states;			/* catalog-path states */
} ReaderGroup;

static uint32
readerkey_hash(const void *key, Size keysize)
{
	return ((const ReaderKey *) key)->hash;
}

static int
readerkey_match(const void *key1, const void *key2, Size keysize)
{
	const ReaderKey *a = key1;
	const ReaderKey *b = key2;

	if (a->hash != b->hash || a->len != b->len)
		return 1;
	return memcmp(a->bytes, b->bytes, a->len);
}

static RtsWindowDef *
reader_window(const char *name, RtsDatabaseShared *db)
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
		RtsWindowDef *def = rts_windef_load(0, name, false);

		cw = hash_search(window_cache, key, HASH_ENTER, &found);
		cw->def = def;
	}
	MemoryContextSwitchTo(old);
	return cw->def;
}

/* Start a group's accumulators. */
static void
group_init(RtsWindowDef *def, ReaderGroup *g)
{
	g->flags = 0;
	memset(g->words, 0, sizeof(Datum) * Max(def->nwords, 1));
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast == RTS_FAST_NONE)
			g->states[a] = rts_state_initial(agg);
		else if (agg->fast != RTS_FAST_COUNT && agg->fast != RTS_FAST_AVG_INT &&
				 agg->fast != RTS_FAST_AVG_FLOAT)
			g->flags |= RTS_FLAG_NULL(a);
	}
}

static void
group_add_pane(RtsWindowDef *def, dsa_area *area, ReaderGroup *g, RtsPane *pane)
{
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast != RTS_FAST_NONE)
			rts_fast_combine(agg, a, g->words, &g->flags, pane);
		else
			rts_state_combine(agg, &g->states[a],
							  rts_state_from_pane(area, agg, a, pane));
	}
}

/* Finalise a group into a row of the result. */
static void
group_emit(RtsWindowDef *def, ReturnSetInfo *rsinfo, ReaderGroup *g,
		   Datum *values, bool *nulls, Datum *keyvalues, bool *keynulls)
{
	rts_groupkey_decode(def, g->key.bytes, g->key.len, keyvalues, keynulls);
	for (int i = 0; i < def->noutputs; i++)
	{
		RtsOutputCol *out = &def->outputs[i];

		if (out->is_group)
		{
			values[i + 2] = keyvalues[out->index];
			nulls[i + 2] = keynulls[out->index];
		}
		else
		{
			RtsAggDef  *agg = &def->aggs[out->index];

			if (agg->fast != RTS_FAST_NONE)
				values[i + 2] = rts_fast_final(agg, out->index, g->words,
											   g->flags, &nulls[i + 2]);
			else
				values[i + 2] = rts_state_final(agg, &g->states[out->index],
												&nulls[i + 2]);
		}
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static ReaderGroup *
reader_group(HTAB *groups, RtsWindowDef *def, const char *keybytes,
			 uint32 keylen, uint32 hash)
{
	ReaderKey	key;
	ReaderGroup *g;
	bool		found;

	key.hash = hash;
	key.len = keylen;
	key.bytes = keybytes;
	g = hash_search(groups, &key, HASH_ENTER, &found);
	if (!found)
	{
		char	   *copy = palloc(Max(keylen, 1));

		memcpy(copy, keybytes, keylen);
		g->key.bytes = copy;
		g->words = palloc(sizeof(Datum) * Max(def->nwords, 1));
		g->states = palloc(sizeof(RtsState) * Max(def->naggs, 1));
		group_init(def, g);
	}
	return g;
}

/* Whether an entry has a pane in [first_pane, end_pane). */
static inline bool
entry_live(RtsPaneTable *t, RtsGroupEntry *e, int64 first_pane, int64 end_pane)
{
	for (int p = 0; p < t->npanes; p++)
	{
		int64		n = rts_entry_pane(t, e, p)->pane_no;

		if (n >= first_pane && n < end_pane)
			return true;
	}
	return false;
}

static void
entry_add(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t, RtsGroupEntry *e,
		  ReaderGroup *g, int64 first_pane, int64 end_pane)
{
	for (int p = 0; p < t->npanes; p++)
	{
		RtsPane    *pane = rts_entry_pane(t, e, p);

		if (pane->pane_no >= first_pane && pane->pane_no < end_pane)
			group_add_pane(def, area, g, pane);
	}
}

/*
 * Groups that live in one worker only (the group key holds the partition
 * key): each entry is a whole group, finalised as it is met.
 */
static void
emit_disjoint(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
			  int64 first_pane, int64 end_pane, ReturnSetInfo *rsinfo,
			  Datum *values, bool *nulls, Datum *keyvalues, bool *keynulls)
{
	MemoryContext groupcxt = AllocSetContextCreate(CurrentMemoryContext,
												   "rtstream group",
												   ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(groupcxt);
	ReaderGroup g;

	g.words = MemoryContextAlloc(old, sizeof(Datum) * Max(def->nwords, 1));
	g.states = MemoryContextAlloc(old, sizeof(RtsState) * Max(def->naggs, 1));
	rts_agg_context_set(groupcxt);
	for (uint32 id = 0; id < t->ngroups; id++)
	{
		RtsGroupEntry *e = rts_table_entry(area, t, id);

		if (!entry_live(t, e, first_pane, end_pane))
			continue;
		g.key.len = e->keylen;
		g.key.bytes = e->keylen ? dsa_get_address(area, e->key) : "";
		group_init(def, &g);
		entry_add(def, area, t, e, &g, first_pane, end_pane);
		group_emit(def, rsinfo, &g, values, nulls, keyvalues, keynulls);
		MemoryContextReset(groupcxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(groupcxt);
}

/* Combine one worker's groups of the window [first_pane, end_pane). */
static void
combine_table(HTAB *groups, RtsWindowDef *def, dsa_area *area,
			  RtsPaneTable *t, int64 first_pane, int64 end_pane)
{
	for (uint32 id = 0; id < t->ngroups; id++)
	{
		RtsGroupEntry *e = rts_table_entry(area, t, id);

		if (!entry_live(t, e, first_pane, end_pane))
			continue;
		entry_add(def, area, t, e,
				  reader_group(groups, def,
							   e->keylen ? dsa_get_address(area, e->key) : "",
							   e->keylen, e->hash),
				  first_pane, end_pane);
		CHECK_FOR_INTERRUPTS();
	}
}

Datum
rts_window_rows(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RtsDatabaseShared *db;
	RtsWindowDef *def;
	int			slot = -1;
	dsa_area   *area;
	bool		has_time = false;
	TimestampTz max_time = 0;
	int64		end_us,
				first_pane,
				end_pane;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *keyvalues;
	bool	   *keynulls;
	int			nworkers;
	bool		disjoint;
	int64		mixed_until = PG_INT64_MIN;

	rts_check_server();
	db = rts_my_database(false);
	def = reader_window(name, db);

	/* the view's privileges hold for the function too */
	if (pg_class_aclcheck(def->view, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for rtstream window \"%s\"", name),
				 errhint("Reading a window needs SELECT on its view.")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (rsinfo->setDesc->natts != def->noutputs + 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column definition list of rtstream window \"%s\" must have %d columns",
						name, def->noutputs + 2)));

	LWLockAcquire(&db->lock, LW_SHARED);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		if (db->windows[s].window_id == def->id)
			slot = s;
	LWLockRelease(&db->lock);
	if (slot < 0)
		PG_RETURN_NULL();		/* no worker has loaded it yet: no rows */

	area = rts_dsa();
	nworkers = db->nworkers;
	disjoint = def->groups_disjoint || nworkers == 1;
	for (int w = 0; w < nworkers; w++)
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);

	for (int w = 0; w < nworkers; w++)
	{
		dsa_pointer tp = db->windows[slot].tables[w];
		RtsPaneTable *t;

		if (!DsaPointerIsValid(tp))
			continue;
		t = dsa_get_address(area, tp);
		if (t->has_time && (!has_time || t->max_time > max_time))
		{
			max_time = t->max_time;
			has_time = true;
		}
		mixed_until = Max(mixed_until, t->mixed_until_pane);
	}

	if (!has_time)
	{
		for (int w = nworkers - 1; w >= 0; w--)
			LWLockRelease(&db->workers[w].lock);
		PG_RETURN_NULL();
	}

	/* the current window ends at the first slide boundary after max_time */
	end_us = (rts_floor_div(max_time + RTS_UNIX_EPOCH_OFFSET_US, def->slide_us) + 1) *
		def->slide_us;
	end_pane = end_us / def->pane_us;
	first_pane = end_pane - def->npanes;
	if (mixed_until >= first_pane)
		disjoint = false;		/* see RtsPaneTable.mixed_until_pane */

	values = palloc(sizeof(Datum) * (def->noutputs + 2));
	nulls = palloc(sizeof(bool) * (def->noutputs + 2));
	keyvalues = palloc(sizeof(Datum) * Max(def->ngroups, 1));
	keynulls = palloc(sizeof(bool) * Max(def->ngroups, 1));
	values[0] = TimestampTzGetDatum(end_us - def->size_us - RTS_UNIX_EPOCH_OFFSET_US);
	values[1] = TimestampTzGetDatum(end_us - RTS_UNIX_EPOCH_OFFSET_US);
	nulls[0] = nulls[1] = false;

	PG_TRY();
	{
		if (disjoint)
		{
			for (int w = 0; w < nworkers; w++)
			{
				dsa_pointer tp = db->windows[slot].tables[w];

				if (DsaPointerIsValid(tp))
					emit_disjoint(def, area, dsa_get_address(area, tp), first_pane,
								  end_pane, rsinfo, values, nulls, keyvalues, keynulls);
			}
		}
		else
		{
			HASHCTL		ctl;
			HTAB	   *groups;
			HASH_SEQ_STATUS seq;
			ReaderGroup *g;

			ctl.keysize = sizeof(ReaderKey);
			ctl.entrysize = sizeof(ReaderGroup);
			ctl.hash = readerkey_hash;
			ctl.match = readerkey_match;
			ctl.hcxt = CurrentMemoryContext;
			groups = hash_create("rtstream window groups", 1024, &ctl,
								 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
			rts_agg_context_set(CurrentMemoryContext);
			for (int w = 0; w < nworkers; w++)
			{
				dsa_pointer tp = db->windows[slot].tables[w];

				if (DsaPointerIsValid(tp))
					combine_table(groups, def, area, dsa_get_address(area, tp),
								  first_pane, end_pane);
			}
			hash_seq_init(&seq, groups);
			while ((g = hash_seq_search(&seq)) != NULL)
				group_emit(def, rsinfo, g, values, nulls, keyvalues, keynulls);
		}
	}
	PG_FINALLY();
	{
		for (int w = nworkers - 1; w >= 0; w--)
			LWLockRelease(&db->workers[w].lock);
	}
	PG_END_TRY();
	PG_RETURN_NULL();
}
