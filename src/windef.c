/*-------------------------------------------------------------------------
 *
 * windef.c
 *	  Analyse a window's query with PostgreSQL's parser and analyser, check
 *	  that rtstream can maintain it, and describe it (windef.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_agg.h"
#include "parser/parse_func.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "rtstream.h"
#include "agg_values.h"
#include "owner.h"
#include "windef.h"

/*
 * An interval as a fixed number of microseconds.  Months have no fixed
 * length, so they are refused; a day counts 24 hours.  A window's size,
 * slide and gap must be positive; a lateness or a timeout may be zero.
 */
static int64
interval_us(Interval *iv, const char *what, bool zero_ok)
{
	int64		us;

	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not contain months or years", what),
				 errhint("Use days instead, for example '30 days'.")));
	us = iv->time + (int64) iv->day * USECS_PER_DAY;
	if (us < 0 || (us == 0 && !zero_ok))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(zero_ok ? "%s must not be negative" : "%s must be positive", what)));
	return us;
}

int64
rts_interval_us(Interval *iv, const char *what)
{
	return interval_us(iv, psprintf("window %s", what), false);
}

int64
rts_interval_us_nonneg(Interval *iv, const char *what)
{
	return interval_us(iv, what, true);
}

static void
refuse(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s are not allowed in a window query", what),
			 errhint("A window query is a single SELECT of group keys and aggregates over one stream, with an optional WHERE and GROUP BY.")));
}

/* The variance and standard deviation aggregates, by name. */
static const struct
{
	const char *name;
	RtsVarFinal final;
}			var_aggregates[] =
{
	{"var_pop", RTS_VAR_POP},
	{"var_samp", RTS_VAR_SAMP},
	{"variance", RTS_VAR_SAMP},
	{"stddev_pop", RTS_STDDEV_POP},
	{"stddev_samp", RTS_STDDEV_SAMP},
	{"stddev", RTS_STDDEV_SAMP}
};

/*
 * Which native representation, if any, an aggregate call can use; for
 * variance and stddev, *var_final says which.
 */
static RtsFastKind
fast_kind(Aggref *aggref, Oid argtype, RtsVarFinal *var_final)
{
	char	   *name;
	int			nargs = list_length(aggref->args);

	if (get_func_namespace(aggref->aggfnoid) != PG_CATALOG_NAMESPACE)
		return RTS_FAST_NONE;
	name = get_func_name(aggref->aggfnoid);
	if (strcmp(name, "count") == 0)
		return RTS_FAST_COUNT;
	if (nargs != 1)
		return RTS_FAST_NONE;
	if (strcmp(name, "sum") == 0)
	{
		if (argtype == INT2OID || argtype == INT4OID)
			return RTS_FAST_SUM_INT;
		if (argtype == FLOAT4OID)
			return RTS_FAST_SUM_FLOAT4;
		if (argtype == FLOAT8OID)
			return RTS_FAST_SUM_FLOAT8;
	}
	else if (strcmp(name, "avg") == 0)
	{
		if (argtype == INT2OID || argtype == INT4OID)
			return RTS_FAST_AVG_INT;
		if (argtype == FLOAT4OID || argtype == FLOAT8OID)
			return RTS_FAST_AVG_FLOAT;
	}
	else if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0)
	{
		bool		is_min = (name[1] == 'i');

		if (argtype == INT2OID || argtype == INT4OID || argtype == INT8OID)
			return is_min ? RTS_FAST_MIN_INT : RTS_FAST_MAX_INT;
		if (argtype == FLOAT4OID || argtype == FLOAT8OID)
			return is_min ? RTS_FAST_MIN_FLOAT : RTS_FAST_MAX_FLOAT;
	}
	else if (argtype == FLOAT4OID || argtype == FLOAT8OID)
	{
		for (int i = 0; i < lengthof(var_aggregates); i++)
			if (strcmp(name, var_aggregates[i].name) == 0)
			{
				*var_final = var_aggregates[i].final;
				return RTS_FAST_VAR_FLOAT;
			}
	}
	return RTS_FAST_NONE;
}

static void
init_fn(FmgrInfo *finfo, Oid fnoid, Expr *expr)
{
	fmgr_info(fnoid, finfo);
	fmgr_info_set_expr((Node *) expr, finfo);
}

/* Fill the catalog side of an aggregate from pg_aggregate. */
static void
analyse_aggregate(RtsAggDef *agg, Aggref *aggref)
{
	HeapTuple	tup;
	Form_pg_aggregate aggform;
	Oid			transtype;
	Datum		initdatum;
	bool		initnull;
	Expr	   *transexpr,
			   *invexpr,
			   *combineexpr,
			   *finalexpr;

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggref->aggfnoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", aggref->aggfnoid);
	aggform = (Form_pg_aggregate) GETSTRUCT(tup);

	if (aggform->aggkind != AGGKIND_NORMAL)
		refuse("ordered-set and hypothetical-set aggregates");
	if (!OidIsValid(aggform->aggcombinefn))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate %s has no combine function",
						format_procedure(aggref->aggfnoid)),
				 errhint("rtstream keeps partial aggregates per pane and combines them when the window is read; only aggregates with a COMBINEFUNC can be used.")));

	transtype = resolve_aggregate_transtype(aggref->aggfnoid,
											aggform->aggtranstype,
											agg->argtypes, agg->nargs);
	if (transtype == INTERNALOID &&
		(!OidIsValid(aggform->aggserialfn) || !OidIsValid(aggform->aggdeserialfn)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate %s has no serialization functions",
						format_procedure(aggref->aggfnoid)),
				 errhint("Aggregates with an internal state need SERIALFUNC and DESERIALFUNC to be kept in shared memory.")));

	agg->transtype = transtype;
	get_typlenbyval(transtype, &agg->transtyplen, &agg->transtypbyval);
	agg->state_local = (transtype == INTERNALOID || !agg->transtypbyval);
	agg->resulttype = aggref->aggtype;

	initdatum = SysCacheGetAttr(AGGFNOID, tup, Anum_pg_aggregate_agginitval,
								&initnull);
	agg->init_isnull = initnull;
	if (!initnull)
	{
		Oid			typinput,
					typioparam;
		char	   *str = TextDatumGetCString(initdatum);

		getTypeInputInfo(transtype, &typinput, &typioparam);
		agg->init_value = OidInputFunctionCall(typinput, str, typioparam, -1);
	}

	build_aggregate_transfn_expr(agg->argtypes, agg->nargs, 0,
								 aggref->aggvariadic, transtype,
								 aggref->inputcollid, aggform->aggtransfn,
								 InvalidOid, &transexpr, &invexpr);
	init_fn(&agg->transfn, aggform->aggtransfn, transexpr);
	agg->transfn_strict = agg->transfn.fn_strict;

	/* the combine function takes (state, state) */
	build_aggregate_transfn_expr(&transtype, 1, 0, false, transtype,
								 aggref->inputcollid, aggform->aggcombinefn,
								 InvalidOid, &combineexpr, &invexpr);
	init_fn(&agg->combinefn, aggform->aggcombinefn, combineexpr);
	agg->combinefn_strict = agg->combinefn.fn_strict;

	agg->serialfn.fn_oid = InvalidOid;
	agg->deserialfn.fn_oid = InvalidOid;
	if (transtype == INTERNALOID)
	{
		Expr	   *serexpr,
				   *deserexpr;

		build_aggregate_serialfn_expr(aggform->aggserialfn, &serexpr);
		init_fn(&agg->serialfn, aggform->aggserialfn, serexpr);
		build_aggregate_deserialfn_expr(aggform->aggdeserialfn, &deserexpr);
		init_fn(&agg->deserialfn, aggform->aggdeserialfn, deserexpr);
	}

	agg->finalfn.fn_oid = InvalidOid;
	if (OidIsValid(aggform->aggfinalfn))
	{
		agg->num_final_args = aggform->aggfinalextra ? agg->nargs + 1 : 1;
		build_aggregate_finalfn_expr(agg->argtypes, agg->num_final_args,
									 transtype, aggref->aggtype,
									 aggref->inputcollid, aggform->aggfinalfn,
									 &finalexpr);
		init_fn(&agg->finalfn, aggform->aggfinalfn, finalexpr);
		agg->finalfn_strict = agg->finalfn.fn_strict;
	}
	ReleaseSysCache(tup);
}

/* Whether an aggregate is rtstream's own aggregate of this name. */
static bool
is_rtstream_aggregate(Oid aggfnoid, const char *name)
{
	Oid			nsp = get_namespace_oid("rtstream", true);
	char	   *fname;

	if (!OidIsValid(nsp) || get_func_namespace(aggfnoid) != nsp)
		return false;
	fname = get_func_name(aggfnoid);
	return fname != NULL && strcmp(fname, name) == 0;
}

/*
 * count(DISTINCT x) is kept as rtstream.count_distinct(x): an exact set of
 * the values per pane (agg_distinct.c), the union of the panes counted
 * when the window is read.  The call is rewritten on a copy of the Aggref:
 * same argument, filter, collation, result type (bigint) and column name.
 * Every other DISTINCT aggregate is refused.
 */
static Aggref *
distinct_aggregate(Aggref *aggref)
{
	Oid			argtypes[1] = {ANYELEMENTOID};
	Oid			fnoid;
	Aggref	   *rewritten;

	if (aggref->aggfnoid != F_COUNT_ANY || list_length(aggref->args) != 1 ||
		aggref->aggorder != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s(DISTINCT ...) is not allowed in a window query",
						get_func_name(aggref->aggfnoid)),
				 errhint("count(DISTINCT x), of one argument and without ORDER BY, is the only DISTINCT aggregate a window keeps.")));
	fnoid = LookupFuncName(list_make2(makeString("rtstream"), makeString("count_distinct")),
						   1, argtypes, true);
	if (!OidIsValid(fnoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function rtstream.count_distinct(anyelement) does not exist"),
				 errhint("Run ALTER EXTENSION rtstream UPDATE.")));
	rewritten = copyObject(aggref);
	rewritten->aggfnoid = fnoid;
	rewritten->aggtranstype = INTERNALOID;
	rewritten->aggdistinct = NIL;
	Assert(rewritten->aggtype == INT8OID);
	return rewritten;
}

/*
 * rtstream.count_distinct and rtstream.topk keep their values in a hash
 * set: the type must be hashable and mean the same in every backend; a
 * constant k of topk is checked now rather than in the workers.
 */
static void
check_values_aggregate(RtsAggDef *agg, bool topk, bool rewritten)
{
	rts_values_check_type(agg->argtypes[0],
						  topk ? "rtstream.topk" :
						  rewritten ? "count(DISTINCT)" : "rtstream.count_distinct");
	agg->distinct_set = !topk;
	if (topk && IsA(lsecond(agg->args), Const))
	{
		Const	   *k = lsecond_node(Const, agg->args);

		if (k->constisnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("k of rtstream.topk must not be NULL")));
		if (k->consttype == INT4OID)
			rts_topk_check_k(DatumGetInt32(k->constvalue));
	}
}

static int
add_aggregate(RtsWindowDef *def, Aggref *aggref)
{
	RtsAggDef  *agg;
	ListCell   *lc;
	bool		rewritten = false;

	if (def->naggs >= RTS_MAX_AGGS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a window can compute at most %d aggregates", RTS_MAX_AGGS)));
	if (aggref->aggdistinct != NIL)
	{
		aggref = distinct_aggregate(aggref);
		rewritten = true;
	}
	if (aggref->aggdirectargs != NIL || aggref->aggkind != AGGKIND_NORMAL)
		refuse("ordered-set aggregates");
	if (aggref->aggorder != NIL)
		refuse("ORDER BY clauses inside aggregates");

	agg = &def->aggs[def->naggs];
	memset(agg, 0, sizeof(RtsAggDef));
	agg->aggref = aggref;
	agg->filter = aggref->aggfilter;
	foreach(lc, aggref->args)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		agg->argtypes[agg->nargs++] = exprType((Node *) tle->expr);
		agg->args = lappend(agg->args, tle->expr);
	}
	if (agg->nargs == 1 && IsA(linitial(agg->args), Var) &&
		((Var *) linitial(agg->args))->varattno > 0)
		agg->arg_attno = ((Var *) linitial(agg->args))->varattno;

	analyse_aggregate(agg, aggref);
	if (rewritten || is_rtstream_aggregate(aggref->aggfnoid, "count_distinct"))
		check_values_aggregate(agg, false, rewritten);
	else if (is_rtstream_aggregate(aggref->aggfnoid, "topk"))
		check_values_aggregate(agg, true, false);
	agg->fast = fast_kind(aggref, agg->nargs > 0 ? agg->argtypes[0] : InvalidOid,
						  &agg->var_final);
	if (agg->fast != RTS_FAST_NONE)
		agg->state_local = false;
	if (agg->state_local)
		def->any_local = true;
	return def->naggs++;
}

/*
 * Report parse errors at their position in the window query, not in the
 * statement that called create_window (as SQL functions do).
 */
static void
window_query_error_callback(void *arg)
{
	const char *query = (const char *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(query);
	}
	errcontext("window query");
}

/*
 * Size the pane ring for an allowed lateness.  A sliding window keeps the
 * panes of every window still open: from the start of the oldest one (it
 * ends after the watermark) to the newest time, less than size + lateness.
 * A session window keeps the sessions of a group that can still be open:
 * they end after the watermark and are at least gap apart.
 */
void
rts_windef_set_lateness(RtsWindowDef *def, int64 lateness_us)
{
	int64		npanes;

	if (def->gap_us > 0)
		npanes = lateness_us / def->gap_us + 2;
	else
	{
		npanes = def->geom.span +
			(lateness_us + def->geom.pane_us - 1) / def->geom.pane_us;
		/* a local day of 25 hours holds more of the lateness */
		if (def->geom.timezone[0] != '\0' && lateness_us > 0)
			npanes++;
	}
	if (npanes > RTS_MAX_PANES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("allowed lateness %lld s needs %lld panes, more than the limit of %d",
						(long long) (lateness_us / USECS_PER_SEC), (long long) npanes,
						RTS_MAX_PANES),
				 errhint("Use a smaller allowed_lateness, or a larger slide.")));
	def->lateness_us = lateness_us;
	def->npanes = (int) npanes;
}

/*
 * Analyse a window query.  Errors are raised for everything rtstream
 * cannot maintain; the stream's registration is checked by the caller.
 */
/*
 * Phase 1: the pane geometry from size and slide (or step, origin, time
 * zone; geometry.c), or from the gap of a session window.
 */
static void
analyse_geometry(RtsWindowDef *def, const RtsShapeOptions *shape, int *nextra)
{
	if (shape->gap_us > 0)
	{
		if (shape->step_us > 0 || shape->has_origin ||
			(shape->timezone && shape->timezone[0] != '\0'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a session window takes no step, origin or time zone"),
					 errhint("Sessions start at their first row and end a gap after their last.")));
		/* a session window keeps its last event time in word 0 */
		def->gap_us = shape->gap_us;
		*nextra = 1;
		rts_windef_set_lateness(def, 0);
		return;
	}
	rts_geometry_init(&def->geom, shape->size_us,
					  shape->slide_us > 0 ? shape->slide_us : shape->size_us,
					  shape->step_us, shape->has_origin, shape->origin_us,
					  shape->timezone);
	if (def->geom.span > RTS_MAX_PANES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("window has %lld panes, more than the limit of %d",
						(long long) def->geom.span, RTS_MAX_PANES),
				 errhint("Use a larger slide or a smaller size.")));
	rts_windef_set_lateness(def, 0);
}

/* Phase 2: parse and analyse the query, as PostgreSQL does any SELECT. */
static Query *
analyse_query(const char *query)
{
	List	   *raw;
	RawStmt    *rawstmt;
	Query	   *q;
	ErrorContextCallback errcallback;

	errcallback.callback = window_query_error_callback;
	errcallback.arg = (void *) query;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("window query must be exactly one SELECT statement")));
	rawstmt = linitial_node(RawStmt, raw);
	if (!IsA(rawstmt->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("window query must be a SELECT statement")));
	q = parse_analyze_fixedparams(rawstmt, query, NULL, 0, NULL);
	error_context_stack = errcallback.previous;
	return q;
}

/* Phase 3: refuse what a window cannot keep; its stream and its WHERE. */
static void
analyse_shape(RtsWindowDef *def, Query *q)
{
	RangeTblEntry *rte;

	if (q->setOperations)
		refuse("set operations");
	if (q->cteList)
		refuse("WITH clauses");
	if (q->hasSubLinks)
		refuse("subqueries");
	if (q->hasWindowFuncs)
		refuse("window functions");
	if (q->hasTargetSRFs)
		refuse("set-returning functions");
	if (q->havingQual)
		refuse("HAVING clauses");
	if (q->distinctClause)
		refuse("DISTINCT clauses");
	if (q->sortClause)
		refuse("ORDER BY clauses");
	if (q->limitCount || q->limitOffset)
		refuse("LIMIT and OFFSET clauses");
	if (q->groupingSets)
		refuse("grouping sets");
	if (q->rowMarks || q->hasForUpdate)
		refuse("locking clauses");
	if (list_length(q->rtable) != 1 || list_length(q->jointree->fromlist) != 1 ||
		!IsA(linitial(q->jointree->fromlist), RangeTblRef))
		refuse("joins and multiple FROM items");
	rte = rt_fetch(1, q->rtable);
	if (rte->rtekind != RTE_RELATION)
		refuse("FROM items other than a stream");
	if (!q->hasAggs)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window query must compute at least one aggregate"),
				 errhint("For example: SELECT key, count(*) FROM stream GROUP BY key.")));
	def->stream = rte->relid;
	if (q->jointree->quals)
	{
		Node	   *quals = eval_const_expressions(NULL, q->jointree->quals);

		def->quals = make_ands_implicit((Expr *) quals);
	}
}

/* Phase 4: the group keys. */
static void
analyse_groups(RtsWindowDef *def, Query *q)
{
	ListCell   *lc;
	int			i = 0;

	def->ngroups = list_length(q->groupClause);
	def->groups = palloc0(sizeof(RtsGroupDef) * Max(def->ngroups, 1));
	foreach(lc, q->groupClause)
	{
		SortGroupClause *sgc = lfirst_node(SortGroupClause, lc);
		RtsGroupDef *g = &def->groups[i++];

		g->expr = (Expr *) get_sortgroupclause_expr(sgc, q->targetList);
		if (contain_volatile_functions((Node *) g->expr))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("volatile functions are not allowed in GROUP BY of a window query")));
		g->type = exprType((Node *) g->expr);
		get_typlenbyval(g->type, &g->typlen, &g->typbyval);
		if (IsA(g->expr, Var) && ((Var *) g->expr)->varattno > 0)
			g->attno = ((Var *) g->expr)->varattno;
	}
}

/* Phase 5: the output columns, each a group key or an aggregate. */
static void
analyse_outputs(RtsWindowDef *def, Query *q)
{
	ListCell   *lc;

	def->aggs = palloc0(sizeof(RtsAggDef) * RTS_MAX_AGGS);
	def->outputs = palloc0(sizeof(RtsOutputCol) * Max(list_length(q->targetList), 1));
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		RtsOutputCol *out;

		if (tle->resjunk)
			continue;
		out = &def->outputs[def->noutputs++];
		out->name = pstrdup(tle->resname ? tle->resname : "?column?");
		out->type = exprType((Node *) tle->expr);
		out->typmod = exprTypmod((Node *) tle->expr);

		if (IsA(tle->expr, Aggref))
		{
			out->is_group = false;
			out->index = add_aggregate(def, (Aggref *) tle->expr);
			continue;
		}
		out->is_group = true;
		out->index = -1;
		for (int i = 0; tle->ressortgroupref != 0 && i < def->ngroups; i++)
		{
			SortGroupClause *sgc = list_nth_node(SortGroupClause, q->groupClause, i);

			if (sgc->tleSortGroupRef == tle->ressortgroupref)
				out->index = i;
		}
		if (out->index < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("window output column \"%s\" must be a GROUP BY expression or an aggregate",
							out->name),
					 errhint("Compute expressions over aggregates in a query over the window's view.")));
	}
	if (def->naggs == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window query must output at least one aggregate")));
}

/* Phase 6: the time column of an event-time window. */
static void
analyse_time_column(RtsWindowDef *def, const char *time_column)
{
	AttrNumber	attno = get_attnum(def->stream, time_column);
	Oid			type;

	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of stream \"%s\" does not exist",
						time_column, get_rel_name(def->stream))));
	type = get_atttype(def->stream, attno);
	if (type != TIMESTAMPTZOID && type != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("time column \"%s\" must be of type timestamp or timestamp with time zone, not %s",
						time_column, format_type_be(type))));
	def->time_attno = attno;
}

/*
 * Analyse a window: its geometry, then its query with the search_path it
 * was created with, in phases (the query, its shape, group keys, outputs,
 * time column).
 */
RtsWindowDef *
rts_windef_analyse(const char *query, const RtsShapeOptions *shape,
				   const char *time_column, const char *search_path)
{
	RtsWindowDef *def = palloc0(sizeof(RtsWindowDef));
	Query	   *q;
	int			nextra = 0;
	int			save_nestlevel = -1;

	analyse_geometry(def, shape, &nextra);
	if (search_path)
	{
		save_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", search_path, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	q = analyse_query(query);
	analyse_shape(def, q);
	analyse_groups(def, q);
	analyse_outputs(def, q);
	rts_pane_layout(def, nextra);
	if (time_column)
		analyse_time_column(def, time_column);
	if (save_nestlevel >= 0)
		AtEOXact_GUC(true, save_nestlevel);
	return def;
}

/*
 * Whether every partition_by column of the window's stream is a plain
 * column of its group key; in SPI.
 */
static bool
groups_hold_partition_key(RtsWindowDef *def)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(def->stream)};
	bool		isnull;
	Datum		cols;
	ArrayType  *arr;
	Datum	   *elems;
	int			nelems;
	bool		all = true;

	if (SPI_execute_with_args("SELECT partition_by FROM rtstream.streams WHERE stream = $1",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return false;
	cols = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;			/* round robin */
	arr = DatumGetArrayTypeP(cols);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	for (int i = 0; i < nelems && all; i++)
	{
		AttrNumber	attno = get_attnum(def->stream, TextDatumGetCString(elems[i]));
		bool		found = false;

		for (int g = 0; g < def->ngroups; g++)
			if (def->groups[g].attno == attno && attno != InvalidAttrNumber)
				found = true;
		all = found;
	}
	return all && nelems > 0;
}

/* The columns of the query of rts_windef_load, in its order. */
enum
{
	WCOL_NAME = 1,
	WCOL_QUERY,
	WCOL_SIZE,
	WCOL_SLIDE,
	WCOL_TIME_COLUMN,
	WCOL_SEARCH_PATH,
	WCOL_ID,
	WCOL_VIEW,
	WCOL_GAP,
	WCOL_ALLOWED_LATENESS,
	WCOL_IDLE_TIMEOUT,
	WCOL_RETENTION,
	WCOL_LATE_POLICY,
	WCOL_DEAD_LETTER_TABLE,
	WCOL_HISTORY,
	WCOL_ORIGIN,
	WCOL_TIMEZONE,
	WCOL_STEP,
	WCOL_NOTIFY,
	WCOL_HISTORY_HELD
};

/*
 * Load a window from rtstream.windows and analyse it, as the user who
 * created it saw it (with the search_path of its creation).
 */
static int64 spi_interval_us(HeapTuple tup, TupleDesc desc, int col);

RtsWindowDef *
rts_windef_load(int32 window_id, const char *window_name, bool missing_ok,
				bool as_owner)
{
	Oid			argtypes[1] = {window_name ? TEXTOID : INT4OID};
	Datum		args[1];
	RtsWindowDef *def = NULL;
	MemoryContext caller = CurrentMemoryContext;
	const char *shape_columns = "NULL::timestamptz, NULL::text, NULL::interval, false, false";
	int			ret;

	args[0] = window_name ? CStringGetTextDatum(window_name) : Int32GetDatum(window_id);
	SPI_connect();

	/* the catalog of version 0.1 has no event-time columns */
	if (SPI_execute("SELECT 1 FROM pg_attribute WHERE attrelid = 'rtstream.windows'::regclass "
					"AND attname = 'gap'", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the rtstream extension is older than its library"),
				 errhint("Run ALTER EXTENSION rtstream UPDATE.")));
	/* nor has the catalog of 0.3 its shape columns (until it is updated) */
	if (SPI_execute("SELECT 1 FROM pg_attribute WHERE attrelid = 'rtstream.windows'::regclass "
					"AND attname = 'step'", true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		shape_columns = "origin, timezone, step, notify, false";
	/* and that of 0.4 has no history_held */
	if (SPI_execute("SELECT 1 FROM pg_attribute WHERE attrelid = 'rtstream.windows'::regclass "
					"AND attname = 'history_held'", true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		shape_columns = "origin, timezone, step, notify, history_held";
	ret = SPI_execute_with_args(psprintf("SELECT name, query, size, slide, time_column, search_path, "
										 "id, view, gap, allowed_lateness, idle_timeout, retention, "
										 "late_policy, dead_letter_table, history, %s "
										 "FROM rtstream.windows WHERE %s = $1",
										 shape_columns, window_name ? "name" : "id"),
								1, argtypes, args, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read rtstream.windows: %d", ret);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(tup, desc, WCOL_NAME);
		char	   *query = SPI_getvalue(tup, desc, WCOL_QUERY);
		char	   *time_column = SPI_getvalue(tup, desc, WCOL_TIME_COLUMN);
		char	   *search_path = SPI_getvalue(tup, desc, WCOL_SEARCH_PATH);
		char	   *late_policy = SPI_getvalue(tup, desc, WCOL_LATE_POLICY);
		RtsShapeOptions shape = {0};
		bool		isnull;
		Datum		origin;
		Oid			view = DatumGetObjectId(SPI_getbinval(tup, desc, WCOL_VIEW, &isnull));
		Oid			owner = rts_view_owner(view);
		MemoryContext old;
		RtsOwnerSwitch sw = {0};

		shape.gap_us = spi_interval_us(tup, desc, WCOL_GAP);
		if (shape.gap_us == 0)
		{
			shape.size_us = spi_interval_us(tup, desc, WCOL_SIZE);
			shape.slide_us = spi_interval_us(tup, desc, WCOL_SLIDE);
			shape.step_us = spi_interval_us(tup, desc, WCOL_STEP);
			origin = SPI_getbinval(tup, desc, WCOL_ORIGIN, &isnull);
			shape.has_origin = !isnull;
			shape.origin_us = isnull ? 0 :
				DatumGetTimestampTz(origin) + RTS_UNIX_EPOCH_OFFSET_US;
			shape.timezone = SPI_getvalue(tup, desc, WCOL_TIMEZONE);
		}
		old = MemoryContextSwitchTo(caller);

		/*
		 * Analysis folds constants, which runs immutable functions: a worker
		 * does it as the window's owner, a reader as itself.
		 */
		if (as_owner)
		{
			if (!OidIsValid(owner))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("view of rtstream window \"%s\" does not exist", name)));
			rts_owner_enter(owner, search_path, &sw);
		}
		def = rts_windef_analyse(query, &shape, time_column, search_path);
		rts_owner_leave(&sw);
		def->id = DatumGetInt32(SPI_getbinval(tup, desc, WCOL_ID, &isnull));
		def->view = view;
		def->owner = owner;
		def->search_path = search_path ? pstrdup(search_path) : NULL;
		def->groups_disjoint = groups_hold_partition_key(def);
		/* its SPI call leaves SPI's memory current, which SPI_finish frees */
		MemoryContextSwitchTo(caller);
		def->name = pstrdup(name);
		rts_windef_set_lateness(def, spi_interval_us(tup, desc, WCOL_ALLOWED_LATENESS));
		def->idle_timeout_us = spi_interval_us(tup, desc, WCOL_IDLE_TIMEOUT);
		def->retention_us = spi_interval_us(tup, desc, WCOL_RETENTION);
		def->late_policy = rts_late_policy_parse(late_policy);
		def->dead_letter_table = DatumGetObjectId(SPI_getbinval(tup, desc, WCOL_DEAD_LETTER_TABLE, &isnull));
		if (isnull)
			def->dead_letter_table = InvalidOid;
		def->history = DatumGetObjectId(SPI_getbinval(tup, desc, WCOL_HISTORY, &isnull));
		if (isnull)
			def->history = InvalidOid;
		def->notify = DatumGetBool(SPI_getbinval(tup, desc, WCOL_NOTIFY, &isnull)) && !isnull;
		def->history_held = DatumGetBool(SPI_getbinval(tup, desc, WCOL_HISTORY_HELD, &isnull)) && !isnull;
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	if (def == NULL && !missing_ok)
	{
		if (window_name)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("rtstream window \"%s\" does not exist", window_name)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rtstream window %d does not exist", window_id)));
	}
	return def;
}

/* An interval column as microseconds; 0 if NULL. */
static int64
spi_interval_us(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Interval   *iv;

	if (isnull)
		return 0;
	iv = DatumGetIntervalP(d);
	return Max(iv->time + (int64) iv->day * USECS_PER_DAY +
			   (int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY, 0);
}

/* Compile the expressions a worker evaluates per row. */
void
rts_windef_prepare_exec(RtsWindowDef *def)
{
	Relation	rel = RelationIdGetRelation(def->stream);

	if (!RelationIsValid(rel))
		elog(ERROR, "could not open stream %u", def->stream);
	def->streamdesc = CreateTupleDescCopyConstr(RelationGetDescr(rel));
	RelationClose(rel);

	if (def->quals)
		def->qualstate = ExecInitQual((List *) expression_planner((Expr *) def->quals),
									  NULL);
	for (int i = 0; i < def->ngroups; i++)
		def->groups[i].state = ExecInitExpr(expression_planner(def->groups[i].expr),
											NULL);
	for (int a = 0; a < def->naggs; a++)
	{
		RtsAggDef  *agg = &def->aggs[a];
		int			n = 0;
		ListCell   *lc;

		foreach(lc, agg->args)
			agg->argstates[n++] = ExecInitExpr(expression_planner(lfirst(lc)), NULL);
		if (agg->filter)
			agg->filterstate = ExecInitQual(list_make1(expression_planner(agg->filter)),
											NULL);
	}
	def->econtext = CreateStandaloneExprContext();
}
