/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  rtstream's configuration parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "rtstream.h"

char	   *rts_databases = NULL;
int			rts_workers = 2;
int			rts_memory_limit_kb = 256 * 1024;
int			rts_queue_size_kb = 4 * 1024;
int			rts_batch_size_kb = 64;
int			rts_checkpoint_interval_s = 30;
int			rts_decoding_memory_kb = 256 * 1024;
int			rts_checkpoint_wal_size_mb = -1;
int			rts_max_databases = 4;
int			rts_stalled_wal_limit_mb = -1;
bool		rts_allow_partial_results = false;
bool		rts_apply_in_progress = true;
int			rts_background_nice = 10;

void		rts_define_gucs(void);

void
rts_define_gucs(void)
{
	DefineCustomIntVariable("rtstream.batch_size",
							"Captured rows are written to WAL in batches of about this size.",
							NULL,
							&rts_batch_size_kb,
							64, 1, 1024 * 1024,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("rtstream.allow_partial_results",
							 "Reads of a distributed window leave out the nodes that fail.",
							 "Off (the default): a window of a distributed stream is read from all its nodes at once, and a node that fails (unreachable, an error) fails the read. On: each node is read on its own, and a node that fails is left out of the result with a WARNING naming it, so the rows are those of the other nodes only.",
							 &rts_allow_partial_results,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/*
	 * The others only mean something in a server that preloads rtstream, and
	 * PGC_POSTMASTER parameters cannot be created later.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("rtstream.databases",
							   "Databases in which rtstream may run, if only some.",
							   "A comma-separated list of database names; empty (the default): every database where the extension is created.",
							   &rts_databases,
							   "",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.max_databases",
							"Databases in which rtstream can run at once.",
							"Each has a router and rtstream.workers workers, and rtstream.workers queues of rtstream.queue_size in shared memory.",
							&rts_max_databases,
							4, 1, RTS_MAX_DATABASES,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.workers",
							"Aggregation workers per database.",
							NULL,
							&rts_workers,
							2, 1, RTS_MAX_WORKERS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.memory_limit",
							"Shared memory that window state may use, in all.",
							"New groups are refused beyond it.",
							&rts_memory_limit_kb,
							256 * 1024, 1024, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.queue_size",
							"Size of the queue from the router to each worker.",
							"A captured batch must fit in it.",
							&rts_queue_size_kb,
							4 * 1024, 256, 1024 * 1024,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.checkpoint_interval",
							"Time between checkpoints of window state.",
							"Each worker writes its state to rtstream.checkpoints this often; WAL is kept from the oldest checkpoint on.",
							&rts_checkpoint_interval_s,
							30, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.decoding_memory",
							"Memory the router may hold for transactions being decoded.",
							"The router's logical_decoding_work_mem: past it, the largest transaction is applied while it runs (rtstream.apply_in_progress), or spilled to disk.",
							&rts_decoding_memory_kb,
							8 * 1024, 64, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("rtstream.apply_in_progress",
							 "Apply large transactions while they run, counted only once they commit.",
							 "Workers aggregate a running transaction's rows aside, merge them into the windows at its commit and drop them at its abort, so that the work left after a large COPY commits is proportional to the groups it touched.",
							 &rts_apply_in_progress,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.background_nice",
							"Nice value of rtstream's router, workers and shipper.",
							"Higher lets the sessions writing rows go first on a busy machine; the workers catch up when they pause. 0 gives them the priority of a backend.",
							&rts_background_nice,
							10, 0, 19,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.checkpoint_wal_size",
							"WAL a worker may hold back before it checkpoints, whatever the interval.",
							"-1: a quarter of max_slot_wal_keep_size, or 256MB when that is -1.",
							&rts_checkpoint_wal_size_mb,
							-1, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rtstream.stalled_wal_limit",
							"WAL a stalled window may hold for its catch-up before it gives the rows up.",
							"Beyond it the window records a gap in rtstream.gaps and goes on from its worker's position. -1: half of max_slot_wal_keep_size, or 1GB when that is -1.",
							&rts_stalled_wal_limit_mb,
							-1, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("rtstream");
}

/* The WAL a worker may hold back before it checkpoints, in bytes. */
uint64
rts_checkpoint_wal_bytes(void)
{
	if (rts_checkpoint_wal_size_mb >= 0)
		return (uint64) Max(rts_checkpoint_wal_size_mb, 1) * 1024 * 1024;
	if (max_slot_wal_keep_size_mb > 0)
		return (uint64) Max(max_slot_wal_keep_size_mb / 4, 1) * 1024 * 1024;
	return (uint64) 256 * 1024 * 1024;
}

/* The WAL a stalled window may hold, in bytes. */
uint64
rts_stalled_wal_bytes(void)
{
	if (rts_stalled_wal_limit_mb >= 0)
		return (uint64) Max(rts_stalled_wal_limit_mb, 1) * 1024 * 1024;
	if (max_slot_wal_keep_size_mb > 0)
		return (uint64) Max(max_slot_wal_keep_size_mb / 2, 1) * 1024 * 1024;
	return (uint64) 1024 * 1024 * 1024;
}
