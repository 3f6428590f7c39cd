/*-------------------------------------------------------------------------
 *
 * inbox.h
 *	  Rows of a distributed stream as tuples between coordinator and node.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_INBOX_H
#define RTS_INBOX_H

#include "access/tupdesc.h"

extern char *rts_tuple_signature(TupleDesc desc);

#endif							/* RTS_INBOX_H */
