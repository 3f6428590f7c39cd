/*-------------------------------------------------------------------------
 *
 * geometry.h
 *	  Where a window's panes and windows lie in time: the one place that
 *	  maps an event time to its pane and a pane boundary back to a time.
 *
 *	  Panes are numbered from the window's origin; a pane is pane_us wide
 *	  (gcd of size and slide; the step of a cumulating window).  Without a
 *	  time zone a pane is pane_us of absolute time.  With one, it is pane_us
 *	  of local wall-clock time (whole days), so that pane k runs from local
 *	  midnight to local midnight and may last 23 or 25 hours.
 *
 *	  A window is known by the pane number of its end.  Hopping and
 *	  tumbling windows end at every + phase multiples (they start at
 *	  multiples of the slide from the origin) and hold the span panes
 *	  before their end.  A cumulating window ends at every pane boundary and
 *	  starts at the last multiple of span before its end: [day start, now).
 *
 *	  Every function is pure arithmetic on these numbers, so workers,
 *	  readers, history and sync() agree on which window holds which row.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_GEOMETRY_H
#define RTS_GEOMETRY_H

#include "datatype/timestamp.h"

/* Unix-epoch based time in microseconds, for pane boundaries. */
#define RTS_UNIX_EPOCH_OFFSET_US \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

static inline int64
rts_floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

#define RTS_TZ_LEN	64

typedef struct RtsGeometry
{
	int64		pane_us;		/* pane width (local time with a time zone) */
	int64		origin_us;		/* pane 0 starts here: Unix microseconds, or
								 * with a time zone the local wall-clock time
								 * of the origin as if it were UTC */
	int64		span;			/* panes per window (size / pane) */
	int64		every;			/* panes from one window end to the next */
	int64		phase;			/* window ends are n * every + phase */
	bool		cumulate;		/* windows grow by a step up to size */
	char		timezone[RTS_TZ_LEN];	/* "" : absolute time */
} RtsGeometry;

extern void rts_geometry_init(RtsGeometry *g, int64 size_us, int64 slide_us,
							  int64 step_us, bool has_origin, int64 origin_us,
							  const char *timezone);
extern int64 rts_pane_of_zone(const RtsGeometry *g, int64 t);
extern int64 rts_pane_start(const RtsGeometry *g, int64 pane);

/* The pane holding time t (Unix microseconds); once per row and window. */
static inline int64
rts_pane_of(const RtsGeometry *g, int64 t)
{
	if (unlikely(g->timezone[0] != '\0'))
		return rts_pane_of_zone(g, t);
	return rts_floor_div(t - g->origin_us, g->pane_us);
}

/* The newest window end at or before pane boundary q. */
static inline int64
rts_end_floor(const RtsGeometry *g, int64 q)
{
	return rts_floor_div(q - g->phase, g->every) * g->every + g->phase;
}

/* The first pane of the window ending at end. */
static inline int64
rts_window_first(const RtsGeometry *g, int64 end)
{
	if (g->cumulate)
		return rts_floor_div(end - 1, g->span) * g->span;
	return end - g->span;
}

/* The oldest window holding pane p ends here (the first end after p). */
static inline int64
rts_end_oldest_holding(const RtsGeometry *g, int64 p)
{
	return rts_end_floor(g, p) + g->every;
}

/* The newest window holding pane p ends here. */
static inline int64
rts_end_newest_holding(const RtsGeometry *g, int64 p)
{
	if (g->cumulate)
		return (rts_floor_div(p, g->span) + 1) * g->span;
	return rts_end_floor(g, p + g->span);
}

/*
 * The newest window closed once the watermark (a time) is wm: a window is
 * closed when the watermark reaches the time of its end.
 */
static inline int64
rts_end_closed(const RtsGeometry *g, int64 wm)
{
	return rts_end_floor(g, rts_pane_of(g, wm));
}

/* The window that holds time t and closes first: the "current" window. */
static inline int64
rts_end_current(const RtsGeometry *g, int64 t)
{
	return rts_end_oldest_holding(g, rts_pane_of(g, t));
}

#endif							/* RTS_GEOMETRY_H */
