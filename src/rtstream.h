/*-------------------------------------------------------------------------
 *
 * rtstream.h
 *	  Shared declarations of rtstream: limits, GUCs, the shared memory
 *	  layout and the batch format that travels from the capture trigger
 *	  through WAL and the router to the aggregation workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTSTREAM_H
#define RTSTREAM_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"

/* GUCs (guc.c) */
extern char *rts_databases;
extern int	rts_workers;
extern int	rts_memory_limit_kb;
extern int	rts_queue_size_kb;
extern int	rts_batch_size_kb;
extern int	rts_checkpoint_interval_s;
extern int	rts_decoding_memory_kb;
extern int	rts_checkpoint_wal_size_mb;
extern int	rts_max_databases;
extern int	rts_stalled_wal_limit_mb;
extern bool rts_allow_partial_results;
extern bool rts_apply_in_progress;
extern int	rts_background_nice;

/* priority.c */
extern void rts_set_background_priority(void);
extern uint64 rts_checkpoint_wal_bytes(void);
extern uint64 rts_stalled_wal_bytes(void);

extern bool rts_loaded_at_startup;

#include "geometry.h"
#include "batch.h"
#include "shmem.h"

/* router.c, worker.c */
extern PGDLLEXPORT void rts_router_main(Datum arg);
extern PGDLLEXPORT void rts_worker_main(Datum arg);
extern PGDLLEXPORT void rts_shipper_main(Datum arg);
extern void rts_register_launcher(void);
extern PGDLLEXPORT void rts_launcher_main(Datum arg);
typedef uint32 (*RtsRingPoint) (int owner, int v, const void *arg);
extern int	rts_ring_owner(int partition, int nowners, RtsRingPoint point,
						   const void *arg);
extern int	rts_partition_worker(int partition, int nworkers);
extern void rts_partition_owners(int nworkers, int *owner);

/* gaps.c */
extern void rts_record_gap(RtsDatabaseShared *db, XLogRecPtr from, XLogRecPtr to,
						   const char *window, const char *reason);

/* utility.c */
extern void rts_utility_init(void);
extern void rts_pushdown_init(void);

/* capture.c */
extern void rts_capture_init(void);
extern void rts_capture_wake_router(void);
extern void rts_wait_router(RtsDatabaseShared *db);
extern void rts_check_started(RtsDatabaseShared *db);

/* checks shared by the SQL functions */
extern void rts_check_server(void);
extern void rts_ddl_mark_pending(void);	/* ddl.c */

#endif							/* RTSTREAM_H */
