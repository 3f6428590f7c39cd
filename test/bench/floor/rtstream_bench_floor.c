/*-------------------------------------------------------------------------
 *
 * rtstream_bench_floor.c
 *	  The floor of the W1 benchmark: a BEFORE INSERT row trigger in C that
 *	  returns NULL and does nothing else.  A COPY into a table with it
 *	  parses every row and fires a C trigger per row, as a COPY into a
 *	  stream does, but captures and stores nothing: what a COPY costs
 *	  before rtstream does any work.  Built and installed by the benchmark
 *	  only (test/bench/w1_ingest.sh); it is not part of the extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(rtstream_bench_null_trigger);

Datum
rtstream_bench_null_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rtstream_bench_null_trigger: not called by trigger manager")));
	PG_RETURN_POINTER(NULL);
}
