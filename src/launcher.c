/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one background worker for the whole server that runs a
 *	  router and rtstream.workers aggregation workers in every database
 *	  where the extension exists, as dynamic background workers, as
 *	  PostgreSQL's logical replication launcher runs apply workers.
 *
 *	  Databases get an entry of the shared pool (shmem.c) two ways: at
 *	  start the launcher probes each database in turn (a router that finds
 *	  no extension leaves at once), and a backend's first rtstream call in
 *	  a database takes one (rts_claim_database) and wakes us.  For each
 *	  entry in use the launcher keeps a router running; once the router has
 *	  found the extension, the workers too.  A router that finds no
 *	  extension for a minute (DROP EXTENSION, or a probe) leaves; the
 *	  launcher then stops the workers and gives the entry back.  DROP
 *	  DATABASE marks its entry (utility.c) so that nothing is started
 *	  there meanwhile.
 *
 *	  Dynamic workers are never restarted by the postmaster: we restart a
 *	  router or worker that stopped, at most once a second (a router that
 *	  fails backs off by itself, see router.c).  After a crash of the
 *	  server, shared memory is new and the launcher probes again.  When
 *	  max_worker_processes has no slot left, the entry says so
 *	  (start_error), a WARNING is logged once, and rtstream calls in that
 *	  database raise an ERROR with the number needed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include <signal.h>
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "rtstream.h"

/* The processes of one entry, as this launcher started them. */
typedef struct EntryProcs
{
	BackgroundWorkerHandle *router;
	BackgroundWorkerHandle *workers[RTS_MAX_WORKERS];
	BackgroundWorkerHandle *shipper;
	TimestampTz router_started;
	TimestampTz shipper_started;
	TimestampTz workers_started[RTS_MAX_WORKERS];
	bool		warned;			/* the start_error was logged */
} EntryProcs;

static EntryProcs procs[RTS_MAX_DATABASES];
static volatile sig_atomic_t got_sigterm = false;

static void
launcher_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

void
rts_register_launcher(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "rtstream");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "rts_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "rtstream launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "rtstream launcher");
	RegisterBackgroundWorker(&bgw);
}

/*
 * Whether a process runs: by its handle, or, with none (a launcher that
 * restarted while the server did not), by the pid it published.
 */
static bool
handle_running(BackgroundWorkerHandle *h, int shared_pid)
{
	pid_t		pid;

	if (h == NULL)
		return shared_pid != 0;
	return GetBackgroundWorkerPid(h, &pid) != BGWH_STOPPED;
}

/*
 * Start one dynamic worker of entry d: the router (w == -1), the shipper
 * (w == -2) or worker w.
 * False, with the entry's start_error set, if no slot was free.
 */
static bool
start_process(int d, int w, BackgroundWorkerHandle **handle)
{
	RtsDatabaseShared *db = &rts_shared->dbs[d];
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	bgw.bgw_notify_pid = MyProcPid;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "rtstream");
	if (w == -2)
	{
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "rts_shipper_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "rtstream shipper for %s", db->dbname);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "rtstream shipper");
		bgw.bgw_main_arg = Int32GetDatum(d);
	}
	else if (w < 0)
	{
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "rts_router_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "rtstream router for %s", db->dbname);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "rtstream router");
		bgw.bgw_main_arg = Int32GetDatum(d);
	}
	else
	{
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "rts_worker_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "rtstream worker %d for %s", w, db->dbname);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "rtstream worker");
		bgw.bgw_main_arg = Int32GetDatum(d * RTS_MAX_WORKERS + w);
	}
	if (RegisterDynamicBackgroundWorker(&bgw, handle))
		return true;
	*handle = NULL;
	snprintf(db->start_error, sizeof(db->start_error),
			 "no background worker slot is free for rtstream in database \"%s\": it needs %d (a router, %d workers%s) besides the launcher",
			 db->dbname, 1 + rts_workers + (rts_flag(&db->ship_wanted) ? 1 : 0), rts_workers,
			 rts_flag(&db->ship_wanted) ? " and the shipper of its distributed streams" : "");
	if (!procs[d].warned)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("%s", db->start_error),
				 errhint("Raise max_worker_processes (now %d) by at least %d and restart the server.",
						 max_worker_processes, 1 + rts_workers)));
		procs[d].warned = true;
	}
	return false;
}

/* Stop every process of an entry; true once none runs. */
static bool
stop_processes(int d)
{
	bool		any = false;

	RtsDatabaseShared *db = &rts_shared->dbs[d];

	if (handle_running(procs[d].router, db->router_pid))
	{
		if (procs[d].router)
			TerminateBackgroundWorker(procs[d].router);
		else
			kill(db->router_pid, SIGTERM);
		any = true;
	}
	if (handle_running(procs[d].shipper, db->shipper.pid))
	{
		if (procs[d].shipper)
			TerminateBackgroundWorker(procs[d].shipper);
		else
			kill(db->shipper.pid, SIGTERM);
		any = true;
	}
	for (int w = 0; w < RTS_MAX_WORKERS; w++)
		if (handle_running(procs[d].workers[w], db->workers[w].pid))
		{
			if (procs[d].workers[w])
				TerminateBackgroundWorker(procs[d].workers[w]);
			else
				kill(db->workers[w].pid, SIGTERM);
			any = true;
		}
	return !any;
}

/* Keep the processes of entry d running, or give the entry back. */
static void
tend_entry(int d, TimestampTz now)
{
	RtsDatabaseShared *db = &rts_shared->dbs[d];
	EntryProcs *p = &procs[d];

	if (!OidIsValid(db->dboid))
		return;
	if (rts_flag(&db->release))
	{
		/* the router left: once nothing of it runs, the entry is free */
		if (stop_processes(d))
		{
			LWLockAcquire(&rts_shared->lock, LW_EXCLUSIVE);
			/* a backend asked for it again meanwhile: start over */
			if (now < db->keep_until && !rts_flag(&db->dropping))
			{
				rts_set_flag(&db->release, false);
				LWLockRelease(&rts_shared->lock);
				return;
			}
			rts_reset_database(db);
			LWLockRelease(&rts_shared->lock);
			memset(p, 0, sizeof(*p));
		}
		return;
	}
	if (rts_flag(&db->dropping))
		return;					/* DROP DATABASE: start nothing there */

	if (!handle_running(p->router, db->router_pid) &&
		TimestampDifferenceExceeds(p->router_started, now, 1000))
	{
		p->router_started = now;
		if (!start_process(d, -1, &p->router))
			return;
	}
	if (!rts_flag(&db->active))
		return;
	for (int w = 0; w < db->nworkers; w++)
	{
		if (handle_running(p->workers[w], db->workers[w].pid) ||
			!TimestampDifferenceExceeds(p->workers_started[w], now, 1000))
			continue;
		p->workers_started[w] = now;
		if (!start_process(d, w, &p->workers[w]))
			return;
	}
	/* the shipper, once a distributed stream has rows */
	if (rts_flag(&db->ship_wanted) &&
		!handle_running(p->shipper, db->shipper.pid) &&
		TimestampDifferenceExceeds(p->shipper_started, now, 1000))
	{
		p->shipper_started = now;
		if (!start_process(d, -2, &p->shipper))
			return;
	}
	if (db->start_error[0] != '\0')
	{
		db->start_error[0] = '\0';
		p->warned = false;
	}
}

typedef struct ProbeDb
{
	Oid			oid;
	char		name[NAMEDATALEN];
} ProbeDb;

/*
 * The databases rtstream may run in: those the server allows connections
 * to, not templates, and allowed by rtstream.databases.
 */
static List *
databases_allowed(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);

		if (d->datallowconn && !d->datistemplate &&
			rts_database_allowed(NameStr(d->datname)))
		{
			MemoryContext old = MemoryContextSwitchTo(caller);
			ProbeDb    *pd = palloc(sizeof(ProbeDb));

			pd->oid = d->oid;
			strlcpy(pd->name, NameStr(d->datname), NAMEDATALEN);
			dbs = lappend(dbs, pd);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/* Whether a database is in a list of databases_allowed(). */
static bool
database_listed(List *dbs, Oid dboid)
{
	ListCell   *lc;

	foreach(lc, dbs)
		if (((ProbeDb *) lfirst(lc))->oid == dboid)
			return true;
	return false;
}

/* Take a free entry for a database being probed; -1 if none is free. */
static int
probe_claim(Oid dboid, const char *name)
{
	int			found = -1;

	LWLockAcquire(&rts_shared->lock, LW_EXCLUSIVE);
	for (int d = 0; d < rts_shared->ndatabases; d++)
		if (rts_shared->dbs[d].dboid == dboid)
			found = d;			/* a backend was first */
	for (int d = 0; found < 0 && d < rts_shared->ndatabases; d++)
		if (!OidIsValid(rts_shared->dbs[d].dboid))
		{
			RtsDatabaseShared *db = &rts_shared->dbs[d];

			db->keep_until = 0; /* leave at once if no extension */
			db->start_error[0] = '\0';
			strlcpy(db->dbname, name, NAMEDATALEN);
			pg_write_barrier();
			db->dboid = dboid;
			found = d;
		}
	LWLockRelease(&rts_shared->lock);
	return found;
}

static void
launcher_shmem_exit(int code, Datum arg)
{
	rts_shared->launcher_latch = NULL;
}

void
rts_launcher_main(Datum arg)
{
	List	   *probe;
	ListCell   *lc;
	TimestampTz last_gone_check = 0;

	pqsignal(SIGTERM, launcher_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	rts_shared->launcher_latch = MyLatch;
	before_shmem_exit(launcher_shmem_exit, 0);

	/* a restarted launcher (not the server) finds entries it cannot tend */
	for (int d = 0; d < rts_shared->ndatabases; d++)
		if (OidIsValid(rts_shared->dbs[d].dboid) &&
			(rts_shared->dbs[d].router_pid != 0 || rts_flag(&rts_shared->dbs[d].active)))
			elog(LOG, "rtstream launcher restarted: database entry %d is in use by processes it did not start",
				 d);

	/* at start, every database in turn: its router keeps it if the extension is there */
	probe = databases_allowed();
	foreach(lc, probe)
	{
		ProbeDb    *pd = lfirst(lc);
		int			d;
		TimestampTz deadline;

		if (got_sigterm)
			break;
		d = probe_claim(pd->oid, pd->name);
		if (d < 0)
			break;				/* the pool is full: backends claim the rest */
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);

		/* until its router decided (found the extension, or left) */
		while (!got_sigterm && OidIsValid(rts_shared->dbs[d].dboid) &&
			   !rts_flag(&rts_shared->dbs[d].active) && !rts_flag(&rts_shared->dbs[d].release) &&
			   GetCurrentTimestamp() < deadline)
		{
			CHECK_FOR_INTERRUPTS();
			for (int e = 0; e < rts_shared->ndatabases; e++)
				tend_entry(e, GetCurrentTimestamp());
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 100L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		for (int e = 0; e < rts_shared->ndatabases; e++)
			tend_entry(e, GetCurrentTimestamp());
	}

	while (!got_sigterm)
	{
		TimestampTz now = GetCurrentTimestamp();

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* entries of databases dropped (or left out) without us, or while we were away */
		if (TimestampDifferenceExceeds(last_gone_check, now, 10000))
		{
			List	   *dbs = databases_allowed();

			last_gone_check = now;
			for (int d = 0; d < rts_shared->ndatabases; d++)
			{
				RtsDatabaseShared *db = &rts_shared->dbs[d];

				if (OidIsValid(db->dboid) && !rts_flag(&db->dropping) &&
					!database_listed(dbs, db->dboid))
				{
					LWLockAcquire(&rts_shared->lock, LW_EXCLUSIVE);
					db->keep_until = 0;
					rts_set_flag(&db->release, true);
					LWLockRelease(&rts_shared->lock);
				}
			}
			list_free_deep(dbs);
		}
		for (int d = 0; d < rts_shared->ndatabases; d++)
			tend_entry(d, now);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/* the postmaster stops the dynamic workers at shutdown */
	proc_exit(0);
}
