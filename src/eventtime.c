/*-------------------------------------------------------------------------
 *
 * eventtime.c
 *	  The watermark of a window, as the workers, readers and the history
 *	  see it.
 *
 *	  Workers apply the transactions of the stream in commit order, each at
 *	  its own pace.  At the end of a transaction a worker publishes the
 *	  newest event time of what it has applied, with the transaction's end
 *	  LSN.  The watermark is then taken over the workers still behind: a
 *	  worker that has not applied every transaction behind the published
 *	  times may still get rows of them, and holds the watermark at its own
 *	  newest time (or back entirely, if it has none yet).  Once every
 *	  worker has caught up, the watermark is the newest time of the whole
 *	  stream.  So rows of one transaction, and rows of one partition, are
 *	  judged in commit order, and a partition that is slow (or quiet) never
 *	  makes another partition's rows late nor holds windows open forever.
 *
 *	  The watermark only ever rises (a worker that falls behind again does
 *	  not lower it); it is kept in the window's slot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "eventtime.h"

/* Every transaction ending at or before the result is applied by worker w. */
XLogRecPtr
rts_worker_caught_up(RtsDatabaseShared *db, int w)
{
	RtsWorkerShared *ws = &db->workers[w];
	XLogRecPtr	decoded = pg_atomic_read_u64(&db->decoded_lsn);

	/* the router queues a transaction before it publishes decoded_lsn */
	pg_read_barrier();
	if (pg_atomic_read_u64(&ws->ring.read_pos) == pg_atomic_read_u64(&ws->ring.write_pos))
		return Max(decoded, ws->progress.applied_lsn);
	return ws->progress.applied_lsn;
}

/* Compute, raise and return the watermark of a window. */
int64
rts_window_watermark(RtsDatabaseShared *db, RtsWindowSlot *slot)
{
	int64		newest[RTS_MAX_WORKERS];
	XLogRecPtr	last = 0;
	int64		stream_newest = RTS_TIME_NONE;
	int64		held = RTS_TIME_NONE;
	bool		holding = false;

	for (int w = 0; w < db->nworkers; w++)
	{
		newest[w] = rts_atomic_read_time(&slot->newest[w]);
		/* rts_publish_newest writes the LSN first */
		pg_read_barrier();
		if (newest[w] != RTS_TIME_NONE)
		{
			stream_newest = Max(stream_newest, newest[w]);
			last = Max(last, (XLogRecPtr) pg_atomic_read_u64(&slot->newest_lsn[w]));
		}
	}
	if (stream_newest == RTS_TIME_NONE)
		return rts_atomic_read_time(&slot->watermark);

	for (int w = 0; w < db->nworkers; w++)
	{
		XLogRecPtr	behind = pg_atomic_read_u64(&slot->behind_lsn[w]);

		/* a worker on which the window is behind has applied it up to there */
		if ((behind != 0 ? behind : rts_worker_caught_up(db, w)) >= last)
			continue;			/* it can only get rows of later transactions */
		if (newest[w] == RTS_TIME_NONE)
			return rts_atomic_read_time(&slot->watermark);
		held = holding ? Min(held, newest[w]) : newest[w];
		holding = true;
	}
	return rts_atomic_raise_time(&slot->watermark,
								 (holding ? held : stream_newest) - slot->lateness_us);
}

/* A worker's newest time, at the end of the transaction ending at lsn. */
void
rts_publish_newest(RtsWindowSlot *slot, int worker, int64 newest, XLogRecPtr lsn)
{
	if (newest == RTS_TIME_NONE ||
		newest <= rts_atomic_read_time(&slot->newest[worker]))
		return;
	pg_atomic_write_u64(&slot->newest_lsn[worker], lsn);
	pg_write_barrier();
	rts_atomic_raise_time(&slot->newest[worker], newest);
}
