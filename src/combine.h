/*-------------------------------------------------------------------------
 *
 * combine.h
 *	  Combining panes into finished windows, for readers (read.c) and for
 *	  the history (history.c): groups keyed by their key bytes, across
 *	  workers, with their accumulated states; session merging.
 *
 *	  Pane pointers collected here are valid while the caller holds the
 *	  workers' locks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_COMBINE_H
#define RTS_COMBINE_H

#include "lib/stringinfo.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"

#include "aggstate.h"

typedef struct RtsCombineKey
{
	uint32		hash;
	uint32		len;
	const char *bytes;
} RtsCombineKey;

typedef struct RtsCombineGroup
{
	RtsCombineKey key;
	uint64		flags;			/* native states: their null_bit */
	Datum	   *words;			/* native states */
	RtsState   *states;			/* catalog-path states */
	List	   *panes;			/* of RtsPane *, for rts_combine_collect */
} RtsCombineGroup;

/* Where finished windows go: a row is window_start, window_end, outputs. */
typedef struct RtsCombineOut
{
	Tuplestorestate *store;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *keyvalues;
	bool	   *keynulls;
	uint64		rows;
	int64		min_end;		/* of the rows emitted (Unix microseconds) */

	/* rtstream.window_rows_at: only the groups of these keys, if only */
	bool		only;
	int			nkeys;
	StringInfoData *keys;
	uint32	   *key_hashes;
} RtsCombineOut;

extern HTAB *rts_combine_groups(void);
extern RtsCombineGroup *rts_combine_group(HTAB *groups, RtsWindowDef *def,
										  const char *keybytes, uint32 keylen,
										  uint32 hash);
extern void rts_combine_init(RtsWindowDef *def, RtsCombineGroup *g);
extern void rts_combine_add(RtsWindowDef *def, dsa_area *area,
							RtsCombineGroup *g, RtsPane *pane);
extern void rts_combine_panes(RtsWindowDef *def, dsa_area *area,
							  RtsCombineGroup *g, RtsPane **panes, int npanes);
extern void rts_combine_out_init(RtsCombineOut *out, RtsWindowDef *def,
								 Tuplestorestate *store, TupleDesc desc);
extern void rts_combine_emit(RtsWindowDef *def, RtsCombineGroup *g,
							 RtsCombineOut *out, int64 start, int64 end);
extern void rts_combine_collect(HTAB *groups, RtsWindowDef *def,
								dsa_area *area, RtsPaneTable *t, int64 keep);
extern void rts_combine_collect_ids(HTAB *groups, RtsWindowDef *def,
									dsa_area *area, RtsPaneTable *t,
									int64 keep, const uint32 *ids, int nids);
extern bool rts_entry_id_in(const uint32 *ids, int nids, uint32 id);
extern void rts_combine_sessions(RtsWindowDef *def, dsa_area *area,
								 RtsCombineGroup *g, int64 after, int64 until,
								 RtsCombineOut *out, int64 *open_start);

#endif							/* RTS_COMBINE_H */
