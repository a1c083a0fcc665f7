#!/usr/bin/env bash
# A large object: a KeyValue of KEYS keys (default 1 000 000) with VALUE-byte
# values (default 100) on 3 durable replicas (-w) on loopback. Fills it with
# 64 clients, then reports, one JSON line each:
#   fill        puts/s and put latency while the object grows (snapshots of
#               the growing object are taken every --snapshot-every slots),
#               the last snapshot's size and the time to take it;
#   memory      each replica's resident memory, and per key;
#   restart     all three killed with SIGKILL and restarted on their data
#               directories: time to the first answer;
#   catch-up    a fourth, empty replica joins under a 16-client put load:
#               time until it holds the leader's decided slot (by snapshot),
#               and the load's latency meanwhile.
# Usage: scripts/large-object-bench.sh [KEYS] [VALUE]
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS="${1:-1000000}"
VALUE="${2:-100}"
cargo build --release --bins -q
C=./target/release/concoord
BENCH=./target/release/concoord-bench
DIR=$(mktemp -d /tmp/concoord-large.XXXXXX)
PORT=24700
METRICS=24800
B="127.0.0.1:$PORT, 127.0.0.1:$((PORT + 1)), 127.0.0.1:$((PORT + 2))"
head -c 32 /dev/urandom | base64 >"$DIR/secret"
declare -a PIDS
start() { # index, then extra flags
  local i=$1; shift
  $C replica -o keyvalue -a 127.0.0.1 -p $((PORT + i)) --peer-secret "$DIR/secret" -w \
    --data-dir "$DIR/d$i" --metrics-addr 127.0.0.1:$((METRICS + i)) "$@" >>"$DIR/r$i.log" 2>&1 &
  PIDS[$i]=$!
}
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
status() { $C status -b "$B" --json 2>/dev/null; }
leader_field() { # field
  status | python3 -c "import sys,json; r=[json.loads(l) for l in sys.stdin]; print([x for x in r if x.get('role')=='leader'][0]['$1'])"
}
metric() { # replica index, metric name
  curl -s "http://127.0.0.1:$((METRICS + $1))/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}
rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

start 0 --new-instance
sleep 1
start 1 -b "127.0.0.1:$PORT"
start 2 -b "127.0.0.1:$PORT"
until [ "$(status | grep -c '"role":"follower"')" = 2 ]; do sleep 0.2; done

# Fill: every caller writes its own block of keys in turn (one run, since a
# new run starts each block again), so once the leader has executed KEYS
# puts plus a margin for uneven callers, every key exists.
FILL_SECS="${FILL_SECS:-$((KEYS / 8000 + 10))}"
T0=$(date +%s)
$BENCH -b "$B" --workload put --clients 64 --keys "$KEYS" --value-size "$VALUE" \
  --duration "$FILL_SECS" --warmup 0 --json |
  python3 -c "import sys,json; r=json.load(sys.stdin); r.update(phase='fill'); print(json.dumps(r))"
EXECUTED=$(leader_field commands_executed)
if [ "$EXECUTED" -lt $((KEYS + KEYS / 8)) ]; then
  echo "only $EXECUTED puts in ${FILL_SECS} s, too few to fill $KEYS keys: rerun with FILL_SECS=$((FILL_SECS * 2))" >&2
  exit 1
fi
T1=$(date +%s)
SNAP_BYTES=$(metric 0 concoord_snapshot_bytes)
SNAP_SUM=$(metric 0 concoord_snapshot_seconds_sum)
SNAP_COUNT=$(metric 0 concoord_snapshot_seconds_count)
echo "{\"phase\": \"snapshot\", \"keys\": $KEYS, \"value_bytes\": $VALUE, \"fill_seconds\": $((T1 - T0)), \"snapshot_bytes\": ${SNAP_BYTES:-0}, \"snapshots\": ${SNAP_COUNT:-0}, \"snapshot_seconds_mean\": $(python3 -c "print(round(${SNAP_SUM:-0} / max(1, ${SNAP_COUNT:-0}), 3))"), \"disk_bytes_replica0\": $(du -sb "$DIR/d0" | cut -f1)}"
echo "{\"phase\": \"memory\", \"rss_mib\": [$(rss_mib "${PIDS[0]}"), $(rss_mib "${PIDS[1]}"), $(rss_mib "${PIDS[2]}")], \"bytes_per_key\": $(python3 -c "print(round($(rss_mib "${PIDS[0]}") * 1048576 / $KEYS))")}"

# Restart: all three killed at once, restarted on their directories.
for i in 0 1 2; do kill -9 "${PIDS[$i]}"; done
for i in 0 1 2; do while kill -0 "${PIDS[$i]}" 2>/dev/null; do sleep 0.05; done; done
R0=$(date +%s%N)
for i in 0 1 2; do start "$i"; done
until $C call -b "$B" --timeout 1 get key0 >/dev/null 2>&1; do sleep 0.05; done
R1=$(date +%s%N)
echo "{\"phase\": \"restart\", \"restart_to_first_answer_ms\": $(((R1 - R0) / 1000000))}"

# Catch-up: a fourth replica joins empty while 16 clients put.
$BENCH -b "$B" --workload put --clients 16 --keys "$KEYS" --value-size "$VALUE" \
  --duration 30 --warmup 0 --json >"$DIR/during-catch-up.json" &
LOAD=$!
sleep 2
TARGET=$(leader_field decided)
J0=$(date +%s%N)
start 3 -b "127.0.0.1:$PORT"
until [ "$(curl -s "http://127.0.0.1:$((METRICS + 3))/metrics" | awk '$1 == "concoord_decided_slot" { print $2 }' | cut -d. -f1)" -ge "$TARGET" ] 2>/dev/null; do
  sleep 0.1
  [ $(((($(date +%s%N) - J0)) / 1000000000)) -lt 120 ] || { echo "the new replica did not catch up in 120 s" >&2; exit 1; }
done
J1=$(date +%s%N)
wait "$LOAD"
python3 -c "
import json
r = json.load(open('$DIR/during-catch-up.json'))
print(json.dumps({'phase': 'catch-up', 'decided_at_join': $TARGET, 'join_to_caught_up_ms': $(((J1 - J0) / 1000000)),
                  'snapshot_bytes_installed': float('$(metric 3 concoord_snapshot_bytes)' or 0),
                  'load_ops_per_sec': r['ops_per_sec'], 'load_p50_us': r['latency_us_p50'],
                  'load_p99_us': r['latency_us_p99'], 'load_p999_us': r['latency_us_p999'], 'load_max_us': r['latency_us_max']}))"
# Stopped before their directories go: a replica still running writes into
# them while `rm` walks them.
cleanup
for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
rm -rf "$DIR"
