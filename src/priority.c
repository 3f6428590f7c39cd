/*-------------------------------------------------------------------------
 *
 * priority.c
 *	  The CPU priority of rtstream's background processes (the router, the
 *	  workers, the shipper): rtstream.background_nice.
 *
 *	  Aggregation is background work.  While a large transaction runs, its
 *	  rows are applied beside it (worker_stream.c); on a machine with as
 *	  many busy processes as cores, the writer then shares its core with
 *	  them and the COPY itself slows down.  A higher nice value lets the
 *	  writing sessions go first; the workers take what is left, and catch
 *	  up when the writers pause.
 *
 *	  Every PostgreSQL child process calls setsid(), and Linux gives each
 *	  session an autogroup of its own: the scheduler shares the CPU among
 *	  autogroups first, so a process's own nice value changes nothing
 *	  against a backend in another autogroup.  The nice value of the
 *	  process's autogroup (/proc/self/autogroup, see sched(7)) does.  We set
 *	  both: the autogroup's where the kernel has them, the process's
 *	  elsewhere.  Raising a nice value needs no privilege; lowering it
 *	  again (a reload with a smaller value) may be refused: then the old
 *	  value stays until the process restarts, and we say so at DEBUG1.
 *	  The kernel takes an unprivileged change of an autogroup's nice value
 *	  once per 100 ms across the machine (EAGAIN otherwise): the router and
 *	  the workers start together, so a refused change is tried again from
 *	  their main loops.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "rtstream.h"

void
rts_set_background_priority(void)
{
	static int	applied = 0;	/* every process starts at nice 0 */
	static int	autogroup_applied = 0;
	FILE	   *f;
	bool		written;

	if (rts_background_nice != applied)
	{
		if (setpriority(PRIO_PROCESS, 0, rts_background_nice) != 0)
			elog(DEBUG1, "rtstream could not set its nice value to %d: %m",
				 rts_background_nice);
		applied = rts_background_nice;
	}
	if (rts_background_nice == autogroup_applied)
		return;
	f = fopen("/proc/self/autogroup", "w");
	if (f == NULL)
	{
		autogroup_applied = rts_background_nice;	/* no autogroups here */
		return;
	}
	/* the write happens at fclose: its error is fclose's */
	written = fprintf(f, "%d", rts_background_nice) >= 0;
	if (fclose(f) != 0)
		written = false;
	if (written)
		autogroup_applied = rts_background_nice;
	else if (errno != EAGAIN)
	{
		elog(DEBUG1, "rtstream could not set its autogroup's nice value to %d: %m",
			 rts_background_nice);
		autogroup_applied = rts_background_nice;	/* not again */
	}
	/* EAGAIN: another process changed one within 100 ms; next time */
}
