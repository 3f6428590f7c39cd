/*-------------------------------------------------------------------------
 *
 * state_serial.c
 *	  A worker's window state as bytes, and back.
 *
 *	  Format: a header, then group records: a key, a number of panes and
 *	  the panes; a pane word that points to an out-of-line state is written
 *	  as a length and the image.  Only panes still needed are written (of
 *	  open windows, or of closed ones not yet in the history table).  A key
 *	  may come in several records (panes of the closed store).
 *
 *	  Loading merges: a pane already present with the same number is
 *	  combined with the loaded one (after a change of rtstream.workers a
 *	  worker loads the states of several former workers).  The ring of the
 *	  loading table may differ in size (alter_window changed the lateness):
 *	  panes are placed by number, and what does not fit goes to the closed
 *	  store.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "rtstream.h"
#include "aggstate.h"
#include "state_serial.h"
#include "groupkey.h"
#include "eventtime.h"

#define RTS_CKPT_MAGIC		0x52545333	/* "RTS3" */
#define RTS_CKPT_MAGIC_V2	0x52545332	/* "RTS2": keys of the former
										 * encoding (groupkey.c) */
#define RTS_CKPT_MAGIC_V1	0x52545331	/* "RTS1": no pane count per group,
										 * keys of the former encoding */

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

static void read_bytes(const char **p, const char *end, void *dst, Size len);

/*
 * A native variance's words N, Sx, Sxx as the float8[] image of the
 * catalog path's state (the portable layout), and back.
 */
static void
write_var_image(const Datum *w, StringInfo out)
{
	Datum		elems[3] = {w[0], w[1], w[2]};
	ArrayType  *arr = construct_array(elems, 3, FLOAT8OID, sizeof(float8),
									  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	uint32		len = VARSIZE(arr);

	appendBinaryStringInfo(out, (char *) &len, sizeof(uint32));
	appendBinaryStringInfo(out, (char *) arr, len);
	pfree(arr);
}

static void
read_var_image(const char **p, const char *end, Datum *w)
{
	uint32		len;
	ArrayType  *arr;
	float8	   *v;

	read_bytes(p, end, &len, sizeof(uint32));
	if (len == 0)
		return;					/* never set: no input */
	arr = palloc(len);			/* aligned */
	read_bytes(p, end, arr, len);
	if (ARR_NDIM(arr) != 1 || ARR_DIMS(arr)[0] != 3 || ARR_HASNULL(arr) ||
		ARR_ELEMTYPE(arr) != FLOAT8OID)
		elog(ERROR, "rtstream checkpoint holds a variance state that is not a 3-element float8 array");
	v = (float8 *) ARR_DATA_PTR(arr);
	for (int i = 0; i < 3; i++)
		w[i] = Float8GetDatum(v[i]);
	pfree(arr);
}

/* A pane in the portable layout (pane_layout.c). */
static void
write_pane(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t, RtsPane *pane,
		   StringInfo out)
{
	int64		pane_no = rts_pane_no(t, pane);
	uint64		flags = rts_flags_to_canon(def, pane->flags);

	appendBinaryStringInfo(out, (char *) &pane_no, sizeof(int64));
	appendBinaryStringInfo(out, (char *) &flags, sizeof(uint64));
	for (int i = 0; i < def->canon_nwords; i++)
	{
		int			w = def->canon_word[i];
		int			a = def->canon_agg[i];

		if (a >= 0 && def->aggs[a].fast == RTS_FAST_VAR_FLOAT)
			write_var_image(&pane->words[w], out);
		else if (def->word_typlen[w] == 0)
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

static void
write_key(dsa_area *area, RtsGroupEntry *e, uint32 npanes, StringInfo out)
{
	appendBinaryStringInfo(out, (char *) &e->keylen, sizeof(uint32));
	if (e->keylen > 0)
		appendBinaryStringInfo(out, rts_entry_key(area, e), e->keylen);
	appendBinaryStringInfo(out, (char *) &npanes, sizeof(uint32));
}

/*
 * Write a table's state: the panes still needed (rts_keep_from gives
 * "keep"), of the ring and of the closed store.  Groups without any are
 * left out (worker_windows.c rebuilds a table from its checkpoint when
 * most of its groups are gone).  Returns the number of group records.
 */
uint32
rts_table_serialize(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
					int nworkers, int64 keep, StringInfo out)
{
	CkptHeader	hdr;
	int			count_pos;
	uint32		ngroups = 0;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = RTS_CKPT_MAGIC;
	hdr.npanes = t->npanes;
	hdr.nwords = def->canon_nwords;
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
		uint32		n = 0;

		for (int p = 0; p < t->npanes; p++)
			if (rts_pane_kept(def, rts_entry_pane(t, e, p), keep))
				n++;
		if (n == 0)
			continue;
		ngroups++;
		write_key(area, e, n, out);
		for (int p = 0; p < t->npanes; p++)
			if (rts_pane_kept(def, rts_entry_pane(t, e, p), keep))
				write_pane(def, area, t, rts_entry_pane(t, e, p), out);
	}
	for (uint32 i = 0; i < t->nclosed; i++)
	{
		RtsClosedPane *rec = rts_closed_pane(area, t, i);

		if (!rts_pane_kept(def, &rec->pane, keep))
			continue;
		ngroups++;
		write_key(area, rts_table_entry(area, t, rec->entry_id), 1, out);
		write_pane(def, area, t, &rec->pane, out);
	}
	memcpy(out->data + count_pos, &ngroups, sizeof(uint32));
	return ngroups;
}

static void
read_bytes(const char **p, const char *end, void *dst, Size len)
{
	if (*p + len > end)
		elog(ERROR, "rtstream checkpoint is truncated");
	memcpy(dst, *p, len);
	*p += len;
}

/*
 * Place a loaded pane of entry e: combined with the pane of the same
 * number (sessions: into a free slot), or where the ring has room; a pane
 * that the ring cannot hold goes to the closed store.  The table takes
 * over the images of "in".
 */
static void
place_pane(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t, uint32 id,
		   RtsGroupEntry *e, RtsPane *in, int64 keep)
{
	RtsPane    *into = NULL;

	if (RTS_IS_SESSION(def))
	{
		for (int i = 0; i < t->npanes && into == NULL; i++)
		{
			RtsPane    *p = rts_entry_pane(t, e, i);

			if (!rts_pane_kept(def, p, keep))
				into = p;
		}
	}
	else
	{
		int64		n = rts_pane_no(t, in);
		RtsPane    *p = rts_entry_pane(t, e, rts_ring_slot(t, n));

		if (rts_pane_no(t, p) == n)
		{
			rts_pane_combine(def, area, t, p, in);
			rts_pane_free_words(area, t, in, def->word_typlen);
			return;
		}
		for (uint32 i = 0; i < t->nclosed; i++)
		{
			RtsClosedPane *rec = rts_closed_pane(area, t, i);

			if (rec->entry_id == id && rts_pane_no(t, &rec->pane) == n)
			{
				rts_pane_combine(def, area, t, &rec->pane, in);
				rts_pane_free_words(area, t, in, def->word_typlen);
				return;
			}
		}
		if (!rts_pane_kept(def, p, keep))
			into = p;
		else if (rts_pane_no(t, p) < n)
		{
			/* ours is older but still needed: it moves out */
			if (!rts_closed_add(area, t, id, p))
				goto oom;
			into = p;
		}
	}
	if (into != NULL)
	{
		rts_pane_free_words(area, t, into, def->word_typlen);
		memcpy(into, in, t->pane_size);
		return;
	}
	if (rts_closed_add(area, t, id, in))
		return;
oom:
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("rtstream.memory_limit is too small to load the checkpoint of window \"%s\"",
					def->name),
			 errhint("Increase rtstream.memory_limit.")));
}

/*
 * Load a serialized state into a table, merging it with what the table
 * holds.  keep_fn gives what is still needed once the loaded newest time
 * is known (rts_keep_from, with the table's newest time).
 */
void
rts_table_merge(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
				const char *data, Size len, bool foreign, int nworkers,
				int64 emitted, MemoryContext aggcontext)
{
	const char *p = data;
	const char *end = data + len;
	CkptHeader	hdr;
	RtsPane    *in = palloc(t->pane_size);
	char	   *key = NULL;
	uint32		keycap = 0;
	StringInfoData conv;
	int64		keep;

	read_bytes(&p, end, &hdr, sizeof(hdr));
	if ((hdr.magic != RTS_CKPT_MAGIC && hdr.magic != RTS_CKPT_MAGIC_V2 &&
		 hdr.magic != RTS_CKPT_MAGIC_V1) ||
		hdr.nwords != def->canon_nwords)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rtstream ignores a checkpoint of window \"%s\" that does not match its definition",
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
	keep = rts_keep_from(def, t->has_time ? rts_watermark(def, rts_to_unix(t->max_time)) :
						 RTS_TIME_NONE, emitted, RTS_TIME_NONE);

	/*
	 * A state written by another worker, or for another number of workers,
	 * holds groups whose partitions now belong elsewhere: until its panes
	 * are all out of the window, a group may live in two workers.
	 */
	if ((foreign || hdr.nworkers != nworkers) && t->has_time && !RTS_IS_SESSION(def))
		t->mixed_until_pane = Max(t->mixed_until_pane,
								  rts_end_current(&def->geom, rts_to_unix(t->max_time)));
	rts_agg_context_set(aggcontext);
	initStringInfo(&conv);

	for (uint32 g = 0; g < hdr.ngroups; g++)
	{
		uint32		keylen;
		uint32		npanes;
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
		if (hdr.magic == RTS_CKPT_MAGIC_V1)
			npanes = hdr.npanes;	/* the whole ring of every group */
		else
			read_bytes(&p, end, &npanes, sizeof(uint32));
		if (hdr.magic != RTS_CKPT_MAGIC)
		{
			/* a key of the former encoding; its values in aggcontext */
			MemoryContext old = MemoryContextSwitchTo(aggcontext);

			rts_groupkey_from_v2(def, key, keylen, &conv);
			MemoryContextSwitchTo(old);
			if (conv.len > keycap)
			{
				key = repalloc(key, conv.len);
				keycap = conv.len;
			}
			memcpy(key, conv.data, conv.len);
			keylen = conv.len;
		}
		e = rts_table_lookup(area, t, hash_bytes((unsigned char *) (keylen ? key : ""), keylen),
							 key, keylen, &id);
		if (e == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("rtstream.memory_limit is too small to load the checkpoint of window \"%s\"",
							def->name),
					 errhint("Increase rtstream.memory_limit.")));

		for (uint32 pi = 0; pi < npanes; pi++)
		{
			int64		pane_no;
			uint64		flags;

			read_bytes(&p, end, &pane_no, sizeof(int64));
			read_bytes(&p, end, &flags, sizeof(uint64));
			memset(in, 0, t->pane_size);
			in->flags = rts_flags_from_canon(def, flags);
			rts_pane_set_no(t, in, pane_no);
			for (int i = 0; i < def->canon_nwords; i++)
			{
				int			w = def->canon_word[i];
				int			a = def->canon_agg[i];
				Datum		value;

				if (a >= 0 && def->aggs[a].fast == RTS_FAST_VAR_FLOAT)
					read_var_image(&p, end, &in->words[w]);
				else if (def->word_typlen[w] == 0)
				{
					/* a shared word comes again with its owner */
					read_bytes(&p, end, &value, sizeof(Datum));
					if (def->canon_owned[i])
						in->words[w] = value;
				}
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
			if (!rts_pane_kept(def, in, keep))
				rts_pane_free_words(area, t, in, def->word_typlen);
			else
				place_pane(def, area, t, id, e, in, keep);
		}
		MemoryContextReset(aggcontext);
	}
	pfree(in);
	pfree(conv.data);
	if (key)
		pfree(key);
}
