/*-------------------------------------------------------------------------
 *
 * worker_keys.c
 *	  Group keys shared by the windows of a worker.
 *
 *	  Windows of one stream with the same GROUP BY expressions, the same
 *	  owner and the same search_path form a key class.  For each row, the
 *	  class builds the group key once, for all its windows (a window's key
 *	  is evaluated as its owner, so a key is shared only among the windows
 *	  applied under one switch to that owner: within one apply_tuple call).
 *
 *	  A class of several windows also keeps a map in the worker's private
 *	  memory from each key to the group entry of every member window: one
 *	  private lookup per row then finds the groups of all of them, instead
 *	  of one probe into each window's shared index.  Entries never move in
 *	  a table (panes.h), so the map holds their addresses until a member's
 *	  table is replaced (a ring resize, a compaction): the replacing code
 *	  calls rts_keys_invalidate(), since a new table may take the address
 *	  of an old one.  The shared tables stay the one truth; readers and
 *	  checkpoints never see the map.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "nodes/nodes.h"
#include "utils/memutils.h"

#include "eventtime.h"
#include "groupkey.h"
#include "panes.h"
#include "worker.h"

/* a key of the map: its hash and bytes */
typedef struct KeyEntry
{
	RtsKeyRef	key;
	char		status;
	RtsGroupEntry **entries;	/* per member; NULL until looked up */
	uint32	   *ids;
} KeyEntry;

#define SH_PREFIX		keymap
#define SH_ELEMENT_TYPE	KeyEntry
#define SH_KEY_TYPE		RtsKeyRef
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	((k).hash)
#define SH_EQUAL(tb, a, b)	RTS_KEYREF_EQUAL(a, b)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct RtsKeyClass
{
	Oid			stream;
	Oid			owner;
	const char *search_path;
	List	   *exprs;			/* the GROUP BY expressions */
	int			nmembers;
	WorkerWindow **members;

	uint64		built_for;		/* the apply_tuple call whose key is in key */
	uint64		prefetched_for; /* the call whose panes were prefetched */
	StringInfoData key;
	uint32		hash;

	MemoryContext mapcxt;		/* the map, its keys and entry arrays */
	keymap_hash *map;			/* NULL for a class of one */
};

static MemoryContext classes_cxt = NULL;
static List *classes = NIL;
static bool classes_valid = false;
static uint64 call_no = 1;

/* The windows of the worker changed: classes are rebuilt before the next row. */
void
rts_keys_invalidate(void)
{
	classes_valid = false;
}

static List *
group_exprs(RtsWindowDef *def)
{
	List	   *exprs = NIL;

	for (int i = 0; i < def->ngroups; i++)
		exprs = lappend(exprs, def->groups[i].expr);
	return exprs;
}

static void
classes_build(void)
{
	ListCell   *lc;

	if (classes_cxt == NULL)
		classes_cxt = AllocSetContextCreate(TopMemoryContext, "rtstream key classes",
											ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(classes_cxt);
	classes = NIL;

	foreach(lc, wstate.windows)
	{
		WorkerWindow *ww = lfirst(lc);
		RtsWindowDef *def = ww->def;
		MemoryContext old = MemoryContextSwitchTo(classes_cxt);
		List	   *exprs = group_exprs(def);
		const char *sp = def->search_path ? def->search_path : "";
		RtsKeyClass *kc = NULL;
		ListCell   *cc;

		foreach(cc, classes)
		{
			RtsKeyClass *c = lfirst(cc);

			if (c->stream == def->stream && c->owner == def->owner &&
				strcmp(c->search_path, sp) == 0 && equal(c->exprs, exprs))
			{
				kc = c;
				break;
			}
		}
		if (kc == NULL)
		{
			kc = palloc0(sizeof(RtsKeyClass));
			kc->stream = def->stream;
			kc->owner = def->owner;
			kc->search_path = pstrdup(sp);
			kc->exprs = copyObject(exprs);
			kc->members = palloc(sizeof(WorkerWindow *) * list_length(wstate.windows));
			initStringInfo(&kc->key);
			classes = lappend(classes, kc);
		}
		ww->key_member = kc->nmembers;
		kc->members[kc->nmembers] = ww;
		kc->nmembers++;
		ww->keys = kc;
		MemoryContextSwitchTo(old);
	}
	foreach(lc, classes)
	{
		RtsKeyClass *kc = lfirst(lc);

		if (kc->nmembers < 2)
			continue;
		kc->mapcxt = AllocSetContextCreate(classes_cxt, "rtstream key map",
										   ALLOCSET_DEFAULT_SIZES);
		kc->map = keymap_create(kc->mapcxt, 1024, NULL);
	}
	classes_valid = true;
}

/* A new row, or the same row for windows of another owner. */
void
rts_keys_new_call(void)
{
	if (!classes_valid)
		classes_build();
	call_no++;
}

/*
 * The group key of the current row for window ww, built once per call for
 * the windows of its class; *hash is its hash.
 */
StringInfo
rts_keys_build(WorkerWindow *ww, uint32 *hash)
{
	RtsKeyClass *kc = ww->keys;

	if (kc->built_for != call_no)
	{
		resetStringInfo(&kc->key);
		rts_groupkey_build(ww->def, ww->row, ww->def->econtext, &kc->key);
		kc->hash = hash_bytes((unsigned char *) kc->key.data, kc->key.len);
		kc->built_for = call_no;
	}
	*hash = kc->hash;
	return &kc->key;
}

/* The row being applied, for caches keyed by it (worker_stream.c). */
uint64
rts_keys_call(void)
{
	return call_no;
}

/* Members in ww's key class, and ww's place among them. */
int
rts_keys_members(WorkerWindow *ww, int *member)
{
	*member = ww->key_member;
	return ww->keys->nmembers;
}

/*
 * The other members will update their pane of this row next: ask the CPU
 * for those cache lines now, so that they arrive while this window works
 * (a pane of a random group is a cache miss, and with many windows the
 * misses are most of the work).  Only members with the same event-time
 * column, whose pane is known from tu.
 */
static void
prefetch_panes(RtsKeyClass *kc, KeyEntry *ke, WorkerWindow *ww, int64 tu)
{
	if (kc->prefetched_for == call_no)
		return;
	kc->prefetched_for = call_no;
	if (ww->def->time_attno == 0)
		return;
	for (int m = 0; m < kc->nmembers; m++)
	{
		WorkerWindow *o = kc->members[m];
		RtsPaneTable *t = o->table;
		int64		pane_no;

		if (o == ww || ke->entries[m] == NULL || o->def->time_attno != ww->def->time_attno ||
			RTS_IS_SESSION(o->def))
			continue;
		pane_no = rts_pane_of(&o->def->geom, tu);
		prefetch_line(rts_entry_pane(t, ke->entries[m], rts_ring_slot(t, pane_no)));
	}
}

/*
 * The group of the current row's key (rts_keys_build) in ww's table, made
 * if it is new; NULL if rtstream.memory_limit refuses it.  tu is the row's
 * time for ww.
 */
RtsGroupEntry *
rts_keys_lookup(WorkerWindow *ww, int64 tu, uint32 *id)
{
	RtsKeyClass *kc = ww->keys;
	int			m = ww->key_member;
	KeyEntry   *ke;
	RtsKeyRef	ref;
	bool		found;
	RtsGroupEntry *e;

	if (kc->map == NULL)
		return rts_table_lookup(rts_dsa(), ww->table, kc->hash, kc->key.data,
								kc->key.len, id);
	ref.hash = kc->hash;
	ref.len = kc->key.len;
	ref.bytes = kc->key.data;
	ke = keymap_insert(kc->map, ref, &found);
	if (!found)
	{
		char	   *copy = MemoryContextAlloc(kc->mapcxt, Max(ref.len, 1));

		memcpy(copy, ref.bytes, ref.len);
		ke->key.bytes = copy;
		ke->entries = MemoryContextAllocZero(kc->mapcxt,
											 sizeof(RtsGroupEntry *) * kc->nmembers);
		ke->ids = MemoryContextAlloc(kc->mapcxt, sizeof(uint32) * kc->nmembers);
	}
	else
		prefetch_panes(kc, ke, ww, tu);
	if (ke->entries[m] != NULL)
	{
		*id = ke->ids[m];
		return ke->entries[m];
	}
	e = rts_table_lookup(rts_dsa(), ww->table, kc->hash, kc->key.data, kc->key.len, id);
	if (e != NULL)
	{
		ke->entries[m] = e;
		ke->ids[m] = *id;
	}
	return e;
}
