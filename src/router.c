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
#include "catalog/namespace.h"
#include "utils/snapmgr.h"
#include "utils/pg_lsn.h"
#include "executor/spi.h"
#include "commands/extension.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogutils.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/decode.h"
#include "access/rmgr.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "rtstream.h"

static RtsDatabaseShared *router_db = NULL;
static int	partition_owner[RTS_NPARTITIONS];
static uint32 txn_workers;		/* workers sent batches of the current
								 * transaction: they get its commit marker */
static char slotname[NAMEDATALEN];

/*
 * routed_lsn[w]: the commit LSN of the last batch (rows or DDL) queued for
 * worker w since this router started.  A worker whose durable checkpoint
 * is at or past it needs no WAL kept: everything it was given is in it.
 */
static XLogRecPtr routed_lsn[RTS_MAX_WORKERS];

/* The same for the shipper, and whether it got batches of this transaction */
static XLogRecPtr ship_routed_lsn;
static bool txn_shipped;

/*
 * Transactions decoded while they run (streamed, see router_stream_message):
 * per top-level XID, which queues got their batches and how many each.
 * Emptied at every start of the router (a new generation: workers and the
 * shipper drop what they hold of them, and everything comes again).
 */
typedef struct RouterStreamTxn
{
	TransactionId xid;			/* hash key */
	uint32		workers;		/* bit w: worker w got batches */
	bool		shipped;		/* the shipper got batches */
	uint32		seq[RTS_MAX_WORKERS];	/* batches sent to each worker */
	uint32		ship_seq;		/* ... and to the shipper */
} RouterStreamTxn;

static HTAB *stream_txns = NULL;
static RouterStreamTxn *cur_stream = NULL;	/* the one being streamed */
static RouterStreamTxn *router_stream_txn(TransactionId xid, bool create);

/*
 * Consistent-hash ring: each worker owns RTS_RING_VNODES points; a
 * partition goes to the worker owning the first point at or after its own.
 * Changing the number of workers moves only the partitions whose nearest
 * point changed.
 */
int
rts_ring_owner(int partition, int nowners, RtsRingPoint point, const void *arg)
{
	uint32		ppoint = hash_uint32((uint32) partition * 2654435761U + 17);
	uint32		best = PG_UINT32_MAX;
	uint32		lowest = PG_UINT32_MAX;
	int			best_owner = -1;
	int			lowest_owner = 0;

	for (int o = 0; o < nowners; o++)
	{
		for (int v = 0; v < RTS_RING_VNODES; v++)
		{
			uint32		p = point(o, v, arg);

			if (p >= ppoint && (best_owner < 0 || p < best))
			{
				best = p;
				best_owner = o;
			}
			if (p < lowest)
			{
				lowest = p;
				lowest_owner = o;
			}
		}
	}
	return best_owner >= 0 ? best_owner : lowest_owner;
}

/* A worker's points: from its number (they decide where state lives). */
static uint32
worker_point(int w, int v, const void *arg)
{
	return hash_uint32((uint32) (w * 1009 + v * 7919 + 1));
}

int
rts_partition_worker(int partition, int nworkers)
{
	return rts_ring_owner(partition, nworkers, worker_point, NULL);
}

/* The owner of every partition. */
void
rts_partition_owners(int nworkers, int *owner)
{
	for (int p = 0; p < RTS_NPARTITIONS; p++)
		owner[p] = rts_partition_worker(p, nworkers);
}

/* The router's pause after decoding, to take the next commits together. */
#define ROUTER_COALESCE_US	1000

/* Queue an item for a worker or the shipper, waiting while it is full. */
static void
router_put(RtsWorkerShared *ws, RtsQueueItem *item, const char *batch)
{

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
router_forward(int worker, RtsQueueItem *item, const char *batch)
{
	router_put(&router_db->workers[worker], item, batch);
}

/*
 * A batch of the transaction in hand for a worker: counted for its commit
 * marker, or, while the transaction runs, numbered within it.
 */
static void
router_to_worker(int worker, RtsQueueItem *item, const char *batch)
{
	if (item->flags & RTS_ITEM_STREAMED)
	{
		item->seq = cur_stream->seq[worker]++;
		cur_stream->workers |= (1U << worker);
		router_forward(worker, item, batch);
		return;
	}
	router_forward(worker, item, batch);
	txn_workers |= (1U << worker);
	routed_lsn[worker] = item->commit_lsn;
}

/*
 * Rows of a distributed stream go to the shipper.  The launcher starts it
 * once it is wanted; until then its queue fills and we wait.
 */
static void
router_ship(RtsQueueItem *item, const char *batch)
{
	if (!rts_flag(&router_db->ship_wanted))
	{
		rts_set_flag(&router_db->ship_wanted, true);
		if (rts_shared->launcher_latch)
			SetLatch(rts_shared->launcher_latch);
	}
	if (item->flags & RTS_ITEM_STREAMED)
	{
		item->seq = cur_stream->ship_seq++;
		cur_stream->shipped = true;
		router_put(&router_db->shipper, item, batch);
		return;
	}
	router_put(&router_db->shipper, item, batch);
	txn_shipped = true;
	ship_routed_lsn = item->commit_lsn;
}

/*
 * A batch written for another number of workers (WAL from before a restart
 * with a new rtstream.workers): split it by the partitions of its rows.
 */
static void
router_split(RtsQueueItem *item, const char *message, Size sz)
{
	StringInfoData parts[RTS_MAX_WORKERS];
	uint32		nrows[RTS_MAX_WORKERS];
	const char *p = message + RTS_BATCH_HEADER_SIZE;
	const char *end = message + sz;

	for (int w = 0; w < router_db->nworkers; w++)
	{
		initStringInfo(&parts[w]);
		appendBinaryStringInfo(&parts[w], message, RTS_BATCH_HEADER_SIZE);
		nrows[w] = 0;
	}
	while (p < end)
	{
		uint64		word;
		int			w;
		Size		len;

		memcpy(&word, p, sizeof(uint64));
		len = sizeof(uint64) + MAXALIGN(RTS_ROW_LEN(word));
		if (len > (Size) (end - p))
		{
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("rtstream ignores the rest of a malformed batch")));
			break;
		}
		w = partition_owner[RTS_ROW_PARTITION(word) % RTS_NPARTITIONS];
		appendBinaryStringInfo(&parts[w], p, len);
		nrows[w]++;
		p += len;
	}
	for (int w = 0; w < router_db->nworkers; w++)
	{
		if (nrows[w] > 0)
		{
			RtsBatchHeader *hdr = (RtsBatchHeader *) parts[w].data;
			RtsQueueItem sub = *item;

			hdr->worker = w;
			hdr->nworkers = router_db->nworkers;
			hdr->nrows = nrows[w];
			sub.len = parts[w].len;
			router_to_worker(w, &sub, parts[w].data);
			if (item->flags & RTS_ITEM_STREAMED)
				item->seq = sub.seq;
		}
		pfree(parts[w].data);
	}
}

/*
 * Whether a message is one of ours that we can read; a warning if it is
 * ours but not readable.
 */
static bool
router_readable(XLogRecPtr message_lsn, bool transactional, const char *prefix,
				Size sz, const char *message, RtsBatchHeader *hdr)
{
	if (!transactional || strcmp(prefix, RTS_MESSAGE_PREFIX) != 0)
		return false;
	if (sz < RTS_BATCH_HEADER_SIZE)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rtstream ignores a malformed message at %X/%X",
						LSN_FORMAT_ARGS(message_lsn))));
		return false;
	}
	memcpy(hdr, message, sizeof(*hdr));
	if (hdr->version < RTS_BATCH_VERSION_MIN || hdr->version > RTS_BATCH_VERSION)
	{
		/* WAL written by another version of rtstream: never guess */
		ereport(WARNING,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rtstream ignores a batch of format %u at %X/%X",
						hdr->version, LSN_FORMAT_ARGS(message_lsn)),
				 errdetail("This version of rtstream reads batches of formats %u to %u.",
						   RTS_BATCH_VERSION_MIN, RTS_BATCH_VERSION)));
		return false;
	}
	return true;
}

/* Route one batch: to its worker, to every worker (DDL), or to the shipper. */
static void
router_route(RtsBatchHeader *hdr, RtsQueueItem *item, const char *message, Size sz)
{
	if (hdr->kind == RTS_BATCH_SHIP)
	{
		router_ship(item, message);
		pg_atomic_fetch_add_u64(&router_db->rows_routed, hdr->nrows);
	}
	else if (hdr->kind == RTS_BATCH_ROWS)
	{
		if (hdr->nworkers == router_db->nworkers && hdr->worker < hdr->nworkers)
			router_to_worker(hdr->worker, item, message);
		else
			router_split(item, message, sz);
		pg_atomic_fetch_add_u64(&router_db->rows_routed, hdr->nrows);
	}
	else
	{
		for (int w = 0; w < router_db->nworkers; w++)
			router_to_worker(w, item, message);
	}
	pg_atomic_fetch_add_u64(&router_db->batches_routed, 1);
}

/*
 * A message: if it is one of ours, to its queues.  Streamed (its
 * transaction still runs): marked, numbered, with its own LSN in place of
 * the commit's (see below).
 */
static void
router_take(ReorderBufferTXN *txn, XLogRecPtr message_lsn, bool transactional,
			const char *prefix, Size sz, const char *message, bool streamed)
{
	RtsBatchHeader hdr;
	RtsQueueItem item;

	if (!router_readable(message_lsn, transactional, prefix, sz, message, &hdr))
		return;
	if (streamed && (cur_stream == NULL || cur_stream->xid != txn->xid))
		cur_stream = router_stream_txn(txn->xid, true);
	memset(&item, 0, sizeof(item));
	item.commit_lsn = streamed ? message_lsn : txn->end_lsn;
	item.commit_time = streamed ? 0 : txn->xact_time.commit_time;
	item.len = sz;
	item.xid = txn->xid;
	item.router_gen = router_db->router_gen;
	item.flags = streamed ? RTS_ITEM_STREAMED : 0;
	router_route(&hdr, &item, message, sz);
}

static void
router_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr message_lsn, bool transactional,
			   const char *prefix, Size sz, const char *message)
{
	router_take(txn, message_lsn, transactional, prefix, sz, message, false);
}

static void
router_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	txn_workers = 0;
	txn_shipped = false;
}

/*
 * A marker to the queues of a transaction: bit w of workers for worker w
 * (with seq[w], the batches it got, if the transaction was streamed), and
 * the shipper.  A commit (kind RTS_BATCH_COMMIT or RTS_BATCH_STREAM_COMMIT)
 * makes their WAL needed until they hold it (router_confirm).
 */
static void
router_marker(RtsBatchKind kind, TransactionId subxid, RtsQueueItem *item,
			  uint32 workers, const uint32 *seq, bool shipped, uint32 ship_seq)
{
	char		buf[RTS_BATCH_HEADER_SIZE];
	RtsBatchHeader *hdr = (RtsBatchHeader *) buf;
	bool		commit = kind != RTS_BATCH_STREAM_ABORT;

	memset(buf, 0, sizeof(buf));
	hdr->kind = kind;
	hdr->version = RTS_BATCH_VERSION;
	hdr->xid = subxid;
	item->len = sizeof(buf);
	item->router_gen = router_db->router_gen;
	for (int w = 0; w < router_db->nworkers; w++)
	{
		if (!(workers & (1U << w)))
			continue;
		item->seq = seq ? seq[w] : 0;
		router_forward(w, item, buf);
		if (commit)
			routed_lsn[w] = item->commit_lsn;
	}
	if (shipped)
	{
		item->seq = ship_seq;
		router_put(&router_db->shipper, item, buf);
		if (commit)
			ship_routed_lsn = item->commit_lsn;
	}
}

/*
 * Tell each worker that got batches of this transaction that it has them
 * all: only between transactions may a worker checkpoint.
 */
static void
router_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  XLogRecPtr commit_lsn)
{
	RtsQueueItem item;

	if (txn_workers == 0 && !txn_shipped)
		return;
	memset(&item, 0, sizeof(item));
	item.commit_lsn = txn->end_lsn;
	item.commit_time = txn->xact_time.commit_time;
	item.xid = txn->xid;
	router_marker(RTS_BATCH_COMMIT, txn->xid, &item, txn_workers, NULL,
				  txn_shipped, 0);
	txn_workers = 0;
	txn_shipped = false;
}

/*
 * Transactions decoded while they run (rtstream.apply_in_progress).  Once
 * the transactions being decoded hold more than rtstream.decoding_memory,
 * the decoder hands us the batches of the largest one so far, between
 * stream_start and stream_stop, instead of spilling them to disk; its
 * commit or abort comes later.  We pass each batch on marked
 * RTS_ITEM_STREAMED and numbered: workers pre-aggregate it aside
 * (worker_stream.c), the shipper keeps it aside, until our
 * RTS_BATCH_STREAM_COMMIT or RTS_BATCH_STREAM_ABORT.  PostgreSQL 15 gives
 * a streamed message only its top-level transaction: the subtransaction
 * that wrote it is in the batch header, so that a rolled back savepoint
 * takes its batches with it.
 */
static RouterStreamTxn *
router_stream_txn(TransactionId xid, bool create)
{
	RouterStreamTxn *st;
	bool		found;

	if (stream_txns == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TransactionId);
		ctl.entrysize = sizeof(RouterStreamTxn);
		ctl.hcxt = TopMemoryContext;
		stream_txns = hash_create("rtstream streamed transactions", 16, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	st = hash_search(stream_txns, &xid, create ? HASH_ENTER : HASH_FIND, &found);
	if (create && !found)
		memset((char *) st + sizeof(TransactionId), 0,
			   sizeof(RouterStreamTxn) - sizeof(TransactionId));
	return st;
}

static void
router_stream_start(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	cur_stream = router_stream_txn(txn->xid, true);
}

static void
router_stream_stop(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	cur_stream = NULL;
}

static void
router_stream_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  XLogRecPtr message_lsn, bool transactional,
					  const char *prefix, Size sz, const char *message)
{
	router_take(txn, message_lsn, transactional, prefix, sz, message, true);
}

/*
 * The end of a streamed transaction (kind: commit, or the abort of it or
 * of its subtransaction subxid) to every queue that got its batches, with
 * how many it got.
 */
static void
router_stream_end(RouterStreamTxn *st, RtsBatchKind kind,
				  TransactionId subxid, RtsQueueItem *item)
{
	item->xid = st->xid;
	item->flags = RTS_ITEM_STREAMED;
	router_marker(kind, subxid, item, st->workers, st->seq, st->shipped,
				  st->ship_seq);
}

static void
router_stream_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 XLogRecPtr commit_lsn)
{
	RouterStreamTxn *st = router_stream_txn(txn->xid, false);
	RtsQueueItem item;

	cur_stream = NULL;
	if (st == NULL)
		return;					/* none of its batches were ours */
	memset(&item, 0, sizeof(item));
	item.commit_lsn = txn->end_lsn;
	item.commit_time = txn->xact_time.commit_time;
	router_stream_end(st, RTS_BATCH_STREAM_COMMIT, txn->xid, &item);
	(void) hash_search(stream_txns, &txn->xid, HASH_REMOVE, NULL);
}

/* txn is the transaction or one of its subtransactions. */
static void
router_stream_abort(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					XLogRecPtr abort_lsn)
{
	TransactionId top = txn->toptxn ? txn->toptxn->xid : txn->xid;
	RouterStreamTxn *st = router_stream_txn(top, false);
	RtsQueueItem item;

	cur_stream = NULL;
	if (st == NULL)
		return;
	memset(&item, 0, sizeof(item));
	item.commit_lsn = abort_lsn;
	router_stream_end(st, RTS_BATCH_STREAM_ABORT, txn->xid, &item);
	if (txn->xid == top)
		(void) hash_search(stream_txns, &top, HASH_REMOVE, NULL);
}

static void
router_stream_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 Relation relation, ReorderBufferChange *change)
{
}

static void
router_stream_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					   int nrelations, Relation relations[],
					   ReorderBufferChange *change)
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

/*
 * rtstream needs only its messages and the transactions' commits and
 * aborts: the changes of ordinary tables are dropped before the reorder
 * buffer queues them (and replays them at commit, which would cost the
 * router as much as the writers spent on them).  The decoder asks this
 * filter for every change, message and commit, with the record at hand.
 */
static bool
router_filter_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	RmgrId		rmid = XLogRecGetRmid(ctx->reader);

	return rmid == RM_HEAP_ID || rmid == RM_HEAP2_ID;
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
router_create_slot(void)
{
	LogicalDecodingContext *ctx;

	CheckLogicalDecodingRequirements();
	rts_slot_create(slotname);
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

/* Record the gap of a lost slot, if one is waiting (see below). */
static void
router_record_pending_gap(void)
{
	if (router_db->pending_gap_to == InvalidXLogRecPtr)
		return;
	StartTransactionCommand();
	rts_record_gap(router_db, router_db->pending_gap_from, router_db->pending_gap_to,
				   NULL, router_db->pending_gap_reason);
	CommitTransactionCommand();
	router_db->pending_gap_to = InvalidXLogRecPtr;
}

/*
 * Our slot was invalidated (max_slot_wal_keep_size removed WAL it needed):
 * the transactions between its confirmed position and a new slot's start
 * are lost to every window.  Say so once, record the gap, and go on with a
 * new slot; windows keep their state.  Called with the slot acquired;
 * returns with the new one acquired.
 */
static void
router_replace_lost_slot(void)
{
	XLogRecPtr	from = MyReplicationSlot->data.confirmed_flush;
	XLogRecPtr	invalidated_at = MyReplicationSlot->data.invalidated_at;
	XLogRecPtr	to;
	char	   *reason;

	ReplicationSlotRelease();
	ReplicationSlotDrop(slotname, true);
	router_create_slot();
	ReplicationSlotAcquire(slotname, true);
	to = MyReplicationSlot->data.confirmed_flush;
	reason = psprintf("replication slot \"%s\" was invalidated (max_slot_wal_keep_size) at %X/%X",
					  slotname, LSN_FORMAT_ARGS(invalidated_at));
	PG_TRY();
	{
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rtstream lost the transactions committed between %X/%X and %X/%X: %s",
						LSN_FORMAT_ARGS(from), LSN_FORMAT_ARGS(to), reason),
				 errdetail("Windows keep their checkpointed state and count every transaction committed from now on; the gap is recorded in rtstream.gaps."),
				 errhint("Raise max_slot_wal_keep_size, or lower rtstream.checkpoint_wal_size so that workers checkpoint before the limit.")));
	}
	PG_CATCH();
	{
		/* logged once, as an ERROR; the router goes on */
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
	/* kept in shared memory until recorded: a failure here retries it */
	router_db->pending_gap_from = from;
	router_db->pending_gap_to = to;
	strlcpy(router_db->pending_gap_reason, reason, sizeof(router_db->pending_gap_reason));
	router_record_pending_gap();
}

/*
 * We had to create our slot although windows were checkpointed before: the
 * slot was lost with a failover (PostgreSQL 15 does not replicate slots to
 * standbys; the checkpoints came with the tables) or dropped by hand.  The
 * transactions between the oldest worker checkpoint and the new slot's
 * start are lost to every window: say so once and record the gap.
 */
static void
router_record_missing_slot_gap(XLogRecPtr to)
{
	XLogRecPtr	from = InvalidXLogRecPtr;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute("SELECT min(lsn) FROM rtstream.checkpoints WHERE window_id = 0 AND lsn > '0/0'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			from = DatumGetLSN(d);
	}
	SPI_finish();
	if (from != InvalidXLogRecPtr && from < to)
	{
		char	   *reason = psprintf("replication slot \"%s\" was missing (a failover to a standby, or the slot dropped by hand); the windows go on from their checkpoints",
									  slotname);

		PG_TRY();
		{
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("rtstream lost the transactions committed between %X/%X and %X/%X: %s",
							LSN_FORMAT_ARGS(from), LSN_FORMAT_ARGS(to), reason),
					 errdetail("The gap is recorded in rtstream.gaps; every transaction committed from now on counts."),
					 errhint("A failover costs the rows of at most rtstream.checkpoint_interval (or rtstream.checkpoint_wal_size of WAL); lower them to lose fewer.")));
		}
		PG_CATCH();
		{
			EmitErrorReport();
			FlushErrorState();
		}
		PG_END_TRY();
		rts_record_gap(router_db, from, to, NULL, reason);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Acquire (creating if needed) the slot and start decoding from it. */
static LogicalDecodingContext *
router_start(void)
{
	LogicalDecodingContext *ctx;
	bool		created = false;
	bool		missing = false;
	XLogRecPtr	prev_decoded = pg_atomic_read_u64(&router_db->decoded_lsn);

	/*
	 * A former router may have queued batches up to where it decoded: until
	 * a checkpoint holds them, their WAL is needed (router_confirm).
	 */
	for (int w = 0; w < router_db->nworkers; w++)
		routed_lsn[w] = Max(routed_lsn[w], prev_decoded);

	if (SearchNamedReplicationSlot(slotname, true) == NULL)
	{
		router_create_slot();
		created = true;
		missing = true;
	}
	ReplicationSlotAcquire(slotname, true);
	if (MyReplicationSlot->data.invalidated_at != InvalidXLogRecPtr ||
		XLogRecPtrIsInvalid(MyReplicationSlot->data.restart_lsn))
	{
		router_replace_lost_slot();
		created = true;			/* windows created meanwhile: load them */
	}
	else if (missing)
		router_record_missing_slot_gap(MyReplicationSlot->data.confirmed_flush);
	else
		router_record_pending_gap();	/* a former attempt failed to */
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
	ctx->callbacks.filter_by_origin_cb = router_filter_origin;
	ctx->callbacks.stream_start_cb = router_stream_start;
	ctx->callbacks.stream_stop_cb = router_stream_stop;
	ctx->callbacks.stream_abort_cb = router_stream_abort;
	ctx->callbacks.stream_commit_cb = router_stream_commit;
	ctx->callbacks.stream_change_cb = router_stream_change;
	ctx->callbacks.stream_message_cb = router_stream_message;
	ctx->callbacks.stream_truncate_cb = router_stream_truncate;

	/*
	 * pgoutput turned streaming off (we gave it no "streaming" option);
	 * the decoder looks at this flag each time its memory is exceeded.
	 */
	ctx->streaming = rts_apply_in_progress;
	if (stream_txns != NULL)
		hash_destroy(stream_txns);
	stream_txns = NULL;
	cur_stream = NULL;

	XLogBeginRead(ctx->reader, MyReplicationSlot->data.restart_lsn);
	pg_atomic_write_u64(&router_db->decoded_lsn,
						MyReplicationSlot->data.confirmed_flush);
	/* workers: what follows may be a replay (read after decoded_lsn) */
	pg_write_barrier();
	router_db->router_gen++;
	pg_atomic_write_u64(&router_db->confirmed_lsn,
						MyReplicationSlot->data.confirmed_flush);
	rts_set_flag(&router_db->router_ready, true);
	router_db->router_blocked[0] = '\0';

	/*
	 * Windows created before the new slot was consistent (pg_restore, or
	 * CREATE EXTENSION and create_window in one transaction) have no
	 * decodable message: have the workers load the catalog, counting from
	 * the slot's start.
	 */
	if (created)
	{
		char		buf[RTS_BATCH_HEADER_SIZE];
		RtsBatchHeader *hdr = (RtsBatchHeader *) buf;
		RtsQueueItem item;

		memset(buf, 0, sizeof(buf));
		hdr->kind = RTS_BATCH_DDL;
		hdr->ddl_op = RTS_DDL_LOAD_CATALOG;
		memset(&item, 0, sizeof(item));
		item.commit_lsn = MyReplicationSlot->data.confirmed_flush;
		item.commit_time = GetCurrentTimestamp();
		item.len = sizeof(buf);
		item.xid = InvalidTransactionId;
		item.router_gen = router_db->router_gen;
		for (int w = 0; w < router_db->nworkers; w++)
		{
			router_forward(w, &item, buf);
			/* a transaction of its own, complete at once */
			hdr->kind = RTS_BATCH_COMMIT;
			router_forward(w, &item, buf);
			hdr->kind = RTS_BATCH_DDL;
		}
	}
	ereport(LOG,
			(errmsg("rtstream router started in database \"%s\" at %X/%X",
					router_db->dbname,
					LSN_FORMAT_ARGS(MyReplicationSlot->data.confirmed_flush))));
	return ctx;
}

/* The extension is gone: give the slot up, so that it holds no WAL. */
static void
router_stop(LogicalDecodingContext *ctx)
{
	rts_set_flag(&router_db->router_ready, false);
	FreeDecodingContext(ctx);
	ReplicationSlotRelease();
	ReplicationSlotDrop(slotname, true);
	pg_atomic_write_u64(&router_db->decoded_lsn, 0);
	pg_atomic_write_u64(&router_db->confirmed_lsn, 0);
	ereport(LOG,
			(errmsg("rtstream dropped replication slot \"%s\": the extension is gone",
					slotname)));
}

static bool ship_checked = false;

static bool
router_extension_exists(void)
{
	bool		exists;

	StartTransactionCommand();
	exists = OidIsValid(get_extension_oid("rtstream", true));

	/*
	 * Distributed streams: the shipper also writes their windows' history,
	 * which may be due with no new row (the nodes' watermarks move on).
	 * Once per start of the router; later ones set the flag themselves
	 * (rts_stream_nodes_changed).
	 */
	if (exists && !ship_checked && !rts_flag(&router_db->ship_wanted))
	{
		Oid			nsp = get_namespace_oid("rtstream", true);
		Oid			rel = OidIsValid(nsp) ? get_relname_relid("stream_nodes", nsp) : InvalidOid;

		ship_checked = true;

		if (OidIsValid(rel))
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			SPI_connect();
			if (SPI_execute("SELECT 1 FROM rtstream.stream_nodes LIMIT 1", true, 1) == SPI_OK_SELECT &&
				SPI_processed > 0)
			{
				rts_set_flag(&router_db->ship_wanted, true);
				if (rts_shared->launcher_latch)
					SetLatch(rts_shared->launcher_latch);
			}
			SPI_finish();
			PopActiveSnapshot();
		}
	}
	CommitTransactionCommand();
	return exists;
}

/*
 * The slot follows what is truly needed: WAL is kept from the oldest
 * durable checkpoint of the workers that were given batches since (their
 * recovery replays from there, and a stalled window's catch-up too, see
 * worker_run.c), and up to what is decoded when no worker waits for a
 * checkpoint.  So rtstream holds the WAL of captured rows not yet
 * checkpointed, never the server's other traffic.
 */
static void
router_confirm(XLogRecPtr decoded)
{
	XLogRecPtr	lsn = decoded;

	for (int w = 0; w < router_db->nworkers; w++)
	{
		XLogRecPtr	durable = pg_atomic_read_u64(&router_db->workers[w].durable_lsn);

		/*
		 * A worker whose checkpoint holds all it was given needs no WAL
		 * (a stalled window's position is in its durable_lsn, see
		 * rts_run_durable, and holds the slot once rows come after it).
		 */
		if (durable < routed_lsn[w])
			lsn = Min(lsn, durable);
	}
	/* the shipper: rows not yet on their node */
	if (pg_atomic_read_u64(&router_db->shipper.durable_lsn) < ship_routed_lsn)
		lsn = Min(lsn, pg_atomic_read_u64(&router_db->shipper.durable_lsn));
	if (lsn > pg_atomic_read_u64(&router_db->confirmed_lsn))
	{
		LogicalConfirmReceivedLocation(lsn);
		pg_atomic_write_u64(&router_db->confirmed_lsn, lsn);
	}
}

/*
 * Whether everything flushed has been read.  The flush pointer may stand
 * just past the header of a page that has no record yet (that is where the
 * next record will go); reading on would wait for more WAL.
 */
static bool
router_caught_up(XLogRecPtr end, XLogRecPtr flush)
{
	if (end >= flush)
		return true;
	return flush % XLOG_BLCKSZ <= SizeOfXLogLongPHD &&
		end >= flush - flush % XLOG_BLCKSZ;
}

static void
router_set_decoding_memory(void)
{
	char		value[32];

	snprintf(value, sizeof(value), "%d", rts_decoding_memory_kb);
	SetConfigOption("logical_decoding_work_mem", value, PGC_USERSET, PGC_S_OVERRIDE);
}

static void
router_shmem_exit(int code, Datum arg)
{
	rts_set_flag(&router_db->router_ready, false);
	router_db->router_latch = NULL;
	router_db->router_pid = 0;
}

static TimestampTz started_at;
static void router_failed(void);
static void router_loop(void);

void
rts_router_main(Datum arg)
{
	int			dbidx = DatumGetInt32(arg);

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	rts_set_background_priority();

	router_db = &rts_shared->dbs[dbidx];
	router_set_decoding_memory();
	if (rts_flag(&router_db->dropping))
	{
		/* DROP DATABASE is under way: stay out, try again later */
		pg_usleep(1000000L);
		proc_exit(1);
	}
	if (!OidIsValid(router_db->dboid))
		proc_exit(0);			/* the entry was given back meanwhile */
	BackgroundWorkerInitializeConnectionByOid(router_db->dboid, InvalidOid, 0);

	router_db->router_pid = MyProcPid;
	router_db->router_latch = MyLatch;
	before_shmem_exit(router_shmem_exit, 0);

	rts_partition_owners(router_db->nworkers, partition_owner);
	snprintf(slotname, sizeof(slotname), "rtstream_%u", MyDatabaseId);
	started_at = GetCurrentTimestamp();

	PG_TRY();
	{
		router_loop();
	}
	PG_CATCH();
	{
		router_failed();
	}
	PG_END_TRY();
}

/*
 * The router failed with an ERROR.  The same error as last time is not
 * logged again, and restarts back off: 1 s, 2 s, 4 s ... up to a minute.
 * The error stays in rtstream.stats until the router has run a minute.
 */
static void
router_failed(void)
{
	ErrorData  *edata = rts_failed(&router_db->router_failures, "router",
									router_db->dbname);

	/* no free replication slot: rtstream calls say so, not "retry" */
	if (edata->sqlerrcode == ERRCODE_CONFIGURATION_LIMIT_EXCEEDED)
		snprintf(router_db->router_blocked, sizeof(router_db->router_blocked),
				 "%s; rtstream needs one replication slot in each database where it runs (max_replication_slots = %d)",
				 edata->message, max_replication_slots);
	rts_failed_exit(&router_db->router_failures);
}

#define ROUTER_CONFIRM_EVERY	(4 * 1024 * 1024)

static void
router_loop(void)
{
	XLogRecPtr	confirmed_at = 0;
	XLogRecPtr	decoded_from;
	LogicalDecodingContext *ctx = NULL;
	TimestampTz last_check = 0;
	bool		exists = false;

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		XLogRecPtr	flush;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			rts_set_background_priority();
			router_set_decoding_memory();
			/* decoding starts again with it: never half a transaction */
			if (ctx != NULL && ctx->streaming != rts_apply_in_progress)
				pg_atomic_fetch_add_u32(&router_db->replay_requests, 1);
		}

		/* the slot lives as long as the extension does */
		if (ctx == NULL || TimestampDifferenceExceeds(last_check, now, 1000))
		{
			exists = router_extension_exists();
			last_check = now;
		}
		if (exists != rts_flag(&router_db->active))
		{
			rts_set_flag(&router_db->active, exists);
			/* the launcher starts or stops the workers */
			if (rts_shared->launcher_latch)
				SetLatch(rts_shared->launcher_latch);
		}
		if (!exists)
		{
			if (ctx != NULL)
				router_stop(ctx);
			ctx = NULL;

			/*
			 * No extension here, and none asked for lately (a backend's
			 * first rtstream call, maybe in the transaction that creates
			 * it, asks us to wait a minute): leave the database.
			 */
			LWLockAcquire(&rts_shared->lock, LW_EXCLUSIVE);
			if (now > router_db->keep_until)
				rts_set_flag(&router_db->release, true);
			LWLockRelease(&rts_shared->lock);
			if (rts_flag(&router_db->release))
			{
				if (rts_shared->launcher_latch)
					SetLatch(rts_shared->launcher_latch);
				proc_exit(0);
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		/* windows catching up: decode again from the slot's position */
		if (ctx != NULL && pg_atomic_exchange_u32(&router_db->replay_requests, 0) != 0)
		{
			ereport(LOG,
					(errmsg("rtstream router decodes again from %X/%X, as asked (windows catching up, a worker or the shipper missing part of a transaction, a change of rtstream.apply_in_progress)",
							LSN_FORMAT_ARGS(MyReplicationSlot->data.confirmed_flush))));
			FreeDecodingContext(ctx);
			ReplicationSlotRelease();
			ctx = NULL;
		}
		if (ctx == NULL)
			ctx = router_start();

		/*
		 * No memory context games here: the WAL reader allocates its decode
		 * buffer on first use and keeps it.
		 */
		flush = GetFlushRecPtr(NULL);
		decoded_from = ctx->reader->EndRecPtr;
		while (!router_caught_up(ctx->reader->EndRecPtr, flush))
		{
			XLogRecord *record;
			char	   *errm = NULL;

			record = XLogReadRecord(ctx->reader, &errm);
			if (errm)
				elog(ERROR, "rtstream router could not read WAL: %s", errm);
			if (record != NULL)
				LogicalDecodingProcessRecord(ctx, ctx->reader);
			CHECK_FOR_INTERRUPTS();

			/*
			 * Through a long stretch of other tables' WAL, move the slot on
			 * every few MB, not only once caught up: a checkpoint meanwhile
			 * would find it holding all of it.  Every transaction ending at
			 * or before the record just read is queued.
			 */
			if (ctx->reader->EndRecPtr - confirmed_at > ROUTER_CONFIRM_EVERY)
			{
				confirmed_at = ctx->reader->EndRecPtr;
				pg_write_barrier();
				if (confirmed_at > pg_atomic_read_u64(&router_db->decoded_lsn))
					pg_atomic_write_u64(&router_db->decoded_lsn, confirmed_at);
				router_confirm(confirmed_at);
			}
		}

		/*
		 * Every transaction ending at or before EndRecPtr is queued; a later
		 * one ends after it.
		 */
		pg_write_barrier();
		flush = Max(flush, ctx->reader->EndRecPtr);
		if (flush > pg_atomic_read_u64(&router_db->decoded_lsn))
			pg_atomic_write_u64(&router_db->decoded_lsn, flush);
		router_confirm(pg_atomic_read_u64(&router_db->decoded_lsn));

		/* running well for a minute: the last error is history */
		rts_failures_forget(&router_db->router_failures, started_at);
		rts_set_background_priority();	/* a refused change again */

		/*
		 * After decoding something, pause before looking again instead of
		 * sleeping on the latch: the commits meanwhile set it without waking
		 * us (we do not wait on it), and are decoded together.  Under a
		 * stream of small transactions a wakeup per commit becomes one per
		 * ROUTER_COALESCE_US; freshness pays at most that.
		 */
		if (ctx->reader->EndRecPtr != decoded_from)
		{
			pg_usleep(ROUTER_COALESCE_US);
			continue;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
