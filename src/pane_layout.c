/*-------------------------------------------------------------------------
 *
 * pane_layout.c
 *	  Where a window's states lie in a pane, and the portable layout of a
 *	  pane in checkpoints and node states.
 *
 *	  In memory a pane is one word of flags and a word per state.  Two
 *	  things keep it small:
 *	  - a fast avg(x) shares the words of a sum(x) and a count(x) of the
 *	    same input and FILTER, since they hold the same numbers (its sum
 *	    word is then written only by the sum, its count word only by the
 *	    count);
 *	  - the pane number is held above the flag bits of the flags word when
 *	    the pane is wide enough for every pane number to fit there (a
 *	    "compact" pane); otherwise, and for sessions, it takes a word.
 *
 *	  The portable layout is the one before either: the pane number, the
 *	  flags with bit a for "aggregate a is NULL" and bit 32 + a for "never
 *	  set", then each aggregate's own words in order (two for avg).  The
 *	  three words of a native variance or stddev are written as the float8[]
 *	  image of float8_accum's state, which is what the catalog path kept
 *	  for them before 0.5.2.  It
 *	  depends on the window's query only, so checkpoints written before
 *	  this layout load, and nodes of a distributed stream may differ.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "nodes/nodes.h"

#include "rtstream.h"
#include "panes.h"
#include "windef.h"
#include "eventtime.h"

/* Flag bits of the portable layout. */
#define CANON_NULL(a)	(UINT64CONST(1) << (a))
#define CANON_UNSET(a)	(UINT64CONST(1) << (32 + (a)))

/* Words of an aggregate in the portable layout. */
int
rts_canon_agg_words(const RtsAggDef *agg)
{
	return (agg->fast == RTS_FAST_AVG_INT || agg->fast == RTS_FAST_AVG_FLOAT) ? 2 : 1;
}

/* Two aggregates read the same input rows: same arguments and FILTER. */
static bool
same_input(const RtsAggDef *a, const RtsAggDef *b)
{
	return a->nargs == 1 && b->nargs == 1 &&
		equal(a->args, b->args) && equal(a->filter, b->filter);
}

/*
 * The sum word an avg(x) can share: a sum(x) whose word holds exactly the
 * avg's running sum.  float8 and int2/int4 only: sum(float4) adds in
 * float4, avg(float4) in float8.
 */
static int
shared_sum(RtsWindowDef *def, int a)
{
	RtsAggDef  *avg = &def->aggs[a];

	for (int i = 0; i < def->naggs; i++)
	{
		RtsAggDef  *o = &def->aggs[i];

		if (i == a || !same_input(avg, o))
			continue;
		if ((avg->fast == RTS_FAST_AVG_FLOAT && o->fast == RTS_FAST_SUM_FLOAT8 &&
			 avg->argtypes[0] == FLOAT8OID) ||
			(avg->fast == RTS_FAST_AVG_INT && o->fast == RTS_FAST_SUM_INT))
			return i;
	}
	return -1;
}

/* The count(x) an avg(x) can share its count with. */
static int
shared_count(RtsWindowDef *def, int a)
{
	for (int i = 0; i < def->naggs; i++)
		if (i != a && def->aggs[i].fast == RTS_FAST_COUNT &&
			same_input(&def->aggs[a], &def->aggs[i]))
			return i;
	return -1;
}

/*
 * Lay out a window's panes: the aggregates' words after nextra words of
 * the window's own (a session's times), their flag bits, and where the
 * pane number goes.
 */
void
rts_pane_layout(RtsWindowDef *def, int nextra)
{
	int			nwords = nextra;
	int			nbits = def->naggs;
	int			sum_of[RTS_MAX_AGGS];	/* the aggregate whose word an avg
										 * shares, or -1 */
	int			count_of[RTS_MAX_AGGS];

	/* a session's pane number is its start, in the word after its end */
	if (RTS_IS_SESSION(def))
	{
		Assert(nextra == RTS_SESSION_START_WORD);
		nwords++;
	}

	/* words owned first, so that shared ones are known */
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];
		bool		avg = (agg->fast == RTS_FAST_AVG_INT || agg->fast == RTS_FAST_AVG_FLOAT);

		sum_of[a] = avg ? shared_sum(def, a) : -1;
		count_of[a] = avg ? shared_count(def, a) : -1;
		agg->owns_word = sum_of[a] < 0;
		agg->owns_count = avg && count_of[a] < 0;
		agg->word = agg->owns_word ? nwords++ : -1;
		agg->count_word = agg->owns_count ? nwords++ : -1;
		if (agg->fast == RTS_FAST_VAR_FLOAT)
			nwords += 2;		/* N, Sx, Sxx */
		agg->null_bit = UINT64CONST(1) << a;
		agg->unset_bit = 0;
		if (agg->state_local)
			agg->unset_bit = UINT64CONST(1) << nbits++;
	}
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (sum_of[a] >= 0)
			agg->word = def->aggs[sum_of[a]].word;
		if (count_of[a] >= 0)
			agg->count_word = def->aggs[count_of[a]].word;
	}
	Assert(nbits <= 64);

	/*
	 * A pane number p = floor((t - origin) / pane_us) of any timestamp t
	 * has |p| <= 2^63 / pane_us: with pane_us >= 2^(nbits + 1) it fits in
	 * the 64 - nbits bits above the flags, short of the most negative one,
	 * which marks an empty pane.
	 */
	if (!RTS_IS_SESSION(def) && nbits <= 40 &&
		def->geom.pane_us >= (INT64CONST(1) << (nbits + 1)))
	{
		def->pane_shift = nbits;
		def->pane_no_word = -1;
	}
	else
	{
		def->pane_shift = 0;
		def->pane_no_word = RTS_IS_SESSION(def) ? RTS_SESSION_START_WORD : nwords++;
	}
	def->nwords = nwords;
	def->word_typlen = palloc0(sizeof(int16) * Max(nwords, 1));
	for (int a = 0; a < def->naggs; a++)
		if (def->aggs[a].state_local)
			def->word_typlen[def->aggs[a].word] =
				def->aggs[a].transtype == INTERNALOID ? -1 : def->aggs[a].transtyplen;

	/*
	 * The portable words: the window's own (a session's end; its start is
	 * the pane number), then each aggregate's.
	 */
	def->canon_nwords = nextra;
	for (int a = 0; a < def->naggs; a++)
		def->canon_nwords += rts_canon_agg_words(&def->aggs[a]);
	def->canon_word = palloc(sizeof(int16) * Max(def->canon_nwords, 1));
	def->canon_agg = palloc(sizeof(int16) * Max(def->canon_nwords, 1));
	def->canon_owned = palloc(sizeof(bool) * Max(def->canon_nwords, 1));
	for (int i = 0; i < nextra; i++)
	{
		def->canon_word[i] = i;
		def->canon_agg[i] = -1;
		def->canon_owned[i] = true;
	}
	for (int a = 0, i = nextra; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		def->canon_word[i] = agg->word;
		def->canon_agg[i] = a;
		def->canon_owned[i++] = agg->owns_word;
		if (rts_canon_agg_words(agg) == 2)
		{
			def->canon_word[i] = agg->count_word;
			def->canon_agg[i] = a;
			def->canon_owned[i++] = agg->owns_count;
		}
	}
}

/* A pane's flags in the portable layout, and back. */
uint64
rts_flags_to_canon(const RtsWindowDef *def, uint64 flags)
{
	uint64		out = 0;

	for (int a = 0; a < def->naggs; a++)
	{
		if (flags & def->aggs[a].null_bit)
			out |= CANON_NULL(a);
		if (flags & def->aggs[a].unset_bit)
			out |= CANON_UNSET(a);
	}
	return out;
}

uint64
rts_flags_from_canon(const RtsWindowDef *def, uint64 canon)
{
	uint64		out = 0;

	for (int a = 0; a < def->naggs; a++)
	{
		if (canon & CANON_NULL(a))
			out |= def->aggs[a].null_bit;
		if ((canon & CANON_UNSET(a)) && def->aggs[a].state_local)
			out |= def->aggs[a].unset_bit;
	}
	return out;
}
