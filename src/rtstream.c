/*-------------------------------------------------------------------------
 *
 * rtstream.c
 *	  Module load: GUCs, shared memory hooks, background workers, and the
 *	  server checks every SQL entry point makes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"

#include "rtstream.h"

PG_MODULE_MAGIC;

bool		rts_loaded_at_startup = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

extern void rts_define_gucs(void);
void		_PG_init(void);

static void
rts_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	rts_shmem_request();
}

static void
rts_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rts_shmem_startup();
}

void
_PG_init(void)
{
	rts_define_gucs();
	rts_capture_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	rts_loaded_at_startup = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rts_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rts_shmem_startup_hook;

	rts_register_launcher();
	rts_utility_init();
	rts_pushdown_init();
}

/*
 * Refuse to work on a server that cannot run rtstream.  Without the
 * preload there is no shared memory and no worker; without logical WAL
 * the router cannot decode what the capture trigger writes.
 */
void
rts_check_server(void)
{
	if (!rts_loaded_at_startup)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rtstream must be loaded via shared_preload_libraries"),
				 errhint("Add rtstream to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (wal_level < WAL_LEVEL_LOGICAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rtstream requires wal_level = logical"),
				 errhint("Set wal_level = logical in postgresql.conf and restart the server.")));
	/*
	 * A standby runs no workers: its windows hold nothing, and an empty
	 * answer would look like a quiet stream.
	 */
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rtstream windows cannot be read on a standby"),
				 errdetail("Window state lives in the shared memory of the primary's workers; a standby runs none."),
				 errhint("Read the window on the primary.")));
	if (rts_my_database(true) == NULL &&
		!rts_database_allowed(get_database_name(MyDatabaseId)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rtstream does not run in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Add the database to rtstream.databases in postgresql.conf and restart the server, or set it to '' for every database.")));
}
