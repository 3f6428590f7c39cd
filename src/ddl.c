/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  The C side of create_window and drop_window (the catalog side is in
 *	  rtstream--*.sql), and rtstream.sync().
 *
 *	  Workers learn of a new or dropped window from a transactional logical
 *	  message written by the DDL's own transaction, so they see it at its
 *	  place in commit order: a new window counts exactly the rows of the
 *	  transactions that commit after the one that created it.  Rows of the
 *	  creating transaction itself never count (some of them may reach WAL
 *	  before the message, some after it: the worker skips them all).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/message.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "eventtime.h"
#include "panes.h"
#include "windef.h"

PG_FUNCTION_INFO_V1(rts_analyse);

static Datum rts_analyse_checked(FunctionCallInfo fcinfo);
PG_FUNCTION_INFO_V1(rts_notify);
PG_FUNCTION_INFO_V1(rts_sync);
PG_FUNCTION_INFO_V1(rts_checkpoint);

static bool ddl_callback_registered = false;
static bool ddl_pending = false;

static void
ddl_xact_callback(XactEvent event, void *arg)
{
	/*
	 * Readers reload window definitions when catalog_gen moves, which only
	 * this session's commit does: a prepared transaction would be committed
	 * by another session, and readers would keep the old definitions.
	 */
	if (event == XACT_EVENT_PRE_PREPARE && ddl_pending)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that created, altered or dropped an rtstream window"),
				 errhint("Run rtstream's DDL in a transaction of its own; rows can be written into streams by prepared transactions.")));
	if (event == XACT_EVENT_COMMIT && ddl_pending)
	{
		RtsDatabaseShared *db = rts_my_database(true);

		if (db)
			pg_atomic_fetch_add_u32(&db->catalog_gen, 1);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		ddl_pending = false;
}

/*
 * Readers and capturing backends reload what they cached of the catalog
 * once this transaction commits.
 */
void
rts_ddl_mark_pending(void)
{
	if (!ddl_callback_registered)
	{
		RegisterXactCallback(ddl_xact_callback, NULL);
		ddl_callback_registered = true;
	}
	ddl_pending = true;
}

/*
 * rtstream._analyse(query, size, slide, time_column)
 *		-> (stream oid, columns text)
 * Validates a window and returns its stream and the column definition list
 * of its view.
 */
Datum
rts_analyse(PG_FUNCTION_ARGS)
{
	/* the SQL of version 0.1 calls it with four arguments */
	if (PG_NARGS() < 6)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the rtstream extension is older than its library"),
				 errhint("Run ALTER EXTENSION rtstream UPDATE.")));
	return rts_analyse_checked(fcinfo);
}

static Datum
rts_analyse_checked(FunctionCallInfo fcinfo)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *time_column = PG_ARGISNULL(3) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(3));
	RtsShapeOptions shape = {0};
	RtsWindowDef *def;
	StringInfoData cols;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	rts_check_server();
	shape.gap_us = PG_ARGISNULL(4) ? 0 :
		rts_interval_us(PG_GETARG_INTERVAL_P(4), "gap");
	if (shape.gap_us > 0 && !(PG_ARGISNULL(1) && PG_ARGISNULL(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a session window takes a gap, not a size or a slide")));
	if (shape.gap_us == 0 && PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a window needs a size, or a gap for a session window")));
	if (!PG_ARGISNULL(1))
		shape.size_us = rts_interval_us(PG_GETARG_INTERVAL_P(1), "size");
	if (!PG_ARGISNULL(2))
		shape.slide_us = rts_interval_us(PG_GETARG_INTERVAL_P(2), "slide");
	if (PG_NARGS() > 6)
	{
		shape.has_origin = !PG_ARGISNULL(6);
		if (shape.has_origin)
			shape.origin_us = PG_GETARG_TIMESTAMPTZ(6) + RTS_UNIX_EPOCH_OFFSET_US;
		if (!PG_ARGISNULL(7))
			shape.timezone = text_to_cstring(PG_GETARG_TEXT_PP(7));
		if (!PG_ARGISNULL(8))
			shape.step_us = rts_interval_us(PG_GETARG_INTERVAL_P(8), "step");
	}
	if (shape.step_us > 0 && shape.slide_us > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a cumulating window takes a step, not a slide"),
				 errhint("Its windows all start at a multiple of size and grow by one step.")));
	def = rts_windef_analyse(query, &shape, time_column, NULL);
	if (!PG_ARGISNULL(5))
		rts_windef_set_lateness(def, rts_interval_us_nonneg(PG_GETARG_INTERVAL_P(5),
															"allowed_lateness"));

	initStringInfo(&cols);
	appendStringInfoString(&cols, "window_start timestamptz, window_end timestamptz");
	for (int i = 0; i < def->noutputs; i++)
	{
		if (strcmp(def->outputs[i].name, "window_start") == 0 ||
			strcmp(def->outputs[i].name, "window_end") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("window output column \"%s\" is reserved",
							def->outputs[i].name),
					 errhint("Give the column another name with AS.")));
		appendStringInfo(&cols, ", %s %s", quote_identifier(def->outputs[i].name),
						 format_type_with_typemod(def->outputs[i].type,
												  def->outputs[i].typmod));
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = ObjectIdGetDatum(def->stream);
	values[1] = CStringGetTextDatum(cols.data);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

/* rtstream._notify(window_id int, op text): tell the workers, in commit order. */
Datum
rts_notify(PG_FUNCTION_ARGS)
{
	int32		window_id = PG_GETARG_INT32(0);
	char	   *op = text_to_cstring(PG_GETARG_TEXT_PP(1));
	RtsDatabaseShared *db;
	char		buf[RTS_BATCH_HEADER_SIZE];
	RtsBatchHeader *hdr = (RtsBatchHeader *) buf;

	rts_check_server();
	db = rts_my_database(false);

	/*
	 * Wait for the router if we can.  A transaction that has an XID cannot
	 * wait for a slot to be created (that waits for it): its message may
	 * then be written before the slot is consistent, and the router has the
	 * workers load the whole catalog when it creates the slot.
	 */
	if (GetTopTransactionIdIfAny() == InvalidTransactionId)
		rts_wait_router(db);

	memset(buf, 0, sizeof(buf));
	hdr->kind = RTS_BATCH_DDL;
	hdr->version = RTS_BATCH_VERSION;
	hdr->xid = GetCurrentTransactionId();
	hdr->nrows = (uint32) window_id;
	if (strcmp(op, "create") == 0)
		hdr->ddl_op = RTS_DDL_CREATE_WINDOW;
	else if (strcmp(op, "drop") == 0)
		hdr->ddl_op = RTS_DDL_DROP_WINDOW;
	else if (strcmp(op, "alter") == 0)
		hdr->ddl_op = RTS_DDL_ALTER_WINDOW;
	else
		elog(ERROR, "unknown rtstream DDL operation \"%s\"", op);
	LogLogicalMessage(RTS_MESSAGE_PREFIX, buf, sizeof(buf), true);

	rts_ddl_mark_pending();
	pg_atomic_fetch_add_u32(&db->catalog_gen, 1);
	PG_RETURN_VOID();
}

static void
sync_wait(RtsDatabaseShared *db, TimestampTz deadline, const char *what)
{
	if (GetCurrentTimestamp() >= deadline)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("rtstream.sync() timed out waiting for %s", what),
				 errhint("Check rtstream.stats and the server log.")));
	if (db->router_latch)
		SetLatch(db->router_latch);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 1L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static TimestampTz
deadline_after(Interval *timeout)
{
	int64		timeout_us = timeout->time + (int64) timeout->day * USECS_PER_DAY +
		(int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;

	return GetCurrentTimestamp() + timeout_us;
}

/*
 * Wait until every transaction committed before the call is applied; the
 * WAL position that covers them.
 */
static XLogRecPtr
sync_until(RtsDatabaseShared *db, TimestampTz deadline)
{
	XLogRecPtr	target;
	uint64		queued[RTS_MAX_WORKERS];

	/*
	 * Every commit before us is at or before target, and flushed.  Right
	 * after a page header the insert position is past anything written
	 * (flushing there fails): the records before end at the page start.
	 */
	target = GetXLogInsertRecPtr();
	if (target % XLOG_BLCKSZ != 0 && target % XLOG_BLCKSZ <= SizeOfXLogLongPHD)
		target -= target % XLOG_BLCKSZ;
	XLogFlush(target);

	while (!rts_flag(&db->router_ready) || pg_atomic_read_u64(&db->decoded_lsn) < target)
		sync_wait(db, deadline, "the router");
	pg_read_barrier();

	/* all of it is in the workers' queues now: wait until applied */
	for (int w = 0; w < db->nworkers; w++)
		queued[w] = pg_atomic_read_u64(&db->workers[w].ring.write_pos);
	for (int w = 0; w < db->nworkers; w++)
		while (pg_atomic_read_u64(&db->workers[w].applied_pos) < queued[w])
			sync_wait(db, deadline, "the workers");
	return target;
}

/*
 * Distributed streams: wait until the shipper has delivered every row
 * committed before target, then have each node apply what it got
 * (rtstream.sync() there, through the stream's inbox, as this role's user
 * mapping: nodes it may not write to are left out).
 */
static void
sync_nodes(RtsDatabaseShared *db, XLogRecPtr target, TimestampTz deadline)
{
	int64		left_ms;
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];

	if (!rts_flag(&db->ship_wanted))
		return;
	while (pg_atomic_read_u64(&db->ship_done_lsn) < target)
	{
		if (db->shipper.latch)
			SetLatch(db->shipper.latch);
		sync_wait(db, deadline, "the shipper (see the last_error column of rtstream.nodes)");
	}
	left_ms = Max((deadline - GetCurrentTimestamp()) / 1000, 1);
	vals[0] = CStringGetTextDatum(psprintf("SELECT rtstream.sync('%lld milliseconds')",
										   (long long) left_ms));
	SPI_connect();
	if (SPI_execute_with_args("SELECT rtstream._on_node(rtstream._inbox_of(s.stream, s.node), $1) "
							  "FROM (SELECT DISTINCT ON (node) stream, node FROM rtstream.stream_nodes "
							  "      WHERE has_table_privilege(rtstream._inbox_of(stream, node), 'INSERT') "
							  "      ORDER BY node, stream) s",
							  1, types, vals, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "rtstream could not sync the nodes");
	SPI_finish();
}

/* A window's name, for messages. */
static char *
window_name(int32 id)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(id)};
	char	   *name = psprintf("%d", id);
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	if (SPI_execute_with_args("SELECT name FROM rtstream.windows WHERE id = $1",
							  1, types, vals, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		name = MemoryContextStrdup(caller,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	return name;
}

/*
 * The run state of a window slot: RUNNING if every worker applies it,
 * else CATCHING_UP if some worker replays for it, else STALLED.
 */
static RtsRunState
slot_run_state(RtsDatabaseShared *db, RtsWindowSlot *slot, char *error)
{
	RtsRunState state = RTS_RUN_RUNNING;
	dsa_area   *area = rts_dsa();

	for (int w = 0; w < db->nworkers; w++)
	{
		if (pg_atomic_read_u64(&slot->behind_lsn[w]) == 0)
			continue;
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);
		if (DsaPointerIsValid(slot->tables[w]))
		{
			RtsPaneTable *t = dsa_get_address(area, slot->tables[w]);

			if (t->run.state == RTS_RUN_CATCHING_UP)
				state = RTS_RUN_CATCHING_UP;
			else if (t->run.state == RTS_RUN_STALLED && state == RTS_RUN_RUNNING)
			{
				state = RTS_RUN_STALLED;
				strlcpy(error, t->run.error, RTS_ERROR_LEN);
			}
		}
		LWLockRelease(&db->workers[w].lock);
	}
	return state;
}

/*
 * Wait until the windows catching up have caught up; a stalled window is
 * not waited for (it waits for a GRANT): say so.
 */
static void
catch_up_wait(RtsDatabaseShared *db, TimestampTz deadline)
{
	Oid			ext = get_extension_oid("rtstream", false);

	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		RtsWindowSlot *slot = &db->windows[s];
		char		error[RTS_ERROR_LEN];
		RtsRunState state;

		if (slot->window_id == 0 || slot->extension != ext)
			continue;
		while ((state = slot_run_state(db, slot, error)) == RTS_RUN_CATCHING_UP)
			sync_wait(db, deadline, "windows catching up");
		if (state == RTS_RUN_STALLED)
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("rtstream window \"%s\" is stalled and was not waited for",
							window_name(slot->window_id)),
					 errdetail("%s", error),
					 errhint("See rtstream.window_stats; the window catches up once its owner has the privileges back.")));
	}
}

/*
 * Wait until the windows that the rows applied so far have closed are in
 * their history tables (worker 0 writes them, see history.c).
 */
static void
history_wait(RtsDatabaseShared *db, TimestampTz deadline)
{
	Oid			ext = get_extension_oid("rtstream", false);

	for (int s = 0; s < RTS_MAX_WINDOWS; s++)
	{
		RtsWindowSlot *slot = &db->windows[s];
		int64		wm;
		int64		target;

		if (slot->window_id == 0 || slot->extension != ext || !slot->history)
			continue;
		/* a stalled window writes no history until it runs again */
		{
			char		error[RTS_ERROR_LEN];

			if (slot_run_state(db, slot, error) != RTS_RUN_RUNNING)
				continue;
		}
		/* a history table dropped by hand: worker 0 warns about it */
		if (get_rel_name(slot->history_rel) == NULL)
			continue;
		wm = rts_window_watermark(db, slot);
		if (wm == RTS_TIME_NONE)
			continue;
		/* as rts_history_target(), from the slot */
		target = slot->session ? wm - 1 :
			rts_pane_start(&slot->geom, rts_end_closed(&slot->geom, wm));
		for (;;)
		{
			int64		emitted = rts_atomic_read_time(&slot->emitted_until);

			if (slot->window_id == 0 || !slot->history ||
				(emitted != RTS_TIME_UNKNOWN && emitted != RTS_TIME_NONE && emitted >= target))
				break;
			if (db->workers[0].latch)
				SetLatch(db->workers[0].latch);
			sync_wait(db, deadline, "the history tables");
		}
	}
}

/*
 * rtstream.sync(timeout): return once every transaction that committed
 * before the call is applied to every window of this database.
 */
Datum
rts_sync(PG_FUNCTION_ARGS)
{
	TimestampTz deadline = deadline_after(PG_GETARG_INTERVAL_P(0));
	XLogRecPtr	target;
	RtsDatabaseShared *db;

	rts_check_server();
	db = rts_my_database(false);
	target = sync_until(db, deadline);
	sync_nodes(db, target, deadline);
	catch_up_wait(db, deadline);
	history_wait(db, deadline);
	PG_RETURN_VOID();
}

/*
 * rtstream.checkpoint(timeout): apply everything committed before the call,
 * have every worker write a checkpoint, and return the LSN up to which the
 * windows are now durable.
 */
Datum
rts_checkpoint(PG_FUNCTION_ARGS)
{
	TimestampTz deadline = deadline_after(PG_GETARG_INTERVAL_P(0));
	RtsDatabaseShared *db;
	uint32		requested[RTS_MAX_WORKERS];
	XLogRecPtr	durable = InvalidXLogRecPtr;

	rts_check_server();
	db = rts_my_database(false);
	sync_until(db, deadline);
	for (int w = 0; w < db->nworkers; w++)
	{
		requested[w] = pg_atomic_add_fetch_u32(&db->workers[w].checkpoint_requests, 1);
		if (db->workers[w].latch)
			SetLatch(db->workers[w].latch);
	}
	for (int w = 0; w < db->nworkers; w++)
	{
		XLogRecPtr	lsn;

		while ((int32) (pg_atomic_read_u32(&db->workers[w].checkpoints_done) -
						requested[w]) < 0)
		{
			if (db->workers[w].latch)
				SetLatch(db->workers[w].latch);
			sync_wait(db, deadline, "the workers' checkpoints");
		}
		lsn = pg_atomic_read_u64(&db->workers[w].durable_lsn);
		if (durable == InvalidXLogRecPtr || lsn < durable)
			durable = lsn;
	}
	PG_RETURN_LSN(durable);
}

PG_FUNCTION_INFO_V1(rts_check);
PG_FUNCTION_INFO_V1(rts_outer_user);

/*
 * rtstream._outer_user(): the role of the session (SET ROLE included),
 * whatever SECURITY DEFINER function runs; alter_window's catalog helper
 * checks it owns the window.
 */
Datum
rts_outer_user(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * rtstream._check(): the server checks, for the SQL functions, and a wait
 * for the router (before the caller writes anything, see rts_wait_router).
 */
Datum
rts_check(PG_FUNCTION_ARGS)
{
	RtsDatabaseShared *db;

	rts_check_server();
	db = rts_my_database(false);

	/*
	 * A transaction with an XID (CREATE EXTENSION in it, say) cannot wait
	 * for the slot, whose creation waits for it; its DDL is loaded from the
	 * catalog when the slot is made (see router_start).
	 */
	if (GetTopTransactionIdIfAny() == InvalidTransactionId)
		rts_wait_router(db);
	else
		rts_check_started(db);
	PG_RETURN_VOID();
}
