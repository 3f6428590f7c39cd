/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  A worker's window state as bytes, and back.
 *
 *	  Format: a header, then per group its key and its panes; a pane word
 *	  that points to an out-of-line state is written as a length and the
 *	  image.  Groups without a pane in the current window are left out:
 *	  they can never count again (older rows are late), so a checkpoint is
 *	  also when their memory is given back, at the next load.
 *
 *	  Loading merges: a pane already present with the same number is
 *	  combined with the loaded one (after a change of rtstream.workers a
 *	  worker loads the states of several former workers).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "rtstream.h"
#include "aggstate.h"
#include "checkpoint.h"

#define RTS_CKPT_MAGIC		0x52545331	/* "RTS1" */

typedef struct CkptHeader
{
	uint32		magic;
	int32		npanes;
	int32		nwords;
	uint32		ngroups;
	int64		max_time;
	uint8		has_time;
	uint8		pad[3];
	int32		nworkers;		/* rtstream.workers when it was written */
	int64		mixed_until_pane;
	uint64		rows;
	uint64		late_rows;
	uint64		null_time_rows;
	uint64		refused_groups;
} CkptHeader;

/* First pane number of the current window of a table. */
static int64
first_live_pane(RtsWindowDef *def, RtsPaneTable *t)
{
	int64		end_pane;

	if (!t->has_time)
		return PG_INT64_MAX;
	end_pane = (rts_floor_div(t->max_time + RTS_UNIX_EPOCH_OFFSET_US,
							  def->slide_us) + 1) * (def->slide_us / def->pane_us);
	return end_pane - def->npanes;
}

void
rts_table_serialize(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
					int nworkers, StringInfo out)
{
	CkptHeader	hdr;
	int			count_pos;
	uint32		ngroups = 0;
	int64		first = first_live_pane(def, t);

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = RTS_CKPT_MAGIC;
	hdr.npanes = t->npanes;
	hdr.nwords = t->nwords;
	hdr.max_time = t->max_time;
	hdr.has_time = t->has_time;
	hdr.rows = t->rows;
	hdr.late_rows = t->late_rows;
	hdr.null_time_rows = t->null_time_rows;
	hdr.refused_groups = t->refused_groups;
	hdr.nworkers = nworkers;
	hdr.mixed_until_pane = t->mixed_until_pane;
	count_pos = out->len + offsetof(CkptHeader, ngroups);
	appendBinaryStringInfo(out, (char *) &hdr, sizeof(hdr));

	for (uint32 id = 0; id < t->ngroups; id++)
	{
		RtsGroupEntry *e = rts_table_entry(area, t, id);
		bool		live = false;

		for (int p = 0; p < t->npanes; p++)
			if (rts_entry_pane(t, e, p)->pane_no >= first)
				live = true;
		if (!live)
			continue;
		ngroups++;
		appendBinaryStringInfo(out, (char *) &e->keylen, sizeof(uint32));
		if (e->keylen > 0)
			appendBinaryStringInfo(out, dsa_get_address(area, e->key), e->keylen);
		for (int p = 0; p < t->npanes; p++)
		{
			RtsPane    *pane = rts_entry_pane(t, e, p);

			appendBinaryStringInfo(out, (char *) &pane->pane_no, sizeof(int64));
			appendBinaryStringInfo(out, (char *) &pane->flags, sizeof(uint64));
			for (int w = 0; w < t->nwords; w++)
			{
				if (def->word_typlen[w] == 0)
					appendBinaryStringInfo(out, (char *) &pane->words[w], sizeof(Datum));
				else
				{
					uint32		len = 0;
					char	   *image = NULL;

					if (DsaPointerIsValid((dsa_pointer) pane->words[w]))
					{
						image = dsa_get_address(area, (dsa_pointer) pane->words[w]);
						len = def->word_typlen[w] > 0 ? def->word_typlen[w] :
							def->word_typlen[w] == -1 ? VARSIZE_ANY(image) :
							strlen(image) + 1;
					}
					appendBinaryStringInfo(out, (char *) &len, sizeof(uint32));
					if (len > 0)
						appendBinaryStringInfo(out, image, len);
				}
			}
		}
	}
	memcpy(out->data + count_pos, &ngroups, sizeof(uint32));
}

static void
read_bytes(const char **p, const char *end, void *dst, Size len)
{
	if (*p + len > end)
		elog(ERROR, "rtstream checkpoint is truncated");
	memcpy(dst, *p, len);
	*p += len;
}

/* Combine pane "in" into pane "into", both of the same pane number. */
static void
pane_combine(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
			 RtsPane *into, RtsPane *in)
{
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast != RTS_FAST_NONE)
			rts_fast_combine(agg, a, into->words, &into->flags, in);
		else
		{
			RtsState	acc = rts_state_from_pane(area, agg, a, into);

			rts_state_combine(agg, &acc, rts_state_from_pane(area, agg, a, in));
			rts_state_to_pane(area, t, agg, a, into, acc);
		}
	}
}

void
rts_table_merge(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
				const char *data, Size len, bool foreign, int nworkers,
				MemoryContext aggcontext)
{
	const char *p = data;
	const char *end = data + len;
	CkptHeader	hdr;
	RtsPane    *in = palloc(t->pane_size);
	char	   *key = NULL;
	uint32		keycap = 0;
	int64		first;

	read_bytes(&p, end, &hdr, sizeof(hdr));
	if (hdr.magic != RTS_CKPT_MAGIC || hdr.npanes != t->npanes ||
		hdr.nwords != t->nwords)
	{
		ereport(WARNING,
				(errmsg("rtstream ignores a checkpoint of window \"%s\" that does not match its definition",
						def->name)));
		return;
	}
	if (hdr.has_time && (!t->has_time || hdr.max_time > t->max_time))
	{
		t->max_time = hdr.max_time;
		t->has_time = true;
	}
	t->rows += hdr.rows;
	t->late_rows += hdr.late_rows;
	t->null_time_rows += hdr.null_time_rows;
	t->refused_groups += hdr.refused_groups;
	t->mixed_until_pane = Max(t->mixed_until_pane, hdr.mixed_until_pane);
	first = first_live_pane(def, t);

	/*
	 * A state written by another worker, or for another number of workers,
	 * holds groups whose partitions now belong elsewhere: until its panes
	 * are all out of the window, a group may live in two workers.
	 */
	if (foreign || hdr.nworkers != nworkers)
		t->mixed_until_pane = Max(t->mixed_until_pane,
								  first + def->npanes + def->slide_us / def->pane_us);
	rts_agg_context_set(aggcontext);

	for (uint32 g = 0; g < hdr.ngroups; g++)
	{
		uint32		keylen;
		uint32		id;
		RtsGroupEntry *e;

		read_bytes(&p, end, &keylen, sizeof(uint32));
		if (keylen > keycap)
		{
			key = key ? repalloc(key, keylen) : palloc(keylen);
			keycap = keylen;
		}
		if (keylen > 0)
			read_bytes(&p, end, key, keylen);
		e = rts_table_lookup(area, t, hash_bytes((unsigned char *) (keylen ? key : ""), keylen),
							 key, keylen, &id);
		if (e == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("rtstream.memory_limit is too small to load the checkpoint of window \"%s\"",
							def->name),
					 errhint("Increase rtstream.memory_limit.")));

		for (int pi = 0; pi < t->npanes; pi++)
		{
			RtsPane    *into = rts_entry_pane(t, e, pi);

			read_bytes(&p, end, &in->pane_no, sizeof(int64));
			read_bytes(&p, end, &in->flags, sizeof(uint64));
			for (int w = 0; w < t->nwords; w++)
			{
				if (def->word_typlen[w] == 0)
					read_bytes(&p, end, &in->words[w], sizeof(Datum));
				else
				{
					uint32		ilen;

					read_bytes(&p, end, &ilen, sizeof(uint32));
					in->words[w] = (Datum) InvalidDsaPointer;
					if (ilen > 0)
					{
						dsa_pointer dp;

						if (p + ilen > end)
							elog(ERROR, "rtstream checkpoint is truncated");
						dp = rts_store_bytes(area, t, p, ilen);
						if (!DsaPointerIsValid(dp))
							ereport(ERROR,
									(errcode(ERRCODE_OUT_OF_MEMORY),
									 errmsg("rtstream.memory_limit is too small to load the checkpoint of window \"%s\"",
											def->name)));
						in->words[w] = (Datum) dp;
						p += ilen;
					}
				}
			}

			if (in->pane_no == RTS_PANE_EMPTY || in->pane_no < first ||
				in->pane_no < into->pane_no)
			{
				/* not part of the current window, or older than ours */
				rts_pane_free_words(area, t, in, def->word_typlen);
				continue;
			}
			if (in->pane_no == into->pane_no)
			{
				pane_combine(def, area, t, into, in);
				rts_pane_free_words(area, t, in, def->word_typlen);
			}
			else
			{
				/* ours is older or empty: take the loaded pane, images and all */
				rts_pane_free_words(area, t, into, def->word_typlen);
				memcpy(into, in, t->pane_size);
			}
		}
		MemoryContextReset(aggcontext);
	}
	pfree(in);
	if (key)
		pfree(key);
}
