/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  The batch format: what the capture trigger writes to WAL as a
 *	  transactional logical message, what the router hands to a worker's
 *	  queue (a RtsQueueItem header, then the batch), and what workers read.
 *	  Changing it means bumping RTS_BATCH_VERSION: the router never guesses
 *	  at a batch of another version.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_BATCH_H
#define RTS_BATCH_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"

/* Prefix of the logical messages written by rtstream. */
#define RTS_MESSAGE_PREFIX	"rtstream"

/*
 * Batch format.  A batch is the content of one transactional logical
 * message.  The router reads only the header; workers read the rows.  Each
 * row is a MAXALIGNed uint64 word (RTS_ROW_WORD) followed by the
 * HeapTupleHeader of the captured tuple, padded to MAXALIGN.
 */
typedef enum RtsBatchKind
{
	RTS_BATCH_ROWS = 1,			/* captured rows of one stream partition */
	RTS_BATCH_DDL = 2,			/* a window was created or dropped */
	RTS_BATCH_COMMIT = 3,		/* router: the transaction's last batch for
								 * this worker came before this */
	RTS_BATCH_SHIP = 4,			/* captured rows of a distributed stream for
								 * one node (ddl_op holds its foreign
								 * server): to the shipper */
	RTS_BATCH_STREAM_COMMIT = 5,	/* router: a transaction whose batches
									 * came while it ran committed (item:
									 * its commit; seq: the batches sent) */
	RTS_BATCH_STREAM_ABORT = 6	/* router: it, or its subtransaction
								 * hdr.xid, aborted */
} RtsBatchKind;

typedef struct RtsBatchHeader
{
	uint16		kind;			/* RtsBatchKind */
	uint16		worker;			/* rows: the worker that owns their
								 * partitions ... */
	uint16		nworkers;		/* ... with this many workers */
	uint16		version;		/* RTS_BATCH_VERSION */
	Oid			stream;			/* stream relation (rows only) */
	uint32		nrows;			/* rows in the batch; window id for DDL */
	uint32		ddl_op;			/* RtsDdlOp for DDL batches; the node's
								 * foreign server for RTS_BATCH_SHIP */
	TransactionId xid;			/* the (sub)transaction that wrote it (0 in
								 * format 2): which batches a rolled back
								 * savepoint takes with it */
} RtsBatchHeader;

/*
 * The word before each row: its length and its partition.  A batch holds
 * the rows of one transaction for one worker; the router forwards it as
 * is, unless the number of workers changed since it was written (it then
 * splits it by partition).
 */
#define RTS_ROW_WORD(len, partition)	((uint64) (len) | ((uint64) (partition) << 32))
#define RTS_ROW_LEN(word)				((uint32) ((word) & 0xFFFFFFFF))
#define RTS_ROW_PARTITION(word)			((int) (((word) >> 32) & 0xFFFF))

#define RTS_BATCH_HEADER_SIZE	MAXALIGN(sizeof(RtsBatchHeader))
#define RTS_BATCH_VERSION		3	/* bumped when the format changes */
#define RTS_BATCH_VERSION_MIN	2	/* format 2 lacks xid: still read */

typedef enum RtsDdlOp
{
	RTS_DDL_CREATE_WINDOW = 1,
	RTS_DDL_DROP_WINDOW = 2,
	RTS_DDL_LOAD_CATALOG = 3,	/* router: a new slot starts here, load the
								 * windows of the catalog */
	RTS_DDL_ALTER_WINDOW = 4	/* alter_window: reload its options */
} RtsDdlOp;

/*
 * What the router puts in a worker's queue: this header, then the batch.
 */
typedef struct RtsQueueItem
{
	XLogRecPtr	commit_lsn;		/* end LSN of the commit record of the batch's
								 * transaction: every batch of a later
								 * transaction has a greater one */
	TimestampTz commit_time;	/* commit timestamp (processing time) */
	uint32		len;			/* length of the batch that follows */
	TransactionId xid;			/* the batch's top-level transaction */
	uint32		router_gen;		/* bumped at every start of the router */
	uint32		flags;			/* RTS_ITEM_* */
	uint32		seq;			/* streamed: the item's number among its
								 * transaction's items for this queue; for
								 * RTS_BATCH_STREAM_COMMIT, how many */
} RtsQueueItem;

/*
 * A batch of a transaction still running (the router decodes transactions
 * larger than rtstream.decoding_memory while they run, when
 * rtstream.apply_in_progress is on).  commit_lsn is then the message's own
 * LSN and xid the top-level transaction; the commit or abort follows.
 */
#define RTS_ITEM_STREAMED	0x1

#endif							/* RTS_BATCH_H */
