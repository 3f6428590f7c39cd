/*-------------------------------------------------------------------------
 *
 * read_pushdown.c
 *	  Key lookups pushed into window reads.
 *
 *	  A window's view is SELECT * FROM rtstream.window_rows(name) AS w(...),
 *	  and PostgreSQL applies a query's WHERE above the function: reading one
 *	  group (WHERE k = 42) combined every group of the window first.  This
 *	  planner hook finds, on such a function scan, the quals of the form
 *	  column = value (a constant or a parameter, of the column's own type,
 *	  with the type's default btree equality) and calls
 *	  rtstream.window_rows_at(name, columns, VARIADIC values) instead.  That
 *	  function reads only the group whose key the values make when they
 *	  cover the whole GROUP BY, and every group otherwise (read.c).  The
 *	  quals stay in the plan above it, so the rows are the same either way;
 *	  only the work differs.
 *
 *	  Only types whose equality is equality of the bytes rtstream keys are
 *	  made of qualify (integers, bool, dates and timestamps, uuid, text of
 *	  a deterministic collation): a value then finds its group by the key's
 *	  bytes exactly as the rows that made the group did.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/paths.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "rtstream.h"

#define RTS_SCHEMA		"rtstream"

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;

/* Whether funcid is rtstream.<name>. */
static bool
is_rtstream_function(Oid funcid, const char *name)
{
	char	   *fname = get_func_name(funcid);
	Oid			nsp;

	if (fname == NULL || strcmp(fname, name) != 0)
		return false;
	nsp = get_func_namespace(funcid);
	return OidIsValid(nsp) && nsp == get_namespace_oid(RTS_SCHEMA, true);
}

/* The types whose equality is that of their key bytes (groupkey.c). */
static bool
key_type_ok(Oid type, Oid collation)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case BOOLOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case UUIDOID:
			return true;
		case TEXTOID:
			return OidIsValid(collation) &&
				(collation == C_COLLATION_OID || collation == DEFAULT_COLLATION_OID ||
				 get_collation_isdeterministic(collation));
		default:
			return false;
	}
}

/* Whether opno is the default btree equality of type. */
static bool
is_type_equality(Oid opno, Oid type)
{
	Oid			opclass = GetDefaultOpClass(type, BTREE_AM_OID);

	if (!OidIsValid(opclass))
		return false;
	return get_opfamily_member(get_opclass_family(opclass), type, type,
							   BTEqualStrategyNumber) == opno;
}

/* A value the executor knows before the scan: a constant or a parameter. */
static bool
is_scan_constant(Node *node)
{
	if (IsA(node, Const))
		return !((Const *) node)->constisnull;
	if (IsA(node, Param))
		return ((Param *) node)->paramkind == PARAM_EXTERN;
	return false;
}

/* Whether node is a key column of the function scan rti. */
static bool
is_key_column(Node *node, Index rti)
{
	Var		   *var = (Var *) node;

	/* columns 1 and 2 are window_start and window_end */
	return IsA(node, Var) && var->varno == rti && var->varlevelsup == 0 &&
		var->varattno > 2;
}

/*
 * If clause is "column = value" on the function scan rti, the column's
 * number and the value; if it is "column = ANY (array)" (or IN (...)), the
 * column's number negated and the array.
 */
static bool
key_clause(Node *clause, Index rti, AttrNumber *attno, Expr **value)
{
	Node	   *left,
			   *right;
	Var		   *var;

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;

		left = linitial(op->args);
		right = lsecond(op->args);
		if (is_key_column(right, rti) && !is_key_column(left, rti))
		{
			Node	   *swap = left;

			left = right;
			right = swap;
		}
		if (!is_key_column(left, rti) || !is_scan_constant(right))
			return false;
		var = (Var *) left;
		if (exprType(right) != var->vartype ||
			!key_type_ok(var->vartype, op->inputcollid) ||
			!is_type_equality(op->opno, var->vartype))
			return false;
		*attno = var->varattno;
		*value = (Expr *) right;
		return true;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;

		if (!sa->useOr || list_length(sa->args) != 2)
			return false;
		left = linitial(sa->args);
		right = lsecond(sa->args);
		if (!is_key_column(left, rti) || !is_scan_constant(right))
			return false;
		var = (Var *) left;
		if (exprType(right) != get_array_type(var->vartype) ||
			!key_type_ok(var->vartype, sa->inputcollid) ||
			!is_type_equality(sa->opno, var->vartype))
			return false;
		*attno = -var->varattno;
		*value = (Expr *) right;
		return true;
	}
	return false;
}

/*
 * rtstream.window_rows(name) with quals "column = value" (or "= ANY")
 * becomes rtstream.window_rows_at(name, columns, values...).  The paths are
 * already made: the plan takes the function from the range table entry.
 */
static void
rts_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
					 RangeTblEntry *rte)
{
	RangeTblFunction *rtfunc;
	FuncExpr   *fexpr;
	List	   *attnos = NIL;
	List	   *values = NIL;
	ListCell   *lc;
	Oid			argtypes[3] = {TEXTOID, INT2ARRAYOID, ANYOID};
	Oid			at_oid;
	Datum	   *elems;
	int			i = 0;
	FuncExpr   *at;

	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);

	if (rte->rtekind != RTE_FUNCTION || rte->funcordinality ||
		list_length(rte->functions) != 1 || rel->baserestrictinfo == NIL)
		return;
	rtfunc = linitial(rte->functions);
	if (!IsA(rtfunc->funcexpr, FuncExpr))
		return;
	fexpr = (FuncExpr *) rtfunc->funcexpr;
	if (list_length(fexpr->args) != 1 || !IsA(linitial(fexpr->args), Const) ||
		!is_rtstream_function(fexpr->funcid, "window_rows"))
		return;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		AttrNumber	attno;
		Expr	   *value;

		if (!rinfo->pseudoconstant &&
			key_clause((Node *) rinfo->clause, rti, &attno, &value))
		{
			attnos = lappend_int(attnos, attno);
			values = lappend(values, value);
		}
	}
	if (attnos == NIL)
		return;

	/* an extension whose catalog predates window_rows_at: as it was */
	at_oid = LookupFuncName(list_make2(makeString(RTS_SCHEMA),
									   makeString("window_rows_at")),
							3, argtypes, true);
	if (!OidIsValid(at_oid))
		return;

	elems = palloc(sizeof(Datum) * list_length(attnos));
	foreach(lc, attnos)
		elems[i++] = Int16GetDatum((int16) lfirst_int(lc));
	at = makeFuncExpr(at_oid, RECORDOID,
					  list_concat(list_make2(linitial(fexpr->args),
											 makeConst(INT2ARRAYOID, -1, InvalidOid, -1,
													   PointerGetDatum(construct_array(elems, i, INT2OID,
																					   sizeof(int16), true,
																					   TYPALIGN_SHORT)),
													   false, false)),
								  values),
					  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	at->funcretset = true;
	rtfunc->funcexpr = (Node *) at;
}

void
rts_pushdown_init(void)
{
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = rts_set_rel_pathlist;
}
