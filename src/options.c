/*-------------------------------------------------------------------------
 *
 * options.c
 *	  The options of create_stream, create_window and alter_window,
 *	  validated in one place: the SQL functions call these, and the C
 *	  that reads the catalog parses with the same code.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "rtstream.h"
#include "windef.h"

PG_FUNCTION_INFO_V1(rts_interval_option);
PG_FUNCTION_INFO_V1(rts_check_late_policy);
PG_FUNCTION_INFO_V1(rts_check_range_bounds);

/* A late_policy by its name; an ERROR for an unknown one. */
RtsLatePolicy
rts_late_policy_parse(const char *name)
{
	if (name != NULL && strcmp(name, "count") == 0)
		return RTS_LATE_COUNT;
	if (name != NULL && strcmp(name, "dead_letter") == 0)
		return RTS_LATE_DEAD_LETTER;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown late_policy \"%s\"", name ? name : "(null)"),
			 errhint("Use 'count' or 'dead_letter'.")));
	return RTS_LATE_COUNT;		/* keep the compiler quiet */
}

/*
 * rtstream._interval_option(value, what, zero_is_off): a lateness, timeout
 * or retention, checked as the workers read it (no months, not negative);
 * NULL for NULL, and for zero when zero means off.
 */
Datum
rts_interval_option(PG_FUNCTION_ARGS)
{
	Interval   *value;
	char	   *what;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_INTERVAL_P(0);
	what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (rts_interval_us_nonneg(value, what) == 0 && PG_GETARG_BOOL(2))
		PG_RETURN_NULL();
	PG_RETURN_INTERVAL_P(value);
}

/*
 * rtstream._check_late_policy(late_policy, dead_letter_table): the policy
 * is known, and a dead_letter_table goes with 'dead_letter', has the
 * columns of rtstream.dead_letters and can be written by the caller.
 */
Datum
rts_check_late_policy(PG_FUNCTION_ARGS)
{
	char	   *policy = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			table;
	Oid			types[1] = {OIDOID};
	Datum		vals[1];
	bool		lacks;

	(void) rts_late_policy_parse(policy);
	if (PG_ARGISNULL(1))
		PG_RETURN_VOID();
	table = PG_GETARG_OID(1);
	if (strcmp(policy, "dead_letter") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dead_letter_table needs late_policy 'dead_letter'")));
	vals[0] = ObjectIdGetDatum(table);
	SPI_connect();
	if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM pg_attribute d "
							  " WHERE d.attrelid = 'rtstream.dead_letters'::regclass AND d.attnum > 1 "
							  "   AND NOT d.attisdropped "
							  "   AND NOT EXISTS (SELECT 1 FROM pg_attribute a "
							  "                    WHERE a.attrelid = $1 AND a.attname = d.attname "
							  "                      AND a.atttypid = d.atttypid AND NOT a.attisdropped))",
							  1, types, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_attribute");
	{
		bool		isnull;

		lacks = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	if (lacks)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table %s lacks columns of rtstream.dead_letters",
						get_rel_name(table)),
				 errhint("Create it with CREATE TABLE ... (LIKE rtstream.dead_letters INCLUDING DEFAULTS).")));
	if (pg_class_aclcheck(table, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(table))));
	PG_RETURN_VOID();
}

/*
 * rtstream._check_range_bounds(bounds): range partitioning has one
 * partition per bound and one after the last, so at most
 * RTS_NPARTITIONS - 1 bounds, none NULL.
 */
Datum
rts_check_range_bounds(PG_FUNCTION_ARGS)
{
	ArrayType  *bounds = PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0);
	int			n = bounds ? ArrayGetNItems(ARR_NDIM(bounds), ARR_DIMS(bounds)) : 0;

	if (n == 0 || n > RTS_NPARTITIONS - 1 || array_contains_nulls(bounds))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("range partitioning needs 1 to %d non-NULL bounds",
						RTS_NPARTITIONS - 1)));
	PG_RETURN_VOID();
}
