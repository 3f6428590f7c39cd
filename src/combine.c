/*-------------------------------------------------------------------------
 *
 * combine.c
 *	  Combining panes into finished windows (see combine.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "combine.h"
#include "eventtime.h"
#include "groupkey.h"

static uint32
combinekey_hash(const void *key, Size keysize)
{
	return ((const RtsCombineKey *) key)->hash;
}

static int
combinekey_match(const void *key1, const void *key2, Size keysize)
{
	const RtsCombineKey *a = key1;
	const RtsCombineKey *b = key2;

	if (a->hash != b->hash || a->len != b->len)
		return 1;
	return memcmp(a->bytes, b->bytes, a->len);
}

/* A hash table of groups, in the current memory context. */
HTAB *
rts_combine_groups(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(RtsCombineKey);
	ctl.entrysize = sizeof(RtsCombineGroup);
	ctl.hash = combinekey_hash;
	ctl.match = combinekey_match;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("rtstream window groups", 1024, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/* The group of a key, made (with its accumulators started) if new. */
RtsCombineGroup *
rts_combine_group(HTAB *groups, RtsWindowDef *def, const char *keybytes,
				  uint32 keylen, uint32 hash)
{
	RtsCombineKey key;
	RtsCombineGroup *g;
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
		g->panes = NIL;
		rts_combine_init(def, g);
	}
	return g;
}

/* Start a group's accumulators. */
void
rts_combine_init(RtsWindowDef *def, RtsCombineGroup *g)
{
	g->flags = 0;
	memset(g->words, 0, sizeof(Datum) * Max(def->nwords, 1));
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast == RTS_FAST_NONE)
			g->states[a] = rts_state_initial(agg);
		else if (agg->fast != RTS_FAST_COUNT && agg->fast != RTS_FAST_AVG_INT &&
				 agg->fast != RTS_FAST_AVG_FLOAT && agg->fast != RTS_FAST_VAR_FLOAT)
			g->flags |= agg->null_bit;
	}
}

void
rts_combine_add(RtsWindowDef *def, dsa_area *area, RtsCombineGroup *g,
				RtsPane *pane)
{
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast != RTS_FAST_NONE)
			rts_fast_combine(agg, g->words, &g->flags, pane);
		else
			rts_state_combine(agg, &g->states[a],
							  rts_state_from_pane(area, agg, pane));
	}
}

/* rts_combine_add of several panes of one group, aggregate by aggregate. */
void
rts_combine_panes(RtsWindowDef *def, dsa_area *area, RtsCombineGroup *g,
				  RtsPane **panes, int npanes)
{
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast != RTS_FAST_NONE)
			rts_fast_combine_panes(agg, g->words, &g->flags, panes, npanes);
		else
			for (int i = 0; i < npanes; i++)
				rts_state_combine(agg, &g->states[a],
								  rts_state_from_pane(area, agg, panes[i]));
	}
}

void
rts_combine_out_init(RtsCombineOut *out, RtsWindowDef *def,
					 Tuplestorestate *store, TupleDesc desc)
{
	out->store = store;
	out->desc = desc;
	out->values = palloc(sizeof(Datum) * (def->noutputs + 2));
	out->nulls = palloc(sizeof(bool) * (def->noutputs + 2));
	out->keyvalues = palloc(sizeof(Datum) * Max(def->ngroups, 1));
	out->keynulls = palloc(sizeof(bool) * Max(def->ngroups, 1));
	out->rows = 0;
	out->min_end = PG_INT64_MAX;
	out->only = false;
}

/* Finalise a group into a row of window [start, end) (Unix microseconds). */
void
rts_combine_emit(RtsWindowDef *def, RtsCombineGroup *g, RtsCombineOut *out,
				 int64 start, int64 end)
{
	Datum	   *values = out->values;
	bool	   *nulls = out->nulls;

	values[0] = TimestampTzGetDatum(rts_from_unix(start));
	values[1] = TimestampTzGetDatum(rts_from_unix(end));
	nulls[0] = nulls[1] = false;
	out->min_end = Min(out->min_end, end);
	rts_groupkey_decode(def, g->key.bytes, g->key.len, out->keyvalues, out->keynulls);
	for (int i = 0; i < def->noutputs; i++)
	{
		RtsOutputCol *col = &def->outputs[i];

		if (col->is_group)
		{
			values[i + 2] = out->keyvalues[col->index];
			nulls[i + 2] = out->keynulls[col->index];
		}
		else
		{
			RtsAggDef  *agg = &def->aggs[col->index];

			if (agg->fast != RTS_FAST_NONE)
				values[i + 2] = rts_fast_final(agg, g->words, g->flags,
											   &nulls[i + 2]);
			else
				values[i + 2] = rts_state_final(agg, &g->states[col->index],
												&nulls[i + 2]);
		}
	}
	tuplestore_putvalues(out->store, out->desc, values, nulls);
	out->rows++;
}

/* Add the panes of a table still needed (rts_keep_from) to their groups. */
void
rts_combine_collect(HTAB *groups, RtsWindowDef *def, dsa_area *area,
					RtsPaneTable *t, int64 keep)
{
	rts_combine_collect_ids(groups, def, area, t, keep, NULL, 0);
}

/* Whether entry id is among ids (sorted), or ids is NULL: all entries. */
bool
rts_entry_id_in(const uint32 *ids, int nids, uint32 id)
{
	return ids == NULL ||
		bsearch(&id, ids, nids, sizeof(uint32), oid_cmp) != NULL;
}

/*
 * The same, for the entries ids of t only (sorted, each once); NULL: all
 * of them.
 */
void
rts_combine_collect_ids(HTAB *groups, RtsWindowDef *def, dsa_area *area,
						RtsPaneTable *t, int64 keep, const uint32 *ids, int nids)
{
	uint32		n = ids ? (uint32) nids : t->ngroups;

	for (uint32 k = 0; k < n; k++)
	{
		uint32		id = ids ? ids[k] : k;
		RtsGroupEntry *e = rts_table_entry(area, t, id);
		RtsCombineGroup *g = NULL;

		for (int p = 0; p < t->npanes; p++)
		{
			RtsPane    *pane = rts_entry_pane(t, e, p);

			if (!rts_pane_kept(def, pane, keep))
				continue;
			if (g == NULL)
				g = rts_combine_group(groups, def,
									  rts_entry_key(area, e),
									  e->keylen, e->hash);
			g->panes = lappend(g->panes, pane);
		}
		CHECK_FOR_INTERRUPTS();
	}
	for (uint32 i = 0; i < t->nclosed; i++)
	{
		RtsClosedPane *rec = rts_closed_pane(area, t, i);
		RtsGroupEntry *e;
		RtsCombineGroup *g;

		if (!rts_entry_id_in(ids, nids, rec->entry_id) ||
			!rts_pane_kept(def, &rec->pane, keep))
			continue;
		e = rts_table_entry(area, t, rec->entry_id);
		g = rts_combine_group(groups, def,
							  rts_entry_key(area, e),
							  e->keylen, e->hash);
		g->panes = lappend(g->panes, &rec->pane);
	}
}

static int
pane_start_cmp(const ListCell *a, const ListCell *b)
{
	/* sessions only: their pane number is their start */
	int64		x = DatumGetInt64(((RtsPane *) lfirst(a))->words[RTS_SESSION_START_WORD]);
	int64		y = DatumGetInt64(((RtsPane *) lfirst(b))->words[RTS_SESSION_START_WORD]);

	return x < y ? -1 : x > y ? 1 : 0;
}

/* One merged session [start, end) of panes first .. last - 1 of g->panes. */
static void
session_done(RtsWindowDef *def, dsa_area *area, RtsCombineGroup *g,
			 int first, int last, int64 start, int64 end, int64 after,
			 int64 until, RtsCombineOut *out, int64 *open_start)
{
	if (end > until)
	{
		if (open_start && (*open_start == RTS_TIME_NONE || start < *open_start))
			*open_start = start;
		return;
	}
	if (end <= after || out == NULL)
		return;
	rts_combine_init(def, g);
	for (int j = first; j < last; j++)
		rts_combine_add(def, area, g, list_nth(g->panes, j));
	rts_combine_emit(def, g, out, start, end);
}

/*
 * Merge a group's partial sessions (from every worker) into sessions, and
 * emit those ending in (after, until]; *open_start (if not NULL) is lowered
 * to the start of the sessions ending after until.  Partial sessions merge
 * when they touch, as rows join a session (worker.c): one starting at or
 * before the end (last + gap) of those before it belongs to their session.
 */
void
rts_combine_sessions(RtsWindowDef *def, dsa_area *area, RtsCombineGroup *g,
					 int64 after, int64 until, RtsCombineOut *out,
					 int64 *open_start)
{
	ListCell   *lc;
	int			first = 0;
	int			i = 0;
	int64		start = 0,
				end = 0;

	list_sort(g->panes, pane_start_cmp);
	foreach(lc, g->panes)
	{
		RtsPane    *p = lfirst(lc);

		if (i > first && rts_pane_no(def, p) > end)
		{
			session_done(def, area, g, first, i, start, end, after, until, out,
						 open_start);
			first = i;
		}
		if (i == first)
		{
			start = rts_pane_no(def, p);
			end = rts_session_end(def, p);
		}
		else
			end = Max(end, rts_session_end(def, p));
		i++;
	}
	if (i > first)
		session_done(def, area, g, first, i, start, end, after, until, out,
					 open_start);
}
