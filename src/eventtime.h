/*-------------------------------------------------------------------------
 *
 * eventtime.h
 *	  Event time of a window: its watermark, which windows are open, which
 *	  rows are late and which panes are still needed.  Times are Unix-epoch
 *	  microseconds; window ends are multiples of the slide.
 *
 *	  The watermark is the newest event time of the stream less
 *	  allowed_lateness, over the transactions every worker has applied
 *	  (eventtime.c), advanced by idle_timeout.  A sliding window
 *	  [end - size, end) closes when the watermark reaches its end; a row is
 *	  late when every window that holds it is closed.  A session closes when
 *	  the watermark reaches its last time + gap; a row older than the
 *	  watermark is late (it could belong to a session already closed).
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

/* Sliding: the end of the newest closed window (ends <= watermark). */
static inline int64
rts_closed_end(const RtsWindowDef *def, int64 wm)
{
	return rts_floor_div(wm, def->slide_us) * def->slide_us;
}

/* Sliding: the end of the current window, the one holding the newest time. */
static inline int64
rts_current_end(const RtsWindowDef *def, int64 newest)
{
	return (rts_floor_div(newest, def->slide_us) + 1) * def->slide_us;
}

/*
 * What the history is complete up to once the watermark is wm: the end of
 * the newest closed window (sliding), or wm itself (sessions end anywhere).
 */
static inline int64
rts_history_target(const RtsWindowDef *def, int64 wm)
{
	return RTS_IS_SESSION(def) ? wm : rts_closed_end(def, wm);
}

static inline bool
rts_row_late(const RtsWindowDef *def, int64 t, int64 wm)
{
	if (wm == RTS_TIME_NONE)
		return false;
	if (RTS_IS_SESSION(def))
		return t < wm;
	/* the newest window holding t ends at the last slide boundary <= t + size */
	return rts_floor_div(t + def->size_us, def->slide_us) * def->slide_us <= wm;
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
	keep = rts_floor_div(rts_closed_end(def, wm) + def->slide_us - def->size_us,
						 def->pane_us);
	if (OidIsValid(def->history))
	{
		if (emitted == RTS_TIME_NONE || emitted == RTS_TIME_UNKNOWN)
			return PG_INT64_MIN;
		keep = Min(keep, rts_floor_div(emitted + def->slide_us - def->size_us,
									   def->pane_us));
	}
	return keep;
}

static inline bool
rts_pane_kept(const RtsWindowDef *def, const RtsPane *pane, int64 keep)
{
	if (pane->pane_no == RTS_PANE_EMPTY)
		return false;
	if (RTS_IS_SESSION(def))
		return rts_session_end(def, pane) > keep;
	return pane->pane_no >= keep;
}

/* eventtime.c */
extern int64 rts_window_watermark(RtsDatabaseShared *db, RtsWindowSlot *slot);
extern XLogRecPtr rts_worker_caught_up(RtsDatabaseShared *db, int w);
extern void rts_publish_newest(RtsWindowSlot *slot, int worker, int64 newest,
							   XLogRecPtr lsn);

#endif							/* RTS_EVENTTIME_H */
