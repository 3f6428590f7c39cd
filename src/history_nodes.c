/*-------------------------------------------------------------------------
 *
 * history_nodes.c
 *	  The history of distributed windows.
 *
 *	  Coordinator: the shipper, once a second, combines the windows every
 *	  node's watermark has closed (from the nodes' states, as a read does)
 *	  and appends them to the coordinator's history table, in one local
 *	  transaction that also records the progress in
 *	  rtstream.history_progress: each closed window is written once.  Only
 *	  then does it tell the nodes (rtstream._history_release) that they may
 *	  drop those panes; a node's window of a distributed window with history
 *	  keeps them until then (history_held), in its checkpoints too.  If the
 *	  release is lost, the next tick sends it again.
 *
 *	  Node: rtstream._history_publish() raises the window's progress in
 *	  shared memory once the release is recorded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "eventtime.h"

PG_FUNCTION_INFO_V1(rts_history_publish);

/*
 * rtstream._history_publish(window_id, until, session_keep): the slot's
 * progress, as if this node's history writer had written up to until.
 * Called by rtstream._history_release (SECURITY DEFINER, which checks the
 * caller) only.
 */
Datum
rts_history_publish(PG_FUNCTION_ARGS)
{
	int32		window_id = PG_GETARG_INT32(0);
	RtsDatabaseShared *db;
	Oid			ext = get_extension_oid("rtstream", false);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	db = rts_my_database(false);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		RtsWindowSlot *slot = &db->windows[s];

		if (slot->window_id != window_id || slot->extension != ext)
			continue;
		if (!PG_ARGISNULL(2))
			rts_atomic_raise_time(&slot->session_keep,
								  rts_to_unix(PG_GETARG_TIMESTAMPTZ(2)));
		rts_atomic_raise_time(&slot->emitted_until,
							  rts_to_unix(PG_GETARG_TIMESTAMPTZ(1)));
	}
	PG_RETURN_VOID();
}
