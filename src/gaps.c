/*-------------------------------------------------------------------------
 *
 * gaps.c
 *	  Recording what exactly-once could not cover: a range of WAL whose
 *	  transactions some windows (or all) never counted, because the WAL
 *	  was gone before they could read it (a replication slot invalidated
 *	  by max_slot_wal_keep_size, a stalled window past
 *	  rtstream.stalled_wal_limit).  One row per gap in rtstream.gaps, a
 *	  counter in rtstream.stats, and an ERROR in the log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"

#include "rtstream.h"

/*
 * Record a gap: transactions ending after from and at or before to are not
 * in window (NULL: in any window).  In a transaction.
 */
void
rts_record_gap(RtsDatabaseShared *db, XLogRecPtr from, XLogRecPtr to,
			   const char *window, const char *reason)
{
	Oid			types[4] = {LSNOID, LSNOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		pushed = false;

	vals[0] = LSNGetDatum(from);
	vals[1] = LSNGetDatum(to);
	vals[2] = window ? CStringGetTextDatum(window) : (Datum) 0;
	nulls[2] = window ? ' ' : 'n';
	vals[3] = CStringGetTextDatum(reason);
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO rtstream.gaps (from_lsn, to_lsn, window_name, reason) "
							  "VALUES ($1, $2, $3, $4)", 4, types, vals, nulls,
							  false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write rtstream.gaps");
	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
	pg_atomic_fetch_add_u64(&db->gaps, 1);
}
