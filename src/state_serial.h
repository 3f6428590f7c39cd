/*-------------------------------------------------------------------------
 *
 * state_serial.h
 *	  Window state to and from bytes, for the WAL-logged checkpoint table
 *	  rtstream.checkpoints.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_STATE_SERIAL_H
#define RTS_STATE_SERIAL_H

#include "lib/stringinfo.h"
#include "panes.h"
#include "windef.h"

extern uint32 rts_table_serialize(RtsWindowDef *def, dsa_area *area,
								  RtsPaneTable *t, int nworkers, int64 keep,
								  StringInfo out);
extern void rts_table_merge(RtsWindowDef *def, dsa_area *area,
							RtsPaneTable *t, const char *data, Size len,
							bool foreign, int nworkers, int64 emitted,
							MemoryContext aggcontext);

#endif							/* RTS_STATE_SERIAL_H */
