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

/*
 * The nodes of a stream: every one, in name order (draining ones are still
 * read), and the active ones with the ring over them (where rows go).
 */
typedef struct RtsStreamNodes
{
	Oid			relid;			/* hash key */
	int			nall;			/* 0: not distributed */
	NameData	all[RTS_MAX_NODES];
	bool		draining[RTS_MAX_NODES];	/* of all[]: off the ring */
	int			nnodes;			/* active */
	Oid			servers[RTS_MAX_NODES];
	int			owner[RTS_NPARTITIONS]; /* partition -> index in servers */
} RtsStreamNodes;

extern int	rts_partition_node(int partition, char names[][NAMEDATALEN], int nnodes);
extern RtsStreamNodes *rts_stream_nodes(Oid relid);

#endif							/* RTS_NODES_H */
