/*-------------------------------------------------------------------------
 *
 * agg_distinct.c
 *	  rtstream.count_distinct(anyelement): the exact number of distinct
 *	  non-NULL values, as a mergeable aggregate.  Its state is a hash set
 *	  of the values; two sets combine by union, so a window keeps one set
 *	  per pane and counts the union of its panes when read.  A window's
 *	  count(DISTINCT x) is kept as this aggregate (windef.c).
 *
 *	  The state image is a header (agg_values.h), the number of values and
 *	  the values; its size, and so the pane's share of
 *	  rtstream.memory_limit, grows with the number of distinct values.
 *
 *	  This file also holds the value helpers of agg_values.h, shared with
 *	  rtstream.topk (agg_topk.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupmacs.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "agg_values.h"

PG_FUNCTION_INFO_V1(rts_count_distinct_trans);
PG_FUNCTION_INFO_V1(rts_count_distinct_combine);
PG_FUNCTION_INFO_V1(rts_count_distinct_serial);
PG_FUNCTION_INFO_V1(rts_count_distinct_deserial);
PG_FUNCTION_INFO_V1(rts_count_distinct_final);

/* "RCD" and the format version */
#define RTS_DISTINCT_MAGIC	0x52434401

/* ----------------------------------------------------------------
 * Values of any type (agg_values.h)
 * ----------------------------------------------------------------
 */

void
rts_values_corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("corrupt rtstream aggregate state image")));
}

/* The hash operator class of a type, or an ERROR that names the aggregate. */
static TypeCacheEntry *
hash_support(Oid typid, const char *aggname, int flags)
{
	TypeCacheEntry *tce;

	tce = lookup_type_cache(typid, TYPECACHE_HASH_PROC | TYPECACHE_EQ_OPR | flags);
	if (!OidIsValid(tce->hash_proc) || !OidIsValid(tce->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify a hash function for type %s",
						format_type_be(typid)),
				 errdetail("%s keeps a hash set of its values: their type needs a default hash operator class.",
						   aggname)));
	return tce;
}

/*
 * Whether a window can keep rtstream.count_distinct or rtstream.topk over
 * values of this type (create_window).  A value of an anonymous record
 * type names a row type registered in one backend only, while a window's
 * states are read by every backend.
 */
void
rts_values_check_type(Oid typid, const char *aggname)
{
	Oid			base = getBaseType(typid);

	if (base == RECORDOID || base == RECORDARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s over values of type %s is not allowed in a window query",
						aggname, format_type_be(typid)),
				 errhint("Cast the row to a named composite type, or pass its columns as an array or as text.")));
	(void) hash_support(base, aggname, 0);
}

void
rts_values_init(RtsValueType *vt, Oid typid, Oid collation, bool want_order)
{
	Oid			base = getBaseType(typid);
	TypeCacheEntry *tce;

	tce = hash_support(base, want_order ? "rtstream.topk" : "rtstream.count_distinct",
					   TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO |
					   (want_order ? TYPECACHE_CMP_PROC_FINFO : 0));
	vt->typid = base;
	vt->collation = collation;
	vt->typlen = tce->typlen;
	vt->typbyval = tce->typbyval;
	fmgr_info_copy(&vt->hash, &tce->hash_proc_finfo, CurrentMemoryContext);
	fmgr_info_copy(&vt->eq, &tce->eq_opr_finfo, CurrentMemoryContext);
	vt->cmp.fn_oid = InvalidOid;
	if (want_order && OidIsValid(tce->cmp_proc))
		fmgr_info_copy(&vt->cmp, &tce->cmp_proc_finfo, CurrentMemoryContext);
}

/* Copy a value type into the current memory context (never share fn_extra). */
void
rts_values_type_copy(RtsValueType *dst, RtsValueType *src)
{
	*dst = *src;
	fmgr_info_copy(&dst->hash, &src->hash, CurrentMemoryContext);
	fmgr_info_copy(&dst->eq, &src->eq, CurrentMemoryContext);
	if (OidIsValid(src->cmp.fn_oid))
		fmgr_info_copy(&dst->cmp, &src->cmp, CurrentMemoryContext);
}

uint32
rts_values_hash(RtsValueType *vt, Datum value)
{
	return DatumGetUInt32(FunctionCall1Coll(&vt->hash, vt->collation, value));
}

bool
rts_values_equal(RtsValueType *vt, Datum a, Datum b)
{
	return DatumGetBool(FunctionCall2Coll(&vt->eq, vt->collation, a, b));
}

/* The type's default btree order; 0 (a tie) if it has none. */
int
rts_values_compare(RtsValueType *vt, Datum a, Datum b)
{
	if (!OidIsValid(vt->cmp.fn_oid))
		return 0;
	return DatumGetInt32(FunctionCall2Coll(&vt->cmp, vt->collation, a, b));
}

/*
 * A flat copy of a value in cxt: detoasted (a set must not point into a
 * TOAST table or a tuple that goes away), expanded objects flattened.
 */
Datum
rts_values_copy(RtsValueType *vt, Datum value, MemoryContext cxt)
{
	MemoryContext old;
	Datum		result;

	if (vt->typbyval)
		return value;
	old = MemoryContextSwitchTo(cxt);
	if (vt->typlen == -1)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(value);
		struct varlena *flat = pg_detoast_datum_packed(v);

		result = (flat != v) ? PointerGetDatum(flat) : datumCopy(value, false, -1);
	}
	else
		result = datumCopy(value, false, vt->typlen);
	MemoryContextSwitchTo(old);
	return result;
}

void
rts_values_free(RtsValueType *vt, Datum value)
{
	if (!vt->typbyval)
		pfree(DatumGetPointer(value));
}

/*
 * The image of a value: by-value and fixed-length types as their typlen
 * bytes, varlena and cstring values as a uint32 length and their bytes.
 * Values are copied with memcpy: an image has no alignment.
 */
Size
rts_values_image_size(RtsValueType *vt, Datum value)
{
	if (vt->typlen > 0)
		return vt->typlen;
	if (vt->typlen == -1)
		return sizeof(uint32) + VARSIZE_ANY(DatumGetPointer(value));
	return sizeof(uint32) + strlen(DatumGetCString(value)) + 1;
}

char *
rts_values_write(RtsValueType *vt, Datum value, char *dst)
{
	uint32		len;

	if (vt->typbyval)
	{
		Datum		buf = 0;

		store_att_byval(&buf, value, vt->typlen);
		memcpy(dst, &buf, vt->typlen);
		return dst + vt->typlen;
	}
	if (vt->typlen > 0)
	{
		memcpy(dst, DatumGetPointer(value), vt->typlen);
		return dst + vt->typlen;
	}
	if (vt->typlen == -1)
		len = VARSIZE_ANY(DatumGetPointer(value));
	else
		len = strlen(DatumGetCString(value)) + 1;
	memcpy(dst, &len, sizeof(uint32));
	memcpy(dst + sizeof(uint32), DatumGetPointer(value), len);
	return dst + sizeof(uint32) + len;
}

/* A by-value datum from its typlen bytes, as fetch_att would read them. */
static Datum
read_byval(const char *p, int16 typlen)
{
	switch (typlen)
	{
		case 1:
			return CharGetDatum(*p);
		case 2:
			{
				int16		v;

				memcpy(&v, p, sizeof(v));
				return Int16GetDatum(v);
			}
		case 4:
			{
				int32		v;

				memcpy(&v, p, sizeof(v));
				return Int32GetDatum(v);
			}
#if SIZEOF_DATUM == 8
		case 8:
			{
				Datum		v;

				memcpy(&v, p, sizeof(v));
				return v;
			}
#endif
		default:
			elog(ERROR, "unsupported byval length: %d", (int) typlen);
			return (Datum) 0;
	}
}

/* Read a value back, in the current memory context, checking its bounds. */
Datum
rts_values_read(RtsValueType *vt, const char **src, const char *end)
{
	const char *p = *src;
	uint32		len;
	char	   *copy;

	if (vt->typlen > 0)
	{
		if (end - p < vt->typlen)
			rts_values_corrupt();
		*src = p + vt->typlen;
		if (vt->typbyval)
			return read_byval(p, vt->typlen);
		copy = palloc(vt->typlen);
		memcpy(copy, p, vt->typlen);
		return PointerGetDatum(copy);
	}
	if (end - p < (ptrdiff_t) sizeof(uint32))
		rts_values_corrupt();
	memcpy(&len, p, sizeof(uint32));
	p += sizeof(uint32);
	if (len == 0 || len > MaxAllocSize || end - p < (ptrdiff_t) len)
		rts_values_corrupt();
	copy = palloc(len);
	memcpy(copy, p, len);
	if (vt->typlen == -1 ? VARSIZE_ANY(copy) != len : copy[len - 1] != '\0')
		rts_values_corrupt();
	*src = p + len;
	return PointerGetDatum(copy);
}

char *
rts_values_write_header(RtsValueType *vt, uint32 magic, char *dst)
{
	RtsValuesHeader h;

	memset(&h, 0, sizeof(h));
	h.magic = magic;
	h.typid = vt->typid;
	h.collation = vt->collation;
	h.typlen = vt->typlen;
	memcpy(dst, &h, sizeof(h));
	return dst + sizeof(h);
}

/* Read a header and set up the value type it names. */
const char *
rts_values_read_header(RtsValueType *vt, uint32 magic, const char *src,
					   const char *end, bool want_order)
{
	RtsValuesHeader h;

	if (end - src < (ptrdiff_t) sizeof(h))
		rts_values_corrupt();
	memcpy(&h, src, sizeof(h));
	if (h.magic != magic)
		rts_values_corrupt();
	rts_values_init(vt, h.typid, h.collation, want_order);
	if (vt->typlen != h.typlen)
		rts_values_corrupt();
	return src + sizeof(h);
}

/* ----------------------------------------------------------------
 * The set
 * ----------------------------------------------------------------
 */

typedef struct DistinctEntry
{
	Datum		value;
	uint32		hash;
	char		status;
} DistinctEntry;

typedef struct DistinctSet DistinctSet;

static inline uint32 distinct_hash_value(void *set, Datum value);
static inline bool distinct_equal(void *set, Datum a, Datum b);

#define SH_PREFIX		distinct
#define SH_ELEMENT_TYPE DistinctEntry
#define SH_KEY_TYPE		Datum
#define SH_KEY			value
#define SH_HASH_KEY(tb, key)	distinct_hash_value((tb)->private_data, key)
#define SH_EQUAL(tb, a, b)		distinct_equal((tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)		((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct DistinctSet
{
	RtsValueType vt;
	MemoryContext cxt;			/* of the table and the values */
	distinct_hash *table;		/* its keys are the set */
};

static inline uint32
distinct_hash_value(void *set, Datum value)
{
	return rts_values_hash(&((DistinctSet *) set)->vt, value);
}

static inline bool
distinct_equal(void *set, Datum a, Datum b)
{
	return rts_values_equal(&((DistinctSet *) set)->vt, a, b);
}

/* An empty set in cxt; vt, if given, is copied. */
static DistinctSet *
dset_create(MemoryContext cxt, RtsValueType *vt, Oid typid, Oid collation,
				uint32 nelements)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	DistinctSet *set = palloc0(sizeof(DistinctSet));

	if (vt)
		rts_values_type_copy(&set->vt, vt);
	else
		rts_values_init(&set->vt, typid, collation, false);
	set->cxt = cxt;
	set->table = distinct_create(cxt, Max(nelements, 8), set);
	MemoryContextSwitchTo(old);
	return set;
}

/* Add a value; it is copied into the set's context if it is new. */
static void
dset_add(DistinctSet *set, Datum value, uint32 hash)
{
	bool		found;
	DistinctEntry *e = distinct_insert_hash(set->table, value, hash, &found);

	if (!found)
		e->value = rts_values_copy(&set->vt, value, set->cxt);
}

/*
 * transfn(state, value): NULLs are skipped; the state stays NULL until
 * the first non-NULL value.
 */
Datum
rts_count_distinct_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	DistinctSet *set = PG_ARGISNULL(0) ? NULL : (DistinctSet *) PG_GETARG_POINTER(0);
	Datum		value;

	aggcxt = rts_values_agg_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (set == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(set);
	}
	if (set == NULL)
		set = dset_create(aggcxt, NULL, rts_values_arg_type(fcinfo),
						  PG_GET_COLLATION(), 0);
	value = PG_GETARG_DATUM(1);
	dset_add(set, value, rts_values_hash(&set->vt, value));
	PG_RETURN_POINTER(set);
}

/* combinefn(a, b): the union, in a (or in a new set in the aggregate context) */
Datum
rts_count_distinct_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	DistinctSet *a = PG_ARGISNULL(0) ? NULL : (DistinctSet *) PG_GETARG_POINTER(0);
	DistinctSet *b = PG_ARGISNULL(1) ? NULL : (DistinctSet *) PG_GETARG_POINTER(1);
	distinct_iterator it;
	DistinctEntry *e;

	aggcxt = rts_values_agg_context(fcinfo);
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/* b may live in a shorter-lived context: never adopt it */
	if (a == NULL)
		a = dset_create(aggcxt, &b->vt, InvalidOid, InvalidOid, b->table->members);
	else if (a->vt.typid != b->vt.typid)
		elog(ERROR, "rtstream.count_distinct: cannot combine sets of types %s and %s",
			 format_type_be(a->vt.typid), format_type_be(b->vt.typid));

	distinct_start_iterate(b->table, &it);
	while ((e = distinct_iterate(b->table, &it)) != NULL)
		dset_add(a, e->value, e->hash);
	PG_RETURN_POINTER(a);
}

/* serialfn: header, uint64 number of values, the values */
Datum
rts_count_distinct_serial(PG_FUNCTION_ARGS)
{
	DistinctSet *set = (DistinctSet *) PG_GETARG_POINTER(0);
	distinct_iterator it;
	DistinctEntry *e;
	Size		size = VARHDRSZ + sizeof(RtsValuesHeader) + sizeof(uint64);
	uint64		n = set->table->members;
	bytea	   *result;
	char	   *p;

	distinct_start_iterate(set->table, &it);
	while ((e = distinct_iterate(set->table, &it)) != NULL)
	{
		size += rts_values_image_size(&set->vt, e->value);
		if (size > MaxAllocSize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the set of rtstream.count_distinct is too large to store: %llu values",
							(unsigned long long) n),
					 errhint("For approximate distinct counts of many values use the hll extension: hll_cardinality(hll_add_agg(hll_hash_any(x))).")));
	}
	result = palloc(size);
	SET_VARSIZE(result, size);
	p = rts_values_write_header(&set->vt, RTS_DISTINCT_MAGIC, VARDATA(result));
	memcpy(p, &n, sizeof(uint64));
	p += sizeof(uint64);
	distinct_start_iterate(set->table, &it);
	while ((e = distinct_iterate(set->table, &it)) != NULL)
		p = rts_values_write(&set->vt, e->value, p);
	Assert(p == (char *) result + size);
	PG_RETURN_BYTEA_P(result);
}

/* deserialfn: a set in the current memory context */
Datum
rts_count_distinct_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(image);
	const char *end = p + VARSIZE_ANY_EXHDR(image);
	RtsValueType vt;
	DistinctSet *set;
	uint64		n;

	p = rts_values_read_header(&vt, RTS_DISTINCT_MAGIC, p, end, false);
	if (end - p < (ptrdiff_t) sizeof(uint64))
		rts_values_corrupt();
	memcpy(&n, p, sizeof(uint64));
	p += sizeof(uint64);
	if (n > (uint64) (end - p))		/* every value takes a byte at least */
		rts_values_corrupt();
	set = dset_create(CurrentMemoryContext, &vt, InvalidOid, InvalidOid, (uint32) n);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		value = rts_values_read(&set->vt, &p, end);
		bool		found;
		DistinctEntry *e = distinct_insert(set->table, value, &found);

		if (found)
			rts_values_free(&set->vt, value);	/* cannot happen; harmless */
		else
			e->value = value;
	}
	if (p != end)
		rts_values_corrupt();
	PG_RETURN_POINTER(set);
}

/* finalfn: the size of the set, 0 for no values */
Datum
rts_count_distinct_final(PG_FUNCTION_ARGS)
{
	DistinctSet *set = PG_ARGISNULL(0) ? NULL : (DistinctSet *) PG_GETARG_POINTER(0);

	PG_RETURN_INT64(set ? (int64) set->table->members : 0);
}
