/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  rtstream's shared memory: a pool of database entries, each with its
 *	  router's state, its workers' queues and progress, and its windows'
 *	  directory; window state itself lives in a DSA (panes.h).
 *
 *	  Who writes what, under which lock:
 *	  - RtsShared.lock: the pool (an entry's dboid, dbname, keep_until);
 *	    taken by backends claiming an entry, the router, the launcher.
 *	  - RtsDatabaseShared.lock: the window directory (RtsWindowSlot
 *	    window_id and extension), taken by the workers that load windows.
 *	  - RtsWorkerShared.lock: that worker's pane tables (and their run
 *	    state, panes.h); exclusive while it applies a batch, shared for
 *	    readers, the history writer and stats.
 *	  - Flags and counters polled by other processes are atomics, each
 *	    written by one process (named on the field); plain fields are
 *	    written by one process and read for information only (stats), or
 *	    set before the processes that read them start (nworkers).
 *	  - RtsRing: single producer (the router), single consumer (the worker),
 *	    positions as atomics (ring.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_SHMEM_H
#define RTS_SHMEM_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"

#include "batch.h"
#include "geometry.h"

/* Fixed limits (documented in docs/reference.md). */
#define RTS_MAX_DATABASES	8		/* rtstream.max_databases upper bound */
#define RTS_MAX_WORKERS		16		/* rtstream.workers upper bound */
#define RTS_MAX_WINDOWS		64		/* windows per database */
#define RTS_MAX_PANES		1024	/* panes per window: size / gcd(size, slide) */
#define RTS_MAX_AGGS		32		/* aggregates per window */
#define RTS_NPARTITIONS		64		/* partitions of every stream */
#define RTS_RING_VNODES		64		/* virtual nodes per worker on the hash ring */
#define RTS_MAX_NODES		16		/* nodes of a distributed stream */

/* A flag in shared memory, written by one process, polled by others. */
static inline bool
rts_flag(pg_atomic_uint32 *flag)
{
	return pg_atomic_read_u32(flag) != 0;
}

static inline void
rts_set_flag(pg_atomic_uint32 *flag, bool value)
{
	pg_atomic_write_u32(flag, value ? 1 : 0);
}

/*
 * Single-producer single-consumer byte ring (ring.c).  Positions grow
 * forever; the offset in data is pos % size.  The writer publishes
 * write_pos only after a whole item is copied, so a reader that restarts
 * resumes at an item boundary.
 */
typedef struct RtsRing
{
	pg_atomic_uint64 write_pos;
	pg_atomic_uint64 read_pos;
	uint64		size;			/* bytes of data, a multiple of 8 */
	Size		data_offset;	/* offset of the data from the RtsShared base */
} RtsRing;

/*
 * Progress of a consumer (a worker, or one window of a worker that is
 * behind it) through the stream of transactions.  applied_lsn: every
 * transaction ending at or before it is applied; in_txn_lsn: a transaction
 * some of whose items are applied but not its commit marker, in_txn_items
 * of them; router_gen: the router generation of the last item;
 * replay_skip: items of in_txn_lsn that a restarted router sends again and
 * that are to be skipped.
 */
typedef struct RtsProgress
{
	XLogRecPtr	applied_lsn;
	XLogRecPtr	in_txn_lsn;
	uint32		in_txn_items;
	uint32		replay_skip;
	uint32		router_gen;
} RtsProgress;

/* One aggregation worker's shared state. */
typedef struct RtsWorkerShared
{
	LWLock		lock;			/* pane tables of this worker; exclusive while
								 * a batch is applied */
	RtsRing		ring;			/* router -> worker queue */
	pg_atomic_uint64 applied_pos;	/* ring position fully applied */
	Latch	   *latch;
	int			pid;
	/* counters, written by the worker only */
	pg_atomic_uint64 rows_applied;
	pg_atomic_uint64 batches_applied;
	pg_atomic_uint64 late_rows;
	pg_atomic_uint64 null_time_rows;
	pg_atomic_uint64 refused_groups;
	pg_atomic_uint64 dead_letters;
	pg_atomic_uint64 replayed_skipped;	/* batches already in a checkpoint */
	XLogRecPtr	last_commit_lsn;
	/* checkpoints */
	pg_atomic_uint64 durable_lsn;	/* everything up to it is in a committed
									 * checkpoint; 0 before the first */
	TimestampTz checkpoint_time;
	pg_atomic_uint32 checkpoint_requests;
	pg_atomic_uint32 checkpoints_done;

	/*
	 * Progress through the stream of transactions, written by the worker
	 * only; kept here so that it survives a restart of the worker alone.
	 */
	RtsProgress progress;
	Oid			extension;		/* pg_extension oid the state belongs to */
} RtsWorkerShared;

/*
 * A window's shared directory entry.  tables[i] is worker i's pane table
 * (panes.c); it is set and cleared by that worker under its lock.
 */
typedef struct RtsWindowSlot
{
	int32		window_id;		/* 0 when free */
	Oid			extension;		/* the pg_extension it belongs to: after DROP
								 * and CREATE EXTENSION a window id comes
								 * again, while workers may still hold the
								 * former window's tables */
	dsa_pointer tables[RTS_MAX_WORKERS];

	/*
	 * Event time of the window (Unix-epoch microseconds, eventtime.c).
	 * newest[w]: the newest event time of the transactions worker w has
	 * applied completely, published at their end with newest_lsn[w], the
	 * end of the transaction that set it (RTS_TIME_NONE before w's first
	 * row).  watermark: the window's watermark, only ever raised.  Values
	 * are raised by compare-and-swap.
	 */
	pg_atomic_uint64 newest[RTS_MAX_WORKERS];
	pg_atomic_uint64 newest_lsn[RTS_MAX_WORKERS];
	pg_atomic_uint64 last_arrival[RTS_MAX_WORKERS];	/* wall clock of w's
														 * last row */
	pg_atomic_uint64 watermark;

	/*
	 * behind_lsn[w]: 0 while worker w applies the window with everything
	 * else; else the window is stalled or catching up on w, and holds every
	 * transaction ending at or before it (worker.c).  Readers of the
	 * watermark take it as w's progress for this window.
	 */
	pg_atomic_uint64 behind_lsn[RTS_MAX_WORKERS];

	/*
	 * History: windows ending at or before emitted_until are in the history
	 * table (RTS_TIME_NONE: none yet, RTS_TIME_UNKNOWN: not read from
	 * rtstream.history_progress yet).
	 */
	pg_atomic_uint64 emitted_until;
	pg_atomic_uint64 emitted_lsn;	/* the history holds every row of the
									 * transactions ending at or before it */
	pg_atomic_uint64 session_keep;	/* sessions: partial sessions ending at or
									 * before it are not needed any more */

	/* the window's definition, for readers without it; set at load */
	int64		lateness_us;
	RtsGeometry geom;
	bool		session;
	bool		history;
	Oid			history_rel;	/* the history table */
} RtsWindowSlot;

#define RTS_TIME_NONE		PG_INT64_MIN
#define RTS_TIME_UNKNOWN	(PG_INT64_MIN + 1)

static inline int64
rts_atomic_read_time(pg_atomic_uint64 *t)
{
	return (int64) pg_atomic_read_u64(t);
}

/* Raise *t to v if v is newer; returns the value now held. */
static inline int64
rts_atomic_raise_time(pg_atomic_uint64 *t, int64 v)
{
	uint64		old = pg_atomic_read_u64(t);

	while ((int64) old < v || (int64) old == RTS_TIME_UNKNOWN)
	{
		if (pg_atomic_compare_exchange_u64(t, &old, (uint64) v))
			return v;
	}
	return (int64) old;
}

/*
 * A background process's errors (the router's, the shipper's), written by
 * that process only: a repeated error is logged once and restarts back off
 * (rts_failed_exit).
 */
typedef struct RtsFailures
{
	int			failures;		/* in a row */
	TimestampTz failed_at;
	char		error[256];		/* "" once it runs */
} RtsFailures;

/*
 * The shipper's state for one node (a postgres_fdw server) it delivers to,
 * written by the shipper only, read for rtstream.nodes.
 */
typedef struct RtsShipNode
{
	NameData	node;			/* "" when the entry is free */
	XLogRecPtr	delivered_lsn;	/* every row up to it is on the node */
	uint64		pending_rows;	/* rows waiting for the node */
	uint64		delivered_rows;
	int			failures;		/* deliveries failed in a row */
	char		error[256];		/* the last one's message ("" once one
								 * succeeds) */
} RtsShipNode;

/*
 * Everything rtstream keeps for one database: an entry of a pool of
 * rtstream.max_databases, taken for a database by the launcher's probe at
 * start or by a backend's first rtstream call (rts_claim_database), and
 * given back by the launcher once the router left (see launcher.c).
 * dboid, dbname, keep_until and release are written under RtsShared.lock.
 */
typedef struct RtsDatabaseShared
{
	char		dbname[NAMEDATALEN];
	Oid			dboid;			/* InvalidOid: the entry is free */
	TimestampTz keep_until;		/* the router waits this long for the
								 * extension (a backend asked for it) */
	pg_atomic_uint32 active;	/* router: the extension exists, workers
								 * may run */
	pg_atomic_uint32 release;	/* router, DROP DATABASE, launcher: leave;
								 * the launcher frees the entry */
	char		start_error[256];	/* launcher: why processes could not
									 * be started ("" if they could) */
	LWLock		lock;			/* window directory */
	Latch	   *router_latch;
	int			router_pid;		/* router; 0 when it is not running */
	pg_atomic_uint32 router_ready;	/* router: its slot exists and is
									 * consistent */
	pg_atomic_uint32 dropping;	/* DROP DATABASE under way: keep out */
	pg_atomic_uint64 decoded_lsn;	/* WAL decoded and forwarded up to here */
	pg_atomic_uint64 confirmed_lsn; /* slot confirmed up to here */
	pg_atomic_uint64 batches_routed;
	pg_atomic_uint64 rows_routed;
	pg_atomic_uint32 catalog_gen;	/* bumped when windows change */
	uint32		router_gen;		/* starts of the router; written after
								 * decoded_lsn is set back to the slot's
								 * start, with a barrier */
	pg_atomic_uint64 gaps;		/* gaps recorded in rtstream.gaps */
	/* router only: a lost slot's gap not yet in rtstream.gaps */
	XLogRecPtr	pending_gap_from;
	XLogRecPtr	pending_gap_to;
	char		pending_gap_reason[256];
	RtsFailures router_failures;	/* the router's errors */
	char		router_blocked[320];	/* a setting stops the router ("" if
										 * none): rtstream calls refuse */
	pg_atomic_uint32 replay_requests;	/* workers: decode again from the
										 * slot's confirmed position, for
										 * windows catching up */
	int			nworkers;		/* rtstream.workers, set at startup */
	RtsWorkerShared workers[RTS_MAX_WORKERS];

	/*
	 * The shipper (shipper.c): the rows of distributed streams, from the
	 * router through its own queue to the nodes.  shipper.durable_lsn:
	 * every transaction up to it is delivered; ship_done_lsn: the WAL the
	 * router had decoded when the shipper last had nothing left to
	 * deliver (rtstream.sync() waits for it).  ship_wanted: the router
	 * has rows for it; the launcher then keeps it running.
	 */
	RtsWorkerShared shipper;
	pg_atomic_uint32 ship_wanted;
	pg_atomic_uint64 ship_done_lsn;
	RtsFailures ship_failures;	/* the shipper's own errors */
	RtsShipNode ship_nodes[RTS_MAX_NODES];
	RtsWindowSlot windows[RTS_MAX_WINDOWS];
} RtsDatabaseShared;

typedef struct RtsShared
{
	int			tranche_id;
	LWLock		lock;			/* the pool of database entries */
	Latch	   *launcher_latch;
	int			ndatabases;		/* entries in the pool */
	Size		dsa_offset;		/* in-place DSA area, from the base */
	RtsDatabaseShared dbs[RTS_MAX_DATABASES];
} RtsShared;

/* shmem.c */
extern RtsShared *rts_shared;
extern void rts_shmem_request(void);
extern void rts_shmem_startup(void);
extern dsa_area *rts_dsa(void);
extern ErrorData *rts_failed(RtsFailures *f, const char *process, const char *dbname);
extern void rts_failed_exit(RtsFailures *f) pg_attribute_noreturn();
extern void rts_failures_forget(RtsFailures *f, TimestampTz started_at);
extern RtsDatabaseShared *rts_my_database(bool missing_ok);
extern RtsDatabaseShared *rts_claim_database(void);
extern void rts_reset_database(RtsDatabaseShared *db);
extern bool rts_database_allowed(const char *dbname);
extern char *rts_ring_data(RtsRing *ring);
extern List *rts_database_names(void);

/* ring.c */
extern bool rts_ring_put(RtsRing *ring, const RtsQueueItem *item,
						 const char *batch);
extern bool rts_ring_get(RtsRing *ring, RtsQueueItem *item, char **batch,
						 char **buf, Size *bufsize, uint64 *next_pos);
extern void rts_ring_advance(RtsRing *ring, uint64 next_pos);

/* ring.c */
extern bool rts_ring_put(RtsRing *ring, const RtsQueueItem *item,
						 const char *batch);
extern bool rts_ring_get(RtsRing *ring, RtsQueueItem *item, char **batch,
						 char **buf, Size *bufsize, uint64 *next_pos);
extern void rts_ring_advance(RtsRing *ring, uint64 next_pos);

#endif							/* RTS_SHMEM_H */
