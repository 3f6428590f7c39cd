/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  create_window(..., notify => true): a NOTIFY on the channel named
 *	  after the window, with the window's end as payload, when a window
 *	  closes, so that an application can LISTEN instead of polling.
 *
 *	  Worker 0 sends them.  A window with history notifies in the
 *	  transaction that appends the closed windows to its history table, so a
 *	  listener that is told about a window finds it there.  A window
 *	  without history notifies once a second for the windows closed since
 *	  the last time.  NOTIFY is not durable: after a restart of the worker,
 *	  windows that closed while it was down are told as one, the newest.
 *	  A session window tells the watermark up to which its sessions are in
 *	  the history table, when some session closed.
 *
 *	  The payload is the end in ISO 8601, in UTC: "2026-03-01 10:05:00+00".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "eventtime.h"
#include "worker.h"

/* At most this many windows are told per call; older ones are skipped. */
#define RTS_NOTIFY_MAX	1000

static void
notify_end(RtsWindowDef *def, int64 end)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[MAXDATELEN + 1];

	if (timestamp2tm(rts_from_unix(end), NULL, &tm, &fsec, NULL, NULL) != 0)
		return;
	tm.tm_isdst = 0;			/* UTC, and print its offset */
	EncodeDateTime(&tm, fsec, true, 0, NULL, USE_ISO_DATES, buf);
	Async_Notify(def->name, buf);
}

/*
 * Notify the windows ending in (from, to]; in a transaction, whose commit
 * sends them.  from RTS_TIME_NONE: only the newest, to.
 */
void
rts_notify_closed(RtsWindowDef *def, int64 from, int64 to)
{
	const RtsGeometry *geom = &def->geom;
	int64		first,
				last;

	if (!def->notify || to == RTS_TIME_NONE || to == RTS_TIME_UNKNOWN)
		return;
	if (from != RTS_TIME_NONE && from != RTS_TIME_UNKNOWN && to <= from)
		return;
	if (RTS_IS_SESSION(def) || from == RTS_TIME_NONE || from == RTS_TIME_UNKNOWN)
	{
		notify_end(def, to);
		return;
	}
	last = rts_end_floor(geom, rts_pane_of(geom, to));
	first = rts_end_floor(geom, rts_pane_of(geom, from)) + geom->every;
	if ((last - first) / geom->every >= RTS_NOTIFY_MAX)
		first = last - (RTS_NOTIFY_MAX - 1) * geom->every;
	for (int64 e = first; e <= last; e += geom->every)
		notify_end(def, rts_pane_start(geom, e));
}

/*
 * Worker 0, a sliding window without history: notify the windows closed
 * since the last call.  The first call after the window was loaded only
 * notes where it is, unless the window had no watermark then (it is new).
 */
void
rts_notify_tick(WorkerWindow *ww, RtsWindowSlot *slot)
{
	int64		wm = rts_window_watermark(wstate.db, slot);
	int64		target;

	if (wm == RTS_TIME_NONE)
	{
		if (ww->notified_until == RTS_TIME_UNKNOWN)
			ww->notified_until = RTS_TIME_NONE;
		return;
	}
	target = rts_history_target(ww->def, wm);
	if (ww->notified_until == RTS_TIME_UNKNOWN)
	{
		ww->notified_until = target;
		return;
	}
	if (ww->notified_until != RTS_TIME_NONE && target <= ww->notified_until)
		return;
	StartTransactionCommand();
	rts_notify_closed(ww->def, ww->notified_until, target);
	CommitTransactionCommand();
	ww->notified_until = target;
}
