# rtstream: PGXS build.  `make installcheck` runs pg_regress, the isolation
# tests and the TAP tests, each on its own temporary server (see test/run.sh).
MODULE_big = rtstream
OBJS = \
	src/rtstream.o \
	src/guc.o \
	src/shmem.o \
	src/ring.o \
	src/capture.o \
	src/router.o \
	src/worker.o \
	src/windef.o \
	src/panes.o \
	src/pane_layout.o \
	src/read.o \
	src/read_pushdown.o \
	src/ddl.o \
	src/stats.o \
	src/aggstate.o \
	src/groupkey.o \
	src/state_serial.o \
	src/worker_windows.o \
	src/worker_checkpoint.o \
	src/utility.o \
	src/combine.o \
	src/history.o \
	src/idle.o \
	src/eventtime.o \
	src/owner.o \
	src/gaps.o \
	src/launcher.o \
	src/options.o \
	src/worker_run.o \
	src/worker_stream.o \
	src/priority.o \
	src/geometry.o \
	src/notify.o \
	src/worker_keys.o \
	src/agg_distinct.o \
	src/agg_topk.o \
	src/nodes.o \
	src/shipper.o \
	src/window_state.o \
	src/read_nodes.o \
	src/history_nodes.o \
	src/inbox.o

EXTENSION = rtstream
DATA = rtstream--0.1.sql rtstream--0.1--0.2.sql rtstream--0.2--0.3.sql rtstream--0.3--0.4.sql rtstream--0.4--0.5.sql rtstream--0.5--0.6.sql
PGFILEDESC = "rtstream - real-time streaming aggregation"

# setup creates the extension and the helpers (rt_diff, rt_bounds, et_*) the others use
REGRESS = setup core event_time_results event_time_lateness event_time_history event_time_sessions event_time_alter window_shapes key_classes key_lookup aggregates distinct_topk errors transactions nodes
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=test/rtstream.conf
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --temp-instance=./tmp_check_iso --temp-config=test/rtstream.conf
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))
ifneq ($(PROVE_TESTS),)
TAP_TESTS = 1
endif

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Werror

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers: rebuild everything when one changes
$(OBJS): $(wildcard $(srcdir)/src/*.h)

bench:
	bash test/bench/run.sh
