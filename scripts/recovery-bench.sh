#!/usr/bin/env bash
# Recovery time of a durable replica whose log holds N commands (default
# 1 000 000) with no snapshot: fills the log with the load generator, kills
# the replica with SIGKILL, restarts it, and reports how long the replay took
# and how long until it answered again.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
cargo build --release --bins -q
DIR=$(mktemp -d /tmp/concoord-recovery.XXXXXX)
ADDR=127.0.0.1; PORT=24500; B="$ADDR:$PORT"
start() { ./target/release/concoord replica -o counter -a $ADDR -p $PORT -w --data-dir "$DIR/data" --snapshot-every 100000000 >>"$DIR/replica.log" 2>&1 & echo $!; }
PID=$(start)
trap 'kill -9 $PID 2>/dev/null || true' EXIT
sleep 1
executed() { ./target/release/concoord status -b "$B" --json | python3 -c 'import sys,json; print(json.loads(sys.stdin.readline())["commands_executed"])'; }
while [ "$(executed)" -lt "$N" ]; do
  ./target/release/concoord-bench -b "$B" --workload incr --clients 64 --duration 5 --warmup 0 --json >/dev/null
done
VALUE=$(./target/release/concoord call -b "$B" getvalue)
echo "{\"commands_in_log\": $(executed), \"wal_bytes\": $(du -sb "$DIR/data" | cut -f1), \"value\": $VALUE}"
kill -9 "$PID"
while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
T0=$(date +%s%N)
PID=$(start)
until ./target/release/concoord call -b "$B" --timeout 1 getvalue >/dev/null 2>&1; do sleep 0.05; done
T1=$(date +%s%N)
AFTER=$(./target/release/concoord call -b "$B" getvalue)
REPLAY_MS=$(sed 's/\x1b\[[0-9;]*m//g' "$DIR/replica.log" | grep "recovered durable state" | tail -1 | sed 's/.*elapsed_ms=\([0-9]*\).*/\1/')
echo "{\"replay_ms\": $REPLAY_MS, \"restart_to_first_answer_ms\": $(( (T1-T0)/1000000 )), \"value_after\": $AFTER}"
[ "$VALUE" = "$AFTER" ] || { echo "value changed across recovery" >&2; exit 1; }
rm -rf "$DIR"
