/*-------------------------------------------------------------------------
 *
 * inbox.c
 *	  A node's side of a delivery: rows a coordinator captured, as their
 *	  tuples, fired through the node stream's BEFORE INSERT triggers (its
 *	  capture trigger among them) as an INSERT would fire them.
 *
 *	  The tuples are the coordinator's heap tuples, unchanged: no text
 *	  conversion on either side.  They are only valid for a table of the
 *	  same physical layout, which the signature of the coordinator's table
 *	  (every attribute, dropped ones included: its type, length, alignment
 *	  and typmod) must show; else the delivery is an ERROR and changes
 *	  nothing.
 *
 *	  Tuples are trusted as they are, so only a superuser may hand them
 *	  over: a tuple crafted by anyone else could make the backend read past
 *	  its data (a bogus array header, say).  For other roles the shipper
 *	  sends the rows as text, which the types' input functions check.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "rtstream.h"
#include "inbox.h"

PG_FUNCTION_INFO_V1(rts_insert_tuples);

/* The physical layout of a table's rows, as text both sides compare. */
char *
rts_tuple_signature(TupleDesc desc)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%d", desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			appendStringInfo(&buf, ";-%d%c", att->attlen, att->attalign);
		else
			appendStringInfo(&buf, ";%s/%d%c%c", format_type_with_typemod(att->atttypid, att->atttypmod),
							 att->attlen, att->attalign, att->attbyval ? 'v' : 'r');
	}
	return buf.data;
}

/*
 * rtstream._insert_tuples(stream regclass, tuples bytea, signature text,
 * skip bigint): each tuple (a uint32 length, then the tuple) after the
 * first skip, through the stream's BEFORE INSERT row triggers.  The caller
 * (rtstream._inbox) has checked that the role owns the stream.
 */
Datum
rts_insert_tuples(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bytea	   *tuples = PG_GETARG_BYTEA_PP(1);
	char	   *signature = text_to_cstring(PG_GETARG_TEXT_PP(2));
	int64		skip = PG_GETARG_INT64(3);
	const char *p = VARDATA_ANY(tuples);
	const char *end = p + VARSIZE_ANY_EXHDR(tuples);
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	char	   *buf = NULL;
	uint32		bufsize = 0;
	int64		n = 0;
	HeapTuple	model;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rows as tuples can only be delivered by a superuser"),
				 errhint("The coordinator sends the rows as text instead.")));
	rel = table_open(relid, RowExclusiveLock);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
	if (strcmp(signature, rts_tuple_signature(RelationGetDescr(rel))) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("rows from the coordinator do not match the columns of stream \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("Coordinator: %s; here: %s.", signature,
						   rts_tuple_signature(RelationGetDescr(rel))),
				 errhint("A distributed stream's table must have the same columns, in the same order, on the coordinator and on every node.")));

	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	{
		/* a tuple formed here, whose header fields the others take */
		int			natts = RelationGetDescr(rel)->natts;
		Datum	   *values = palloc0(sizeof(Datum) * Max(natts, 1));
		bool	   *isnull = palloc(sizeof(bool) * Max(natts, 1));

		memset(isnull, true, sizeof(bool) * Max(natts, 1));
		model = heap_form_tuple(RelationGetDescr(rel), values, isnull);
	}
	while (p < end)
	{
		HeapTupleData tup;
		uint32		len;

		if (end - p < (ptrdiff_t) sizeof(uint32))
			elog(ERROR, "rtstream delivery is truncated");
		memcpy(&len, p, sizeof(uint32));
		p += sizeof(uint32);
		if ((uint32) (end - p) < len || len < SizeofHeapTupleHeader)
			elog(ERROR, "rtstream delivery is truncated");
		if (n++ < skip)
		{
			p += len;
			continue;
		}
		/* the bytes of a bytea are not aligned for a tuple */
		if (len > bufsize)
		{
			bufsize = Max(len, 1024);
			buf = buf ? repalloc(buf, bufsize) : palloc(bufsize);
		}
		memcpy(buf, p, len);
		p += len;
		tup.t_len = len;
		tup.t_data = (HeapTupleHeader) buf;
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = relid;
		if (HeapTupleHeaderGetNatts(tup.t_data) > RelationGetDescr(rel)->natts)
			elog(ERROR, "rtstream delivery has a row with too many columns");

		/*
		 * The header of a tuple formed on the coordinator (COPY forms them
		 * from the table's descriptor) names the coordinator's row type,
		 * which means nothing here: it gets the fields a tuple formed here
		 * has, and its own length.
		 */
		tup.t_data->t_choice = model->t_data->t_choice;
		HeapTupleHeaderSetDatumLength(tup.t_data, len);
		ExecStoreHeapTuple(&tup, slot, false);

		/* the capture trigger returns NULL: the row is captured, not stored */
		if (ExecBRInsertTriggers(estate, rri, slot))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("stream \"%s\" did not capture a delivered row",
							RelationGetRelationName(rel)),
					 errhint("Its capture trigger rtstream_capture must be enabled.")));
		ExecClearTuple(slot);
		ResetPerTupleExprContext(estate);
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseResultRelations(estate);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	PG_RETURN_INT64(n - Min(n, skip));
}
