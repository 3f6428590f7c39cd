/*-------------------------------------------------------------------------
 *
 * shipper.c
 *	  The shipper: one background worker per database that delivers the
 *	  rows of distributed streams to the nodes owning their partitions.
 *
 *	  The coordinator's WAL is the durable record.  The capture trigger
 *	  writes a distributed stream's rows as batches per node (kind
 *	  RTS_BATCH_SHIP); the router decodes them in commit order and queues
 *	  them here, with a commit marker per transaction, as it queues rows for
 *	  a worker.  The shipper collects each transaction, then inserts the
 *	  rows of many transactions into a node's rtstream.inbox through the
 *	  stream's foreign table <schema>.<stream>__<node>, as the stream's
 *	  owner (postgres_fdw uses the owner's user mapping).  The node's inbox
 *	  trigger inserts them into its stream and records, in the same node
 *	  transaction, the position (commit LSN, row number in it) up to which
 *	  it has this coordinator's rows (rtstream.deliveries): rows sent again
 *	  are skipped there.  So every committed row reaches its node exactly
 *	  once, across a crash of either side.
 *
 *	  The router keeps the slot behind the oldest transaction not yet on
 *	  every node it has rows for (shipper.durable_lsn), so after a restart
 *	  of the router, or of the shipper (which asks the router to decode
 *	  again), what was not delivered is decoded again.
 *
 *	  A node that fails is retried with a backoff (1 s doubling to a
 *	  minute), its error logged once and shown in rtstream.nodes; the rows
 *	  for it wait in memory, and the other nodes go on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "history.h"
#include "inbox.h"
#include "owner.h"

/* Deliver to a node once this many rows wait for it, even mid-queue. */
#define SHIP_ROWS_PER_DELIVERY	20000

/*
 * Past this many bytes waiting for a node (it is down), they are dropped
 * from memory: the slot still holds their WAL, and once the node answers
 * the router decodes them again.
 */
#define SHIP_MAX_PENDING_BYTES	((Size) 64 * 1024 * 1024)

/* Rows of one stream waiting for one node, with their positions. */
typedef struct ShipRows
{
	Oid			relid;
	StringInfoData tuples;		/* per row: uint32 length, the tuple,
								 * MAXALIGNed */
	int			nrows;
	int			nsegs;
	int			maxsegs;
	XLogRecPtr *lsns;			/* per segment: the source transaction */
	int64	   *seqs;			/* its first row's number in it */
	int32	   *counts;
} ShipRows;

typedef struct ShipNode
{
	Oid			server;
	int			slot;			/* in db->ship_nodes */
	MemoryContext cxt;			/* the rows waiting */
	List	   *streams;		/* of ShipRows * */
	uint64		pending_rows;
	Size		pending_bytes;
	XLogRecPtr	pending_upto;	/* the newest transaction waiting (or
								 * delivered): what comes again is skipped */
	XLogRecPtr	acked;			/* delivered up to here since we started */

	/*
	 * Spilled: its rows were dropped from memory (SHIP_MAX_PENDING_BYTES);
	 * they are not kept again until the node answers and the router has
	 * started decoding again from the slot (items of a generation other
	 * than spilled_gen).
	 */
	bool		spilled;
	bool		recovered;
	bool		text_rows;		/* the node refused tuples (another table
								 * layout, or a role that is not a
								 * superuser there): rows go as text */		/* the node answered: waiting for the replay */
	uint32		spilled_gen;
	TimestampTz next_try;
	int			failures;
} ShipNode;

/* A transaction taken from the queue, until every node has its rows. */
typedef struct ShipTxn
{
	XLogRecPtr	lsn;
	uint32		nodes;			/* bit i: nodes[i] still lacks rows of it */
} ShipTxn;

static RtsDatabaseShared *ship_db;
static ShipNode nodes[RTS_MAX_NODES];
static int	nnodes = 0;
static ShipTxn *txns;
static int	txns_head = 0,
			txns_len = 0,
			txns_cap = 0;
static MemoryContext txn_cxt;	/* the batches of the transaction in hand */
static List *txn_batches = NIL;
static uint32 txn_gen = 0;
static char source_id[64];
static volatile sig_atomic_t got_sigterm = false;

/*
 * Transactions whose batches come while they run (router.c): kept aside,
 * per top-level transaction, until the router says it committed (then
 * taken as a whole, as any transaction) or aborted.  A batch missing from
 * their numbering (we restarted meanwhile) makes one incomplete: we then
 * ask the router to decode again and skip the rest of its generation.
 */
typedef struct ShipStreamed
{
	TransactionId xid;			/* hash key */
	uint32		nitems;
	bool		broken;
	MemoryContext cxt;
	List	   *batches;		/* as txn_batches */
} ShipStreamed;

static HTAB *streamed = NULL;
static bool ship_ignoring = false;	/* until the router's replay */
static TimestampTz streamed_checked_at = 0;

static void shipper_failed(void);
static void shipper_loop(RtsWorkerShared *me);

static void
shipper_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
shipper_shmem_exit(int code, Datum arg)
{
	ship_db->shipper.latch = NULL;
	ship_db->shipper.pid = 0;
}

/* The node of a foreign server, made on first use. */
static ShipNode *
ship_node(Oid server)
{
	ShipNode   *n;

	for (int i = 0; i < nnodes; i++)
		if (nodes[i].server == server)
			return &nodes[i];
	if (nnodes == RTS_MAX_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rtstream ships to at most %d nodes per database", RTS_MAX_NODES)));
	n = &nodes[nnodes];
	memset(n, 0, sizeof(ShipNode));
	n->server = server;
	n->slot = nnodes;
	n->cxt = AllocSetContextCreate(TopMemoryContext, "rtstream shipper node",
								   ALLOCSET_DEFAULT_SIZES);
	nnodes++;
	return n;
}

static ShipRows *
ship_rows(ShipNode *n, Oid relid)
{
	ListCell   *lc;
	ShipRows   *r;
	MemoryContext old;

	foreach(lc, n->streams)
	{
		r = lfirst(lc);
		if (r->relid == relid)
			return r;
	}
	old = MemoryContextSwitchTo(n->cxt);
	r = palloc0(sizeof(ShipRows));
	r->relid = relid;
	initStringInfo(&r->tuples);
	r->maxsegs = 16;
	r->lsns = palloc(sizeof(XLogRecPtr) * r->maxsegs);
	r->seqs = palloc(sizeof(int64) * r->maxsegs);
	r->counts = palloc(sizeof(int32) * r->maxsegs);
	n->streams = lappend(n->streams, r);
	MemoryContextSwitchTo(old);
	return r;
}

/* Rows of transaction lsn for one node and stream, numbered from 0. */
static void
ship_add_rows(ShipNode *n, Oid relid, XLogRecPtr lsn, const char *p,
			  const char *end, uint32 nrows)
{
	ShipRows   *r = ship_rows(n, relid);
	MemoryContext old = MemoryContextSwitchTo(n->cxt);
	int			seg = r->nsegs - 1;

	if (seg < 0 || r->lsns[seg] != lsn)
	{
		if (r->nsegs == r->maxsegs)
		{
			r->maxsegs *= 2;
			r->lsns = repalloc(r->lsns, sizeof(XLogRecPtr) * r->maxsegs);
			r->seqs = repalloc(r->seqs, sizeof(int64) * r->maxsegs);
			r->counts = repalloc(r->counts, sizeof(int32) * r->maxsegs);
		}
		seg = r->nsegs++;
		r->lsns[seg] = lsn;
		r->seqs[seg] = 0;
		r->counts[seg] = 0;
	}
	while (p < end)
	{
		uint64		word;
		uint32		len;

		memcpy(&word, p, sizeof(uint64));
		len = RTS_ROW_LEN(word);
		if (sizeof(uint64) + MAXALIGN(len) > (Size) (end - p))
		{
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("rtstream shipper ignores the rest of a malformed batch")));
			break;
		}
		appendBinaryStringInfo(&r->tuples, (char *) &len, sizeof(uint32));
		appendBinaryStringInfo(&r->tuples, p + sizeof(uint64), len);
		r->counts[seg]++;
		r->nrows++;
		n->pending_rows++;
		n->pending_bytes += sizeof(uint32) + len;
		p += sizeof(uint64) + MAXALIGN(len);
	}
	MemoryContextSwitchTo(old);
}

static void
publish_node(ShipNode *n)
{
	RtsShipNode *sn = &ship_db->ship_nodes[n->slot];

	sn->delivered_lsn = n->acked;
	sn->pending_rows = n->pending_rows;
	sn->failures = n->failures;
}

/*
 * The oldest transactions every node has: the slot may move past them.
 * Once nothing waits, everything taken from the queue is delivered.
 */
static void
advance_durable(void)
{
	XLogRecPtr	durable = InvalidXLogRecPtr;

	while (txns_head < txns_len && txns[txns_head].nodes == 0)
		durable = txns[txns_head++].lsn;
	if (txns_head == txns_len)
		txns_head = txns_len = 0;
	else if (txns_head > 1024)
	{
		memmove(txns, txns + txns_head, sizeof(ShipTxn) * (txns_len - txns_head));
		txns_len -= txns_head;
		txns_head = 0;
	}
	if (durable > pg_atomic_read_u64(&ship_db->shipper.durable_lsn))
		pg_atomic_write_u64(&ship_db->shipper.durable_lsn, durable);
}

/*
 * Too much waits for a node that does not answer: drop it from memory.
 * The transactions keep the node's bit, so the slot stays behind them.
 */
static void
spill(ShipNode *n)
{
	ereport(WARNING,
			(errmsg("rtstream shipper drops from memory %llu rows waiting for node \"%s\"",
					(unsigned long long) n->pending_rows,
					NameStr(ship_db->ship_nodes[n->slot].node)),
			 errdetail("More than %zu MB wait for it; their WAL is kept, and they are decoded again once the node answers.",
					   SHIP_MAX_PENDING_BYTES / (1024 * 1024))));
	n->streams = NIL;
	MemoryContextReset(n->cxt);
	n->pending_rows = 0;
	n->pending_bytes = 0;
	n->pending_upto = n->acked;
	n->spilled = true;
	n->recovered = false;
	n->spilled_gen = txn_gen;
}

/* A transaction's batches are all here: hand its rows to their nodes. */
static void
take_transaction(XLogRecPtr lsn)
{
	ListCell   *lc;
	uint32		mask = 0;
	int			take[RTS_MAX_NODES];	/* per node: -1 not seen, 0 skip, 1 keep */

	if (lsn <= pg_atomic_read_u64(&ship_db->shipper.durable_lsn))
	{
		/* delivered before a restart of the router or of us */
		list_free(txn_batches);
		txn_batches = NIL;
		MemoryContextReset(txn_cxt);
		return;
	}
	for (int i = 0; i < RTS_MAX_NODES; i++)
		take[i] = -1;
	foreach(lc, txn_batches)
	{
		const char *batch = lfirst(lc);
		RtsBatchHeader hdr;
		uint32		len;
		ShipNode   *n;

		memcpy(&len, batch, sizeof(uint32));
		batch += MAXALIGN(sizeof(uint32));
		memcpy(&hdr, batch, sizeof(hdr));
		n = ship_node(hdr.ddl_op);
		if (take[n->slot] < 0)
		{
			/* decided once per transaction and node */
			if (n->spilled && txn_gen != n->spilled_gen && n->recovered)
			{
				/* the router decodes again from its slot: keep rows again */
				n->spilled = n->recovered = false;
				n->pending_upto = n->acked;
			}
			if (n->spilled)
			{
				/* not kept, but not delivered either: the slot holds it */
				mask |= (1U << n->slot);
				take[n->slot] = 0;
			}
			else
				/* delivered, or waiting (a replay sends it again) */
				take[n->slot] = (lsn > n->pending_upto && lsn > n->acked) ? 1 : 0;
		}
		if (take[n->slot] == 1)
			ship_add_rows(n, hdr.stream, lsn, batch + RTS_BATCH_HEADER_SIZE,
						  batch + len, hdr.nrows);
	}
	for (int i = 0; i < nnodes; i++)
	{
		ShipNode   *n = &nodes[i];

		if (take[n->slot] != 1)
			continue;
		n->pending_upto = lsn;
		mask |= (1U << n->slot);
		/* a node that does not answer must not hold all our memory */
		if (n->pending_bytes > SHIP_MAX_PENDING_BYTES && n->failures > 0)
			spill(n);
		publish_node(n);
	}
	list_free(txn_batches);
	txn_batches = NIL;
	MemoryContextReset(txn_cxt);

	if (txns_len == txns_cap)
	{
		txns_cap = Max(64, txns_cap * 2);
		txns = txns ? repalloc(txns, sizeof(ShipTxn) * txns_cap) :
			MemoryContextAlloc(TopMemoryContext, sizeof(ShipTxn) * txns_cap);
	}
	txns[txns_len].lsn = lsn;
	txns[txns_len].nodes = mask;
	txns_len++;
	advance_durable();
}

static void
streamed_forget_all(void)
{
	HASH_SEQ_STATUS seq;
	ShipStreamed *st;

	if (streamed == NULL)
		return;
	hash_seq_init(&seq, streamed);
	while ((st = hash_seq_search(&seq)) != NULL)
	{
		MemoryContextDelete(st->cxt);
		(void) hash_search(streamed, &st->xid, HASH_REMOVE, NULL);
	}
}

static void
streamed_drop(ShipStreamed *st)
{
	MemoryContextDelete(st->cxt);
	(void) hash_search(streamed, &st->xid, HASH_REMOVE, NULL);
}

static ShipStreamed *
streamed_txn(TransactionId xid, bool create)
{
	ShipStreamed *st;
	bool		found;

	if (streamed == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TransactionId);
		ctl.entrysize = sizeof(ShipStreamed);
		ctl.hcxt = TopMemoryContext;
		streamed = hash_create("rtstream shipper transactions in progress", 16,
							   &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	st = hash_search(streamed, &xid, create ? HASH_ENTER : HASH_FIND, &found);
	if (create && !found)
	{
		st->nitems = 0;
		st->broken = false;
		st->batches = NIL;
		st->cxt = AllocSetContextCreate(TopMemoryContext,
										"rtstream shipper transaction in progress",
										ALLOCSET_DEFAULT_SIZES);
	}
	return st;
}

/* A batch copied with its length first, as take_transaction reads it. */
static char *
batch_copy(MemoryContext cxt, RtsQueueItem *item, const char *batch)
{
	char	   *copy = MemoryContextAlloc(cxt, MAXALIGN(sizeof(uint32)) + item->len);

	memcpy(copy, &item->len, sizeof(uint32));
	memcpy(copy + MAXALIGN(sizeof(uint32)), batch, item->len);
	return copy;
}

static void
take_streamed(RtsQueueItem *item, const char *batch, RtsBatchHeader *hdr)
{
	ShipStreamed *st = streamed_txn(item->xid, hdr->kind != RTS_BATCH_STREAM_COMMIT &&
									hdr->kind != RTS_BATCH_STREAM_ABORT);
	ListCell   *lc;

	switch (hdr->kind)
	{
		case RTS_BATCH_STREAM_COMMIT:
			if (st == NULL || st->broken || st->nitems != item->seq)
			{
				if (st != NULL)
					streamed_drop(st);
				ereport(LOG,
						(errmsg("rtstream shipper asks the router to decode again: a transaction it was given while it ran is incomplete here")));
				pg_atomic_fetch_add_u32(&ship_db->replay_requests, 1);
				if (ship_db->router_latch)
					SetLatch(ship_db->router_latch);
				ship_ignoring = true;
				streamed_forget_all();
				return;
			}
			/* between two transactions: txn_batches is empty */
			txn_batches = st->batches;
			st->batches = NIL;
			take_transaction(item->commit_lsn);
			streamed_drop(st);
			break;
		case RTS_BATCH_STREAM_ABORT:
			if (st == NULL)
				break;
			if (!TransactionIdIsValid(hdr->xid) || hdr->xid == st->xid)
			{
				streamed_drop(st);
				break;
			}
			foreach(lc, st->batches)
			{
				RtsBatchHeader bh;

				memcpy(&bh, (char *) lfirst(lc) + MAXALIGN(sizeof(uint32)), sizeof(bh));
				if (bh.version >= 3 && bh.xid == hdr->xid)
					st->batches = foreach_delete_current(st->batches, lc);
			}
			break;
		default:
			if (item->seq != st->nitems)
				st->broken = true;
			st->nitems = item->seq + 1;
			if (!st->broken && hdr->kind == RTS_BATCH_SHIP)
			{
				MemoryContext old = MemoryContextSwitchTo(st->cxt);

				st->batches = lappend(st->batches, batch_copy(st->cxt, item, batch));
				MemoryContextSwitchTo(old);
			}
			break;
	}
}

/*
 * Now and then: drop the transactions that ended without an abort record
 * (a crash): neither running nor committed.
 */
static void
streamed_check(void)
{
	HASH_SEQ_STATUS seq;
	ShipStreamed *st;
	TimestampTz now = GetCurrentTimestamp();

	if (streamed == NULL || hash_get_num_entries(streamed) == 0 ||
		!TimestampDifferenceExceeds(streamed_checked_at, now, 5000))
		return;
	streamed_checked_at = now;
	hash_seq_init(&seq, streamed);
	while ((st = hash_seq_search(&seq)) != NULL)
		if (!TransactionIdIsInProgress(st->xid) && !TransactionIdDidCommit(st->xid))
			streamed_drop(st);
}

static void
take_item(RtsQueueItem *item, const char *batch)
{
	RtsBatchHeader hdr;

	/*
	 * A restarted router sends again the transaction it was in: what we
	 * hold of it is dropped, the whole of it comes again.
	 */
	if (item->router_gen != txn_gen)
	{
		list_free(txn_batches);
		txn_batches = NIL;
		MemoryContextReset(txn_cxt);
		txn_gen = item->router_gen;
		streamed_forget_all();
		ship_ignoring = false;
	}
	if (ship_ignoring)
		return;					/* the router's replay brings it again */
	memcpy(&hdr, batch, sizeof(hdr));
	if (item->flags & RTS_ITEM_STREAMED)
		take_streamed(item, batch, &hdr);
	else if (hdr.kind == RTS_BATCH_COMMIT)
		take_transaction(item->commit_lsn);
	else if (hdr.kind == RTS_BATCH_SHIP)
	{
		MemoryContext old = MemoryContextSwitchTo(txn_cxt);

		txn_batches = lappend(txn_batches, batch_copy(txn_cxt, item, batch));
		MemoryContextSwitchTo(old);
	}
}

/* Rows per INSERT into a node's inbox: one text value holds them all. */
#define SHIP_ROWS_PER_INSERT	50000

/*
 * The next n of a stream's waiting rows, starting at *p, as they were
 * captured (a uint32 length, then the tuple); *p moves past them.  The
 * node fires them through its stream's triggers (inbox.c).
 */
static bytea *
rows_bytes(const char **p, int n)
{
	const char *start = *p;
	bytea	   *b;

	for (int i = 0; i < n; i++)
	{
		uint32		len;

		memcpy(&len, *p, sizeof(uint32));
		*p += sizeof(uint32) + len;
	}
	b = palloc(VARHDRSZ + (*p - start));
	SET_VARSIZE(b, VARHDRSZ + (*p - start));
	memcpy(VARDATA(b), start, *p - start);
	return b;
}

/*
 * Rows [first, first + n) of a stream's waiting rows, starting at *p, as
 * the text of an array of its row type; *p moves past them.
 */
static char *
rows_text(Relation rel, const char **p, int n)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	ArrayType  *arr;

	for (int i = 0; i < n; i++)
	{
		HeapTupleData tup;
		uint32		len;

		memcpy(&len, *p, sizeof(uint32));
		tup.t_len = len;
		tup.t_data = (HeapTupleHeader) palloc(len);
		memcpy(tup.t_data, *p + sizeof(uint32), len);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = RelationGetRelid(rel);
		elems[i] = heap_copy_tuple_as_datum(&tup, desc);
		pfree(tup.t_data);
		*p += sizeof(uint32) + len;
	}
	arr = construct_array(elems, n, desc->tdtypeid, -1, false, TYPALIGN_DOUBLE);
	return OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(arr));
}

/*
 * The segments of rows [first, first + n): per source transaction, its
 * LSN, the number in it of the first row, and how many rows.  A chunk may
 * start or end inside a transaction: the node's position counts rows
 * within it (rtstream.deliveries.seq).
 */
static void
chunk_segments(ShipRows *r, int first, int n, Datum *args)
{
	Datum	   *lsns = palloc(sizeof(Datum) * r->nsegs);
	Datum	   *seqs = palloc(sizeof(Datum) * r->nsegs);
	Datum	   *counts = palloc(sizeof(Datum) * r->nsegs);
	int			nseg = 0;
	int			segstart = 0;

	for (int k = 0; k < r->nsegs; k++)
	{
		int			from = Max(first, segstart);
		int			to = Min(first + n, segstart + r->counts[k]);

		if (from < to)
		{
			lsns[nseg] = LSNGetDatum(r->lsns[k]);
			seqs[nseg] = Int64GetDatum(r->seqs[k] + (from - segstart));
			counts[nseg] = Int32GetDatum(to - from);
			nseg++;
		}
		segstart += r->counts[k];
	}
	args[0] = PointerGetDatum(construct_array(lsns, nseg, PG_LSNOID, sizeof(XLogRecPtr),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(seqs, nseg, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(counts, nseg, INT4OID, sizeof(int32),
											  true, TYPALIGN_INT));
}

/*
 * Insert one stream's waiting rows into the node's inbox, as the stream's
 * owner, SHIP_ROWS_PER_INSERT at a time.  A stream that is gone, or no
 * longer on this node, drops them (its rows were written before it was
 * dropped or moved).
 */
static void
deliver_stream(ShipNode *n, const char *server, ShipRows *r)
{
	Relation	rel;
	char	   *nsp;
	char	   *inbox_name;
	Oid			nspid;
	Oid			owner;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, PG_LSNARRAYOID, INT8ARRAYOID,
	INT4ARRAYOID, BYTEAOID, TEXTOID};
	Datum		args[7];
	bool		as_text;
	RtsOwnerSwitch sw;
	char	   *sql;
	const char *p = r->tuples.data;
	MemoryContext chunk_cxt,
				old;

	rel = try_table_open(r->relid, AccessShareLock);
	if (rel == NULL)
	{
		ereport(WARNING,
				(errmsg("rtstream drops %d rows for node \"%s\" of a stream that was dropped",
						r->nrows, server)));
		return;
	}
	nspid = RelationGetNamespace(rel);
	nsp = get_namespace_name(nspid);
	owner = rel->rd_rel->relowner;
	inbox_name = psprintf("%s__%s", RelationGetRelationName(rel), server);
	if (!OidIsValid(get_relname_relid(inbox_name, nspid)))
	{
		ereport(WARNING,
				(errmsg("rtstream drops %d rows of stream \"%s\" for node \"%s\", which is no longer one of its nodes",
						r->nrows, RelationGetRelationName(rel), server)));
		table_close(rel, AccessShareLock);
		return;
	}
	args[0] = CStringGetTextDatum(source_id);
	args[1] = CStringGetTextDatum(quote_qualified_identifier(nsp, RelationGetRelationName(rel)));
	/*
	 * Tuples as captured, unless the tables may differ in layout: a table
	 * with dropped columns here (a node's is made without), or a node that
	 * refused our layout once.
	 */
	as_text = n->text_rows;
	for (int i = 0; i < RelationGetDescr(rel)->natts; i++)
		as_text |= TupleDescAttr(RelationGetDescr(rel), i)->attisdropped;
	args[6] = CStringGetTextDatum(rts_tuple_signature(RelationGetDescr(rel)));
	if (as_text)
		argtypes[5] = TEXTOID;
	sql = psprintf("INSERT INTO %s (source, stream, lsns, seqs, counts, %s, signature) "
				   "VALUES ($1, $2, $3, $4, $5, $6, $7)",
				   quote_qualified_identifier(nsp, inbox_name), as_text ? "rows" : "tuples");
	chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "rtstream shipper chunk",
									  ALLOCSET_DEFAULT_SIZES);
	for (int first = 0; first < r->nrows; first += SHIP_ROWS_PER_INSERT)
	{
		int			nrows = Min(SHIP_ROWS_PER_INSERT, r->nrows - first);

		/* as the owner: the text of the rows runs the types' output functions */
		rts_owner_enter(owner, "pg_catalog, pg_temp", &sw);
		old = MemoryContextSwitchTo(chunk_cxt);
		chunk_segments(r, first, nrows, &args[2]);
		args[5] = as_text ? CStringGetTextDatum(rows_text(rel, &p, nrows)) :
			PointerGetDatum(rows_bytes(&p, nrows));
		MemoryContextSwitchTo(old);
		if (SPI_execute_with_args(sql, 7, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "rtstream could not deliver rows to node \"%s\"", server);
		rts_owner_leave(&sw);
		MemoryContextReset(chunk_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(chunk_cxt);
	table_close(rel, AccessShareLock);
}

/*
 * Whether a node answers: a command through the inbox of one of its
 * streams, as that stream's owner.
 */
static void
probe_node(const char *server)
{
	Oid			types[1] = {NAMEOID};
	Datum		vals[1] = {CStringGetDatum(server)};
	Relation	rel;
	RtsOwnerSwitch sw;
	char	   *sql;
	Oid			relid;
	bool		isnull;

	if (SPI_execute_with_args("SELECT stream FROM rtstream.stream_nodes WHERE node = $1 LIMIT 1",
							  1, types, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.stream_nodes");
	if (SPI_processed == 0)
		return;					/* no stream of it left: nothing to deliver */
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	rel = table_open(relid, AccessShareLock);
	sql = psprintf("INSERT INTO %s (command) VALUES ('SELECT 1')",
				   quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											  psprintf("%s__%s", RelationGetRelationName(rel), server)));
	rts_owner_enter(rel->rd_rel->relowner, "pg_catalog, pg_temp", &sw);
	table_close(rel, AccessShareLock);
	if (SPI_execute(sql, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "rtstream could not reach node \"%s\"", server);
	rts_owner_leave(&sw);
}

/*
 * Deliver everything waiting for a node in one transaction here, which
 * postgres_fdw makes one transaction there.  On failure the rows stay and
 * the node is retried later.
 */
static void
deliver(ShipNode *n)
{
	MemoryContext cxt = CurrentMemoryContext;
	RtsShipNode *sn = &ship_db->ship_nodes[n->slot];
	ListCell   *lc;

	PG_TRY();
	{
		ForeignServer *fs;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "rtstream shipper delivering rows");
		fs = GetForeignServerExtended(n->server, FSV_MISSING_OK);
		if (fs == NULL)
			ereport(WARNING,
					(errmsg("rtstream drops %llu rows for a foreign server that was dropped",
							(unsigned long long) n->pending_rows)));
		else
		{
			if (NameStr(sn->node)[0] == '\0')
				namestrcpy(&sn->node, fs->servername);
			if (n->spilled)
				probe_node(fs->servername);
			else
				foreach(lc, n->streams)
					deliver_stream(n, fs->servername, lfirst(lc));
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		n->failures++;
		n->next_try = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  1000L << Min(n->failures - 1, 6));
		/* the node's table has another layout (inbox.c): rows as text */
		if ((edata->sqlerrcode == ERRCODE_DATATYPE_MISMATCH ||
			 edata->sqlerrcode == ERRCODE_FEATURE_NOT_SUPPORTED) && !n->text_rows)
		{
			n->text_rows = true;
			n->next_try = GetCurrentTimestamp();
		}
		/* a repeated error is logged once */
		if (strncmp(sn->error, edata->message, sizeof(sn->error) - 1) != 0)
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("rtstream could not deliver rows to node \"%s\": %s",
							NameStr(sn->node), edata->message),
					 edata->detail ? errdetail("%s", edata->detail) : 0,
					 errhint("The rows wait on this server; delivery is retried with a backoff of up to a minute.")));
		strlcpy(sn->error, edata->message, sizeof(sn->error));
		FreeErrorData(edata);
		publish_node(n);
		return;
	}
	PG_END_TRY();

	if (n->spilled)
	{
		/* it answers: decode again what was dropped (take_transaction) */
		n->recovered = true;
		/* any later generation decodes from the slot, behind what we lack */
		n->spilled_gen = txn_gen;
		n->failures = 0;
		sn->error[0] = '\0';
		pg_atomic_fetch_add_u32(&ship_db->replay_requests, 1);
		if (ship_db->router_latch)
			SetLatch(ship_db->router_latch);
		publish_node(n);
		return;
	}

	/* the node has every row up to pending_upto */
	sn->delivered_rows += n->pending_rows;
	sn->error[0] = '\0';
	n->failures = 0;
	n->acked = Max(n->acked, n->pending_upto);
	n->pending_rows = 0;
	n->pending_bytes = 0;
	n->streams = NIL;
	MemoryContextReset(n->cxt);
	/* a replay may have queued a transaction twice: look at them all */
	for (int i = txns_head; i < txns_len; i++)
		if (txns[i].lsn <= n->acked)
			txns[i].nodes &= ~(1U << n->slot);
	advance_durable();
	publish_node(n);
}

/* Whether rows wait for a node (in memory, or dropped from it). */
static bool
nodes_waiting(void)
{
	for (int i = 0; i < nnodes; i++)
		if (nodes[i].spilled || nodes[i].pending_rows > 0)
			return true;
	return false;
}

/*
 * Deliver to every node with rows waiting (at least min_rows) and due; a
 * node whose rows were dropped from memory is asked whether it answers
 * again (then the router decodes them again).  Whether rows still wait.
 */
static bool
deliver_due(uint64 min_rows)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < nnodes && !got_sigterm; i++)
	{
		ShipNode   *n = &nodes[i];

		if (now < n->next_try)
			continue;
		if (n->spilled ? !n->recovered : n->pending_rows >= Max(min_rows, 1))
			deliver(n);
	}
	return nodes_waiting();
}

void
rts_shipper_main(Datum arg)
{
	int			dbidx = DatumGetInt32(arg);
	RtsWorkerShared *me;

	pqsignal(SIGTERM, shipper_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	rts_set_background_priority();

	ship_db = &rts_shared->dbs[dbidx];
	me = &ship_db->shipper;
	if (rts_flag(&ship_db->dropping))
	{
		pg_usleep(1000000L);
		proc_exit(1);
	}
	if (!OidIsValid(ship_db->dboid))
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(ship_db->dboid, InvalidOid, 0);
	me->pid = MyProcPid;
	me->latch = MyLatch;
	before_shmem_exit(shipper_shmem_exit, 0);
	snprintf(source_id, sizeof(source_id), UINT64_FORMAT ":%u",
			 GetSystemIdentifier(), MyDatabaseId);
	txn_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream shipper transaction",
									ALLOCSET_DEFAULT_SIZES);

	/*
	 * What an earlier shipper took from the queue but had not delivered is
	 * gone with it: have the router decode again from its slot, which is
	 * behind every transaction not yet delivered.  Whatever is queued
	 * until then comes again and is skipped by the nodes.
	 */
	pg_atomic_fetch_add_u32(&ship_db->replay_requests, 1);
	if (ship_db->router_latch)
		SetLatch(ship_db->router_latch);

	PG_TRY();
	{
		shipper_loop(me);
	}
	PG_CATCH();
	{
		shipper_failed();
	}
	PG_END_TRY();
	proc_exit(1);
}

/*
 * The shipper failed with an ERROR outside a delivery (those are the
 * nodes' and retried in place).  The same error as last time is not logged
 * again, and restarts back off: 1 s, 2 s, 4 s ... up to a minute.  The
 * error stays in rtstream.stats until the shipper has run a minute.
 */
static void
shipper_failed(void)
{
	(void) rts_failed(&ship_db->ship_failures, "shipper", ship_db->dbname);
	rts_failed_exit(&ship_db->ship_failures);
}

static void
shipper_loop(RtsWorkerShared *me)
{
	char	   *buf = NULL;
	Size		bufsize = 0;
	TimestampTz started_at = GetCurrentTimestamp();

	while (!got_sigterm)
	{
		RtsQueueItem item;
		char	   *batch;
		uint64		next_pos;
		XLogRecPtr	decoded;
		int			n = 0;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			rts_set_background_priority();
		}

		/* everything the router decoded up to here is in the queue */
		decoded = pg_atomic_read_u64(&ship_db->decoded_lsn);
		pg_read_barrier();
		while (n++ < 1024 && rts_ring_get(&me->ring, &item, &batch, &buf, &bufsize, &next_pos))
		{
			take_item(&item, batch);
			rts_ring_advance(&me->ring, next_pos);
			pg_atomic_write_u64(&me->applied_pos, next_pos);
			if (ship_db->router_latch)
				SetLatch(ship_db->router_latch);
		}
		/* the history of distributed windows, once a second */
		rts_history_nodes_tick();
		if (n <= 1024)
		{
			/* the queue is empty: deliver all, then say how far we are */
			streamed_check();
			if (!deliver_due(1) && txn_batches == NIL && !ship_ignoring)
			{
				if (decoded > pg_atomic_read_u64(&ship_db->ship_done_lsn))
					pg_atomic_write_u64(&ship_db->ship_done_lsn, decoded);
				if (txns_len == 0 && decoded > pg_atomic_read_u64(&me->durable_lsn))
					pg_atomic_write_u64(&me->durable_lsn, decoded);
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 nodes_waiting() ? 200L : 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		else
			(void) deliver_due(SHIP_ROWS_PER_DELIVERY);

		/* running well for a minute: the last error is history */
		rts_failures_forget(&ship_db->ship_failures, started_at);
		rts_set_background_priority();	/* a refused change again */
	}
}
