/*-------------------------------------------------------------------------
 *
 * history.h
 *	  Closed windows into history tables: what worker 0 uses for local
 *	  windows and the shipper for distributed ones (history_nodes.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_HISTORY_H
#define RTS_HISTORY_H

#include "utils/tuplestore.h"

#include "combine.h"
#include "panes.h"
#include "windef.h"

extern int64 rts_history_collect(RtsWindowDef *def, dsa_area *area,
								 RtsPaneTable **tables, int ntables,
								 int64 wm, int64 emitted, int64 session_keep_in,
								 RtsCombineOut *out, int64 *session_keep);
extern void rts_history_insert_rows(RtsWindowDef *def, const char *relname,
									TupleDesc desc, Tuplestorestate *store);

extern int64 rts_history_progress(int32 window_id, XLogRecPtr *lsn);

/* history_nodes.c */
extern void rts_history_nodes_tick(void);

#endif							/* RTS_HISTORY_H */
