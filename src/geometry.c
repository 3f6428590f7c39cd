/*-------------------------------------------------------------------------
 *
 * geometry.c
 *	  A window's panes in time (see geometry.h): the geometry of a window
 *	  definition, and the two mappings between times and pane boundaries.
 *
 *	  With a time zone, a time is first moved to the zone's wall clock, so
 *	  that panes of whole days start at local midnight; a pane boundary is
 *	  moved back with PostgreSQL's own rule for local times (as timestamp
 *	  AT TIME ZONE does: a time that does not exist, in the hour skipped by
 *	  a DST change, is read with the offset in force before it).  A local
 *	  day is never skipped or repeated, so the pane of a time never moves
 *	  back as time goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "geometry.h"

static int64
gcd64(int64 a, int64 b)
{
	while (b != 0)
	{
		int64		t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * The zone of a geometry.  pg_tzset() caches zones by name; one more
 * cache of the last zone spares its hash lookup on every row.
 */
static pg_tz *
geometry_tz(const RtsGeometry *g)
{
	static char last_name[RTS_TZ_LEN] = "";
	static pg_tz *last_tz = NULL;

	if (last_tz == NULL || strcmp(last_name, g->timezone) != 0)
	{
		pg_tz	   *tz = pg_tzset(g->timezone);

		if (tz == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time zone \"%s\" not recognized", g->timezone)));
		strlcpy(last_name, g->timezone, RTS_TZ_LEN);
		last_tz = tz;
	}
	return last_tz;
}

/* Seconds east of UTC of the zone at Unix time t (microseconds). */
static int64
zone_offset_us(const RtsGeometry *g, int64 t)
{
	pg_time_t	secs = (pg_time_t) rts_floor_div(t, USECS_PER_SEC);
	struct pg_tm *tm = pg_localtime(&secs, geometry_tz(g));

	if (tm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for time zone \"%s\"", g->timezone)));
	return (int64) tm->tm_gmtoff * USECS_PER_SEC;
}

/*
 * The geometry of a hopping or tumbling window (slide_us), or of a
 * cumulating one (step_us > 0); errors for shapes rtstream cannot keep.
 * origin_us is a Unix time (if has_origin, else the epoch); timezone NULL
 * or "" for absolute time.
 */
void
rts_geometry_init(RtsGeometry *g, int64 size_us, int64 slide_us, int64 step_us,
				  bool has_origin, int64 origin_us, const char *timezone)
{
	memset(g, 0, sizeof(RtsGeometry));
	if (step_us > 0)
	{
		if (size_us % step_us != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cumulating window size must be a whole multiple of its step"),
					 errhint("A cumulating window grows by one step at a time up to its size.")));
		g->pane_us = step_us;
		g->span = size_us / step_us;
		g->every = 1;
		g->phase = 0;
		g->cumulate = true;
	}
	else
	{
		if (slide_us > size_us)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window slide must not be longer than its size"),
					 errhint("Rows between two windows would count in none; use a size of at least the slide.")));
		g->pane_us = gcd64(size_us, slide_us);
		g->span = size_us / g->pane_us;
		g->every = slide_us / g->pane_us;
		/* windows start at multiples of the slide from the origin */
		g->phase = g->span % g->every;
	}

	if (timezone && timezone[0] != '\0')
	{
		if (strlen(timezone) >= RTS_TZ_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time zone name \"%s\" is too long", timezone)));
		if (g->pane_us % USECS_PER_DAY != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a window with a time zone needs a size and %s of whole days",
							step_us > 0 ? "step" : "slide"),
					 errhint("Windows of hours or less follow absolute time; set origin to align them.")));
		strlcpy(g->timezone, timezone, RTS_TZ_LEN);
		(void) geometry_tz(g);	/* is it a zone? */
		/*
		 * The origin is read on the zone's wall clock; by default it is
		 * local midnight of 1970-01-01.
		 */
		g->origin_us = has_origin ? origin_us + zone_offset_us(g, origin_us) : 0;
	}
	else
		g->origin_us = origin_us;
}

/* rts_pane_of() with a time zone: on the zone's wall clock. */
int64
rts_pane_of_zone(const RtsGeometry *g, int64 t)
{
	t += zone_offset_us(g, t);
	return rts_floor_div(t - g->origin_us, g->pane_us);
}

/* The time at which a pane starts (Unix microseconds). */
int64
rts_pane_start(const RtsGeometry *g, int64 pane)
{
	int64		local = g->origin_us + pane * g->pane_us;
	struct pg_tm tm;
	fsec_t		fsec;
	int			west;

	if (g->timezone[0] == '\0')
		return local;
	if (timestamp2tm((Timestamp) (local - RTS_UNIX_EPOCH_OFFSET_US), NULL, &tm,
					 &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	west = DetermineTimeZoneOffset(&tm, geometry_tz(g));
	return local + (int64) west * USECS_PER_SEC;
}
