/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  A ProcessUtility hook for the DDL that would otherwise go wrong
 *	  silently around rtstream:
 *
 *	  - ALTER TABLE on a stream: changes that keep existing rows readable
 *	    (new columns, defaults, constraints, owner...) pass; changes of a
 *	    column's type, dropping or renaming columns, and renaming the stream
 *	    are refused, since windows read the rows with the definition they
 *	    were created with.
 *	  - DROP TABLE of a stream: refused; rtstream.drop_stream() first.
 *	  - DROP DATABASE of a database in rtstream.databases: its router and
 *	    workers leave it and its replication slot is dropped, so that
 *	    neither blocks the drop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/slot.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "rtstream.h"
#include "nodes.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Whether a relation is a stream: it has rtstream's capture trigger. */
static bool
is_stream(Oid relid)
{
	Relation	rel;
	bool		found = false;

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	rel = table_open(relid, AccessShareLock);
	if (rel->trigdesc)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
			if (strcmp(rel->trigdesc->triggers[i].tgname, "rtstream_capture") == 0)
				found = true;
	}
	table_close(rel, AccessShareLock);
	return found;
}

static void
refuse_stream_change(const char *relname, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s of stream \"%s\"", what, relname),
			 errdetail("Windows read the stream's rows with the definition they were created with."),
			 errhint("Drop the stream with rtstream.drop_stream(..., cascade => true), alter the table, and create the stream and its windows again.")));
}

static void
check_alter_table(AlterTableStmt *stmt)
{
	ListCell   *lc;
	Oid			relid;

	if (stmt->objtype != OBJECT_TABLE)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!is_stream(relid))
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		/* the nodes' tables have the columns rows are shipped with */
		if (cmd->subtype == AT_AddColumn && rts_stream_nodes(relid)->nall > 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot add a column to distributed stream \"%s\"",
							stmt->relation->relname),
					 errdetail("Its rows are shipped to its nodes with the columns their tables have."),
					 errhint("Drop the stream with rtstream.drop_stream(..., cascade => true), alter the table here and on the nodes, and create the stream and its windows again.")));
		switch (cmd->subtype)
		{
			case AT_AddColumn:
			case AT_ColumnDefault:
			case AT_CookedColumnDefault:
			case AT_DropNotNull:
			case AT_SetNotNull:
			case AT_CheckNotNull:
			case AT_AddConstraint:
			case AT_DropConstraint:
			case AT_ValidateConstraint:
			case AT_ChangeOwner:
			case AT_SetStatistics:
			case AT_SetStorage:
			case AT_SetCompression:
			case AT_SetRelOptions:
			case AT_ResetRelOptions:
			case AT_ReplaceRelOptions:
			case AT_SetOptions:
			case AT_ResetOptions:
			case AT_EnableTrig:
			case AT_DisableTrig:
			case AT_EnableAlwaysTrig:
			case AT_EnableReplicaTrig:
				break;
			case AT_AlterColumnType:
				refuse_stream_change(stmt->relation->relname, "change the type of a column");
				break;
			case AT_DropColumn:
				refuse_stream_change(stmt->relation->relname, "drop a column");
				break;
			default:
				refuse_stream_change(stmt->relation->relname, "make this change to the table");
		}
	}
}

static void
check_rename(RenameStmt *stmt)
{
	Oid			relid;

	if (stmt->relation == NULL ||
		(stmt->renameType != OBJECT_TABLE && stmt->renameType != OBJECT_COLUMN))
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (is_stream(relid))
		refuse_stream_change(stmt->relation->relname,
							 stmt->renameType == OBJECT_TABLE ? "rename the table" :
							 "rename a column");
}

static void
check_drop(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_TABLE)
		return;
	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (is_stream(relid))
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop table \"%s\" because it is an rtstream stream",
							rv->relname),
					 errhint("Use rtstream.drop_stream(..., cascade => true) first.")));
	}
}

/*
 * Make rtstream leave a database that is being dropped: keep its workers
 * from coming back, stop them, drop the slot.  The flag is cleared after
 * the drop, whether it succeeded or not.
 */
static Oid	leaving_oid = InvalidOid;

static RtsDatabaseShared *
leave_database(const char *dbname)
{
	RtsDatabaseShared *db = NULL;
	Oid			dboid = get_database_oid(dbname, true);
	char		slotname[NAMEDATALEN];

	if (rts_shared == NULL || !OidIsValid(dboid))
		return NULL;
	for (int i = 0; i < rts_shared->ndatabases; i++)
		if (rts_shared->dbs[i].dboid == dboid)
			db = &rts_shared->dbs[i];
	if (db == NULL)
		return NULL;

	leaving_oid = dboid;
	rts_set_flag(&db->dropping, true);
	for (int tries = 0; tries < 100; tries++)
	{
		bool		any = false;

		if (db->router_pid != 0)
		{
			kill(db->router_pid, SIGTERM);
			any = true;
		}
		for (int w = 0; w < db->nworkers; w++)
			if (db->workers[w].pid != 0)
			{
				kill(db->workers[w].pid, SIGTERM);
				any = true;
			}
		if (!any)
			break;
		pg_usleep(100000L);
		CHECK_FOR_INTERRUPTS();
	}

	snprintf(slotname, sizeof(slotname), "rtstream_%u", dboid);
	if (SearchNamedReplicationSlot(slotname, true) != NULL)
		ReplicationSlotDrop(slotname, false);

	/* the database's windows are gone with it */
	LWLockAcquire(&db->lock, LW_EXCLUSIVE);
	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		db->windows[s].window_id = 0;
		for (int w = 0; w < RTS_MAX_WORKERS; w++)
			db->windows[s].tables[w] = InvalidDsaPointer;
	}
	LWLockRelease(&db->lock);
	return db;
}

static void
rts_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	RtsDatabaseShared *leaving = NULL;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			check_alter_table((AlterTableStmt *) parsetree);
			break;
		case T_RenameStmt:
			check_rename((RenameStmt *) parsetree);
			break;
		case T_DropStmt:
			check_drop((DropStmt *) parsetree);
			break;
		case T_DropdbStmt:
			leaving = leave_database(((DropdbStmt *) parsetree)->dbname);
			break;
		default:
			break;
	}

	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		/* the launcher may have given the entry to another database */
		if (leaving && leaving->dboid == leaving_oid)
			rts_set_flag(&leaving->dropping, false);
	}
	PG_END_TRY();
	/*
	 * A prepared transaction's captured rows are decoded at its COMMIT
	 * PREPARED, which ran in this session: its record is flushed, so the
	 * router can take them now rather than at its next poll.
	 */
	if (IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
		rts_capture_wake_router();
	/* the database is gone: the launcher gives its entry back */
	if (leaving)
	{
		LWLockAcquire(&rts_shared->lock, LW_EXCLUSIVE);
		if (leaving->dboid == leaving_oid)
		{
			leaving->keep_until = 0;
			rts_set_flag(&leaving->release, true);
		}
		LWLockRelease(&rts_shared->lock);
		if (rts_shared->launcher_latch)
			SetLatch(rts_shared->launcher_latch);
	}
}

void
rts_utility_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = rts_ProcessUtility;
}
