/*-------------------------------------------------------------------------
 *
 * aggstate.c
 *	  Partial aggregate states (see aggstate.h).
 *
 *	  Catalog functions are called as nodeAgg calls them: with an AggState
 *	  as fcinfo->context, so that AggCheckCallContext() hands them the
 *	  memory context in which their state lives (internal states such as
 *	  avg(int8), hll or tdigest insist on it).  That context belongs to the
 *	  caller: the worker's batch context, or the reader's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "rtstream.h"
#include "aggstate.h"

static AggState *fake_aggstate = NULL;

static void store_image(dsa_area *area, RtsPaneTable *t, RtsAggDef *agg,
						Datum *word, RtsState st);

void
rts_agg_context_set(MemoryContext aggcontext)
{
	if (fake_aggstate == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		fake_aggstate = makeNode(AggState);
		fake_aggstate->curaggcontext = makeNode(ExprContext);
		MemoryContextSwitchTo(old);
	}
	fake_aggstate->curaggcontext->ecxt_per_tuple_memory = aggcontext;
}

static MemoryContext
agg_context(void)
{
	Assert(fake_aggstate != NULL);
	return fake_aggstate->curaggcontext->ecxt_per_tuple_memory;
}

static Datum
copy_into_aggcontext(RtsAggDef *agg, Datum value)
{
	MemoryContext old;
	Datum		copy;

	if (agg->transtypbyval)
		return value;
	old = MemoryContextSwitchTo(agg_context());
	copy = datumCopy(value, false, agg->transtyplen);
	MemoryContextSwitchTo(old);
	return copy;
}

RtsState
rts_state_initial(RtsAggDef *agg)
{
	RtsState	st;

	st.isnull = agg->init_isnull;
	st.value = st.isnull ? (Datum) 0 : copy_into_aggcontext(agg, agg->init_value);
	return st;
}

/* A pane's state of a catalog-path aggregate, as a local copy. */
RtsState
rts_state_from_pane(dsa_area *area, RtsAggDef *agg, RtsPane *pane)
{
	RtsState	st;
	char	   *image;

	if (pane->flags & agg->unset_bit)
		return rts_state_initial(agg);
	st.isnull = (pane->flags & agg->null_bit) != 0;
	st.value = (Datum) 0;
	if (st.isnull)
		return st;
	if (!agg->state_local)
	{
		st.value = pane->words[agg->word];
		return st;
	}
	image = dsa_get_address(area, (dsa_pointer) pane->words[agg->word]);
	if (agg->transtype == INTERNALOID)
	{
		LOCAL_FCINFO(fcinfo, 2);
		MemoryContext old;

		/* deserial functions build the state in the current context */
		old = MemoryContextSwitchTo(agg_context());
		InitFunctionCallInfoData(*fcinfo, &agg->deserialfn, 2, InvalidOid,
								 (Node *) fake_aggstate, NULL);
		fcinfo->args[0].value = PointerGetDatum(image);
		fcinfo->args[0].isnull = false;
		fcinfo->args[1].value = (Datum) 0;
		fcinfo->args[1].isnull = false;
		st.value = FunctionCallInvoke(fcinfo);
		st.isnull = fcinfo->isnull;
		MemoryContextSwitchTo(old);
	}
	else
		st.value = copy_into_aggcontext(agg, PointerGetDatum(image));
	return st;
}

/* Store a local state into a pane (the worker, under its lock). */
void
rts_state_to_pane(dsa_area *area, RtsPaneTable *t, RtsAggDef *agg,
				  RtsPane *pane, RtsState st)
{
	Datum	   *word = &pane->words[agg->word];

	if (!agg->state_local)
		*word = st.isnull ? (Datum) 0 : st.value;
	else
		store_image(area, t, agg, word, st);
	pane->flags &= ~(agg->unset_bit | agg->null_bit);
	if (st.isnull)
		pane->flags |= agg->null_bit;
}

/* Replace the out-of-line image a word points to. */
static void
store_image(dsa_area *area, RtsPaneTable *t, RtsAggDef *agg, Datum *word,
			RtsState st)
{
	if (!st.isnull)
	{
		Pointer		image;
		Size		len;
		dsa_pointer dp;

		if (agg->transtype == INTERNALOID)
		{
			LOCAL_FCINFO(fcinfo, 1);

			InitFunctionCallInfoData(*fcinfo, &agg->serialfn, 1, InvalidOid,
									 (Node *) fake_aggstate, NULL);
			fcinfo->args[0].value = st.value;
			fcinfo->args[0].isnull = false;
			image = DatumGetPointer(FunctionCallInvoke(fcinfo));
			len = VARSIZE(image);
		}
		else if (agg->transtyplen == -1)
		{
			image = (Pointer) PG_DETOAST_DATUM(st.value);
			len = VARSIZE(image);
		}
		else if (agg->transtyplen == -2)
		{
			image = DatumGetPointer(st.value);
			len = strlen(image) + 1;
		}
		else
		{
			image = DatumGetPointer(st.value);
			len = agg->transtyplen;
		}
		/* the new image first: on failure the pane keeps its old state */
		dp = rts_store_bytes(area, t, image, len);
		if (!DsaPointerIsValid(dp))
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("rtstream.memory_limit reached while storing an aggregate state"),
					 agg->distinct_set ?
					 errhint("The exact set of distinct values of count(DISTINCT) in a pane (%zu bytes) grew beyond rtstream.memory_limit. "
							 "Increase rtstream.memory_limit, or count distinct values approximately with the hll extension: "
							 "hll_add_agg(hll_hash_any(x)) in the window, hll_cardinality() over its view.", len) :
					 errhint("Increase rtstream.memory_limit.")));
		if (DsaPointerIsValid((dsa_pointer) *word))
			rts_free_bytes(area, t, (dsa_pointer) *word,
						   agg->transtype == INTERNALOID ? -1 : agg->transtyplen);
		*word = (Datum) dp;
	}
	else if (DsaPointerIsValid((dsa_pointer) *word))
	{
		rts_free_bytes(area, t, (dsa_pointer) *word,
					   agg->transtype == INTERNALOID ? -1 : agg->transtyplen);
		*word = (Datum) InvalidDsaPointer;
	}
}

/* One row into a state, with nodeAgg's rules for strict functions. */
void
rts_state_transition(RtsAggDef *agg, RtsState *st, Datum *args, bool *argnulls)
{
	LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);
	Datum		result;

	if (agg->transfn_strict)
	{
		for (int i = 0; i < agg->nargs; i++)
			if (argnulls[i])
				return;
		if (st->isnull)
		{
			/* the first non-null input becomes the state */
			st->value = copy_into_aggcontext(agg, args[0]);
			st->isnull = false;
			return;
		}
	}

	InitFunctionCallInfoData(*fcinfo, &agg->transfn, agg->nargs + 1,
							 agg->aggref->inputcollid,
							 (Node *) fake_aggstate, NULL);
	fcinfo->args[0].value = st->value;
	fcinfo->args[0].isnull = st->isnull;
	for (int i = 0; i < agg->nargs; i++)
	{
		fcinfo->args[i + 1].value = args[i];
		fcinfo->args[i + 1].isnull = argnulls[i];
	}
	result = FunctionCallInvoke(fcinfo);
	if (!fcinfo->isnull && !agg->transtypbyval &&
		DatumGetPointer(result) != DatumGetPointer(st->value))
		result = copy_into_aggcontext(agg, result);
	st->value = result;
	st->isnull = fcinfo->isnull;
}

void
rts_state_combine(RtsAggDef *agg, RtsState *acc, RtsState in)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	if (agg->combinefn_strict)
	{
		if (in.isnull)
			return;
		if (acc->isnull)
		{
			acc->value = agg->transtype == INTERNALOID ? in.value :
				copy_into_aggcontext(agg, in.value);
			acc->isnull = false;
			return;
		}
	}
	InitFunctionCallInfoData(*fcinfo, &agg->combinefn, 2,
							 agg->aggref->inputcollid,
							 (Node *) fake_aggstate, NULL);
	fcinfo->args[0].value = acc->value;
	fcinfo->args[0].isnull = acc->isnull;
	fcinfo->args[1].value = in.value;
	fcinfo->args[1].isnull = in.isnull;
	result = FunctionCallInvoke(fcinfo);
	if (!fcinfo->isnull && !agg->transtypbyval &&
		DatumGetPointer(result) != DatumGetPointer(acc->value))
		result = copy_into_aggcontext(agg, result);
	acc->value = result;
	acc->isnull = fcinfo->isnull;
}

Datum
rts_state_final(RtsAggDef *agg, RtsState *st, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);
	Datum		result;

	if (!OidIsValid(agg->finalfn.fn_oid))
	{
		*isnull = st->isnull;
		return st->value;
	}
	if (agg->finalfn_strict && st->isnull)
	{
		*isnull = true;
		return (Datum) 0;
	}
	InitFunctionCallInfoData(*fcinfo, &agg->finalfn, agg->num_final_args,
							 agg->aggref->inputcollid,
							 (Node *) fake_aggstate, NULL);
	fcinfo->args[0].value = st->value;
	fcinfo->args[0].isnull = st->isnull;
	for (int i = 1; i < agg->num_final_args; i++)
	{
		fcinfo->args[i].value = (Datum) 0;
		fcinfo->args[i].isnull = true;
	}
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * Start a pane over: native states at their zero, catalog states at their
 * initial value.  Out-of-line images must have been freed by the caller.
 */
void
rts_pane_reset(RtsWindowDef *def, RtsPane *pane, int64 pane_no)
{
	pane->flags = 0;
	memset(pane->words, 0, sizeof(Datum) * def->nwords);
	rts_pane_set_no(def, pane, pane_no);
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		switch (agg->fast)
		{
			case RTS_FAST_COUNT:
			case RTS_FAST_AVG_INT:
			case RTS_FAST_AVG_FLOAT:
			case RTS_FAST_VAR_FLOAT:
				break;			/* zero words: no input yet */
			case RTS_FAST_NONE:
				if (agg->state_local)
					pane->flags |= agg->unset_bit;
				else if (agg->init_isnull)
					pane->flags |= agg->null_bit;
				else
					pane->words[agg->word] = agg->init_value;
				break;
			default:
				pane->flags |= agg->null_bit;	/* no input yet */
				break;
		}
	}
}

static int64
int_arg(RtsAggDef *agg, Datum value)
{
	switch (agg->argtypes[0])
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

static float8
float_arg(RtsAggDef *agg, Datum value)
{
	if (agg->argtypes[0] == FLOAT4OID)
		return (float8) DatumGetFloat4(value);
	return DatumGetFloat8(value);
}

/*
 * float8_accum on the words N, Sx, Sxx (Youngs-Cramer, as PostgreSQL 12
 * and later; float4_accum takes its input as float8 the same way).
 */
static inline void
var_accum(Datum *w, float8 newval)
{
	float8		oldN = DatumGetFloat8(w[0]);
	float8		oldSx = DatumGetFloat8(w[1]);
	float8		N = oldN + 1.0;
	float8		Sx = oldSx + newval;
	float8		Sxx = DatumGetFloat8(w[2]);

	if (oldN > 0.0)
	{
		float8		tmp = newval * N - Sx;

		Sxx += tmp * tmp / (N * oldN);
		/* infinite from finite inputs is an overflow; else Sxx is NaN */
		if (isinf(Sx) || isinf(Sxx))
		{
			if (!isinf(oldSx) && !isinf(newval))
				float_overflow_error();
			Sxx = get_float8_nan();
		}
	}
	else if (isnan(newval) || isinf(newval))
		Sxx = get_float8_nan();	/* a first Inf or NaN input */
	w[0] = Float8GetDatum(N);
	w[1] = Float8GetDatum(Sx);
	w[2] = Float8GetDatum(Sxx);
}

/* float8_combine of the words N, Sx, Sxx of "in" into "acc". */
static inline void
var_combine(Datum *acc, const Datum *in)
{
	float8		N1 = DatumGetFloat8(acc[0]);
	float8		N2 = DatumGetFloat8(in[0]);
	float8		Sx1 = DatumGetFloat8(acc[1]);
	float8		Sx2 = DatumGetFloat8(in[1]);
	float8		Sxx1 = DatumGetFloat8(acc[2]);
	float8		Sxx2 = DatumGetFloat8(in[2]);
	float8		tmp;
	float8		Sxx;

	if (N2 == 0.0)
		return;
	if (N1 == 0.0)
	{
		acc[0] = in[0];
		acc[1] = in[1];
		acc[2] = in[2];
		return;
	}
	tmp = Sx1 / N1 - Sx2 / N2;
	Sxx = Sxx1 + Sxx2 + N1 * N2 * tmp * tmp / (N1 + N2);
	if (unlikely(isinf(Sxx)) && !isinf(Sxx1) && !isinf(Sxx2))
		float_overflow_error();
	acc[0] = Float8GetDatum(N1 + N2);
	acc[1] = Float8GetDatum(float8_pl(Sx1, Sx2));
	acc[2] = Float8GetDatum(Sxx);
}

/*
 * Native transition of one row; the arithmetic and overflow checks are
 * those of PostgreSQL's own functions for these aggregates.
 */
void
rts_fast_accum(RtsAggDef *agg, RtsPane *pane, Datum value, bool isnull)
{
	Datum	   *w = &pane->words[agg->word];
	bool		first = (pane->flags & agg->null_bit) != 0;

	if (agg->fast == RTS_FAST_COUNT)
	{
		if (agg->nargs == 0 || !isnull)
			*w = Int64GetDatum(DatumGetInt64(*w) + 1);
		return;
	}
	if (isnull)
		return;
	pane->flags &= ~agg->null_bit;

	switch (agg->fast)
	{
		case RTS_FAST_SUM_INT:
			*w = Int64GetDatum((first ? 0 : DatumGetInt64(*w)) + int_arg(agg, value));
			break;
		case RTS_FAST_SUM_FLOAT4:
			*w = Float8GetDatum(first ? DatumGetFloat4(value) :
								float4_pl((float4) DatumGetFloat8(*w),
										  DatumGetFloat4(value)));
			break;
		case RTS_FAST_SUM_FLOAT8:
			*w = Float8GetDatum(first ? DatumGetFloat8(value) :
								float8_pl(DatumGetFloat8(*w), DatumGetFloat8(value)));
			break;
		case RTS_FAST_AVG_INT:
			/* words shared with a sum or a count are theirs to add to */
			if (agg->owns_word)
				*w = Int64GetDatum(DatumGetInt64(*w) + int_arg(agg, value));
			if (agg->owns_count)
				pane->words[agg->count_word] =
					Int64GetDatum(DatumGetInt64(pane->words[agg->count_word]) + 1);
			break;
		case RTS_FAST_AVG_FLOAT:
			if (agg->owns_word)
				*w = Float8GetDatum(float8_pl(DatumGetFloat8(*w), float_arg(agg, value)));
			if (agg->owns_count)
				pane->words[agg->count_word] =
					Int64GetDatum(DatumGetInt64(pane->words[agg->count_word]) + 1);
			break;
		case RTS_FAST_MIN_INT:
			if (first || int_arg(agg, value) < DatumGetInt64(*w))
				*w = Int64GetDatum(int_arg(agg, value));
			break;
		case RTS_FAST_MAX_INT:
			if (first || int_arg(agg, value) > DatumGetInt64(*w))
				*w = Int64GetDatum(int_arg(agg, value));
			break;
		case RTS_FAST_MIN_FLOAT:
			/* float8smaller(state, input) */
			if (first || !float8_lt(DatumGetFloat8(*w), float_arg(agg, value)))
				*w = Float8GetDatum(float_arg(agg, value));
			break;
		case RTS_FAST_MAX_FLOAT:
			/* float8larger(state, input) */
			if (first || !float8_gt(DatumGetFloat8(*w), float_arg(agg, value)))
				*w = Float8GetDatum(float_arg(agg, value));
			break;
		case RTS_FAST_VAR_FLOAT:
			var_accum(w, float_arg(agg, value));
			break;
		default:
			elog(ERROR, "unexpected rtstream fast aggregate %d", agg->fast);
	}
}

/* Combine a pane's native state into an accumulator (the reader). */
void
rts_fast_combine(RtsAggDef *agg, Datum *accwords, uint64 *accflags,
				 RtsPane *pane)
{
	RtsStateAt	at = {agg->word, agg->count_word, agg->null_bit};

	rts_fast_combine_at(agg, accwords, accflags, &at, pane);
}

/*
 * The same, from a pane of another layout: agg's state lies at *at there
 * (the cells of another window, worker_stream.c).
 */
void
rts_fast_combine_at(RtsAggDef *agg, Datum *accwords, uint64 *accflags,
					const RtsStateAt *at, RtsPane *pane)
{
	Datum	   *acc = &accwords[agg->word];
	Datum	   *in = &pane->words[at->word];
	bool		acc_first = (*accflags & agg->null_bit) != 0;
	int64		sum;

	if (agg->fast == RTS_FAST_VAR_FLOAT)
	{
		var_combine(acc, in);
		return;
	}
	if (agg->fast == RTS_FAST_COUNT || agg->fast == RTS_FAST_AVG_INT ||
		agg->fast == RTS_FAST_AVG_FLOAT)
	{
		/* an avg's sum shared with a sum(x) is combined by that one */
		if (agg->owns_word)
		{
			if (agg->fast == RTS_FAST_AVG_FLOAT)
				acc[0] = Float8GetDatum(float8_pl(DatumGetFloat8(acc[0]),
												  DatumGetFloat8(in[0])));
			else if (pg_add_s64_overflow(DatumGetInt64(acc[0]), DatumGetInt64(in[0]), &sum))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("bigint out of range")));
			else
				acc[0] = Int64GetDatum(sum);
		}
		if (agg->owns_count)
			accwords[agg->count_word] =
				Int64GetDatum(DatumGetInt64(accwords[agg->count_word]) +
							  DatumGetInt64(pane->words[at->count_word]));
		return;
	}
	if (pane->flags & at->null_bit)
		return;
	*accflags &= ~agg->null_bit;
	if (acc_first)
	{
		*acc = *in;
		return;
	}
	switch (agg->fast)
	{
		case RTS_FAST_SUM_INT:
			if (pg_add_s64_overflow(DatumGetInt64(*acc), DatumGetInt64(*in), &sum))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("bigint out of range")));
			*acc = Int64GetDatum(sum);
			break;
		case RTS_FAST_SUM_FLOAT4:
			*acc = Float8GetDatum(float4_pl((float4) DatumGetFloat8(*acc),
											(float4) DatumGetFloat8(*in)));
			break;
		case RTS_FAST_SUM_FLOAT8:
			*acc = Float8GetDatum(float8_pl(DatumGetFloat8(*acc), DatumGetFloat8(*in)));
			break;
		case RTS_FAST_MIN_INT:
			if (DatumGetInt64(*in) < DatumGetInt64(*acc))
				*acc = *in;
			break;
		case RTS_FAST_MAX_INT:
			if (DatumGetInt64(*in) > DatumGetInt64(*acc))
				*acc = *in;
			break;
		case RTS_FAST_MIN_FLOAT:
			if (!float8_lt(DatumGetFloat8(*acc), DatumGetFloat8(*in)))
				*acc = *in;
			break;
		case RTS_FAST_MAX_FLOAT:
			if (!float8_gt(DatumGetFloat8(*acc), DatumGetFloat8(*in)))
				*acc = *in;
			break;
		default:
			elog(ERROR, "unexpected rtstream fast aggregate %d", agg->fast);
	}
}

/* The count words of an avg it owns, over several panes. */
static void
combine_counts(RtsAggDef *agg, Datum *accwords, RtsPane **panes, int npanes)
{
	int			c = agg->count_word;

	if (!agg->owns_count)
		return;
	for (int i = 0; i < npanes; i++)
		accwords[c] = Int64GetDatum(DatumGetInt64(accwords[c]) +
									DatumGetInt64(panes[i]->words[c]));
}

/*
 * rts_fast_combine of several panes, in their order: the kind of the
 * aggregate is looked at once, not once per pane (reads combine every
 * pane of every group).  The arithmetic and its order are those of
 * rts_fast_combine, so results are the same to the last bit.
 */
void
rts_fast_combine_panes(RtsAggDef *agg, Datum *accwords, uint64 *accflags,
					   RtsPane **panes, int npanes)
{
	Datum	   *acc = &accwords[agg->word];
	int			w = agg->word;
	int			i = 0;
	int64		sum;

	switch (agg->fast)
	{
		case RTS_FAST_COUNT:
		case RTS_FAST_AVG_INT:
			for (; i < npanes && agg->owns_word; i++)
			{
				if (pg_add_s64_overflow(DatumGetInt64(acc[0]),
										DatumGetInt64(panes[i]->words[w]), &sum))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("bigint out of range")));
				acc[0] = Int64GetDatum(sum);
			}
			combine_counts(agg, accwords, panes, npanes);
			return;
		case RTS_FAST_AVG_FLOAT:
			for (; i < npanes && agg->owns_word; i++)
				acc[0] = Float8GetDatum(float8_pl(DatumGetFloat8(acc[0]),
												  DatumGetFloat8(panes[i]->words[w])));
			combine_counts(agg, accwords, panes, npanes);
			return;
		case RTS_FAST_VAR_FLOAT:
			for (; i < npanes; i++)
				var_combine(acc, &panes[i]->words[w]);
			return;
		case RTS_FAST_SUM_INT:
		case RTS_FAST_SUM_FLOAT4:
		case RTS_FAST_SUM_FLOAT8:
		case RTS_FAST_MIN_INT:
		case RTS_FAST_MAX_INT:
		case RTS_FAST_MIN_FLOAT:
		case RTS_FAST_MAX_FLOAT:
			break;
		default:
			elog(ERROR, "unexpected rtstream fast aggregate %d", agg->fast);
	}

	/* the first pane with an input starts the accumulator */
	if (*accflags & agg->null_bit)
	{
		for (; i < npanes; i++)
			if (!(panes[i]->flags & agg->null_bit))
				break;
		if (i == npanes)
			return;
		*accflags &= ~agg->null_bit;
		*acc = panes[i++]->words[w];
	}

	/*
	 * One loop per kind, so that the kind is not looked at per pane; the
	 * operations are those of rts_fast_combine.
	 */
#define EACH_INPUT(body) \
	for (; i < npanes; i++) \
	{ \
		Datum		in = panes[i]->words[w]; \
		if (panes[i]->flags & agg->null_bit) \
			continue; \
		body; \
	}
	switch (agg->fast)
	{
		case RTS_FAST_SUM_INT:
			EACH_INPUT(if (pg_add_s64_overflow(DatumGetInt64(*acc), DatumGetInt64(in), &sum))
					   ereport(ERROR,
							   (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								errmsg("bigint out of range")));
					   *acc = Int64GetDatum(sum));
			break;
		case RTS_FAST_SUM_FLOAT4:
			EACH_INPUT(*acc = Float8GetDatum(float4_pl((float4) DatumGetFloat8(*acc),
													   (float4) DatumGetFloat8(in))));
			break;
		case RTS_FAST_SUM_FLOAT8:
			EACH_INPUT(*acc = Float8GetDatum(float8_pl(DatumGetFloat8(*acc),
													   DatumGetFloat8(in))));
			break;
		case RTS_FAST_MIN_INT:
			EACH_INPUT(if (DatumGetInt64(in) < DatumGetInt64(*acc)) *acc = in);
			break;
		case RTS_FAST_MAX_INT:
			EACH_INPUT(if (DatumGetInt64(in) > DatumGetInt64(*acc)) *acc = in);
			break;
		case RTS_FAST_MIN_FLOAT:
			EACH_INPUT(if (!float8_lt(DatumGetFloat8(*acc), DatumGetFloat8(in))) *acc = in);
			break;
		case RTS_FAST_MAX_FLOAT:
			EACH_INPUT(if (!float8_gt(DatumGetFloat8(*acc), DatumGetFloat8(in))) *acc = in);
			break;
		default:
			break;
	}
#undef EACH_INPUT
}

/* float8_var_pop, _var_samp, _stddev_pop or _stddev_samp of N, Sx, Sxx. */
static Datum
var_final(RtsAggDef *agg, Datum *acc, bool *isnull)
{
	float8		N = DatumGetFloat8(acc[0]);
	float8		Sxx = DatumGetFloat8(acc[2]);
	bool		samp = (agg->var_final == RTS_VAR_SAMP ||
						agg->var_final == RTS_STDDEV_SAMP);
	float8		result;

	if (samp ? N <= 1.0 : N == 0.0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	result = Sxx / (samp ? N - 1.0 : N);
	if (agg->var_final == RTS_STDDEV_POP || agg->var_final == RTS_STDDEV_SAMP)
		result = sqrt(result);
	return Float8GetDatum(result);
}

Datum
rts_fast_final(RtsAggDef *agg, Datum *accwords, uint64 accflags,
			   bool *isnull)
{
	Datum	   *acc = &accwords[agg->word];

	*isnull = false;
	switch (agg->fast)
	{
		case RTS_FAST_COUNT:
			return acc[0];
		case RTS_FAST_VAR_FLOAT:
			return var_final(agg, acc, isnull);
		case RTS_FAST_AVG_INT:
		case RTS_FAST_AVG_FLOAT:
			if (DatumGetInt64(accwords[agg->count_word]) == 0)
			{
				*isnull = true;
				return (Datum) 0;
			}

			/*
			 * + 0.0: PostgreSQL's sum for avg starts at +0, a sum(x) at the
			 * first x, so a shared sum can be -0 where avg's is +0.
			 */
			if (agg->fast == RTS_FAST_AVG_FLOAT)
				return Float8GetDatum((DatumGetFloat8(acc[0]) + 0.0) /
									  (float8) DatumGetInt64(accwords[agg->count_word]));
			return DirectFunctionCall2(numeric_div,
									   NumericGetDatum(int64_to_numeric(DatumGetInt64(acc[0]))),
									   NumericGetDatum(int64_to_numeric(DatumGetInt64(accwords[agg->count_word]))));
		default:
			break;
	}
	if (accflags & agg->null_bit)
	{
		*isnull = true;
		return (Datum) 0;
	}
	switch (agg->resulttype)
	{
		case INT2OID:
			return Int16GetDatum((int16) DatumGetInt64(acc[0]));
		case INT4OID:
			return Int32GetDatum((int32) DatumGetInt64(acc[0]));
		case FLOAT4OID:
			return Float4GetDatum((float4) DatumGetFloat8(acc[0]));
		default:
			return acc[0];		/* int8 and float8 */
	}
}

/*
 * Combine pane "in" into pane "into" (the same pane number, or sessions
 * being merged); "in" keeps its own images, the caller frees them.
 */
void
rts_pane_combine(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t,
				 RtsPane *into, RtsPane *in)
{
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];

		if (agg->fast != RTS_FAST_NONE)
			rts_fast_combine(agg, into->words, &into->flags, in);
		else
		{
			RtsState	acc = rts_state_from_pane(area, agg, into);

			rts_state_combine(agg, &acc, rts_state_from_pane(area, agg, in));
			rts_state_to_pane(area, t, agg, into, acc);
		}
	}
}
