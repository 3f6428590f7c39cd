/*-------------------------------------------------------------------------
 *
 * agg_topk.c
 *	  rtstream.topk(value anyelement, k integer): the k most frequent
 *	  non-NULL values with their counts, as jsonb
 *	  [{"value": ..., "count": n}, ...], most frequent first, ties by value
 *	  ascending (the type's default btree order under the input collation).
 *
 *	  The state is a space-saving summary (Metwally, Agrawal, El Abbadi,
 *	  "Efficient computation of frequent and top-k elements in data
 *	  streams", 2005) of m = max(4k, 64) counters, as PipelineDB's
 *	  filtered-space-saving type was.  A value that is counted has its
 *	  counter incremented; a new value takes a free counter with count 1,
 *	  or, when all m are taken, replaces a value of the least count c and
 *	  gets c + 1 (it may have been seen c times before).  Two summaries
 *	  merge as in Agarwal et al., "Mergeable summaries" (2012), and Cafaro
 *	  et al.'s parallel space saving: counts of common values add up; a
 *	  value missing from one summary gets that summary's bound on a missing
 *	  value's count ("dropped": the largest count it ever dropped, 0 if it
 *	  dropped none, never more than its least count); then the m largest
 *	  are kept and the others raise the bound.
 *
 *	  Invariants: a count never underestimates the value's true count and
 *	  overestimates it by at most N/m (N values counted); a value whose
 *	  true count is above the bound "dropped" is in the summary.  While no
 *	  more than m distinct values have been seen, nothing is ever dropped
 *	  ("dropped" stays 0) and every count is exact, across merges too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "agg_values.h"

PG_FUNCTION_INFO_V1(rts_topk_trans);
PG_FUNCTION_INFO_V1(rts_topk_combine);
PG_FUNCTION_INFO_V1(rts_topk_serial);
PG_FUNCTION_INFO_V1(rts_topk_deserial);
PG_FUNCTION_INFO_V1(rts_topk_final);

/* "RTK" and the format version */
#define RTS_TOPK_MAGIC		0x52544B01

/* the number of counters for k */
#define TOPK_CAPACITY(k)	Max((k) * 4, 64)

typedef struct TopkItem
{
	Datum		value;
	int64		count;
	uint32		hash;
	int32		heappos;		/* its place in the heap */
} TopkItem;

typedef struct TopkEntry
{
	Datum		value;
	uint32		hash;
	int32		item;			/* index into items */
	char		status;
} TopkEntry;

static inline uint32 topk_hash_value(void *s, Datum value);
static inline bool topk_equal(void *s, Datum a, Datum b);

#define SH_PREFIX		topk_index
#define SH_ELEMENT_TYPE TopkEntry
#define SH_KEY_TYPE		Datum
#define SH_KEY			value
#define SH_HASH_KEY(tb, key)	topk_hash_value((tb)->private_data, key)
#define SH_EQUAL(tb, a, b)		topk_equal((tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)		((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct TopkState
{
	RtsValueType vt;
	MemoryContext cxt;			/* of everything below and the values */
	int32		k;
	int32		capacity;		/* m = TOPK_CAPACITY(k) */
	int32		nitems;
	int32		allocated;		/* items and heap grow up to capacity */
	int64		dropped;		/* bound on the count of a value not in items */
	TopkItem   *items;
	int32	   *heap;			/* item numbers, a min-heap on count */
	topk_index_hash *index;		/* value -> item number */
} TopkState;

static inline uint32
topk_hash_value(void *s, Datum value)
{
	return rts_values_hash(&((TopkState *) s)->vt, value);
}

static inline bool
topk_equal(void *s, Datum a, Datum b)
{
	return rts_values_equal(&((TopkState *) s)->vt, a, b);
}

void
rts_topk_check_k(int32 k)
{
	if (k < 1 || k > RTS_TOPK_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k of rtstream.topk must be between 1 and %d, not %d",
						RTS_TOPK_MAX_K, k)));
}

/* An empty summary in cxt; vt, if given, is copied. */
static TopkState *
topk_create(MemoryContext cxt, RtsValueType *vt, Oid typid, Oid collation,
			int32 k, int32 nitems)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	TopkState  *s = palloc0(sizeof(TopkState));

	if (vt)
		rts_values_type_copy(&s->vt, vt);
	else
		rts_values_init(&s->vt, typid, collation, true);
	s->cxt = cxt;
	s->k = k;
	s->capacity = TOPK_CAPACITY(k);
	s->allocated = Min(Max(nitems, 8), s->capacity);
	s->items = palloc(sizeof(TopkItem) * s->allocated);
	s->heap = palloc(sizeof(int32) * s->allocated);
	s->index = topk_index_create(cxt, s->allocated, s);
	MemoryContextSwitchTo(old);
	return s;
}

static void
topk_reserve(TopkState *s, int32 n)
{
	if (n <= s->allocated)
		return;
	s->allocated = Min(Max(n, s->allocated * 2), s->capacity);
	s->items = repalloc(s->items, sizeof(TopkItem) * s->allocated);
	s->heap = repalloc(s->heap, sizeof(int32) * s->allocated);
}

static inline void
heap_swap(TopkState *s, int i, int j)
{
	int32		a = s->heap[i];
	int32		b = s->heap[j];

	s->heap[i] = b;
	s->heap[j] = a;
	s->items[b].heappos = i;
	s->items[a].heappos = j;
}

#define HEAP_COUNT(s, pos)	((s)->items[(s)->heap[pos]].count)

static void
heap_up(TopkState *s, int pos)
{
	while (pos > 0)
	{
		int			parent = (pos - 1) / 2;

		if (HEAP_COUNT(s, parent) <= HEAP_COUNT(s, pos))
			break;
		heap_swap(s, parent, pos);
		pos = parent;
	}
}

static void
heap_down(TopkState *s, int pos)
{
	for (;;)
	{
		int			l = 2 * pos + 1;
		int			r = l + 1;
		int			least = pos;

		if (l < s->nitems && HEAP_COUNT(s, l) < HEAP_COUNT(s, least))
			least = l;
		if (r < s->nitems && HEAP_COUNT(s, r) < HEAP_COUNT(s, least))
			least = r;
		if (least == pos)
			break;
		heap_swap(s, pos, least);
		pos = least;
	}
}

/* Index items 0 .. nitems-1 and heapify them. */
static void
topk_rebuild(TopkState *s)
{
	topk_index_reset(s->index);
	for (int i = 0; i < s->nitems; i++)
	{
		TopkItem   *it = &s->items[i];
		bool		found;
		TopkEntry  *e = topk_index_insert_hash(s->index, it->value, it->hash, &found);

		if (found)
			rts_values_corrupt();
		e->item = i;
		s->heap[i] = i;
		it->heappos = i;
	}
	for (int i = s->nitems / 2 - 1; i >= 0; i--)
		heap_down(s, i);
}

/* Count one value (the space-saving update). */
static void
topk_add(TopkState *s, Datum value, uint32 hash)
{
	TopkEntry  *e = topk_index_lookup_hash(s->index, value, hash);
	TopkItem   *it;
	int32		i;
	bool		found;

	if (e != NULL)
	{
		it = &s->items[e->item];
		it->count++;
		heap_down(s, it->heappos);
		return;
	}
	if (s->nitems < s->capacity)
	{
		topk_reserve(s, s->nitems + 1);
		i = s->nitems++;
		it = &s->items[i];
		it->count = 1;
		s->heap[i] = i;
		it->heappos = i;
	}
	else
	{
		/*
		 * Take the place of a value of the least count c: that value may
		 * have been seen up to c times (the bound "dropped"), and so may the
		 * new one before its c + 1st time.
		 */
		i = s->heap[0];
		it = &s->items[i];
		e = topk_index_lookup_hash(s->index, it->value, it->hash);
		Assert(e != NULL);
		topk_index_delete_item(s->index, e);
		s->dropped = Max(s->dropped, it->count);
		rts_values_free(&s->vt, it->value);
		it->count++;
	}
	it->value = rts_values_copy(&s->vt, value, s->cxt);
	it->hash = hash;
	e = topk_index_insert_hash(s->index, it->value, hash, &found);
	Assert(!found);
	e->item = i;
	heap_up(s, it->heappos);
	heap_down(s, it->heappos);
}

/*
 * transfn(state, value, k): NULL values are skipped; k is checked on every
 * row and taken from the first one with a value.
 */
Datum
rts_topk_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	TopkState  *s = PG_ARGISNULL(0) ? NULL : (TopkState *) PG_GETARG_POINTER(0);
	Datum		value;

	aggcxt = rts_values_agg_context(fcinfo);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k of rtstream.topk must not be NULL")));
	rts_topk_check_k(PG_GETARG_INT32(2));
	if (PG_ARGISNULL(1))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s);
	}
	if (s == NULL)
		s = topk_create(aggcxt, NULL, rts_values_arg_type(fcinfo),
						PG_GET_COLLATION(), PG_GETARG_INT32(2), 0);
	value = PG_GETARG_DATUM(1);
	topk_add(s, value, rts_values_hash(&s->vt, value));
	PG_RETURN_POINTER(s);
}

/* merge candidates: larger counts first, then by hash (any fixed order) */
static int
cmp_candidates(const void *pa, const void *pb)
{
	const TopkItem *a = (const TopkItem *) pa;
	const TopkItem *b = (const TopkItem *) pb;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return 0;
}

/* combinefn(a, b): b merged into a (or into a new summary) */
Datum
rts_topk_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	TopkState  *a = PG_ARGISNULL(0) ? NULL : (TopkState *) PG_GETARG_POINTER(0);
	TopkState  *b = PG_ARGISNULL(1) ? NULL : (TopkState *) PG_GETARG_POINTER(1);
	TopkItem   *cand;
	bool	   *matched;
	int			n = 0;
	int64		dropped;
	MemoryContext old;

	aggcxt = rts_values_agg_context(fcinfo);
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/* b may live in a shorter-lived context: never adopt it */
	if (a == NULL)
		a = topk_create(aggcxt, &b->vt, InvalidOid, InvalidOid, b->k, b->nitems);
	else if (a->vt.typid != b->vt.typid)
		elog(ERROR, "rtstream.topk: cannot combine summaries of types %s and %s",
			 format_type_be(a->vt.typid), format_type_be(b->vt.typid));

	old = MemoryContextSwitchTo(a->cxt);
	cand = palloc(sizeof(TopkItem) * (a->nitems + b->nitems));
	matched = palloc0(sizeof(bool) * Max(b->nitems, 1));
	for (int i = 0; i < a->nitems; i++)
	{
		TopkItem   *it = &a->items[i];
		TopkEntry  *e = topk_index_lookup_hash(b->index, it->value, it->hash);

		cand[n] = *it;
		if (e != NULL)
		{
			cand[n].count += b->items[e->item].count;
			matched[e->item] = true;
		}
		else
			cand[n].count += b->dropped;
		n++;
	}
	for (int i = 0; i < b->nitems; i++)
	{
		if (matched[i])
			continue;
		cand[n] = b->items[i];
		cand[n].value = rts_values_copy(&a->vt, b->items[i].value, a->cxt);
		cand[n].count += a->dropped;
		n++;
	}
	dropped = a->dropped + b->dropped;
	if (n > a->capacity)
	{
		qsort(cand, n, sizeof(TopkItem), cmp_candidates);
		for (int i = a->capacity; i < n; i++)
		{
			dropped = Max(dropped, cand[i].count);
			rts_values_free(&a->vt, cand[i].value);
		}
		n = a->capacity;
	}
	topk_reserve(a, n);
	memcpy(a->items, cand, sizeof(TopkItem) * n);
	a->nitems = n;
	a->dropped = dropped;
	topk_rebuild(a);
	pfree(cand);
	pfree(matched);
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(a);
}

/*
 * serialfn: header, int32 k, int32 number of items, int64 dropped, then
 * per item its int64 count and its value.
 */
Datum
rts_topk_serial(PG_FUNCTION_ARGS)
{
	TopkState  *s = (TopkState *) PG_GETARG_POINTER(0);
	Size		size = VARHDRSZ + sizeof(RtsValuesHeader) + 2 * sizeof(int32) + sizeof(int64);
	bytea	   *result;
	char	   *p;

	for (int i = 0; i < s->nitems; i++)
		size += sizeof(int64) + rts_values_image_size(&s->vt, s->items[i].value);
	if (size > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the summary of rtstream.topk is too large to store")));
	result = palloc(size);
	SET_VARSIZE(result, size);
	p = rts_values_write_header(&s->vt, RTS_TOPK_MAGIC, VARDATA(result));
	memcpy(p, &s->k, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &s->nitems, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &s->dropped, sizeof(int64));
	p += sizeof(int64);
	for (int i = 0; i < s->nitems; i++)
	{
		memcpy(p, &s->items[i].count, sizeof(int64));
		p = rts_values_write(&s->vt, s->items[i].value, p + sizeof(int64));
	}
	Assert(p == (char *) result + size);
	PG_RETURN_BYTEA_P(result);
}

/* deserialfn: a summary in the current memory context */
Datum
rts_topk_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(image);
	const char *end = p + VARSIZE_ANY_EXHDR(image);
	RtsValueType vt;
	TopkState  *s;
	int32		k,
				nitems;
	int64		dropped;

	p = rts_values_read_header(&vt, RTS_TOPK_MAGIC, p, end, true);
	if (end - p < (ptrdiff_t) (2 * sizeof(int32) + sizeof(int64)))
		rts_values_corrupt();
	memcpy(&k, p, sizeof(int32));
	memcpy(&nitems, p + sizeof(int32), sizeof(int32));
	memcpy(&dropped, p + 2 * sizeof(int32), sizeof(int64));
	p += 2 * sizeof(int32) + sizeof(int64);
	if (k < 1 || k > RTS_TOPK_MAX_K || nitems < 0 || nitems > TOPK_CAPACITY(k) ||
		dropped < 0)
		rts_values_corrupt();
	s = topk_create(CurrentMemoryContext, &vt, InvalidOid, InvalidOid, k, nitems);
	topk_reserve(s, nitems);
	for (int i = 0; i < nitems; i++)
	{
		TopkItem   *it = &s->items[i];

		if (end - p < (ptrdiff_t) sizeof(int64))
			rts_values_corrupt();
		memcpy(&it->count, p, sizeof(int64));
		p += sizeof(int64);
		if (it->count < 1)
			rts_values_corrupt();
		it->value = rts_values_read(&s->vt, &p, end);
		it->hash = rts_values_hash(&s->vt, it->value);
	}
	if (p != end)
		rts_values_corrupt();
	s->nitems = nitems;
	s->dropped = dropped;
	topk_rebuild(s);
	PG_RETURN_POINTER(s);
}

/* the final order: count descending, then value ascending */
static int
cmp_final(const void *pa, const void *pb, void *arg)
{
	TopkState  *s = (TopkState *) arg;
	const TopkItem *a = &s->items[*(const int32 *) pa];
	const TopkItem *b = &s->items[*(const int32 *) pb];

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return rts_values_compare(&s->vt, a->value, b->value);
}

static void
push_key(JsonbParseState **ps, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
}

/*
 * finalfn: [{"value": to_jsonb(value), "count": n}, ...], at most k
 * entries; [] when no value was counted.  The state is not changed.
 */
Datum
rts_topk_final(PG_FUNCTION_ARGS)
{
	TopkState  *s = PG_ARGISNULL(0) ? NULL : (TopkState *) PG_GETARG_POINTER(0);
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	int32	   *order;
	int			n;
	FmgrInfo	to_jsonb;

	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
	if (s == NULL || s->nitems == 0)
	{
		res = pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
		PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
	}

	/* to_jsonb() finds the type of its argument in its call expression */
	fmgr_info(F_TO_JSONB, &to_jsonb);
	fmgr_info_set_expr((Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
											 list_make1(makeNullConst(s->vt.typid, -1,
																	  s->vt.collation)),
											 InvalidOid, s->vt.collation,
											 COERCE_EXPLICIT_CALL),
					   &to_jsonb);

	order = palloc(sizeof(int32) * s->nitems);
	for (int i = 0; i < s->nitems; i++)
		order[i] = i;
	qsort_arg(order, s->nitems, sizeof(int32), cmp_final, s);
	n = Min(s->k, s->nitems);
	for (int i = 0; i < n; i++)
	{
		TopkItem   *it = &s->items[order[i]];
		Jsonb	   *jb = DatumGetJsonbP(FunctionCall1(&to_jsonb, it->value));
		JsonbValue	v;

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		push_key(&ps, "value");
		if (JB_ROOT_IS_SCALAR(jb))
		{
			if (!JsonbExtractScalar(&jb->root, &v))
				elog(ERROR, "could not extract a scalar from jsonb");
		}
		else
		{
			v.type = jbvBinary;
			v.val.binary.data = &jb->root;
			v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
		}
		pushJsonbValue(&ps, WJB_VALUE, &v);
		push_key(&ps, "count");
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(it->count);
		pushJsonbValue(&ps, WJB_VALUE, &v);
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	}
	res = pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
