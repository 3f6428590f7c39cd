/*-------------------------------------------------------------------------
 *
 * groupkey.c
 *	  Encode and decode group keys (see groupkey.h).
 *
 *	  Per key column: one byte, 1 if NULL; then, unless NULL, the value:
 *	  by-value types as a whole Datum, fixed-length types as their bytes,
 *	  varlenas as a uint32 length and their (detoasted) data, cstrings with
 *	  their terminator.  Floating-point zero and NaN are normalised, as
 *	  GROUP BY treats -0 and 0, and all NaNs, as equal.  Other types whose
 *	  equality is not binary (numeric 1.0 and 1.00, for example) group by
 *	  their representation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "utils/float.h"

#include "rtstream.h"
#include "groupkey.h"

static Datum
normalise(Oid type, Datum value)
{
	if (type == FLOAT8OID)
	{
		float8		f = DatumGetFloat8(value);

		if (f == 0.0)
			return Float8GetDatum(0.0);
		if (isnan(f))
			return Float8GetDatum(get_float8_nan());
	}
	else if (type == FLOAT4OID)
	{
		float4		f = DatumGetFloat4(value);

		if (f == 0.0f)
			return Float4GetDatum(0.0f);
		if (isnan(f))
			return Float4GetDatum(get_float4_nan());
	}
	return value;
}

void
rts_groupkey_build(RtsWindowDef *def, TupleTableSlot *tts,
				   ExprContext *econtext, StringInfo buf)
{
	resetStringInfo(buf);
	for (int i = 0; i < def->ngroups; i++)
	{
		RtsGroupDef *g = &def->groups[i];
		bool		isnull;
		Datum		value;

		if (g->attno)
			value = slot_getattr(tts, g->attno, &isnull);
		else
			value = ExecEvalExpr(g->state, econtext, &isnull);
		appendStringInfoChar(buf, isnull ? 1 : 0);
		if (isnull)
			continue;
		if (g->typbyval)
		{
			value = normalise(g->type, value);
			appendBinaryStringInfo(buf, (char *) &value, sizeof(Datum));
		}
		else if (g->typlen > 0)
			appendBinaryStringInfo(buf, DatumGetPointer(value), g->typlen);
		else if (g->typlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
			uint32		len = VARSIZE_ANY_EXHDR(v);

			appendBinaryStringInfo(buf, (char *) &len, sizeof(uint32));
			appendBinaryStringInfo(buf, VARDATA_ANY(v), len);
		}
		else
			appendBinaryStringInfo(buf, DatumGetCString(value),
								   strlen(DatumGetCString(value)) + 1);
	}
}

/* Values palloc'd in the current memory context. */
void
rts_groupkey_decode(RtsWindowDef *def, const char *key, uint32 keylen,
					Datum *values, bool *nulls)
{
	const char *p = key;

	for (int i = 0; i < def->ngroups; i++)
	{
		RtsGroupDef *g = &def->groups[i];

		nulls[i] = (*p++ != 0);
		values[i] = (Datum) 0;
		if (nulls[i])
			continue;
		if (g->typbyval)
		{
			memcpy(&values[i], p, sizeof(Datum));
			p += sizeof(Datum);
		}
		else if (g->typlen > 0)
		{
			char	   *copy = palloc(g->typlen);

			memcpy(copy, p, g->typlen);
			values[i] = PointerGetDatum(copy);
			p += g->typlen;
		}
		else if (g->typlen == -1)
		{
			uint32		len;
			struct varlena *v;

			memcpy(&len, p, sizeof(uint32));
			p += sizeof(uint32);
			v = palloc(len + VARHDRSZ);
			SET_VARSIZE(v, len + VARHDRSZ);
			memcpy(VARDATA(v), p, len);
			values[i] = PointerGetDatum(v);
			p += len;
		}
		else
		{
			values[i] = CStringGetDatum(pstrdup(p));
			p += strlen(p) + 1;
		}
	}
	Assert(p == key + keylen);
}
