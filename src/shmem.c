/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  rtstream's shared memory: one RtsDatabaseShared per database of
 *	  rtstream.databases, the router-to-worker queues, and a dynamic shared
 *	  memory area (DSA) for window state that starts in place in the main
 *	  segment and grows into DSM segments up to rtstream.memory_limit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "rtstream.h"

#define RTS_DSA_INPLACE_SIZE	(1024 * 1024)

RtsShared  *rts_shared = NULL;
static dsa_area *rts_area = NULL;

/* Parse rtstream.databases: NIL means every database. */
List *
rts_database_names(void)
{
	char	   *raw = pstrdup(rts_databases ? rts_databases : "");
	List	   *names = NIL;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"rtstream.databases\"")));
	return names;
}

static Size
rts_ring_bytes(void)
{
	return MAXALIGN((Size) rts_queue_size_kb * 1024);
}

static Size
rts_shmem_size(int ndatabases)
{
	Size		size = MAXALIGN(sizeof(RtsShared));

	size = add_size(size, mul_size(rts_ring_bytes(),
								   mul_size(ndatabases, rts_workers + 1)));
	size = add_size(size, RTS_DSA_INPLACE_SIZE);
	return size;
}

void
rts_shmem_request(void)
{
	RequestAddinShmemSpace(rts_shmem_size(rts_max_databases));
}

static void
rts_ring_init(RtsRing *ring, Size data_offset, Size size)
{
	pg_atomic_init_u64(&ring->write_pos, 0);
	pg_atomic_init_u64(&ring->read_pos, 0);
	ring->size = size;
	ring->data_offset = data_offset;
}

/*
 * Bring a database entry to its initial state, keeping its queues' places
 * in shared memory.  By the launcher, with no process of the entry left;
 * the tables of a database dropped with its windows are not freed (their
 * layout is unknown here).
 */
void
rts_reset_database(RtsDatabaseShared *db)
{
	Assert(LWLockHeldByMeInMode(&rts_shared->lock, LW_EXCLUSIVE));
	db->dbname[0] = '\0';
	db->keep_until = 0;
	rts_set_flag(&db->active, false);
	rts_set_flag(&db->release, false);
	db->start_error[0] = '\0';
	db->router_latch = NULL;
	db->router_pid = 0;
	rts_set_flag(&db->router_ready, false);
	rts_set_flag(&db->dropping, false);
	pg_atomic_write_u64(&db->decoded_lsn, 0);
	pg_atomic_write_u64(&db->confirmed_lsn, 0);
	pg_atomic_write_u64(&db->batches_routed, 0);
	pg_atomic_write_u64(&db->rows_routed, 0);
	pg_atomic_fetch_add_u32(&db->catalog_gen, 1);
	pg_atomic_write_u32(&db->replay_requests, 0);
	pg_atomic_write_u64(&db->gaps, 0);
	memset(&db->router_failures, 0, sizeof(RtsFailures));
	db->router_blocked[0] = '\0';
	db->pending_gap_from = db->pending_gap_to = InvalidXLogRecPtr;
	db->router_gen = 0;
	db->nworkers = rts_workers;
	for (int w = 0; w <= RTS_MAX_WORKERS; w++)
	{
		/* w == RTS_MAX_WORKERS: the shipper */
		RtsWorkerShared *ws = w < RTS_MAX_WORKERS ? &db->workers[w] : &db->shipper;

		pg_atomic_write_u64(&ws->ring.write_pos, 0);
		pg_atomic_write_u64(&ws->ring.read_pos, 0);
		pg_atomic_write_u64(&ws->applied_pos, 0);
		ws->latch = NULL;
		ws->pid = 0;
		pg_atomic_write_u64(&ws->rows_applied, 0);
		pg_atomic_write_u64(&ws->batches_applied, 0);
		pg_atomic_write_u64(&ws->late_rows, 0);
		pg_atomic_write_u64(&ws->null_time_rows, 0);
		pg_atomic_write_u64(&ws->refused_groups, 0);
		pg_atomic_write_u64(&ws->dead_letters, 0);
		pg_atomic_write_u64(&ws->replayed_skipped, 0);
		ws->last_commit_lsn = InvalidXLogRecPtr;
		pg_atomic_write_u64(&ws->durable_lsn, 0);
		ws->checkpoint_time = 0;
		memset(&ws->progress, 0, sizeof(ws->progress));
		ws->extension = InvalidOid;
	}
	pg_atomic_write_u32(&db->ship_wanted, 0);
	pg_atomic_write_u64(&db->ship_done_lsn, 0);
	memset(&db->ship_failures, 0, sizeof(RtsFailures));
	memset(db->ship_nodes, 0, sizeof(db->ship_nodes));
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		db->windows[s].window_id = 0;
		for (int w = 0; w < RTS_MAX_WORKERS; w++)
			db->windows[s].tables[w] = InvalidDsaPointer;
	}
	pg_write_barrier();
	db->dboid = InvalidOid;
}

void
rts_shmem_startup(void)
{
	bool		found;
	int			ndb = rts_max_databases;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rts_shared = ShmemInitStruct("rtstream", rts_shmem_size(ndb), &found);
	if (!found)
	{
		Size		offset = MAXALIGN(sizeof(RtsShared));
		dsa_area   *area;

		memset(rts_shared, 0, sizeof(RtsShared));
		rts_shared->tranche_id = LWLockNewTrancheId();
		LWLockInitialize(&rts_shared->lock, rts_shared->tranche_id);
		rts_shared->ndatabases = ndb;
		for (int i = 0; i < ndb; i++)
		{
			RtsDatabaseShared *db = &rts_shared->dbs[i];

			db->dboid = InvalidOid;
			LWLockInitialize(&db->lock, rts_shared->tranche_id);
			pg_atomic_init_u64(&db->decoded_lsn, 0);
			pg_atomic_init_u64(&db->confirmed_lsn, 0);
			pg_atomic_init_u64(&db->batches_routed, 0);
			pg_atomic_init_u64(&db->rows_routed, 0);
			pg_atomic_init_u32(&db->catalog_gen, 1);
			pg_atomic_init_u32(&db->replay_requests, 0);
			pg_atomic_init_u64(&db->gaps, 0);
			pg_atomic_init_u32(&db->active, 0);
			pg_atomic_init_u32(&db->release, 0);
			pg_atomic_init_u32(&db->router_ready, 0);
			pg_atomic_init_u32(&db->dropping, 0);
			db->nworkers = rts_workers;
			pg_atomic_init_u32(&db->ship_wanted, 0);
			pg_atomic_init_u64(&db->ship_done_lsn, 0);
			for (int w = 0; w <= rts_workers; w++)
			{
				/* w == rts_workers: the shipper's queue */
				RtsWorkerShared *ws = w < rts_workers ? &db->workers[w] : &db->shipper;

				LWLockInitialize(&ws->lock, rts_shared->tranche_id);
				rts_ring_init(&ws->ring, offset, rts_ring_bytes());
				offset += rts_ring_bytes();
				pg_atomic_init_u64(&ws->applied_pos, 0);
				pg_atomic_init_u64(&ws->rows_applied, 0);
				pg_atomic_init_u64(&ws->batches_applied, 0);
				pg_atomic_init_u64(&ws->late_rows, 0);
				pg_atomic_init_u64(&ws->null_time_rows, 0);
				pg_atomic_init_u64(&ws->refused_groups, 0);
				pg_atomic_init_u64(&ws->dead_letters, 0);
				pg_atomic_init_u64(&ws->replayed_skipped, 0);
				pg_atomic_init_u64(&ws->durable_lsn, 0);
				pg_atomic_init_u32(&ws->checkpoint_requests, 0);
				pg_atomic_init_u32(&ws->checkpoints_done, 0);
				ws->checkpoint_time = 0;
			}
			for (int s = 0; s < RTS_MAX_WINDOWS; s++)
			{
				for (int w = 0; w < RTS_MAX_WORKERS; w++)
					db->windows[s].tables[w] = InvalidDsaPointer;
				for (int w = 0; w < RTS_MAX_WORKERS; w++)
				{
					pg_atomic_init_u64(&db->windows[s].newest[w], (uint64) RTS_TIME_NONE);
					pg_atomic_init_u64(&db->windows[s].newest_lsn[w], 0);
					pg_atomic_init_u64(&db->windows[s].last_arrival[w], 0);
					pg_atomic_init_u64(&db->windows[s].behind_lsn[w], 0);
				}
				pg_atomic_init_u64(&db->windows[s].emitted_until, (uint64) RTS_TIME_UNKNOWN);
				pg_atomic_init_u64(&db->windows[s].watermark, (uint64) RTS_TIME_NONE);
				pg_atomic_init_u64(&db->windows[s].emitted_lsn, 0);
				pg_atomic_init_u64(&db->windows[s].session_keep, (uint64) RTS_TIME_NONE);
			}
		}
		rts_shared->dsa_offset = offset;
		area = dsa_create_in_place((char *) rts_shared + offset,
								   RTS_DSA_INPLACE_SIZE,
								   rts_shared->tranche_id, NULL);
		dsa_pin(area);
		dsa_set_size_limit(area, (Size) rts_memory_limit_kb * 1024);
		dsa_detach(area);
	}
	LWLockRelease(AddinShmemInitLock);
	LWLockRegisterTranche(rts_shared->tranche_id, "rtstream");
}

/* The DSA of window state, attached on first use in this process. */
dsa_area *
rts_dsa(void)
{
	if (rts_area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		rts_area = dsa_attach_in_place((char *) rts_shared +
									   rts_shared->dsa_offset, NULL);
		dsa_pin_mapping(rts_area);
		MemoryContextSwitchTo(old);
	}
	return rts_area;
}

char *
rts_ring_data(RtsRing *ring)
{
	return (char *) rts_shared + ring->data_offset;
}

/* This database's entry, or NULL if it has none (or an error). */
RtsDatabaseShared *
rts_my_database(bool missing_ok)
{
	if (rts_shared != NULL && OidIsValid(MyDatabaseId))
	{
		for (int i = 0; i < rts_shared->ndatabases; i++)
			if (rts_shared->dbs[i].dboid == MyDatabaseId)
				return &rts_shared->dbs[i];
	}
	if (!missing_ok)
		return rts_claim_database();
	return NULL;
}

/* Whether rtstream.databases lets rtstream run in a database. */
bool
rts_database_allowed(const char *dbname)
{
	List	   *names = rts_database_names();
	ListCell   *lc;

	if (names == NIL)
		return true;
	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), dbname) == 0)
			return true;
	return false;
}

/*
 * This database's entry, taken from the pool if it has none: the launcher
 * then starts its router, which waits a minute for the extension (it may
 * be created by the transaction calling us).
 */
RtsDatabaseShared *
rts_claim_database(void)
{
	RtsDatabaseShared *db = NULL;
	RtsDatabaseShared *free_db = NULL;

	if (rts_shared == NULL || !OidIsValid(MyDatabaseId))
		elog(ERROR, "rtstream shared memory is not available");
	LWLockAcquire(&rts_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < rts_shared->ndatabases; i++)
	{
		if (rts_shared->dbs[i].dboid == MyDatabaseId)
			db = &rts_shared->dbs[i];
		else if (!OidIsValid(rts_shared->dbs[i].dboid) && free_db == NULL)
			free_db = &rts_shared->dbs[i];
	}
	if (db == NULL && free_db != NULL)
	{
		db = free_db;
		strlcpy(db->dbname, get_database_name(MyDatabaseId), NAMEDATALEN);
		db->start_error[0] = '\0';
		pg_write_barrier();
		db->dboid = MyDatabaseId;
	}
	if (db != NULL)
		db->keep_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60000);
	LWLockRelease(&rts_shared->lock);
	if (db == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("rtstream runs in at most %d databases at once", rts_shared->ndatabases),
				 errhint("Raise rtstream.max_databases (a restart is needed), or drop the extension where it is not used.")));
	if (rts_shared->launcher_latch)
		SetLatch(rts_shared->launcher_latch);
	return db;
}

/*
 * A background process failed with the ERROR being handled: it is logged
 * unless it is the same as last time, and counted (a failure more than two
 * minutes after the last starts the count again).  Returns a copy of it.
 */
ErrorData *
rts_failed(RtsFailures *f, const char *process, const char *dbname)
{
	ErrorData  *edata;
	TimestampTz now = GetCurrentTimestamp();
	bool		same;

	MemoryContextSwitchTo(TopMemoryContext);
	edata = CopyErrorData();
	same = strcmp(f->error, edata->message) == 0;
	if (!same)
	{
		EmitErrorReport();
		ereport(LOG,
				(errmsg("rtstream %s for database \"%s\" failed; it retries with a growing delay, up to a minute, and logs the same error only once",
						process, dbname)));
	}
	FlushErrorState();
	if (TimestampDifferenceExceeds(f->failed_at, now, 120000))
		f->failures = 0;
	f->failures = Min(f->failures + 1, 16);
	f->failed_at = now;
	strlcpy(f->error, edata->message, sizeof(f->error));
	return edata;
}

/* Leave after a failure: 1 s, 2 s, 4 s ... up to a minute until restarted. */
void
rts_failed_exit(RtsFailures *f)
{
	/* the launcher restarts the process a second after it left */
	long		delay_ms = Min(1000L << Min(f->failures - 1, 6), 60000L) - 1000L;

	if (delay_ms > 0)
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, delay_ms,
						 PG_WAIT_EXTENSION);
	proc_exit(1);
}

/* Running well for a minute: the last error is history. */
void
rts_failures_forget(RtsFailures *f, TimestampTz started_at)
{
	if (f->error[0] != '\0' &&
		TimestampDifferenceExceeds(started_at, GetCurrentTimestamp(), 60000))
	{
		f->error[0] = '\0';
		f->failures = 0;
	}
}
