#!/usr/bin/env bash
# W5 memory: the shared memory a window takes per group and pane, for
# count(*), sum(v), avg(v), with 1M groups and 6 panes (1 minute, 10 s
# slide; every group present in every pane).  Two measures:
#   rtstream: rtstream.window_stats.memory_bytes / groups / panes;
#   the OS:   the DSM segments (/dev/shm/PostgreSQL.*) mapped by the
#             workers, before and after the rows (apparent size, and the
#             pages actually allocated), and `du /dev/shm` before and after.
# The server is restarted before each run, so each starts from empty segments.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W5

G=$(scaled 1000000 1000)
PANES=6
T_END='2024-04-01 00:01:00+00'

# Sizes of the DSM segments mapped by the rtstream workers: "apparent allocated".
dsm_bytes() {
  local pids files
  pids=$(sql "$DB" "SELECT pid FROM rtstream.stats WHERE process LIKE 'worker%' AND pid IS NOT NULL")
  files=$(for p in $pids; do awk '$6 ~ /^\/dev\/shm\/PostgreSQL\./ { print $6 }' "/proc/$p/maps"; done | sort -u)
  if [ -z "$files" ]; then echo "0 0"; return; fi
  # shellcheck disable=SC2086
  echo "$(stat -c %s $files | awk '{ s += $1 } END { print s + 0 }') $(du -B1 -c $files | tail -n 1 | cut -f1)"
}
shm_du() { du -sB1 /dev/shm 2>/dev/null | cut -f1; }

for r in $(seq "$RUNS"); do
  log "W5 run $r/$RUNS: $(hnum "$G") groups x $PANES panes"
  server_restart
  sqlf "$DB" >/dev/null <<'SQL'
SELECT bench_drop_stream('w5_s');
CREATE TABLE w5_s (ts timestamptz, k int, v float8);
SELECT rtstream.create_stream('w5_s', partition_by => 'k');
SELECT rtstream.create_window('w5_w', $q$SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a FROM w5_s GROUP BY k$q$,
  size => '1 minute', slide => '10 seconds', time_column => 'ts');
SQL
  settle
  x=$(dsm_bytes); read -r seg0 alloc0 <<<"$x"
  du0=$(shm_du)
  for p in $(seq 0 $((PANES - 1))); do
    sql "$DB" "INSERT INTO w5_s SELECT timestamptz '$T_END' - interval '60 s' + interval '10 s' * $p
                                       + interval '1 ms' * (k % 9000), k, random()
                                  FROM generate_series(0, $G - 1) k" >/dev/null
  done
  settle
  x=$(dsm_bytes); read -r seg1 alloc1 <<<"$x"
  du1=$(shm_du)
  st=$(sql "$DB" "SELECT sum(groups) || ' ' || sum(memory_bytes) || ' ' || sum(rows) || ' ' || sum(refused_groups)
                    FROM rtstream.window_stats WHERE window_name = 'w5_w'")
  read -r groups bytes rows refused <<<"$st"
  got=$(sql "$DB" "SELECT count(*) || ' ' || sum(n) FROM w5_w")
  if [ "$groups" != "$G" ] || [ "$rows" != $((G * PANES)) ] || [ "$refused" != 0 ] || [ "$got" != "$G $((G * PANES))" ]; then
    fail "$W" "run $r: window_stats groups=$groups rows=$rows refused=$refused, view groups/rows=$got; expected $G groups, $((G * PANES)) rows"
    exit 1
  fi
  per=$(awk -v b="$bytes" -v g="$G" -v p=$PANES 'BEGIN { printf "%.2f", b / g / p }')
  rec "$W" "bytes/group/pane (window_stats)" "$r" "$G" "" "" bytes "$per"
  rec "$W" "total MB (window_stats)" "$r" "$G" "" "" MB "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
  rec "$W" "bytes/group/pane (OS: DSM pages allocated)" "$r" "$G" "" "" bytes \
    "$(awk -v a="$((alloc1 - alloc0))" -v g="$G" -v p=$PANES 'BEGIN { printf "%.2f", a / g / p }')"
  rec "$W" "total MB (OS: DSM segments mapped)" "$r" "$G" "" "" MB \
    "$(awk -v a="$((seg1 - seg0))" 'BEGIN { printf "%.1f", a / 1048576 }')"
  rec "$W" "total MB (OS: du /dev/shm delta)" "$r" "$G" "" "" MB \
    "$(awk -v a="$((du1 - du0))" 'BEGIN { printf "%.1f", a / 1048576 }')"
  drop_windows w5_s
done
check "$W" "window of $(hnum "$G") groups: every group, every row, none refused" PASS ""
