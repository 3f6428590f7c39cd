/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The capture trigger: a BEFORE INSERT row trigger on every stream that
 *	  appends the new tuple, tagged with its partition, to a per-backend
 *	  batch for the worker that owns the partition, and returns NULL, so nothing is stored in the table.  Full batches, and at
 *	  pre-commit (or pre-prepare) all the others, are written as
 *	  transactional logical messages; the router decodes them once the
 *	  transaction commits (a prepared one: at COMMIT PREPARED), so an
 *	  aborted transaction never reaches a window.
 *
 *	  Subtransactions.  A logical message belongs to the (sub)transaction
 *	  that is current when it is written, and is discarded with it.  Rows
 *	  still in memory are labelled with the subtransaction that captured
 *	  them: a batch is a list of segments whose labels never decrease and
 *	  are always on the current subtransaction stack.  A flush in
 *	  subtransaction C writes only the segments labelled C (rows of an
 *	  ancestor stay in memory until the ancestor is current again); an
 *	  aborting subtransaction S drops the segments labelled >= S; a
 *	  committing one relabels its segments to its parent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/message.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "rtstream.h"
#include "nodes.h"

PG_FUNCTION_INFO_V1(rts_capture);

typedef struct CaptureSegment
{
	SubTransactionId subxid;	/* subtransaction that captured the rows */
	int			offset;			/* where its rows start in the buffer */
	uint32		nrows_before;	/* rows of the batch before it */
} CaptureSegment;

typedef struct CaptureBatch
{
	StringInfoData buf;			/* RTS_BATCH_HEADER_SIZE bytes, then rows */
	uint32		nrows;
	int			nsegs;
	int			maxsegs;
	CaptureSegment *segs;
} CaptureBatch;

typedef struct CaptureStream
{
	Oid			trigoid;		/* hash key: the capture trigger */
	Oid			relid;
	int			nkeys;			/* partition_by columns; 0 = round robin */
	AttrNumber	keyattnos[INDEX_MAX_KEYS];
	FmgrInfo   *hashfns[INDEX_MAX_KEYS];
	Oid			collations[INDEX_MAX_KEYS];
	bool		range;			/* range partitioning on keyattnos[0] */
	int			nbounds;
	Datum	   *bounds;			/* ascending upper bounds */
	FmgrInfo   *cmpfn;
	int			rr_partition;
	bool		check_constraints;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	RtsStreamNodes *nodes;		/* distributed: its nodes (nnodes > 0) */
	CaptureBatch *batches[RTS_MAX_WORKERS];	/* one per worker, or per node
											 * of a distributed stream */
} CaptureStream;

/* Everything below lives in CaptureContext, reset at transaction end. */
static MemoryContext CaptureContext = NULL;
static HTAB *capture_streams = NULL;
static bool capture_wrote_wal = false;	/* this transaction captured rows */
static StringInfoData flush_scratch;

/* partition -> worker, for this database's number of workers */
static int	capture_nworkers = 0;
static int	capture_owner[RTS_NPARTITIONS];

static void capture_xact_callback(XactEvent event, void *arg);
static void capture_subxact_callback(SubXactEvent event,
									 SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);

void
rts_capture_init(void)
{
	RegisterXactCallback(capture_xact_callback, NULL);
	RegisterSubXactCallback(capture_subxact_callback, NULL);
}

/*
 * Wait until the router of this database has its replication slot, so
 * that every message we write will be decoded.  A transaction that already
 * has an XID must not wait: creating the slot waits for it to end.
 */
/* An ERROR if the launcher could not start this database's processes. */
void
rts_check_started(RtsDatabaseShared *db)
{
	if (db->router_blocked[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("rtstream cannot start in database \"%s\"", db->dbname),
				 errdetail("%s.", db->router_blocked),
				 errhint("Raise max_replication_slots by at least 1 (a restart is needed), or drop a replication slot that is not used.")));
	if (db->start_error[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("rtstream cannot start in database \"%s\"", db->dbname),
				 errdetail("%s.", db->start_error),
				 errhint("Raise max_worker_processes (now %d) by at least %d and restart the server.",
						 max_worker_processes, 1 + rts_workers)));
}

void
rts_wait_router(RtsDatabaseShared *db)
{
	int			waited_ms = 0;

	rts_check_started(db);
	while (!rts_flag(&db->router_ready))
	{
		rts_check_started(db);
		if (GetTopTransactionIdIfAny() != InvalidTransactionId)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("rtstream router is not ready in database \"%s\"",
							db->dbname),
					 errdetail("This transaction began before rtstream had started in this database, so its rows could not be counted."),
					 errhint("Retry the transaction.")));
		if (waited_ms >= 60000)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("rtstream router is not ready in database \"%s\"",
							db->dbname),
					 errhint("The router creates its replication slot when it starts; check rtstream.stats and the server log.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 10;
	}
}

/* Whether this transaction made the table a stream. */
static bool
stream_created_here(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		vals[1] = {ObjectIdGetDatum(relid)};
	bool		here;

	SPI_connect();
	here = SPI_execute_with_args("SELECT 1 FROM rtstream.streams "
								 "WHERE stream = $1 AND xmin = pg_current_xact_id()::xid",
								 1, types, vals, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1;
	SPI_finish();
	return here;
}

static CaptureStream *
capture_stream_for(TriggerData *trigdata)
{
	Trigger    *trig = trigdata->tg_trigger;
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	CaptureStream *cs;
	bool		found;
	MemoryContext old;

	if (CaptureContext == NULL)
		CaptureContext = AllocSetContextCreate(TopMemoryContext,
											   "rtstream capture",
											   ALLOCSET_DEFAULT_SIZES);
	if (capture_streams == NULL)
	{
		HASHCTL		ctl;

		RtsDatabaseShared *db;

		rts_check_server();
		db = rts_my_database(false);

		/*
		 * Rows of the transaction that made the table a stream count in no
		 * window (a window counts transactions after its own): a migration
		 * that creates the extension, the stream and its windows and loads
		 * rows in one transaction need not wait for a router that cannot
		 * start before it commits.
		 */
		if (rts_flag(&db->router_ready) || GetTopTransactionIdIfAny() == InvalidTransactionId ||
			!stream_created_here(RelationGetRelid(rel)))
			rts_wait_router(db);
		if (capture_nworkers != db->nworkers)
		{
			rts_partition_owners(db->nworkers, capture_owner);
			capture_nworkers = db->nworkers;
		}
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureStream);
		ctl.hcxt = CaptureContext;
		capture_streams = hash_create("rtstream capture streams", 8, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		old = MemoryContextSwitchTo(CaptureContext);
		initStringInfo(&flush_scratch);
		MemoryContextSwitchTo(old);
	}

	cs = hash_search(capture_streams, &trig->tgoid, HASH_ENTER, &found);
	if (found)
		return cs;

	old = MemoryContextSwitchTo(CaptureContext);
	memset(((char *) cs) + sizeof(Oid), 0, sizeof(CaptureStream) - sizeof(Oid));
	cs->relid = RelationGetRelid(rel);

	/*
	 * Trigger arguments (written by create_stream): 'hash' and the
	 * partition_by columns, or 'range', the column and its bounds.
	 */
	cs->range = (trig->tgnargs > 0 && strcmp(trig->tgargs[0], "range") == 0);
	for (int i = 1; i < trig->tgnargs && !(cs->range && i > 1); i++)
	{
		AttrNumber	attno = InvalidAttrNumber;
		TypeCacheEntry *tce;

		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), trig->tgargs[i]) == 0)
				attno = att->attnum;
		}
		if (attno == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("partition column \"%s\" of stream \"%s\" does not exist",
							trig->tgargs[i], RelationGetRelationName(rel))));
		tce = lookup_type_cache(TupleDescAttr(desc, attno - 1)->atttypid,
								TYPECACHE_HASH_PROC_FINFO | TYPECACHE_CMP_PROC_FINFO);
		if (!cs->range && !OidIsValid(tce->hash_proc_finfo.fn_oid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify a hash function for type %s",
							format_type_be(tce->type_id))));
		if (cs->range && !OidIsValid(tce->cmp_proc_finfo.fn_oid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify a comparison function for type %s",
							format_type_be(tce->type_id))));
		cs->keyattnos[cs->nkeys] = attno;
		cs->hashfns[cs->nkeys] = &tce->hash_proc_finfo;
		cs->cmpfn = &tce->cmp_proc_finfo;
		cs->collations[cs->nkeys] = TupleDescAttr(desc, attno - 1)->attcollation;
		cs->nkeys++;
	}
	if (cs->range)
	{
		Oid			typinput,
					typioparam;
		Form_pg_attribute att = TupleDescAttr(desc, cs->keyattnos[0] - 1);

		getTypeInputInfo(att->atttypid, &typinput, &typioparam);
		cs->nbounds = trig->tgnargs - 2;
		cs->bounds = palloc(sizeof(Datum) * Max(cs->nbounds, 1));
		for (int b = 0; b < cs->nbounds; b++)
			cs->bounds[b] = OidInputFunctionCall(typinput, trig->tgargs[b + 2],
												 typioparam, att->atttypmod);
	}
	cs->rr_partition = MyProcPid % RTS_NPARTITIONS;

	/*
	 * A distributed stream's rows go to the shipper, batched per node; the
	 * ring is read once per transaction (the entry lives in this backend's
	 * cache, which a change of rtstream.stream_nodes replaces).
	 */
	{
		RtsStreamNodes *sn = rts_stream_nodes(cs->relid);

		if (sn->nnodes > 0)
		{
			cs->nodes = palloc(sizeof(RtsStreamNodes));
			memcpy(cs->nodes, sn, sizeof(RtsStreamNodes));
		}
	}

	/*
	 * Returning NULL skips the executor's constraint checks, so we make them
	 * here, with the executor's own code and messages.
	 */
	if (desc->constr &&
		(desc->constr->has_not_null || desc->constr->num_check > 0))
	{
		cs->check_constraints = true;
		cs->estate = CreateExecutorState();
		cs->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(cs->rri, rel, 0, NULL, 0);
		cs->slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(desc),
											&TTSOpsHeapTuple);
	}
	MemoryContextSwitchTo(old);
	return cs;
}

static int
capture_partition(CaptureStream *cs, HeapTuple tuple, TupleDesc desc)
{
	uint32		hash = 0;

	if (cs->nkeys == 0)
		return cs->rr_partition;

	if (cs->range)
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, cs->keyattnos[0], desc, &isnull);
		int			lo = 0,
					hi = cs->nbounds;

		if (isnull)
			return 0;
		/* partition = number of bounds <= value */
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (DatumGetInt32(FunctionCall2Coll(cs->cmpfn, cs->collations[0],
												cs->bounds[mid], value)) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo;
	}

	for (int i = 0; i < cs->nkeys; i++)
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, cs->keyattnos[i], desc, &isnull);
		uint32		h = 0;

		if (!isnull)
			h = DatumGetUInt32(FunctionCall1Coll(cs->hashfns[i],
												 cs->collations[i], value));
		hash = hash_combine(hash, h);
	}
	return hash % RTS_NPARTITIONS;
}

static void
batch_reset(CaptureBatch *b)
{
	b->buf.len = RTS_BATCH_HEADER_SIZE;
	b->nrows = 0;
	b->nsegs = 0;
}

/* Where a partition's rows go: a worker, or a node of a distributed stream. */
static inline int
capture_dest(CaptureStream *cs, int partition)
{
	return cs->nodes ? cs->nodes->owner[partition] : capture_owner[partition];
}

static void
batch_write(CaptureStream *cs, int dest, char *data, Size len, uint32 nrows)
{
	RtsBatchHeader *hdr = (RtsBatchHeader *) data;

	memset(hdr, 0, RTS_BATCH_HEADER_SIZE);
	hdr->version = RTS_BATCH_VERSION;
	/* the rows are the current subtransaction's (batch_flush) */
	hdr->xid = GetCurrentTransactionId();
	hdr->stream = cs->relid;
	hdr->nrows = nrows;
	if (cs->nodes)
	{
		hdr->kind = RTS_BATCH_SHIP;
		hdr->worker = dest;
		hdr->nworkers = cs->nodes->nnodes;
		hdr->ddl_op = cs->nodes->servers[dest];
	}
	else
	{
		hdr->kind = RTS_BATCH_ROWS;
		hdr->worker = dest;
		hdr->nworkers = capture_nworkers;
	}
	LogLogicalMessage(RTS_MESSAGE_PREFIX, data, len, true);
	capture_wrote_wal = true;
}

/* The first segment of subtransaction subxid or of its descendants. */
static int
first_segment_of(CaptureBatch *b, SubTransactionId subxid)
{
	int			first;

	for (first = 0; first < b->nsegs; first++)
		if (b->segs[first].subxid >= subxid)
			break;
	return first;
}

/*
 * Write the rows of the batch that belong to the current subtransaction
 * (all of them at top level), see the file header.
 */
static void
batch_flush(CaptureStream *cs, int worker)
{
	CaptureBatch *b = cs->batches[worker];
	SubTransactionId cur = GetCurrentSubTransactionId();
	int			first;

	if (b == NULL || b->nrows == 0)
		return;
	first = first_segment_of(b, cur);
	if (first == b->nsegs)
		return;					/* all rows belong to ancestors */

	if (first == 0)
	{
		batch_write(cs, worker, b->buf.data, b->buf.len, b->nrows);
		batch_reset(b);
		return;
	}

	/* write the tail after a fresh header, then cut it off */
	resetStringInfo(&flush_scratch);
	enlargeStringInfo(&flush_scratch, RTS_BATCH_HEADER_SIZE +
					  b->buf.len - b->segs[first].offset);
	flush_scratch.len = RTS_BATCH_HEADER_SIZE;
	appendBinaryStringInfo(&flush_scratch, b->buf.data + b->segs[first].offset,
						   b->buf.len - b->segs[first].offset);
	batch_write(cs, worker, flush_scratch.data, flush_scratch.len,
				b->nrows - b->segs[first].nrows_before);
	b->buf.len = b->segs[first].offset;
	b->nrows = b->segs[first].nrows_before;
	b->nsegs = first;
}

static void
batch_append(CaptureStream *cs, int partition, HeapTuple tuple)
{
	int			worker = capture_dest(cs, partition);
	CaptureBatch *b = cs->batches[worker];
	SubTransactionId cur = GetCurrentSubTransactionId();
	uint64		len = tuple->t_len;
	uint64		word;
	Size		max_item = (Size) rts_queue_size_kb * 1024 / 2;

	if (MAXALIGN(len) + sizeof(uint64) + RTS_BATCH_HEADER_SIZE + 64 > max_item)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("row of %u bytes is too large for rtstream", tuple->t_len),
				 errdetail("A captured row must be smaller than half of rtstream.queue_size (%zu bytes).",
						   max_item * 2)));

	if (b == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(CaptureContext);

		b = palloc0(sizeof(CaptureBatch));
		initStringInfo(&b->buf);
		b->maxsegs = 4;
		b->segs = palloc(sizeof(CaptureSegment) * b->maxsegs);
		batch_reset(b);
		cs->batches[worker] = b;
		MemoryContextSwitchTo(old);
	}

	if (b->nsegs == 0 || b->segs[b->nsegs - 1].subxid != cur)
	{
		if (b->nsegs == b->maxsegs)
		{
			b->maxsegs *= 2;
			b->segs = repalloc(b->segs, sizeof(CaptureSegment) * b->maxsegs);
		}
		b->segs[b->nsegs].subxid = cur;
		b->segs[b->nsegs].offset = b->buf.len;
		b->segs[b->nsegs].nrows_before = b->nrows;
		b->nsegs++;
	}

	/* row word, then the tuple header and data, MAXALIGNed */
	enlargeStringInfo(&b->buf, sizeof(uint64) + MAXALIGN(len));
	word = RTS_ROW_WORD(len, partition);
	memcpy(b->buf.data + b->buf.len, &word, sizeof(uint64));
	memcpy(b->buf.data + b->buf.len + sizeof(uint64), tuple->t_data, len);
	b->buf.len += sizeof(uint64) + MAXALIGN(len);
	b->nrows++;

	if (b->buf.len >= rts_batch_size_kb * 1024)
		batch_flush(cs, worker);
}

Datum
rts_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	CaptureStream *cs;
	HeapTuple	tuple;
	TupleDesc	desc;
	int			partition;
	MemoryContext old;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rtstream.capture() must be fired BEFORE INSERT FOR EACH ROW")));

	cs = capture_stream_for(trigdata);
	tuple = trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);

	if (cs->check_constraints)
	{
		ExecStoreHeapTuple(tuple, cs->slot, false);
		ExecConstraints(cs->rri, cs->slot, cs->estate);
		ExecClearTuple(cs->slot);
	}

	old = MemoryContextSwitchTo(CaptureContext);
	/* a value may point into another table's TOAST: take it inline */
	if (HeapTupleHasExternal(tuple))
		tuple = toast_flatten_tuple(tuple, desc);
	partition = capture_partition(cs, tuple, desc);
	batch_append(cs, partition, tuple);
	/* round robin: on to another partition when a batch is written */
	if (cs->nkeys == 0 && cs->batches[capture_dest(cs, partition)]->nrows == 0)
		cs->rr_partition = (cs->rr_partition + 1) % RTS_NPARTITIONS;
	MemoryContextSwitchTo(old);

	return PointerGetDatum(NULL);
}

static void
capture_flush_all(void)
{
	HASH_SEQ_STATUS seq;
	CaptureStream *cs;

	if (capture_streams == NULL)
		return;
	hash_seq_init(&seq, capture_streams);
	while ((cs = hash_seq_search(&seq)) != NULL)
		for (int w = 0; w < RTS_MAX_WORKERS; w++)
			batch_flush(cs, w);
}

static void
capture_reset(void)
{
	capture_streams = NULL;
	capture_wrote_wal = false;
	if (CaptureContext)
		MemoryContextReset(CaptureContext);
}

/*
 * Wake this database's router, which else finds a commit at its next poll
 * (a second at most).  Called at commit, where it must not fail: SetLatch
 * does not.  COMMIT PREPARED calls it too (utility.c): the transaction it
 * ends may have captured rows, in whichever session prepared it.
 */
void
rts_capture_wake_router(void)
{
	RtsDatabaseShared *db;
	Latch	   *latch;

	if (rts_shared == NULL)
		return;
	db = rts_my_database(true);
	if (db == NULL)
		return;
	latch = db->router_latch;	/* read once: the router may be exiting */
	if (latch)
		SetLatch(latch);
}

static void
capture_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * PREPARE TRANSACTION is safe: the messages written here belong
			 * to the prepared transaction like its other changes.  The
			 * router's slot is made without two_phase, so the decoder keeps
			 * them in its reorder buffer (FilterPrepare), hands them over at
			 * COMMIT PREPARED, with that record's LSN and time as commit LSN
			 * and time, and drops them at ROLLBACK PREPARED.  An open
			 * prepared transaction is running for the decoder, so the
			 * slot's restart_lsn stays behind its first message.
			 */
			capture_flush_all();
			break;
		case XACT_EVENT_COMMIT:
			if (capture_wrote_wal)
				rts_capture_wake_router();
			capture_reset();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			capture_reset();
			break;
		default:
			break;
	}
}

static void
capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	CaptureStream *cs;

	if (capture_streams == NULL ||
		(event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;

	hash_seq_init(&seq, capture_streams);
	while ((cs = hash_seq_search(&seq)) != NULL)
	{
		for (int w = 0; w < RTS_MAX_WORKERS; w++)
		{
			CaptureBatch *b = cs->batches[w];
			int			first;

			if (b == NULL || b->nsegs == 0)
				continue;
			first = first_segment_of(b, mySubid);
			if (first == b->nsegs)
				continue;
			if (event == SUBXACT_EVENT_ABORT_SUB)
			{
				b->buf.len = b->segs[first].offset;
				b->nrows = b->segs[first].nrows_before;
				b->nsegs = first;
			}
			else if (first > 0 && b->segs[first - 1].subxid == parentSubid)
				b->nsegs = first;	/* merge into the parent's segment */
			else
			{
				b->segs[first].subxid = parentSubid;
				b->nsegs = first + 1;
			}
		}
	}
}
