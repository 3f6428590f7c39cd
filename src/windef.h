/*-------------------------------------------------------------------------
 *
 * windef.h
 *	  A window's definition, analysed from its query by PostgreSQL's own
 *	  parser: group keys, aggregates (with their catalog functions), the
 *	  WHERE filter, the time column and the pane geometry.  The same
 *	  analysis serves create_window (validation), the workers (applying
 *	  rows) and readers (combining panes).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RTS_WINDEF_H
#define RTS_WINDEF_H

#include "access/attnum.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "nodes/primnodes.h"
#include "utils/timestamp.h"

#include "geometry.h"

/*
 * Aggregates with a native representation in the pane words.  They give
 * the same results as PostgreSQL's own functions (same arithmetic, same
 * overflow errors); everything else takes the generic catalog path.
 */
typedef enum RtsFastKind
{
	RTS_FAST_NONE = 0,
	RTS_FAST_COUNT,				/* count(*), count(x): int64 */
	RTS_FAST_SUM_INT,			/* sum(int2|int4): int64 -> int8 */
	RTS_FAST_SUM_FLOAT4,		/* sum(float4): float4 arithmetic */
	RTS_FAST_SUM_FLOAT8,		/* sum(float8) */
	RTS_FAST_AVG_INT,			/* avg(int2|int4): int64 sum, count -> numeric */
	RTS_FAST_AVG_FLOAT,			/* avg(float4|float8): double sum, count */
	RTS_FAST_MIN_INT,			/* min/max(int2|int4|int8) */
	RTS_FAST_MAX_INT,
	RTS_FAST_MIN_FLOAT,			/* min/max(float4|float8) */
	RTS_FAST_MAX_FLOAT,
	RTS_FAST_VAR_FLOAT			/* variance and stddev (float4|float8): the
								 * N, Sx, Sxx of float8_accum, 3 words */
} RtsFastKind;

/* Which function of N, Sx, Sxx an RTS_FAST_VAR_FLOAT aggregate returns. */
typedef enum RtsVarFinal
{
	RTS_VAR_POP = 0,			/* var_pop */
	RTS_VAR_SAMP,				/* var_samp, variance */
	RTS_STDDEV_POP,				/* stddev_pop */
	RTS_STDDEV_SAMP				/* stddev_samp, stddev */
} RtsVarFinal;

typedef enum RtsLatePolicy
{
	RTS_LATE_COUNT = 0,			/* dropped, counted in window_stats */
	RTS_LATE_DEAD_LETTER		/* also stored as a dead letter */
} RtsLatePolicy;

/*
 * Pane words 0 and 1 of a session window: the session's last event time,
 * and its first (the pane number of a session).
 */
#define RTS_SESSION_LAST_WORD	0
#define RTS_SESSION_START_WORD	1

typedef struct RtsAggDef
{
	Aggref	   *aggref;
	RtsFastKind fast;
	int			word;			/* the pane word of its state; fast avg: of
								 * its sum */
	int			count_word;		/* fast avg: the word of its count, else -1 */
	bool		owns_word;		/* false: word is the same sum of another
								 * aggregate (fast avg only; pane_layout.c) */
	bool		owns_count;		/* false: count_word is another aggregate's
								 * count of the same input */
	RtsVarFinal var_final;		/* RTS_FAST_VAR_FLOAT only */
	uint64		null_bit;		/* pane flag: its state is NULL */
	uint64		unset_bit;		/* pane flag: its state was never set (out
								 * of line states only), else 0 */
	int			nargs;
	Oid			argtypes[FUNC_MAX_ARGS];
	List	   *args;			/* argument expressions */
	Expr	   *filter;			/* FILTER (WHERE ...) or NULL */
	AttrNumber	arg_attno;		/* single plain column argument, else 0 */
	Oid			resulttype;

	/* catalog path */
	Oid			transtype;
	int16		transtyplen;
	bool		transtypbyval;
	bool		init_isnull;
	Datum		init_value;
	FmgrInfo	transfn;
	FmgrInfo	combinefn;
	FmgrInfo	serialfn;		/* fn_oid invalid unless internal state */
	FmgrInfo	deserialfn;
	FmgrInfo	finalfn;		/* fn_oid invalid if none */
	int			num_final_args;
	bool		transfn_strict;
	bool		combinefn_strict;
	bool		finalfn_strict;
	bool		state_local;	/* by-reference state kept in the worker
								 * during a batch (internal or pass-by-ref) */
	bool		distinct_set;	/* rtstream.count_distinct, count(DISTINCT):
								 * its state grows with the values */

	/* worker only */
	ExprState  *argstates[FUNC_MAX_ARGS];
	ExprState  *filterstate;
} RtsAggDef;

/* What an output column of the view comes from. */
typedef struct RtsOutputCol
{
	bool		is_group;
	int			index;			/* into groups or aggs */
	char	   *name;
	Oid			type;
	int32		typmod;
} RtsOutputCol;

typedef struct RtsGroupDef
{
	Expr	   *expr;
	Oid			type;
	int16		typlen;
	bool		typbyval;
	AttrNumber	attno;			/* plain column, else 0 */
	ExprState  *state;			/* worker only */
} RtsGroupDef;

typedef struct RtsWindowDef
{
	int32		id;
	char	   *name;
	Oid			view;			/* the window's view */
	Oid			owner;			/* its owner, whose rights a worker runs the
								 * window's code with (refreshed per drain) */
	char	   *search_path;	/* saved at create_window */
	Oid			stream;
	RtsGeometry geom;			/* panes and windows in time (not sessions) */
	bool		notify;			/* NOTIFY when a window closes */
	int			npanes;			/* panes per group (rts_windef_set_lateness);
								 * sessions: session slots per group */
	int64		gap_us;			/* > 0: a session window */

	/* event time (rtstream.windows; changed by alter_window) */
	int64		lateness_us;	/* allowed_lateness */
	int64		idle_timeout_us;	/* 0: off */
	int64		retention_us;	/* of the history; 0: keep all */
	RtsLatePolicy late_policy;
	Oid			dead_letter_table;	/* InvalidOid: rtstream.dead_letters */
	Oid			history;		/* the history table, InvalidOid if none */
	bool		history_held;	/* a node's window whose history a
								 * coordinator writes: its panes are kept
								 * until the coordinator releases them
								 * (rtstream._history_release) */
	AttrNumber	time_attno;		/* 0: commit time */
	int			ngroups;
	RtsGroupDef *groups;
	int			naggs;
	RtsAggDef  *aggs;
	int			nwords;			/* words of a pane (pane_layout.c) */
	int			pane_shift;		/* flag bits below the pane number */
	int			pane_no_word;	/* -1: the pane number is in a pane's flags
								 * (compact); else the word that holds it */
	int			canon_nwords;	/* words of a pane in the portable layout
								 * of checkpoints and node states */
	int16	   *canon_word;		/* per portable word: the pane word */
	int16	   *canon_agg;		/* per portable word: its aggregate, or -1 */
	bool	   *canon_owned;	/* false: another aggregate's word too, which
								 * a load takes from that aggregate */
	bool		any_local;		/* some aggregate has state_local */
	int16	   *word_typlen;	/* per pane word: type length of the image a
								 * local state's word points to, else 0 */
	List	   *quals;			/* implicit-AND WHERE, or NIL */
	int			noutputs;
	RtsOutputCol *outputs;
	bool		groups_disjoint;	/* the group key holds the stream's
									 * partition key: a group lives in one
									 * worker only */

	/* worker only */
	ExprState  *qualstate;
	ExprContext *econtext;
	TupleDesc	streamdesc;
} RtsWindowDef;

extern int64 rts_interval_us(Interval *iv, const char *what);
extern int64 rts_interval_us_nonneg(Interval *iv, const char *what);
/* The shape options of create_window, in microseconds. */
typedef struct RtsShapeOptions
{
	int64		size_us;		/* 0 for a session window */
	int64		slide_us;		/* 0: size (tumbling) */
	int64		gap_us;			/* > 0: a session window */
	int64		step_us;		/* > 0: a cumulating window */
	bool		has_origin;
	int64		origin_us;		/* Unix time windows are aligned to */
	const char *timezone;		/* NULL: absolute time */
} RtsShapeOptions;

extern RtsWindowDef *rts_windef_analyse(const char *query,
										const RtsShapeOptions *shape,
										const char *time_column,
										const char *search_path);
extern void rts_windef_set_lateness(RtsWindowDef *def, int64 lateness_us);
extern RtsWindowDef *rts_windef_load(int32 window_id, const char *window_name,
									  bool missing_ok, bool as_owner);
extern void rts_windef_prepare_exec(RtsWindowDef *def);

/* pane_layout.c */
extern void rts_pane_layout(RtsWindowDef *def, int nextra);
extern int	rts_canon_agg_words(const RtsAggDef *agg);
extern uint64 rts_flags_to_canon(const RtsWindowDef *def, uint64 flags);
extern uint64 rts_flags_from_canon(const RtsWindowDef *def, uint64 canon);

/* options.c */
extern RtsLatePolicy rts_late_policy_parse(const char *name);

/* Whether closed windows are kept until a history has them. */
#define RTS_KEEPS_HISTORY(def)	(OidIsValid((def)->history) || (def)->history_held)

#endif							/* RTS_WINDEF_H */
