/*-------------------------------------------------------------------------
 *
 * owner.c
 *	  Becoming a window's owner, and back (see owner.h).
 *
 *	  The switch follows ExecRefreshMatView: the user id and security
 *	  context are saved and set, and a GUC nest level holds the window's
 *	  search_path.  An error in between needs no cleanup from us: the
 *	  (sub)transaction abort restores the user id and security context it
 *	  started with and pops the GUC levels opened inside it.  So a switch
 *	  made inside a subtransaction must be made again after rolling it back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "owner.h"

void
rts_owner_enter(Oid owner, const char *search_path, RtsOwnerSwitch *sw)
{
	Assert(OidIsValid(owner));
	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec_context);
	SetUserIdAndSecContext(owner,
						   sw->save_sec_context | SECURITY_RESTRICTED_OPERATION);
	sw->save_nestlevel = NewGUCNestLevel();

	/*
	 * Once a GUC is set in a transaction, every end of a nest level in it
	 * looks at all the GUCs (AtEOXact_GUC): a worker switching owners for
	 * each small batch spent a fifth of its time there.  A search_path that
	 * already has the window's value, as the default one usually does, is
	 * therefore left as it is.  "$user" in it means the owner either way,
	 * since the namespace code recomputes the path when the user id
	 * changes.  The nest level is opened all the same, to undo whatever
	 * GUC the owner's code sets.
	 */
	if (search_path != NULL &&
		(namespace_search_path == NULL ||
		 strcmp(search_path, namespace_search_path) != 0))
		(void) set_config_option("search_path", search_path, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	sw->active = true;
}

void
rts_owner_leave(RtsOwnerSwitch *sw)
{
	if (!sw->active)
		return;
	AtEOXact_GUC(false, sw->save_nestlevel);
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec_context);
	sw->active = false;
}

/* The owner of a window's view; InvalidOid if the view is gone. */
Oid
rts_view_owner(Oid view)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(view));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
