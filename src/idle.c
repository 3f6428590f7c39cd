/*-------------------------------------------------------------------------
 *
 * idle.c
 *	  Windows of a quiet stream: with idle_timeout, when no worker has had
 *	  a row of the window for that long, its watermark advances with the
 *	  wall clock, so that its windows close (and reach their history) even
 *	  when nothing more arrives.  Worker 0 does it, once a second.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "eventtime.h"
#include "worker.h"

/*
 * idle_timeout: when no worker has had a row of the window for that long,
 * the watermark advances with the wall clock.
 */
void
rts_idle_advance(WorkerWindow *ww, RtsWindowSlot *slot, TimestampTz now)
{
	RtsWindowDef *def = ww->def;
	TimestampTz idle_from = 0;
	int64		wm;

	if (def->idle_timeout_us <= 0)
		return;
	for (int w = 0; w < wstate.db->nworkers; w++)
		idle_from = Max(idle_from, (TimestampTz) pg_atomic_read_u64(&slot->last_arrival[w]));
	idle_from = Max(idle_from + def->idle_timeout_us, ww->idle_advanced_at);
	wm = rts_window_watermark(wstate.db, slot);
	if (now <= idle_from || wm == RTS_TIME_NONE)
		return;
	rts_atomic_raise_time(&slot->watermark, wm + (now - idle_from));
	ww->idle_advanced_at = now;
}

