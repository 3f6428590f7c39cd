#!/usr/bin/env bash
# W6 Nexmark-style: a bids stream (auction, bidder, price, channel, url,
# date_time) generated to the Nexmark model, COPYed from a file into a stream
# with two windows, timed until rtstream.sync() returns:
#   q5-like: SELECT auction, count(*) FROM bids GROUP BY auction,
#            hop window of 10 s sliding by 2 s;
#   q7-like: SELECT max(price) FROM bids, tumbling 10 s window (one group).
# Reference: the same COPY into a plain heap table.  Figures: bids/s, and
# bids/s per core (the machine's cores, all of which the run may use), with
# the measured CPU use of the machine during the run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
W=W6

NB=$(scaled 5000000 5000)
# 100 s of event time at scale 1 (50k bids/s of event time); scaled with the
# rows so that the event-time density is the same at every scale.
SPAN=$(awk -v s="$SCALE" 'BEGIN { v = 100 * s; if (v > 100) v = 100; printf "%.3f", v }')
T0='2024-05-01 00:00:00+00'
NCPU=$(nproc)
FILE="$FILES/w6_bids.dat"
TS_EXPR="timestamptz '$T0' + (b * ($SPAN / $NB)) * interval '1 s'"

# Nexmark's bid generator (Beam/Flink GeneratorConfig defaults), with
# auctions and people created at 1 per 50 bids:
#  - auction: with probability 1/2 the current hot auction (the newest id
#    rounded down to a multiple of 100), else one of the ~100 auctions in
#    flight (newest - 100 .. newest + 10);
#  - bidder: with probability 3/4 the current hot bidder, else one of the
#    1,000 active people;
#  - price (cents): 100 * 10^(2 (u1 + u2 + u3)), u uniform: between 1 and
#    10^6 dollars, log-normal-ish (Nexmark: 10^(6 u));
#  - channel: with probability 1/2 one of 4 hot channels with its URL, else
#    channel-N (N < 10,000) with a URL that carries its channel_id.
log "W6: generating $NB bids"
sqlf "$BASEDB" >/dev/null <<SQL
SELECT setseed(0.1234);
COPY (
  SELECT 1000 + CASE WHEN random() < 0.5 THEN (na / 100) * 100
                     ELSE greatest(na - 100, 0) + floor(random() * (least(na, 100) + 11))::bigint END,
         1000 + CASE WHEN random() < 0.75 THEN (np / 100) * 100 + 1
                     ELSE greatest(np - 1000, 0) + floor(random() * (least(np, 1000) + 11))::bigint END,
         round(100 * power(10, 2 * (random() + random() + random())))::bigint,
         CASE WHEN hot THEN (ARRAY['Google', 'Facebook', 'Baidu', 'Apple'])[ch + 1]
              ELSE 'channel-' || ch END,
         CASE WHEN hot THEN (ARRAY['https://www.nexmark.com/yycjr/ifjrm/jsbqc/item.htm?query=1',
                                    'https://www.nexmark.com/kabvo/rolzx/dwmnc/item.htm?query=1',
                                    'https://www.nexmark.com/pflcq/eunri/yqhgt/item.htm?query=1',
                                    'https://www.nexmark.com/olbzc/ahxnt/qcvid/item.htm?query=1'])[ch + 1]
              ELSE 'https://www.nexmark.com/' || substr(h, 1, 5) || '/' || substr(h, 6, 5) || '/' ||
                   substr(h, 11, 5) || '/item.htm?query=1&channel_id=' || ch END,
         $TS_EXPR
    FROM (SELECT b, b / 50 AS na, b / 50 AS np, hot,
                 CASE WHEN hot THEN floor(random() * 4)::int ELSE floor(random() * 10000)::int END AS ch,
                 CASE WHEN hot THEN NULL ELSE md5(b::text) END AS h
            FROM (SELECT b, random() < 0.5 AS hot FROM generate_series(0, $NB - 1) b) g) x
) TO '$FILE';
SQL

sqlf "$DB" >/dev/null <<'SQL'
SELECT bench_drop_stream('bids');
CREATE TABLE bids (auction bigint, bidder bigint, price bigint, channel text, url text,
                   date_time timestamptz);
SELECT rtstream.create_stream('bids', partition_by => 'auction');
SQL
sqlf "$BASEDB" >/dev/null <<'SQL'
DROP TABLE IF EXISTS bids_plain;
CREATE TABLE bids_plain (auction bigint, bidder bigint, price bigint, channel text, url text,
                         date_time timestamptz);
SQL

timed_copy_cpu() {  # db table sync -> seconds, busy CPU seconds
  local db=$1 table=$2 sync=$3 syncsql='' c0 c1 out
  [ "$sync" = 1 ] && syncsql="SELECT rtstream.sync('$SYNC_TIMEOUT') \\g /dev/null"
  c0=$(cpu_busy)
  out=$(sqlf "$db" <<SQL
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
COPY $table FROM '$FILE';
$syncsql
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
)
  c1=$(cpu_busy)
  echo "$out $(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')"
}

record() {  # run variant seconds cpu_seconds
  local r=$1 v=$2 s=$3 cpu=$4
  rec "$W" "$v" "$r" "$NB" "$s" "$(awk -v n="$NB" -v s="$s" 'BEGIN { printf "%.0f", n / s }')" \
    cores_busy "$(awk -v c="$cpu" -v s="$s" 'BEGIN { printf "%.2f", c / s }')"
  rec "$W" "$v per core" "$r" "$NB" "$s" "$(awk -v n="$NB" -v s="$s" -v c="$NCPU" 'BEGIN { printf "%.0f", n / s / c }')" \
    bids_per_cpu_s "$(awk -v n="$NB" -v c="$cpu" 'BEGIN { printf "%.0f", n / c }')"
}

check_windows() {  # -> error text, empty if right
  local q5 exp5 q7 exp7 late
  q5=$(sql "$DB" "SELECT coalesce(sum(num), 0) || '|' || min(window_start) || '|' || min(window_end) FROM q5")
  IFS='|' read -r n5 s5 e5 <<<"$q5"
  [ -n "$s5" ] || { echo "q5 has no rows"; return; }
  exp5=$(sql "$BASEDB" "SELECT count(*) FROM generate_series(0, $NB - 1) b
                         WHERE $TS_EXPR >= timestamptz '$s5' AND $TS_EXPR < timestamptz '$e5'")
  [ "$n5" = "$exp5" ] || { echo "q5: sum(num)=$n5 over [$s5, $e5), expected $exp5"; return; }
  q7=$(sql "$DB" "SELECT max_price || '|' || window_start || '|' || window_end FROM q7")
  IFS='|' read -r m7 s7 e7 <<<"$q7"
  [ -n "$s7" ] || { echo "q7 has no rows"; return; }
  exp7=$(sql "$BASEDB" "SELECT max(price) FROM bids_plain
                         WHERE date_time >= timestamptz '$s7' AND date_time < timestamptz '$e7'")
  [ "$m7" = "$exp7" ] || { echo "q7: max_price=$m7 over [$s7, $e7), expected $exp7"; return; }
  late=$(sql "$DB" "SELECT coalesce(sum(refused_groups), 0) + $FAILED_SQL FROM rtstream.window_stats")
  [ "$late" = 0 ] || echo "$late refused groups, failed batches or dead letters"
}

for r in $(seq "$RUNS"); do
  log "W6 run $r/$RUNS"
  sql "$BASEDB" 'TRUNCATE bids_plain' >/dev/null
  quiesce
  out=$(timed_copy_cpu "$BASEDB" bids_plain 0)
  read -r s cpu <<<"$out"
  record "$r" "plain COPY bids" "$s" "$cpu"

  drop_windows bids
  sqlf "$DB" >/dev/null <<'SQL'
SELECT rtstream.create_window('q5', $q$SELECT auction, count(*) AS num FROM bids GROUP BY auction$q$,
  size => '10 seconds', slide => '2 seconds', time_column => 'date_time');
SELECT rtstream.create_window('q7', $q$SELECT max(price) AS max_price FROM bids$q$,
  size => '10 seconds', time_column => 'date_time');
SQL
  quiesce
  out=$(timed_copy_cpu "$DB" bids 1)
  read -r s cpu <<<"$out"
  err=$(check_windows) || err="the check failed: ${err:-an error}"
  if [ -n "$err" ]; then
    fail "$W" "run $r: wrong window: $err"
    exit 1
  fi
  record "$r" "stream q5+q7" "$s" "$cpu"
done
late=$(sql "$DB" "SELECT sum(late_rows) FROM rtstream.window_stats")
check "$W" "q5 sum(num) = bids in its range; q7 max(price) = max of the plain table over its range" PASS ""
if [ "$late" = 0 ]; then
  check "$W" "no bid counted late (bids are in event-time order)" PASS ""
else
  check "$W" "no bid counted late (bids are in event-time order)" WARN "$late rows counted late in the last run"
fi
drop_windows bids
