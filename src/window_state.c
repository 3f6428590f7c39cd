/*-------------------------------------------------------------------------
 *
 * window_state.c
 *	  rtstream.window_state(name): a window's partial state, one row per
 *	  worker, for a coordinator to combine with those of the other nodes
 *	  (read_nodes.c).  The state is in the checkpoint format
 *	  (state_serial.c), which rts_table_merge loads, combining the panes of
 *	  a group that come from several nodes.  It holds every pane still
 *	  needed, as a checkpoint does: of open windows, of closed ones not yet
 *	  in the history, and the partial sessions that may still merge.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "eventtime.h"
#include "read.h"
#include "state_serial.h"

PG_FUNCTION_INFO_V1(rts_window_state);

/* One row: a worker's state (taken under the locks, put after). */
typedef struct StateRow
{
	int			worker;
	int64		newest;			/* RTS_TIME_NONE if none */
	bytea	   *state;
	uint32		groups;			/* group records in it */
} StateRow;

static bytea *
table_state(RtsWindowDef *def, dsa_area *area, RtsPaneTable *t, int nworkers,
			int64 keep, uint32 *groups)
{
	StringInfoData buf;
	bytea	   *b;

	initStringInfo(&buf);
	*groups = rts_table_serialize(def, area, t, nworkers, keep, &buf);
	b = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(b, VARHDRSZ + buf.len);
	memcpy(VARDATA(b), buf.data, buf.len);
	pfree(buf.data);
	return b;
}

/*
 * The states of the workers' tables of the window in slot s, and its
 * watermark, under the workers' locks held shared (as a reader).  Returns
 * the number of rows.
 */
static int
window_states(RtsWindowDef *def, RtsDatabaseShared *db, int s, StateRow *rows,
			  int64 *wm)
{
	RtsWindowSlot *slot = &db->windows[s];
	dsa_area   *area = rts_dsa();
	int			nworkers = db->nworkers;
	int			nrows = 0;

	for (int w = 0; w < nworkers; w++)
		LWLockAcquire(&db->workers[w].lock, LW_SHARED);
	PG_TRY();
	{
		int64		keep;

		*wm = rts_window_watermark(db, slot);
		/* what a checkpoint keeps (worker_checkpoint.c, serialize_window) */
		keep = rts_keep_from(def, *wm, rts_atomic_read_time(&slot->emitted_until),
							 rts_atomic_read_time(&slot->session_keep));
		for (int w = 0; w < nworkers; w++)
		{
			RtsPaneTable *t;

			if (!DsaPointerIsValid(slot->tables[w]))
				continue;
			t = dsa_get_address(area, slot->tables[w]);
			rows[nrows].worker = w;
			rows[nrows].newest = rts_table_newest(t);
			rows[nrows].state = table_state(def, area, t, nworkers, keep,
											&rows[nrows].groups);
			nrows++;
		}
	}
	PG_FINALLY();
	{
		for (int w = nworkers - 1; w >= 0; w--)
			if (LWLockHeldByMe(&db->workers[w].lock))
				LWLockRelease(&db->workers[w].lock);
	}
	PG_END_TRY();
	return nrows;
}

Datum
rts_window_state(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RtsDatabaseShared *db;
	RtsWindowDef *def;
	StateRow	rows[RTS_MAX_WORKERS];
	int			nrows;
	int			s;
	int64		wm = RTS_TIME_NONE;

	rts_check_server();
	db = rts_my_database(false);
	def = rts_reader_window(name, db);
	rts_reader_check(def);

	InitMaterializedSRF(fcinfo, 0);
	s = rts_reader_slot(db, def);
	if (s < 0)
		PG_RETURN_NULL();		/* no worker has loaded it yet: no rows */
	nrows = window_states(def, db, s, rows, &wm);

	for (int i = 0; i < nrows; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = Int32GetDatum(rows[i].worker);
		nulls[1] = wm == RTS_TIME_NONE;
		values[1] = nulls[1] ? (Datum) 0 : TimestampTzGetDatum(rts_from_unix(wm));
		nulls[2] = rows[i].newest == RTS_TIME_NONE;
		values[2] = nulls[2] ? (Datum) 0 :
			TimestampTzGetDatum(rts_from_unix(rows[i].newest));
		values[3] = PointerGetDatum(rows[i].state);
		values[4] = Int32GetDatum((int32) rows[i].groups);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}
