/*-------------------------------------------------------------------------
 *
 * groupkey.h
 *	  Group keys as byte strings: equal keys have equal bytes, so a key is
 *	  hashed and compared with memcmp, in the worker and in readers alike.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_GROUPKEY_H
#define RTS_GROUPKEY_H

#include "lib/stringinfo.h"
#include "windef.h"

extern void rts_groupkey_build(RtsWindowDef *def, TupleTableSlot *tts,
							   ExprContext *econtext, StringInfo buf);
extern void rts_groupkey_encode(RtsWindowDef *def, Datum *values, bool *nulls,
								StringInfo buf);
extern void rts_groupkey_decode(RtsWindowDef *def, const char *key,
								uint32 keylen, Datum *values, bool *nulls);
extern void rts_groupkey_from_v2(RtsWindowDef *def, const char *key,
								 uint32 keylen, StringInfo buf);

#endif							/* RTS_GROUPKEY_H */
