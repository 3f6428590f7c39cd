/*-------------------------------------------------------------------------
 *
 * read.h
 *	  Readers of windows: rtstream.window_rows() and window_results() over
 *	  the workers' tables (read.c), or over the partial states of the nodes
 *	  of a distributed stream (read_nodes.c); rtstream.window_state(), what
 *	  a node gives its coordinator (window_state.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_READ_H
#define RTS_READ_H

#include "nodes/pg_list.h"

#include "combine.h"
#include "panes.h"
#include "windef.h"

/* read.c */
extern RtsWindowDef *rts_reader_window(const char *name, RtsDatabaseShared *db);
extern void rts_reader_check(RtsWindowDef *def);
extern int	rts_reader_slot(RtsDatabaseShared *db, RtsWindowDef *def);
extern void rts_read_emit(RtsWindowDef *def, dsa_area *area,
						  RtsPaneTable **tables, int ntables, bool disjoint,
						  int64 newest, int64 wm, bool all_open,
						  RtsCombineOut *out);

/* read_nodes.c */
extern List *rts_window_nodes(RtsWindowDef *def);
extern void rts_read_nodes(RtsWindowDef *def, List *nodes, bool all_open,
						   RtsCombineOut *out);
extern RtsPaneTable *rts_merge_node_states(RtsWindowDef *def, dsa_area *area,
										   List *states);

#endif							/* RTS_READ_H */
