/*-------------------------------------------------------------------------
 *
 * panes.h
 *	  A worker's state for one window: a hash table of groups in the DSA,
 *	  each group holding a ring of panes of partial aggregate states.
 *
 *	  Entries live in fixed-size chunks that never move, so an entry's
 *	  address is stable; an open-addressing index of entry numbers finds
 *	  them by the hash of the group key.  The owning worker changes a table
 *	  only under its LWLock held exclusively; readers scan it under the same
 *	  lock held shared.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_PANES_H
#define RTS_PANES_H

#include "access/xlogdefs.h"
#include "utils/dsa.h"
#include "utils/timestamp.h"

#include "rtstream.h"

#define RTS_CHUNK_ENTRIES	1024

/*
 * One pane of one group.  flags holds a bit per aggregate saying its state
 * is NULL (RtsAggDef.null_bit) and, for states kept out of line, one
 * saying it was never set, so that it is the aggregate's initial value
 * (unset_bit).  A word is the state itself (by value and native states) or
 * a dsa_pointer to its flat image (serialized for internal states).
 *
 * Where the pane number lives depends on the window (pane_layout.c): in a
 * compact pane it is held above the flag bits of flags (pane_shift of
 * them), in the others in word pane_no_word.  Use rts_pane_no and
 * rts_pane_set_no; both take a window definition or a pane table, which
 * carry the same two fields.
 */
typedef struct RtsPane
{
	uint64		flags;
	Datum		words[FLEXIBLE_ARRAY_MEMBER];
} RtsPane;

#define RTS_PANE_EMPTY		PG_INT64_MIN

static inline int64
rts_pane_no_of(int shift, int no_word, const RtsPane *p)
{
	int64		n;

	if (no_word >= 0)
		return DatumGetInt64(p->words[no_word]);
	/* an arithmetic shift; the most negative number means empty */
	n = ((int64) p->flags) >> shift;
	return n == (PG_INT64_MIN >> shift) ? RTS_PANE_EMPTY : n;
}

/*
 * Set a pane's number, keeping its flags.  A compact window's pane numbers
 * fit by construction (pane_layout.c: its panes are wide enough); a
 * number that does not is an error rather than a wrong pane.
 */
static inline void
rts_pane_set_no_of(int shift, int no_word, RtsPane *p, int64 n)
{
	uint64		low;

	if (no_word >= 0)
	{
		p->words[no_word] = Int64GetDatum(n);
		return;
	}
	low = p->flags & ((UINT64CONST(1) << shift) - 1);
	if (n == RTS_PANE_EMPTY)
		n = PG_INT64_MIN >> shift;
	else if (unlikely((((int64) ((uint64) n << shift)) >> shift) != n ||
					  n == (PG_INT64_MIN >> shift)))
		elog(ERROR, "rtstream pane number " INT64_FORMAT " does not fit a compact pane", n);
	p->flags = ((uint64) n << shift) | low;
}

#define rts_pane_no(l, p)		rts_pane_no_of((l)->pane_shift, (l)->pane_no_word, (p))
#define rts_pane_set_no(l, p, n) rts_pane_set_no_of((l)->pane_shift, (l)->pane_no_word, (p), (n))

typedef struct RtsGroupEntry
{
	uint32		hash;
	uint32		keylen;
	dsa_pointer key;			/* the key's bytes; a key of at most
								 * RTS_INLINE_KEY bytes is held here instead
								 * (rts_entry_key) */
	/* followed by npanes panes */
} RtsGroupEntry;

#define RTS_INLINE_KEY	sizeof(dsa_pointer)

/* The bytes of a group's key. */
static inline const char *
rts_entry_key(dsa_area *area, const RtsGroupEntry *e)
{
	if (e->keylen <= RTS_INLINE_KEY)
		return (const char *) &e->key;
	return (const char *) dsa_get_address(area, e->key);
}

/*
 * How a worker applies one window.  RUNNING: with every other window, at
 * the worker's own progress.  STALLED: its owner may not run it (a
 * privilege was revoked); nothing is applied to it, and progress says up
 * to where it holds every transaction.  CATCHING_UP: the router replays
 * the WAL since then, and the window takes the replayed items of router
 * generations from resume_gen on, at its own progress, until it reaches
 * the worker's.  A window changes state only between two of its
 * transactions, so that it never holds part of one.
 */
typedef enum RtsRunState
{
	RTS_RUN_RUNNING = 0,
	RTS_RUN_STALLED,
	RTS_RUN_CATCHING_UP
} RtsRunState;

#define RTS_ERROR_LEN	256

typedef struct RtsWindowRun
{
	RtsRunState state;
	RtsProgress progress;		/* unless RUNNING */
	uint32		resume_gen;
	uint32		failures;		/* checks failed in a row: the retry backs off */
	TimestampTz retry_at;
	TimestampTz error_at;
	char		error[RTS_ERROR_LEN];	/* why it is stalled, "" if not */

	/*
	 * Rows of partition p in transactions ending at or before skip_lsn[p]
	 * are in the state (loaded from a checkpoint): replays skip them.
	 */
	XLogRecPtr	skip_lsn[RTS_NPARTITIONS];
} RtsWindowRun;

typedef struct RtsPaneTable
{
	int32		window_id;
	XLogRecPtr	created_lsn;	/* the window counts transactions ending
								 * after it (kept for a restarted worker) */
	int			npanes;
	int			nwords;			/* words of a pane (RtsWindowDef.nwords) */
	int			pane_shift;		/* as in the window's definition */
	int			pane_no_word;
	Size		pane_size;
	Size		entry_size;
	uint32		ngroups;
	bool		has_time;
	TimestampTz max_time;		/* newest time seen by this worker */
	uint32		index_size;		/* power of two, 0 before the first group */
	dsa_pointer index;			/* uint64[index_size]: hash << 32 | entry
								 * number + 1, 0 if free; a probe compares
								 * hashes without touching entries */
	uint32		nchunks;
	uint32		maxchunks;
	dsa_pointer chunks;			/* dsa_pointer[maxchunks] */
	Size		bytes;			/* DSA memory held by this table */
	uint64		rows;
	uint64		late_rows;
	uint64		null_time_rows;
	uint64		refused_groups;
	bool		warned_memory;

	/*
	 * Panes still needed that the ring had to give up (a window closed but
	 * not yet in its history table; a session pushed out by newer ones):
	 * RtsClosedPane records, nclosed of maxclosed.
	 */
	uint32		nclosed;
	uint32		maxclosed;
	dsa_pointer closed;

	/*
	 * Groups of other workers' partitions were merged in (a checkpoint of
	 * another worker, or of another number of workers): up to this pane a
	 * group may also live in another worker.
	 */
	int64		mixed_until_pane;

	/* written by the owning worker under its lock */
	RtsWindowRun run;
} RtsPaneTable;

/* A pane outside the ring, with the number of its group's entry. */
typedef struct RtsClosedPane
{
	uint32		entry_id;
	uint32		pad;
	RtsPane		pane;			/* pane_size bytes */
} RtsClosedPane;

#define RTS_CLOSED_SIZE(t)	(offsetof(RtsClosedPane, pane) + (t)->pane_size)

static inline RtsClosedPane *
rts_closed_pane(dsa_area *area, RtsPaneTable *t, uint32 i)
{
	return (RtsClosedPane *) ((char *) dsa_get_address(area, t->closed) +
							  RTS_CLOSED_SIZE(t) * i);
}

/* The ring slot of pane number pane_no: pane numbers go round the ring. */
static inline int
rts_ring_slot(const RtsPaneTable *t, int64 pane_no)
{
	return (int) (pane_no - rts_floor_div(pane_no, t->npanes) * t->npanes);
}

static inline RtsPane *
rts_entry_pane(RtsPaneTable *t, RtsGroupEntry *e, int i)
{
	return (RtsPane *) ((char *) e + MAXALIGN(sizeof(RtsGroupEntry)) +
						t->pane_size * i);
}

struct RtsWindowDef;
extern dsa_pointer rts_table_create(dsa_area *area, const struct RtsWindowDef *def);
extern RtsGroupEntry *rts_table_entry(dsa_area *area, RtsPaneTable *t,
									  uint32 id);
extern RtsGroupEntry *rts_table_find(dsa_area *area, RtsPaneTable *t,
									uint32 hash, const char *key,
									uint32 keylen, uint32 *id);
extern RtsGroupEntry *rts_table_lookup(dsa_area *area, RtsPaneTable *t,
									   uint32 hash, const char *key,
									   uint32 keylen, uint32 *id);
extern void rts_table_destroy(dsa_area *area, dsa_pointer tp,
							  const int16 *word_typlen);
extern void rts_pane_free_words(dsa_area *area, RtsPaneTable *t, RtsPane *p,
								const int16 *word_typlen);
extern bool rts_closed_add(dsa_area *area, RtsPaneTable *t, uint32 entry_id,
						   RtsPane *pane);
extern void rts_closed_remove(dsa_area *area, RtsPaneTable *t, uint32 i,
							  const int16 *word_typlen);
extern dsa_pointer rts_store_bytes(dsa_area *area, RtsPaneTable *t,
								   const void *data, Size len);
extern void rts_free_bytes(dsa_area *area, RtsPaneTable *t, dsa_pointer dp,
						   int16 typlen);

#endif							/* RTS_PANES_H */
