#!/usr/bin/env bash
# Runs every test: installs deps, builds and installs rtstream, then runs
# `make installcheck` (pg_regress, isolation, TAP) as user postgres in a copy
# of the tree. Ends with "N passed, 0 failed"; exits non-zero on any failure.
# Env passed through to the tests: SOAK_SECONDS; PROVE_FLAGS goes to make.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
export PATH="$PGBIN:$PATH"
cd "$ROOT"

bash scripts/install-deps.sh
bash scripts/build-install.sh

# initdb refuses root: as root, run the tests as postgres in a copy it owns.
WORK=$(mktemp -d /tmp/rtstream-test.XXXXXX)
tar -C "$ROOT" --anchored --exclude=./.git --exclude='./tmp_check*' \
    --exclude=./results --exclude=./output_iso --exclude=./log \
    --exclude=./regression.diffs --exclude=./regression.out -cf - . | tar -C "$WORK" -xf -
RUN=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres:postgres "$WORK"
  RUN=(runuser -u postgres --)
fi

envs=(PATH="$PATH")
[ -n "${SOAK_SECONDS:-}" ] && envs+=(SOAK_SECONDS="$SOAK_SECONDS")
margs=(PG_CONFIG="$PGBIN/pg_config")
[ -n "${PROVE_FLAGS:-}" ] && margs+=(PROVE_FLAGS="$PROVE_FLAGS")

OUT=$(mktemp /tmp/rtstream-test-out.XXXXXX)
set +e
(cd "$WORK" && "${RUN[@]}" env "${envs[@]}" make installcheck "${margs[@]}") 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
set -e

# Count from pg_regress/isolation summaries and prove's totals.
read -r passed failed < <(awk '
  function num(s) { gsub(/[^0-9]/, "", s); return s + 0 }
  match($0, /All [0-9]+ tests passed/)      { p += num(substr($0, RSTART, RLENGTH)) }
  match($0, /[0-9]+ of [0-9]+ tests passed/) { split(substr($0, RSTART, RLENGTH), a, " "); p += a[1] }
  match($0, /[0-9]+ of [0-9]+ tests failed/) { split(substr($0, RSTART, RLENGTH), a, " "); f += a[1]; p += a[3] - a[1] }
  /^Files=[0-9]+, Tests=/                    { split($0, a, /[=,]/); files = a[2] + 0 }
  /^Test Summary Report/                     { report = 1 }
  report && /^[^ ].* \(Wstat: [0-9]+/         { bad++ }
  /^Result: PASS/                            { p += files }
  /^Result: FAIL/                            { f += bad ? bad : 1; p += files - (bad ? bad : 1) }
  END { print p + 0, f + 0 }' "$OUT")
rm -f "$OUT"

if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "=== regression.diffs ==="
  find "$WORK" -name regression.diffs -exec cat {} +
  # server logs: log/ (pg_regress), output_iso/log/, tmp_check/log/ (TAP)
  find "$WORK" -path '*/data' -prune -o -path '*/log/*' -type f ! -name initdb.log -print | sort | while read -r f; do
    echo "=== tail ${f#"$WORK"/} ==="
    tail -n 60 "$f"
  done
  echo "test tree kept in $WORK"
  [ "$failed" -gt 0 ] || failed=1   # a failure with no parsable count (build, crash)
  echo "$passed passed, $failed failed"
  exit 1
fi

rm -rf "$WORK"
if [ "$passed" -eq 0 ]; then
  echo "run.sh: no tests ran (or none could be counted)" >&2
  exit 1
fi
echo "$passed passed, 0 failed"
