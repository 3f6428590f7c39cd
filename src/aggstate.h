/*-------------------------------------------------------------------------
 *
 * aggstate.h
 *	  Partial aggregate states: calling an aggregate's catalog functions
 *	  outside nodeAgg, moving states between local memory and pane words,
 *	  and the native fast path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_AGGSTATE_H
#define RTS_AGGSTATE_H

#include "panes.h"
#include "windef.h"

/* An aggregate state held in local memory. */
typedef struct RtsState
{
	Datum		value;
	bool		isnull;
} RtsState;

extern void rts_agg_context_set(MemoryContext aggcontext);

/* catalog path */
extern RtsState rts_state_initial(RtsAggDef *agg);
extern RtsState rts_state_from_pane(dsa_area *area, RtsAggDef *agg,
									RtsPane *pane);
extern void rts_state_to_pane(dsa_area *area, RtsPaneTable *t, RtsAggDef *agg,
							  RtsPane *pane, RtsState st);
extern void rts_state_transition(RtsAggDef *agg, RtsState *st,
								 Datum *args, bool *argnulls);
extern void rts_state_combine(RtsAggDef *agg, RtsState *acc, RtsState in);
extern Datum rts_state_final(RtsAggDef *agg, RtsState *st, bool *isnull);

/* pane initialisation and the native fast path */
extern void rts_pane_reset(RtsWindowDef *def, RtsPane *pane, int64 pane_no);
extern void rts_fast_accum(RtsAggDef *agg, RtsPane *pane, Datum value,
						   bool isnull);
extern void rts_fast_combine_panes(RtsAggDef *agg, Datum *accwords,
								   uint64 *accflags, RtsPane **panes, int npanes);
/* Where an aggregate's native state lies in a pane of some layout. */
typedef struct RtsStateAt
{
	int			word;			/* RtsAggDef.word */
	int			count_word;		/* RtsAggDef.count_word */
	uint64		null_bit;		/* RtsAggDef.null_bit */
} RtsStateAt;

extern void rts_fast_combine_at(RtsAggDef *agg, Datum *accwords,
								uint64 *accflags, const RtsStateAt *at,
								RtsPane *pane);
extern void rts_fast_combine(RtsAggDef *agg, Datum *accwords,
							 uint64 *accflags, RtsPane *pane);
extern void rts_pane_combine(RtsWindowDef *def, dsa_area *area,
							 RtsPaneTable *t, RtsPane *into, RtsPane *in);
extern Datum rts_fast_final(RtsAggDef *agg, Datum *accwords,
							uint64 accflags, bool *isnull);

#endif							/* RTS_AGGSTATE_H */
