/*-------------------------------------------------------------------------
 *
 * groupkey.c
 *	  Encode and decode group keys (see groupkey.h).
 *
 *	  A key of one column of a fixed-length type is its value's bytes
 *	  (typlen of them), and empty if NULL: an int4 or int8 key fits in the
 *	  group entry itself (RTS_INLINE_KEY).  Otherwise, per key column: one
 *	  byte, 1 if NULL; then, unless NULL, the value: fixed-length types as
 *	  their typlen bytes, varlenas as a uint32 length and their (detoasted)
 *	  data, cstrings with their terminator; the last column's varlena or
 *	  cstring has no length or terminator, the key's end gives it.
 *	  Floating-point zero and NaN are normalised, as GROUP BY treats -0 and
 *	  0, and all NaNs, as equal.  Other types whose equality is not binary
 *	  (numeric 1.0 and 1.00, for example) group by their representation.
 *
 *	  Checkpoints of format 2 (before 0.5.2) hold keys in the former
 *	  encoding (a null byte and a whole Datum per by-value column, every
 *	  varlena with its length, every cstring with its terminator):
 *	  rts_groupkey_from_v2 translates them.
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

/* Key columns whose values rts_groupkey_build holds on its stack. */
#define KEY_COLUMNS		16

/* A key of one fixed-length column: its bytes alone, empty if NULL. */
static inline bool
bare_key(const RtsWindowDef *def)
{
	return def->ngroups == 1 && def->groups[0].typlen > 0;
}

/* Encode a key from its columns' values into buf (reset first). */
void
rts_groupkey_encode(RtsWindowDef *def, Datum *values, bool *nulls,
					StringInfo buf)
{
	resetStringInfo(buf);
	for (int i = 0; i < def->ngroups; i++)
	{
		RtsGroupDef *g = &def->groups[i];
		bool		last = (i == def->ngroups - 1);
		Datum		value = values[i];

		if (!bare_key(def))
			appendStringInfoChar(buf, nulls[i] ? 1 : 0);
		if (nulls[i])
			continue;
		if (g->typbyval)
		{
			char		bytes[sizeof(Datum)];

			value = normalise(g->type, value);
			store_att_byval(bytes, value, g->typlen);
			appendBinaryStringInfo(buf, bytes, g->typlen);
		}
		else if (g->typlen > 0)
			appendBinaryStringInfo(buf, DatumGetPointer(value), g->typlen);
		else if (g->typlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
			uint32		len = VARSIZE_ANY_EXHDR(v);

			if (!last)
				appendBinaryStringInfo(buf, (char *) &len, sizeof(uint32));
			appendBinaryStringInfo(buf, VARDATA_ANY(v), len);
		}
		else
			appendBinaryStringInfo(buf, DatumGetCString(value),
								   strlen(DatumGetCString(value)) + (last ? 0 : 1));
	}
}

void
rts_groupkey_build(RtsWindowDef *def, TupleTableSlot *tts,
				   ExprContext *econtext, StringInfo buf)
{
	Datum		valuebuf[KEY_COLUMNS];
	bool		nullbuf[KEY_COLUMNS];
	Datum	   *values = valuebuf;
	bool	   *nulls = nullbuf;

	if (def->ngroups > KEY_COLUMNS)
	{
		values = palloc(sizeof(Datum) * def->ngroups);
		nulls = palloc(sizeof(bool) * def->ngroups);
	}
	for (int i = 0; i < def->ngroups; i++)
	{
		RtsGroupDef *g = &def->groups[i];

		if (g->attno)
			values[i] = slot_getattr(tts, g->attno, &nulls[i]);
		else
			values[i] = ExecEvalExpr(g->state, econtext, &nulls[i]);
	}
	rts_groupkey_encode(def, values, nulls, buf);
	if (values != valuebuf)
	{
		pfree(values);
		pfree(nulls);
	}
}

/* A varlena of len bytes of data, palloc'd. */
static Datum
varlena_of(const char *data, uint32 len)
{
	struct varlena *v = palloc(len + VARHDRSZ);

	SET_VARSIZE(v, len + VARHDRSZ);
	memcpy(VARDATA(v), data, len);
	return PointerGetDatum(v);
}

/* Values palloc'd in the current memory context. */
void
rts_groupkey_decode(RtsWindowDef *def, const char *key, uint32 keylen,
					Datum *values, bool *nulls)
{
	const char *p = key;
	const char *end = key + keylen;

	for (int i = 0; i < def->ngroups; i++)
	{
		RtsGroupDef *g = &def->groups[i];
		bool		last = (i == def->ngroups - 1);

		if (bare_key(def))
			nulls[i] = (keylen == 0);
		else
			nulls[i] = (*p++ != 0);
		values[i] = (Datum) 0;
		if (nulls[i])
			continue;
		if (g->typbyval)
		{
			values[i] = fetch_att(p, true, g->typlen);
			p += g->typlen;
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

			if (last)
				len = end - p;
			else
			{
				memcpy(&len, p, sizeof(uint32));
				p += sizeof(uint32);
			}
			values[i] = varlena_of(p, len);
			p += len;
		}
		else
		{
			Size		len = last ? (Size) (end - p) : strlen(p);

			values[i] = CStringGetDatum(pnstrdup(p, len));
			p += len + (last ? 0 : 1);
		}
	}
	Assert(p == end);
}

/*
 * A key of the former encoding (checkpoint format 2) in the present one;
 * values palloc'd in the current memory context.
 */
void
rts_groupkey_from_v2(RtsWindowDef *def, const char *key, uint32 keylen,
					 StringInfo buf)
{
	Datum	   *values = palloc(sizeof(Datum) * Max(def->ngroups, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(def->ngroups, 1));
	const char *p = key;

	for (int i = 0; i < def->ngroups; i++)
	{
		RtsGroupDef *g = &def->groups[i];

		if (p >= key + keylen)
			elog(ERROR, "rtstream checkpoint holds a truncated group key");
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
			values[i] = PointerGetDatum(p);
			p += g->typlen;
		}
		else if (g->typlen == -1)
		{
			uint32		len;

			memcpy(&len, p, sizeof(uint32));
			p += sizeof(uint32);
			values[i] = varlena_of(p, len);
			p += len;
		}
		else
		{
			values[i] = CStringGetDatum(p);
			p += strlen(p) + 1;
		}
	}
	if (p != key + keylen)
		elog(ERROR, "rtstream checkpoint holds a group key of another definition");
	rts_groupkey_encode(def, values, nulls, buf);
}
