/*-------------------------------------------------------------------------
 *
 * agg_values.h
 *	  Values of any type kept by rtstream's own aggregates over sets of
 *	  values: rtstream.count_distinct (agg_distinct.c) and rtstream.topk
 *	  (agg_topk.c).  Values are hashed and compared with the type's default
 *	  hash operator class under the input collation, kept flat (detoasted,
 *	  expanded objects flattened) in the aggregate's memory context, and
 *	  written to a state image in a flat form that does not depend on
 *	  alignment.
 *
 *	  A state image starts with a header naming the type, so that the
 *	  deserialisation function (which is given no argument types) can
 *	  rebuild the hash table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_AGG_VALUES_H
#define RTS_AGG_VALUES_H

#include "fmgr.h"

typedef struct RtsValueType
{
	Oid			typid;			/* the values' type (a domain's base type) */
	Oid			collation;		/* the input collation */
	int16		typlen;
	bool		typbyval;
	FmgrInfo	hash;			/* default hash opclass: hash function */
	FmgrInfo	eq;				/* and equality */
	FmgrInfo	cmp;			/* btree comparison; fn_oid invalid unless
								 * asked for and the type has one */
} RtsValueType;

/* The fixed part of a state image after its varlena header. */
typedef struct RtsValuesHeader
{
	uint32		magic;			/* which aggregate, and the format version */
	Oid			typid;
	Oid			collation;
	int16		typlen;			/* checked against the catalog on reading */
	int16		pad;
} RtsValuesHeader;

extern void rts_values_check_type(Oid typid, const char *aggname);
extern void rts_values_init(RtsValueType *vt, Oid typid, Oid collation,
							bool want_order);
extern void rts_values_type_copy(RtsValueType *dst, RtsValueType *src);
extern uint32 rts_values_hash(RtsValueType *vt, Datum value);
extern bool rts_values_equal(RtsValueType *vt, Datum a, Datum b);
extern int	rts_values_compare(RtsValueType *vt, Datum a, Datum b);
extern Datum rts_values_copy(RtsValueType *vt, Datum value, MemoryContext cxt);
extern void rts_values_free(RtsValueType *vt, Datum value);

/* images */
extern Size rts_values_image_size(RtsValueType *vt, Datum value);
extern char *rts_values_write(RtsValueType *vt, Datum value, char *dst);
extern Datum rts_values_read(RtsValueType *vt, const char **src,
							 const char *end);
extern char *rts_values_write_header(RtsValueType *vt, uint32 magic, char *dst);
extern const char *rts_values_read_header(RtsValueType *vt, uint32 magic,
										  const char *src, const char *end,
										  bool want_order);
extern void rts_values_corrupt(void) pg_attribute_noreturn();

/* The type of a polymorphic aggregate's value (its argument 1). */
static inline Oid
rts_values_arg_type(FunctionCallInfo fcinfo)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 1);

	if (!OidIsValid(typid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not determine input data type")));
	return typid;
}

/* The aggregate memory context of a transition, combine or final call. */
static inline MemoryContext
rts_values_agg_context(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "aggregate function called in non-aggregate context");
	return aggcxt;
}

/* rtstream.topk (agg_topk.c) */
#define RTS_TOPK_MAX_K	10000
extern void rts_topk_check_k(int32 k);

#endif							/* RTS_AGG_VALUES_H */
