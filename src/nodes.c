/*-------------------------------------------------------------------------
 *
 * nodes.c
 *	  Distributed streams: the consistent-hash ring of partitions over a
 *	  stream's nodes, this backend's cache of rtstream.stream_nodes (for the
 *	  capture trigger), and the SQL functions behind rtstream.nodes.
 *
 *	  The ring is the one partitions use over workers (router.c), with
 *	  points derived from the node's name, so that every server computes
 *	  the same owners and adding a node moves only the partitions whose
 *	  nearest point is one of the new node's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "rtstream.h"
#include "nodes.h"

PG_FUNCTION_INFO_V1(rts_node_partitions);
PG_FUNCTION_INFO_V1(rts_node_stats);
PG_FUNCTION_INFO_V1(rts_stream_nodes_changed);

StaticAssertDecl(RTS_MAX_NODES <= RTS_MAX_WORKERS,
				 "the capture trigger keeps one batch per node in its per-worker array");

/* A node's points: from its name, the same on every server. */
static uint32
node_point(int n, int v, const void *arg)
{
	const uint32 *seeds = arg;

	return hash_uint32(seeds[n] ^ (uint32) (v * 7919 + 1));
}

/* The node (index into names) owning a partition. */
int
rts_partition_node(int partition, char names[][NAMEDATALEN], int nnodes)
{
	uint32		seeds[RTS_MAX_NODES];

	for (int n = 0; n < nnodes; n++)
		seeds[n] = hash_bytes((const unsigned char *) names[n], strlen(names[n]));
	return rts_ring_owner(partition, nnodes, node_point, seeds);
}

/* Backend cache of stream -> nodes, valid while catalog_gen holds. */
static HTAB *nodes_cache = NULL;
static MemoryContext nodes_cache_cxt = NULL;
static uint32 nodes_cache_gen = 0;

static void
load_stream_nodes(RtsStreamNodes *sn)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(sn->relid)};
	char		names[RTS_MAX_NODES][NAMEDATALEN];
	Oid			nsp = get_namespace_oid("rtstream", true);

	sn->nall = sn->nnodes = 0;
	/* the catalog of an extension older than 0.5 has no nodes */
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("stream_nodes", nsp)))
		return;
	SPI_connect();
	if (SPI_execute_with_args("SELECT n.node, s.oid, n.state = 'active' FROM rtstream.stream_nodes n "
							  "LEFT JOIN pg_catalog.pg_foreign_server s ON s.srvname = n.node "
							  "WHERE n.stream = $1 ORDER BY n.node",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.stream_nodes");
	for (uint64 i = 0; i < SPI_processed && i < RTS_MAX_NODES; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		name = SPI_getbinval(tup, desc, 1, &isnull);
		Datum		server = SPI_getbinval(tup, desc, 2, &isnull);
		bool		active;

		active = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		sn->draining[sn->nall] = !active;
		namestrcpy(&sn->all[sn->nall++], NameStr(*DatumGetName(name)));
		if (!OidIsValid(DatumGetObjectId(server)))
			continue;			/* the foreign server was dropped */
		if (!active)
			continue;
		strlcpy(names[sn->nnodes], NameStr(*DatumGetName(name)), NAMEDATALEN);
		sn->servers[sn->nnodes++] = DatumGetObjectId(server);
	}
	SPI_finish();
	for (int p = 0; p < RTS_NPARTITIONS && sn->nnodes > 0; p++)
		sn->owner[p] = rts_partition_node(p, names, sn->nnodes);
}

/*
 * The nodes of a stream, as this backend last read them; read again once
 * rtstream's catalog changed (a trigger on rtstream.stream_nodes marks
 * it).  add_node and remove_node lock the stream against writers while
 * they change the ring, so a writer never mixes two rings in a batch.
 */
RtsStreamNodes *
rts_stream_nodes(Oid relid)
{
	RtsDatabaseShared *db = rts_my_database(false);
	uint32		gen = pg_atomic_read_u32(&db->catalog_gen);
	RtsStreamNodes *sn;
	bool		found;

	if (nodes_cache == NULL || gen != nodes_cache_gen)
	{
		HASHCTL		ctl;

		if (nodes_cache_cxt)
			MemoryContextDelete(nodes_cache_cxt);
		nodes_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
												"rtstream stream nodes",
												ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RtsStreamNodes);
		ctl.hcxt = nodes_cache_cxt;
		nodes_cache = hash_create("rtstream stream nodes", 16, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		nodes_cache_gen = gen;
	}
	sn = hash_search(nodes_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		PG_TRY();
		{
			load_stream_nodes(sn);
		}
		PG_CATCH();
		{
			hash_search(nodes_cache, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return sn;
}

/*
 * rtstream._node_partitions(nodes name[], node name) -> integer[]: the
 * partitions the node owns among these nodes.
 */
Datum
rts_node_partitions(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	char	   *node = NameStr(*PG_GETARG_NAME(1));
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char		names[RTS_MAX_NODES][NAMEDATALEN];
	int			me = -1;
	Datum		parts[RTS_NPARTITIONS];
	int			nparts = 0;

	deconstruct_array(arr, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
					  &elems, &nulls, &n);
	if (n > RTS_MAX_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a distributed stream has at most %d nodes", RTS_MAX_NODES)));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("node names must not be NULL")));
		strlcpy(names[i], NameStr(*DatumGetName(elems[i])), NAMEDATALEN);
		if (strcmp(names[i], node) == 0)
			me = i;
	}
	for (int p = 0; p < RTS_NPARTITIONS && me >= 0; p++)
		if (rts_partition_node(p, names, n) == me)
			parts[nparts++] = Int32GetDatum(p);
	PG_RETURN_ARRAYTYPE_P(construct_array(parts, nparts, INT4OID, sizeof(int32),
										  true, TYPALIGN_INT));
}

/* rtstream._node_stats(): the shipper's state per node. */
Datum
rts_node_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RtsDatabaseShared *db;

	InitMaterializedSRF(fcinfo, 0);
	if (rts_shared == NULL || (db = rts_my_database(true)) == NULL)
		PG_RETURN_NULL();
	for (int i = 0; i < RTS_MAX_NODES; i++)
	{
		RtsShipNode *sn = &db->ship_nodes[i];
		Datum		values[6];
		bool		nulls[6] = {0};
		NameData	node;

		/* plain fields written by the shipper: for information only */
		memcpy(&node, &sn->node, sizeof(NameData));
		if (NameStr(node)[0] == '\0')
			continue;
		values[0] = NameGetDatum(&node);
		values[1] = LSNGetDatum(sn->delivered_lsn);
		values[2] = Int64GetDatum((int64) sn->pending_rows);
		values[3] = Int64GetDatum((int64) sn->delivered_rows);
		values[4] = Int32GetDatum(sn->failures);
		if (sn->error[0] != '\0')
			values[5] = CStringGetTextDatum(sn->error);
		else
			nulls[5] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}

/*
 * Statement trigger on rtstream.stream_nodes: capturing backends read the
 * ring again once the change commits (pg_restore included).
 */
Datum
rts_stream_nodes_changed(PG_FUNCTION_ARGS)
{
	TriggerEvent event;
	RtsDatabaseShared *db;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rtstream._stream_nodes_changed() must be called as a trigger")));
	event = ((TriggerData *) fcinfo->context)->tg_event;
	db = rts_my_database(false);
	rts_ddl_mark_pending();
	/* a node added: the launcher starts the shipper (idle if rolled back) */
	if ((TRIGGER_FIRED_BY_INSERT(event) || TRIGGER_FIRED_BY_UPDATE(event)) &&
		!rts_flag(&db->ship_wanted))
	{
		rts_set_flag(&db->ship_wanted, true);
		if (rts_shared->launcher_latch)
			SetLatch(rts_shared->launcher_latch);
	}
	return PointerGetDatum(NULL);
}
