/*-------------------------------------------------------------------------
 *
 * router.c
 *	  The router: one background worker per database that decodes WAL
 *	  through its own logical replication slot, in commit order, and hands
 *	  every rtstream batch, unparsed, to the worker that owns its partition
 *	  (DDL batches go to every worker).
 *
 *	  Decoding runs in-process, as pg_logical_slot_get_changes() does.  The
 *	  slot uses the core output plugin pgoutput, which every server allows
 *	  in output_plugin_libraries; once the decoding context is built we
 *	  replace the plugin's callbacks with ours, so no protocol frames are
 *	  built or parsed and no publication is needed: we get the reorder
 *	  buffer's transactions and messages directly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogutils.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "rtstream.h"

static RtsDatabaseShared *router_db = NULL;
static int	partition_owner[RTS_NPARTITIONS];

/*
 * Consistent-hash ring: each worker owns RTS_RING_VNODES points; a
 * partition goes to the worker owning the first point at or after its own.
 * Changing the number of workers moves only the partitions whose nearest
 * point changed.
 */
int
rts_partition_worker(int partition, int nworkers)
{
	uint32		ppoint = hash_uint32((uint32) partition * 2654435761U + 17);
	uint32		best = PG_UINT32_MAX;
	uint32		lowest = PG_UINT32_MAX;
	int			best_worker = -1;
	int			lowest_worker = 0;

	for (int w = 0; w < nworkers; w++)
	{
		for (int v = 0; v < RTS_RING_VNODES; v++)
		{
			uint32		point = hash_uint32((uint32) (w * 1009 + v * 7919 + 1));

			if (point >= ppoint && (best_worker < 0 || point < best))
			{
				best = point;
				best_worker = w;
			}
			if (point < lowest)
			{
				lowest = point;
				lowest_worker = w;
			}
		}
	}
	return best_worker >= 0 ? best_worker : lowest_worker;
}

void
rts_register_workers(void)
{
	List	   *names = rts_database_names();

	for (int d = 0; d < list_length(names); d++)
	{
		BackgroundWorker bgw;

		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = 1;
		snprintf(bgw.bgw_library_name, BGW_MAXLEN, "rtstream");
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "rts_router_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "rtstream router for %s",
				 (char *) list_nth(names, d));
		snprintf(bgw.bgw_type, BGW_MAXLEN, "rtstream router");
		bgw.bgw_main_arg = Int32GetDatum(d);
		RegisterBackgroundWorker(&bgw);

		for (int w = 0; w < rts_workers; w++)
		{
			snprintf(bgw.bgw_function_name, BGW_MAXLEN, "rts_worker_main");
			snprintf(bgw.bgw_name, BGW_MAXLEN, "rtstream worker %d for %s",
					 w, (char *) list_nth(names, d));
			snprintf(bgw.bgw_type, BGW_MAXLEN, "rtstream worker");
			bgw.bgw_main_arg = Int32GetDatum(d * RTS_MAX_WORKERS + w);
			RegisterBackgroundWorker(&bgw);
		}
	}
}

/* Queue an item for one worker, waiting while its queue is full. */
static void
router_forward(int worker, RtsQueueItem *item, const char *batch)
{
	RtsWorkerShared *ws = &router_db->workers[worker];

	while (!rts_ring_put(&ws->ring, item, batch))
	{
		if (ws->latch)
			SetLatch(ws->latch);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	if (ws->latch)
		SetLatch(ws->latch);
}

static void
router_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr message_lsn, bool transactional,
			   const char *prefix, Size sz, const char *message)
{
	RtsBatchHeader hdr;
	RtsQueueItem item;

	if (!transactional || strcmp(prefix, RTS_MESSAGE_PREFIX) != 0)
		return;
	if (sz < RTS_BATCH_HEADER_SIZE)
	{
		elog(WARNING, "rtstream: ignoring a malformed message at %X/%X",
			 LSN_FORMAT_ARGS(message_lsn));
		return;
	}
	memcpy(&hdr, message, sizeof(hdr));

	item.commit_lsn = txn->final_lsn;
	item.commit_time = txn->xact_time.commit_time;
	item.len = sz;
	item.xid = txn->xid;

	if (hdr.kind == RTS_BATCH_ROWS && hdr.partition < RTS_NPARTITIONS)
	{
		router_forward(partition_owner[hdr.partition], &item, message);
		pg_atomic_fetch_add_u64(&router_db->rows_routed, hdr.nrows);
	}
	else
	{
		for (int w = 0; w < router_db->nworkers; w++)
			router_forward(w, &item, message);
	}
	pg_atomic_fetch_add_u64(&router_db->batches_routed, 1);
}

static void
router_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
}

static void
router_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  XLogRecPtr commit_lsn)
{
}

static void
router_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  Relation relation, ReorderBufferChange *change)
{
}

static void
router_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				int nrelations, Relation relations[],
				ReorderBufferChange *change)
{
}

/* Nothing is ever written: our callbacks replace the plugin's. */
static void
router_prepare_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
					 TransactionId xid, bool last_write)
{
}

static void
router_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid,
			 bool last_write)
{
}

static List *
router_plugin_options(void)
{
	return list_make2(makeDefElem("proto_version", (Node *) makeString("1"), -1),
					  makeDefElem("publication_names",
								  (Node *) makeString("rtstream_unused"), -1));
}

static void
router_create_slot(const char *slotname)
{
	LogicalDecodingContext *ctx;

	CheckLogicalDecodingRequirements();
	ReplicationSlotCreate(slotname, true, RS_EPHEMERAL, false);
	ctx = CreateInitDecodingContext("pgoutput", NIL, false, InvalidXLogRecPtr,
									XL_ROUTINE(.page_read = read_local_xlog_page,
											   .segment_open = wal_segment_open,
											   .segment_close = wal_segment_close),
									router_prepare_write, router_write, NULL);
	DecodingContextFindStartpoint(ctx);
	FreeDecodingContext(ctx);
	ReplicationSlotPersist();
	ReplicationSlotRelease();
	ereport(LOG,
			(errmsg("rtstream created replication slot \"%s\"", slotname)));
}

static void
router_shmem_exit(int code, Datum arg)
{
	router_db->router_ready = false;
	router_db->router_latch = NULL;
	router_db->router_pid = 0;
}

void
rts_router_main(Datum arg)
{
	int			dbidx = DatumGetInt32(arg);
	char		slotname[NAMEDATALEN];
	LogicalDecodingContext *ctx;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	router_db = &rts_shared->dbs[dbidx];
	BackgroundWorkerInitializeConnection(router_db->dbname, NULL, 0);

	router_db->dboid = MyDatabaseId;
	router_db->router_pid = MyProcPid;
	router_db->router_latch = MyLatch;
	before_shmem_exit(router_shmem_exit, 0);

	for (int p = 0; p < RTS_NPARTITIONS; p++)
		partition_owner[p] = rts_partition_worker(p, router_db->nworkers);

	snprintf(slotname, sizeof(slotname), "rtstream_%u", MyDatabaseId);
	if (SearchNamedReplicationSlot(slotname, true) == NULL)
		router_create_slot(slotname);

	ReplicationSlotAcquire(slotname, true);
	ctx = CreateDecodingContext(InvalidXLogRecPtr, router_plugin_options(),
								false,
								XL_ROUTINE(.page_read = read_local_xlog_page,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								router_prepare_write, router_write, NULL);
	ctx->callbacks.begin_cb = router_begin;
	ctx->callbacks.commit_cb = router_commit;
	ctx->callbacks.change_cb = router_change;
	ctx->callbacks.truncate_cb = router_truncate;
	ctx->callbacks.message_cb = router_message;
	ctx->callbacks.filter_by_origin_cb = NULL;

	XLogBeginRead(ctx->reader, MyReplicationSlot->data.restart_lsn);
	pg_atomic_write_u64(&router_db->decoded_lsn,
						MyReplicationSlot->data.confirmed_flush);
	router_db->router_ready = true;
	ereport(LOG,
			(errmsg("rtstream router started in database \"%s\" at %X/%X",
					router_db->dbname,
					LSN_FORMAT_ARGS(MyReplicationSlot->data.confirmed_flush))));

	for (;;)
	{
		XLogRecPtr	flush = GetFlushRecPtr(NULL);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * No memory context games here: the WAL reader allocates its decode
		 * buffer on first use and keeps it.
		 */
		while (ctx->reader->EndRecPtr < flush)
		{
			XLogRecord *record;
			char	   *errm = NULL;

			record = XLogReadRecord(ctx->reader, &errm);
			if (errm)
				elog(ERROR, "rtstream router could not read WAL: %s", errm);
			if (record != NULL)
				LogicalDecodingProcessRecord(ctx, ctx->reader);
			CHECK_FOR_INTERRUPTS();
		}

		/* everything committed up to flush has been forwarded */
		pg_write_barrier();
		if (flush > pg_atomic_read_u64(&router_db->decoded_lsn))
		{
			pg_atomic_write_u64(&router_db->decoded_lsn, flush);
			LogicalConfirmReceivedLocation(flush);
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
