/*-------------------------------------------------------------------------
 *
 * owner.h
 *	  Running a window's code with its owner's rights.
 *
 *	  Background workers connect as the bootstrap superuser.  Everything
 *	  user-written that they run for a window (its expressions, its
 *	  aggregates' functions, triggers and defaults fired by their writes
 *	  into user tables) runs as the owner of the window's view, under
 *	  SECURITY_RESTRICTED_OPERATION and with the window's saved
 *	  search_path, as REFRESH MATERIALIZED VIEW runs a matview's query.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_OWNER_H
#define RTS_OWNER_H

/* What rts_owner_enter saved, for rts_owner_leave. */
typedef struct RtsOwnerSwitch
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	bool		active;
} RtsOwnerSwitch;

extern void rts_owner_enter(Oid owner, const char *search_path,
							RtsOwnerSwitch *sw);
extern void rts_owner_leave(RtsOwnerSwitch *sw);
extern Oid	rts_view_owner(Oid view);

#endif							/* RTS_OWNER_H */
