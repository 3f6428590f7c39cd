/*-------------------------------------------------------------------------
 *
 * eventtime.h
 *	  Event time of a window: its watermark, which windows are open, which
 *	  rows are late and which panes are still needed.  Times are Unix-epoch
 *	  microseconds; windows are known by the pane number of their end
 *	  (geometry.h).
 *
 *	  The watermark is the newest event time of the stream less
 *	  allowed_lateness, over the transactions every worker has applied
 *	  (eventtime.c), advanced by idle_timeout.  A sliding window
 *	  [end - size, end) closes when the watermark reaches its end; a row is
 *	  late when every window that holds it is closed.
 *
 *	  Sessions.  Rows of a group at most gap apart are one session, from its
 *	  first row to its last + gap: a row at t joins a session when
 *	  first - gap <= t <= last + gap (both ends inclusive, as in Flink, so
 *	  rows exactly gap apart are one session), and partial sessions of the
 *	  workers merge by the same rule.  A session is closed once the watermark
 *	  has passed its end, last + gap < wm (a row at exactly wm could still
 *	  touch it), and the history is complete up to wm - 1.  A row at or after
 *	  the watermark is never late.  A row before it is late unless it falls
 *	  into an open session: one of its worker's own partial sessions of its
 *	  group with last + gap >= wm and first <= t (worker.c,
 *	  session_open_at).  It joins that one; it cannot move the session's
 *	  start back, so it never reaches a closed session, nor a session of its
 *	  group on another worker that is closed (closed sessions of a group all
 *	  lie before its open ones).  Every other row before the watermark is
 *	  late: its own [t, t + gap) is closed, or it would start a session or
 *	  extend one backwards, toward sessions that may be closed and in the
 *	  history already (one worker cannot tell that none is within gap).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_EVENTTIME_H
#define RTS_EVENTTIME_H

#include "rtstream.h"
#include "panes.h"
#include "windef.h"

#define RTS_IS_SESSION(def)		((def)->gap_us > 0)

static inline int64
rts_to_unix(TimestampTz ts)
{
	return ts + RTS_UNIX_EPOCH_OFFSET_US;
}

static inline TimestampTz
rts_from_unix(int64 us)
{
	return us - RTS_UNIX_EPOCH_OFFSET_US;
}

/* The newest event time a worker applied to a table (it holds it). */
static inline int64
rts_table_newest(const RtsPaneTable *t)
{
	return t->has_time ? rts_to_unix(t->max_time) : RTS_TIME_NONE;
}

static inline int64
rts_watermark(const RtsWindowDef *def, int64 newest)
{
	return newest == RTS_TIME_NONE ? RTS_TIME_NONE : newest - def->lateness_us;
}

/*
 * What the history is complete up to once the watermark is wm: the end of
 * the newest closed window (sliding), or wm - 1 (sessions end anywhere, and
 * one ending at wm is still open).
 */
static inline int64
rts_history_target(const RtsWindowDef *def, int64 wm)
{
	if (RTS_IS_SESSION(def))
		return wm - 1;
	return rts_pane_start(&def->geom, rts_end_closed(&def->geom, wm));
}

/*
 * The watermark at which the history is complete up to emitted: the
 * lowest wm with rts_history_target(def, wm) >= emitted.  A row is judged
 * against it, as against the watermark, once its worker may have lost
 * track of what is in the history (after a restart).
 */
static inline int64
rts_history_watermark(const RtsWindowDef *def, int64 emitted)
{
	if (RTS_IS_SESSION(def))
		return emitted + 1;
	return emitted;
}

/*
 * Sessions: whether the row may be late, that is it is before the
 * watermark; the worker then makes it late unless it falls into a session
 * still open (see above).
 */
static inline bool
rts_row_late(const RtsWindowDef *def, int64 t, int64 wm)
{
	if (wm == RTS_TIME_NONE)
		return false;
	if (RTS_IS_SESSION(def))
		return t < wm;
	/* late when the newest window holding t is closed */
	return rts_end_newest_holding(&def->geom, rts_pane_of(&def->geom, t)) <=
		rts_pane_of(&def->geom, wm);
}

static inline int64
rts_session_end(const RtsWindowDef *def, const RtsPane *pane)
{
	return (int64) pane->words[RTS_SESSION_LAST_WORD] + def->gap_us;
}

/*
 * What must be kept: sliding windows, the first pane still needed (by an
 * open window, or by a closed one not yet in the history table); sessions,
 * a time such that partial sessions ending after it are needed: they may
 * belong to a session still open or not yet in the history, once merged
 * with those of other workers.  history.c works that out for sessions
 * (session_keep; RTS_TIME_NONE until it has).  PG_INT64_MIN keeps
 * everything.
 */
static inline int64
rts_keep_from(const RtsWindowDef *def, int64 wm, int64 emitted, int64 session_keep)
{
	int64		keep;

	if (RTS_IS_SESSION(def))
		return session_keep == RTS_TIME_NONE ? PG_INT64_MIN : session_keep;
	if (wm == RTS_TIME_NONE)
		return PG_INT64_MIN;
	/* the first pane of the oldest open window */
	keep = rts_window_first(&def->geom,
							rts_end_closed(&def->geom, wm) + def->geom.every);
	if (RTS_KEEPS_HISTORY(def))
	{
		if (emitted == RTS_TIME_NONE || emitted == RTS_TIME_UNKNOWN)
			return PG_INT64_MIN;
		/*
		 * held for a coordinator: it decides what is closed (its watermark
		 * is that of every node; this node's may lag, being off the ring)
		 */
		if (def->history_held)
			return rts_window_first(&def->geom,
									rts_pane_of(&def->geom, emitted) + def->geom.every);
		/* and of the oldest window not yet in the history */
		keep = Min(keep, rts_window_first(&def->geom,
										  rts_pane_of(&def->geom, emitted) +
										  def->geom.every));
	}
	return keep;
}

static inline bool
rts_pane_kept(const RtsWindowDef *def, const RtsPane *pane, int64 keep)
{
	int64		no = rts_pane_no(def, pane);

	if (no == RTS_PANE_EMPTY)
		return false;
	if (RTS_IS_SESSION(def))
		return rts_session_end(def, pane) > keep;
	return no >= keep;
}

/* eventtime.c */
extern int64 rts_window_watermark(RtsDatabaseShared *db, RtsWindowSlot *slot);
extern XLogRecPtr rts_worker_caught_up(RtsDatabaseShared *db, int w);
extern void rts_publish_newest(RtsWindowSlot *slot, int worker, int64 newest,
							   XLogRecPtr lsn);

#endif							/* RTS_EVENTTIME_H */
