/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  What differs between the PostgreSQL versions rtstream builds against.
 *	  It is built and tested on PostgreSQL 15; later paths are kept here,
 *	  each with why.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_COMPAT_H
#define RTS_COMPAT_H

#include "replication/slot.h"

/*
 * PostgreSQL 17 can synchronise a logical slot to standbys (failover =>
 * true, with sync_replication_slots on the standby): after a promotion the
 * router finds its slot, positioned where the old primary confirmed it,
 * and a failover loses no row.  PostgreSQL 15 cannot: the slot is made
 * anew after a promotion, and the transactions since the last worker
 * checkpoint are recorded as a gap (router.c).
 */
#if PG_VERSION_NUM >= 170000
#define rts_slot_create(name) \
	ReplicationSlotCreate((name), true, RS_EPHEMERAL, false, true, false)
#else
#define rts_slot_create(name) \
	ReplicationSlotCreate((name), true, RS_EPHEMERAL, false)
#endif

#endif							/* RTS_COMPAT_H */
