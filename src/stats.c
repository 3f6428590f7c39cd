/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  rtstream.stats(): one row for the router and one per worker;
 *	  rtstream.window_stats(): one row per window and worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "replication/slot.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "eventtime.h"
#include "panes.h"

PG_FUNCTION_INFO_V1(rts_stats);
PG_FUNCTION_INFO_V1(rts_window_stats);

#define STATS_COLS 18

Datum
rts_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RtsDatabaseShared *db;
	Datum		values[STATS_COLS];
	bool		nulls[STATS_COLS];
	XLogRecPtr	flush = GetFlushRecPtr(NULL);
	XLogRecPtr	decoded;
	dsa_area   *area;

	rts_check_server();
	db = rts_my_database(false);
	area = rts_dsa();
	InitMaterializedSRF(fcinfo, 0);

	/* router */
	memset(nulls, true, sizeof(nulls));
	decoded = pg_atomic_read_u64(&db->decoded_lsn);
	values[0] = CStringGetTextDatum("router");
	values[1] = Int32GetDatum(db->router_pid);
	values[2] = Int64GetDatum(pg_atomic_read_u64(&db->rows_routed));
	values[3] = Int64GetDatum(pg_atomic_read_u64(&db->batches_routed));
	values[10] = Int64GetDatum(flush > decoded ? flush - decoded : 0);
	values[11] = LSNGetDatum(decoded);
	nulls[0] = nulls[1] = nulls[2] = nulls[3] = nulls[10] = nulls[11] = false;
	values[12] = LSNGetDatum(pg_atomic_read_u64(&db->confirmed_lsn));
	nulls[12] = false;
	values[16] = Int64GetDatum(pg_atomic_read_u64(&db->gaps));
	nulls[16] = false;
	/* why rtstream does not run here, if it does not */
	values[17] = CStringGetTextDatum(db->start_error[0] != '\0' ? db->start_error :
									 db->router_blocked[0] != '\0' ? db->router_blocked :
									 db->router_failures.error);
	nulls[17] = db->start_error[0] == '\0' && db->router_blocked[0] == '\0' &&
		db->router_failures.error[0] == '\0';
	{
		char		slotname[NAMEDATALEN];
		ReplicationSlot *slot;

		snprintf(slotname, sizeof(slotname), "rtstream_%u", MyDatabaseId);
		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		slot = SearchNamedReplicationSlot(slotname, false);
		if (slot != NULL)
		{
			XLogRecPtr	restart;

			SpinLockAcquire(&slot->mutex);
			restart = slot->data.restart_lsn;
			SpinLockRelease(&slot->mutex);
			values[14] = Int64GetDatum(flush > restart ? flush - restart : 0);
			nulls[14] = false;
		}
		LWLockRelease(ReplicationSlotControlLock);
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	/* the shipper, in a database with distributed streams */
	if (rts_flag(&db->ship_wanted))
	{
		int64		delivered = 0;
		const char *error = db->ship_failures.error[0] != '\0' ?
			db->ship_failures.error : NULL;

		memset(nulls, true, sizeof(nulls));
		for (int i = 0; i < RTS_MAX_NODES; i++)
		{
			RtsShipNode *sn = &db->ship_nodes[i];

			delivered += (int64) sn->delivered_rows;
			if (error == NULL && sn->failures > 0 && sn->error[0] != '\0')
				error = psprintf("node \"%s\": %s", NameStr(sn->node), sn->error);
		}
		values[0] = CStringGetTextDatum("shipper");
		values[1] = Int32GetDatum(db->shipper.pid);
		values[2] = Int64GetDatum(delivered);
		values[10] = Int64GetDatum(pg_atomic_read_u64(&db->shipper.ring.write_pos) -
								   pg_atomic_read_u64(&db->shipper.applied_pos));
		values[12] = LSNGetDatum(pg_atomic_read_u64(&db->shipper.durable_lsn));
		nulls[0] = nulls[1] = nulls[2] = nulls[10] = nulls[12] = false;
		if (error != NULL)
		{
			values[17] = CStringGetTextDatum(error);
			nulls[17] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	for (int w = 0; w < db->nworkers; w++)
	{
		RtsWorkerShared *ws = &db->workers[w];
		int64		groups = 0;
		int64		bytes = 0;

		LWLockAcquire(&ws->lock, LW_SHARED);
		for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		{
			if (db->windows[s].window_id != 0 &&
				DsaPointerIsValid(db->windows[s].tables[w]))
			{
				RtsPaneTable *t = dsa_get_address(area, db->windows[s].tables[w]);

				groups += t->ngroups;
				bytes += t->bytes;
			}
		}
		LWLockRelease(&ws->lock);

		memset(nulls, false, sizeof(nulls));
		values[0] = CStringGetTextDatum(psprintf("worker %d", w));
		values[1] = Int32GetDatum(ws->pid);
		values[2] = Int64GetDatum(pg_atomic_read_u64(&ws->rows_applied));
		values[3] = Int64GetDatum(pg_atomic_read_u64(&ws->batches_applied));
		values[4] = Int64GetDatum(pg_atomic_read_u64(&ws->late_rows));
		values[5] = Int64GetDatum(pg_atomic_read_u64(&ws->null_time_rows));
		values[6] = Int64GetDatum(pg_atomic_read_u64(&ws->refused_groups));
		values[7] = Int64GetDatum(pg_atomic_read_u64(&ws->dead_letters));
		values[8] = Int64GetDatum(groups);
		values[9] = Int64GetDatum(bytes);
		values[10] = Int64GetDatum(pg_atomic_read_u64(&ws->ring.write_pos) -
								   pg_atomic_read_u64(&ws->applied_pos));
		values[11] = LSNGetDatum(ws->last_commit_lsn);
		values[12] = LSNGetDatum(pg_atomic_read_u64(&ws->durable_lsn));
		nulls[12] = pg_atomic_read_u64(&ws->durable_lsn) == 0;	/* none yet */
		if (ws->checkpoint_time != 0)
			values[13] = DirectFunctionCall2(timestamp_mi,
											 TimestampTzGetDatum(GetCurrentTimestamp()),
											 TimestampTzGetDatum(ws->checkpoint_time));
		else
			nulls[13] = true;
		nulls[14] = true;
		values[15] = Int64GetDatum(pg_atomic_read_u64(&ws->replayed_skipped));
		nulls[16] = nulls[17] = true;
		if (ws->pid == 0)
			nulls[1] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}

Datum
rts_window_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RtsDatabaseShared *db;
	dsa_area   *area;
	Oid			ext;
	XLogRecPtr	flush;

	rts_check_server();
	db = rts_my_database(false);
	area = rts_dsa();
	ext = get_extension_oid("rtstream", false);
	InitMaterializedSRF(fcinfo, 0);
	flush = GetFlushRecPtr(NULL);

	for (int w = 0; w < db->nworkers; w++)
	{
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);
		for (int s = 0; s < RTS_MAX_WINDOWS; s++)
		{
			RtsPaneTable *t;
			RtsWindowSlot *slot = &db->windows[s];
			Datum		values[15];
			bool		nulls[15];
			XLogRecPtr	behind = pg_atomic_read_u64(&slot->behind_lsn[w]);
			static const char *const run_states[] = {"running", "stalled", "catching up"};
			int64		wm = RTS_TIME_NONE;
			int64		emitted = rts_atomic_read_time(&slot->emitted_until);

			if (db->windows[s].window_id == 0 || db->windows[s].extension != ext ||
				!DsaPointerIsValid(db->windows[s].tables[w]))
				continue;
			t = dsa_get_address(area, db->windows[s].tables[w]);
			memset(nulls, false, sizeof(nulls));
			values[0] = Int32GetDatum(t->window_id);
			values[1] = Int32GetDatum(w);
			values[2] = Int64GetDatum(t->ngroups);
			values[3] = Int64GetDatum(t->rows);
			values[4] = Int64GetDatum(t->late_rows);
			values[5] = Int64GetDatum(t->null_time_rows);
			values[6] = Int64GetDatum(t->refused_groups);
			values[7] = Int64GetDatum(t->bytes);
			values[8] = TimestampTzGetDatum(t->max_time);
			nulls[8] = !t->has_time;
			/* the window's, on each of its rows */
			wm = rts_window_watermark(db, slot);
			values[9] = TimestampTzGetDatum(wm - RTS_UNIX_EPOCH_OFFSET_US);
			nulls[9] = wm == RTS_TIME_NONE;
			values[10] = TimestampTzGetDatum(emitted - RTS_UNIX_EPOCH_OFFSET_US);
			nulls[10] = emitted == RTS_TIME_NONE || emitted == RTS_TIME_UNKNOWN ||
				!slot->history;
			values[11] = CStringGetTextDatum(run_states[t->run.state]);
			values[12] = CStringGetTextDatum(t->run.error);
			nulls[12] = t->run.error[0] == '\0';
			values[13] = TimestampTzGetDatum(t->run.error_at);
			nulls[13] = t->run.error_at == 0;
			/* the WAL this window alone holds back on this worker */
			values[14] = Int64GetDatum(behind != 0 && flush > behind ? flush - behind : 0);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		LWLockRelease(&db->workers[w].lock);
	}
	PG_RETURN_NULL();
}
