/*-------------------------------------------------------------------------
 *
 * panes.c
 *	  The group table of one window in one worker (see panes.h).  All
 *	  allocations fail softly (DSA_ALLOC_NO_OOM) so that hitting
 *	  rtstream.memory_limit refuses a new group instead of failing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "rtstream.h"
#include "panes.h"
#include "windef.h"

#define ENTRY_HEADER	MAXALIGN(sizeof(RtsGroupEntry))

static dsa_pointer
table_alloc(dsa_area *area, RtsPaneTable *t, Size size)
{
	dsa_pointer dp = dsa_allocate_extended(area, size,
										   DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO |
										   (size > MaxAllocSize ? DSA_ALLOC_HUGE : 0));

	if (DsaPointerIsValid(dp))
		t->bytes += size;
	return dp;
}

static void
table_free(dsa_area *area, RtsPaneTable *t, dsa_pointer dp, Size size)
{
	dsa_free(area, dp);
	t->bytes -= size;
}

dsa_pointer
rts_table_create(dsa_area *area, const RtsWindowDef *def)
{
	dsa_pointer tp = dsa_allocate_extended(area, sizeof(RtsPaneTable),
										   DSA_ALLOC_ZERO | DSA_ALLOC_NO_OOM);
	RtsPaneTable *t;

	if (!DsaPointerIsValid(tp))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("rtstream.memory_limit reached"),
				 errhint("Increase rtstream.memory_limit.")));
	t = dsa_get_address(area, tp);
	t->window_id = def->id;
	t->npanes = def->npanes;
	t->nwords = def->nwords;
	t->pane_shift = def->pane_shift;
	t->pane_no_word = def->pane_no_word;
	t->pane_size = MAXALIGN(offsetof(RtsPane, words) + sizeof(Datum) * def->nwords);
	t->entry_size = ENTRY_HEADER + t->pane_size * def->npanes;
	t->index = InvalidDsaPointer;
	t->chunks = InvalidDsaPointer;
	t->closed = InvalidDsaPointer;
	t->bytes = sizeof(RtsPaneTable);
	t->mixed_until_pane = PG_INT64_MIN;
	return tp;
}

RtsGroupEntry *
rts_table_entry(dsa_area *area, RtsPaneTable *t, uint32 id)
{
	dsa_pointer *chunks = dsa_get_address(area, t->chunks);
	char	   *chunk = dsa_get_address(area, chunks[id / RTS_CHUNK_ENTRIES]);

	return (RtsGroupEntry *) (chunk + (Size) (id % RTS_CHUNK_ENTRIES) * t->entry_size);
}

static void
index_insert(uint64 *index, uint32 mask, uint32 hash, uint32 id)
{
	uint32		i = hash & mask;

	while (index[i] != 0)
		i = (i + 1) & mask;
	index[i] = (uint64) hash << 32 | (id + 1);
}

/*
 * Make room for one more element in a growable array of the table (chunk
 * pointers, closed panes): double it, or make the first one with "first"
 * elements.  False if out of memory.
 */
static bool
array_grow(dsa_area *area, RtsPaneTable *t, dsa_pointer *array, uint32 used,
		   uint32 *max, Size elemsize, uint32 first)
{
	uint32		newmax = *max ? *max * 2 : first;
	dsa_pointer dp;

	if (used < *max)
		return true;
	dp = table_alloc(area, t, elemsize * newmax);
	if (!DsaPointerIsValid(dp))
		return false;
	if (DsaPointerIsValid(*array))
	{
		memcpy(dsa_get_address(area, dp), dsa_get_address(area, *array), elemsize * used);
		table_free(area, t, *array, elemsize * *max);
	}
	*array = dp;
	*max = newmax;
	return true;
}

/* Double the index (or make the first one); false if out of memory. */
static bool
index_grow(dsa_area *area, RtsPaneTable *t)
{
	uint32		newsize = t->index_size ? t->index_size * 2 : 1024;
	dsa_pointer dp = table_alloc(area, t, sizeof(uint64) * (Size) newsize);
	uint64	   *index;

	if (!DsaPointerIsValid(dp))
		return false;
	index = dsa_get_address(area, dp);
	for (uint32 id = 0; id < t->ngroups; id++)
		index_insert(index, newsize - 1, rts_table_entry(area, t, id)->hash, id);
	if (DsaPointerIsValid(t->index))
		table_free(area, t, t->index, sizeof(uint64) * (Size) t->index_size);
	t->index = dp;
	t->index_size = newsize;
	return true;
}

/* Room for entry number id; false if out of memory. */
static bool
chunk_ensure(dsa_area *area, RtsPaneTable *t, uint32 id)
{
	uint32		c = id / RTS_CHUNK_ENTRIES;
	dsa_pointer *chunks;
	dsa_pointer dp;

	if (c < t->nchunks)
		return true;
	if (!array_grow(area, t, &t->chunks, t->nchunks, &t->maxchunks,
					sizeof(dsa_pointer), 16))
		return false;
	dp = table_alloc(area, t, t->entry_size * RTS_CHUNK_ENTRIES);
	if (!DsaPointerIsValid(dp))
		return false;
	chunks = dsa_get_address(area, t->chunks);
	chunks[c] = dp;
	t->nchunks++;
	return true;
}

/* Find the group with this key; NULL if the table has none. */
RtsGroupEntry *
rts_table_find(dsa_area *area, RtsPaneTable *t, uint32 hash,
			   const char *key, uint32 keylen, uint32 *id)
{
	uint64	   *index;
	uint32		mask = t->index_size - 1;

	if (t->index_size == 0)
		return NULL;
	index = dsa_get_address(area, t->index);
	for (uint32 i = hash & mask; index[i] != 0; i = (i + 1) & mask)
	{
		RtsGroupEntry *e;

		if ((uint32) (index[i] >> 32) != hash)
			continue;
		e = rts_table_entry(area, t, (uint32) index[i] - 1);
		if (e->keylen == keylen &&
			(keylen == 0 || memcmp(rts_entry_key(area, e), key, keylen) == 0))
		{
			*id = (uint32) index[i] - 1;
			return e;
		}
	}
	return NULL;
}

/*
 * Find the group with this key, or add it.  Returns NULL when a new group
 * would pass rtstream.memory_limit.
 */
RtsGroupEntry *
rts_table_lookup(dsa_area *area, RtsPaneTable *t, uint32 hash,
				 const char *key, uint32 keylen, uint32 *id)
{
	RtsGroupEntry *e;
	dsa_pointer kp = InvalidDsaPointer;

	e = rts_table_find(area, t, hash, key, keylen, id);
	if (e != NULL)
		return e;

	/* a new group */
	if ((uint64) (t->ngroups + 1) * 2 > t->index_size && !index_grow(area, t))
		return NULL;
	if (!chunk_ensure(area, t, t->ngroups))
		return NULL;
	if (keylen > RTS_INLINE_KEY)
	{
		kp = rts_store_bytes(area, t, key, keylen);
		if (!DsaPointerIsValid(kp))
			return NULL;
	}
	*id = t->ngroups++;
	e = rts_table_entry(area, t, *id);
	e->hash = hash;
	e->keylen = keylen;
	e->key = kp;
	if (keylen <= RTS_INLINE_KEY)
		memcpy(&e->key, key, keylen);
	for (int p = 0; p < t->npanes; p++)
	{
		RtsPane    *pane = rts_entry_pane(t, e, p);

		pane->flags = 0;
		rts_pane_set_no(t, pane, RTS_PANE_EMPTY);
	}
	index_insert(dsa_get_address(area, t->index), t->index_size - 1, hash, *id);
	return e;
}

/*
 * Move a pane out of the ring: the record takes over its out-of-line
 * states, and the ring pane is left empty.  False if out of memory (the
 * pane is then unchanged).
 */
bool
rts_closed_add(dsa_area *area, RtsPaneTable *t, uint32 entry_id, RtsPane *pane)
{
	RtsClosedPane *rec;

	if (!array_grow(area, t, &t->closed, t->nclosed, &t->maxclosed,
					RTS_CLOSED_SIZE(t), 64))
		return false;
	rec = rts_closed_pane(area, t, t->nclosed++);
	rec->entry_id = entry_id;
	memcpy(&rec->pane, pane, t->pane_size);
	memset(pane->words, 0, sizeof(Datum) * t->nwords);
	pane->flags = 0;
	rts_pane_set_no(t, pane, RTS_PANE_EMPTY);
	return true;
}

/* Free closed record i; the last record takes its place. */
void
rts_closed_remove(dsa_area *area, RtsPaneTable *t, uint32 i,
				  const int16 *word_typlen)
{
	RtsClosedPane *rec = rts_closed_pane(area, t, i);

	rts_pane_free_words(area, t, &rec->pane, word_typlen);
	if (i != t->nclosed - 1)
		memcpy(rec, rts_closed_pane(area, t, t->nclosed - 1), RTS_CLOSED_SIZE(t));
	t->nclosed--;
}

/* Copy bytes into the DSA; InvalidDsaPointer if out of memory. */
dsa_pointer
rts_store_bytes(dsa_area *area, RtsPaneTable *t, const void *data, Size len)
{
	dsa_pointer dp = dsa_allocate_extended(area, len, DSA_ALLOC_NO_OOM);

	if (DsaPointerIsValid(dp))
	{
		memcpy(dsa_get_address(area, dp), data, len);
		t->bytes += len;
	}
	return dp;
}

/* Free a flat image stored by rts_store_bytes; typlen says its size. */
void
rts_free_bytes(dsa_area *area, RtsPaneTable *t, dsa_pointer dp, int16 typlen)
{
	char	   *ptr = dsa_get_address(area, dp);

	if (typlen > 0)
		t->bytes -= typlen;
	else if (typlen == -1)
		t->bytes -= VARSIZE_ANY(ptr);
	else
		t->bytes -= strlen(ptr) + 1;
	dsa_free(area, dp);
}

/*
 * Free the out-of-line states of a pane.  word_typlen[w] is the type
 * length of the image that word w points to, or 0 if the word holds a
 * value.  Such words are InvalidDsaPointer when there is no image.
 */
void
rts_pane_free_words(dsa_area *area, RtsPaneTable *t, RtsPane *p,
					const int16 *word_typlen)
{
	for (int w = 0; w < t->nwords; w++)
	{
		if (word_typlen[w] != 0 && DsaPointerIsValid((dsa_pointer) p->words[w]))
		{
			rts_free_bytes(area, t, (dsa_pointer) p->words[w], word_typlen[w]);
			p->words[w] = (Datum) InvalidDsaPointer;
		}
	}
}

void
rts_table_destroy(dsa_area *area, dsa_pointer tp, const int16 *word_typlen)
{
	RtsPaneTable *t = dsa_get_address(area, tp);
	dsa_pointer *chunks;

	for (uint32 id = 0; id < t->ngroups; id++)
	{
		RtsGroupEntry *e = rts_table_entry(area, t, id);

		if (e->keylen > RTS_INLINE_KEY && DsaPointerIsValid(e->key))
			dsa_free(area, e->key);
		for (int p = 0; p < t->npanes; p++)
			rts_pane_free_words(area, t, rts_entry_pane(t, e, p),
								word_typlen);
	}
	while (t->nclosed > 0)
		rts_closed_remove(area, t, t->nclosed - 1, word_typlen);
	if (DsaPointerIsValid(t->closed))
		dsa_free(area, t->closed);
	if (DsaPointerIsValid(t->chunks))
	{
		chunks = dsa_get_address(area, t->chunks);
		for (uint32 c = 0; c < t->nchunks; c++)
			dsa_free(area, chunks[c]);
		dsa_free(area, t->chunks);
	}
	if (DsaPointerIsValid(t->index))
		dsa_free(area, t->index);
	dsa_free(area, tp);
}
