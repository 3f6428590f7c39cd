/*-------------------------------------------------------------------------
 *
 * nodes.h
 *	  Distributed streams: which node (a postgres_fdw foreign server) owns
 *	  each partition, and this backend's cache of rtstream.stream_nodes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_NODES_H
#define RTS_NODES_H

#include "shmem.h"

/* The active nodes of a stream, in name order, and the ring over them. */
typedef struct RtsStreamNodes
{
	Oid			relid;			/* hash key */
	int			nnodes;			/* 0: not distributed */
	Oid			servers[RTS_MAX_NODES];
	int			owner[RTS_NPARTITIONS]; /* partition -> index in servers */
} RtsStreamNodes;

extern int	rts_partition_node(int partition, char names[][NAMEDATALEN], int nnodes);
extern RtsStreamNodes *rts_stream_nodes(Oid relid);
extern void rts_ddl_mark_pending(void);

#endif							/* RTS_NODES_H */
