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

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "rtstream.h"

#define RTS_DSA_INPLACE_SIZE	(1024 * 1024)

RtsShared  *rts_shared = NULL;
static dsa_area *rts_area = NULL;

/* Parse rtstream.databases; capped at RTS_MAX_DATABASES entries. */
List *
rts_database_names(void)
{
	char	   *raw = pstrdup(rts_databases ? rts_databases : "");
	List	   *names = NIL;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"rtstream.databases\"")));
	if (list_length(names) > RTS_MAX_DATABASES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rtstream.databases lists more than %d databases",
						RTS_MAX_DATABASES)));
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
								   mul_size(ndatabases, rts_workers)));
	size = add_size(size, RTS_DSA_INPLACE_SIZE);
	return size;
}

void
rts_shmem_request(void)
{
	RequestAddinShmemSpace(rts_shmem_size(list_length(rts_database_names())));
}

static void
rts_ring_init(RtsRing *ring, Size data_offset, Size size)
{
	pg_atomic_init_u64(&ring->write_pos, 0);
	pg_atomic_init_u64(&ring->read_pos, 0);
	ring->size = size;
	ring->data_offset = data_offset;
}

void
rts_shmem_startup(void)
{
	bool		found;
	List	   *names = rts_database_names();
	int			ndb = list_length(names);

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rts_shared = ShmemInitStruct("rtstream", rts_shmem_size(ndb), &found);
	if (!found)
	{
		Size		offset = MAXALIGN(sizeof(RtsShared));
		ListCell   *lc;
		int			i = 0;
		dsa_area   *area;

		memset(rts_shared, 0, sizeof(RtsShared));
		rts_shared->tranche_id = LWLockNewTrancheId();
		rts_shared->ndatabases = ndb;
		foreach(lc, names)
		{
			RtsDatabaseShared *db = &rts_shared->dbs[i++];

			strlcpy(db->dbname, (char *) lfirst(lc), NAMEDATALEN);
			db->dboid = InvalidOid;
			LWLockInitialize(&db->lock, rts_shared->tranche_id);
			pg_atomic_init_u64(&db->decoded_lsn, 0);
			pg_atomic_init_u64(&db->confirmed_lsn, 0);
			pg_atomic_init_u64(&db->batches_routed, 0);
			pg_atomic_init_u64(&db->rows_routed, 0);
			pg_atomic_init_u32(&db->catalog_gen, 1);
			pg_atomic_init_u32(&db->replay_requests, 0);
			pg_atomic_init_u64(&db->gaps, 0);
			db->nworkers = rts_workers;
			for (int w = 0; w < rts_workers; w++)
			{
				RtsWorkerShared *ws = &db->workers[w];

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

/* This database's shared state, or NULL (or an error) if it has none. */
RtsDatabaseShared *
rts_my_database(bool missing_ok)
{
	static RtsDatabaseShared *mine = NULL;
	char	   *dbname;

	if (mine != NULL)
		return mine;
	if (rts_shared == NULL || !OidIsValid(MyDatabaseId))
	{
		if (!missing_ok)
			elog(ERROR, "rtstream shared memory is not available");
		return NULL;
	}
	dbname = get_database_name(MyDatabaseId);
	for (int i = 0; dbname && i < rts_shared->ndatabases; i++)
	{
		if (strcmp(rts_shared->dbs[i].dbname, dbname) == 0)
		{
			mine = &rts_shared->dbs[i];
			return mine;
		}
	}
	if (!missing_ok)
		rts_check_server();
	return NULL;
}
