#!/usr/bin/env bash
# Starts a local 3-replica Counter instance, runs the load generator for each
# workload and client count, prints one JSON line per run, and stops the
# instance. Usage: scripts/bench.sh [seconds per run, default 10]
# DURABLE=1 runs durable replicas (-w): writes, fsyncs per command at 64 clients.
# SYNC=1 runs the synchronization workloads: lock acquire+release round trips
# with 1 and 16 contending clients, barrier rounds with 8 parties.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
cargo build --release --bins -q
if [ "${SYNC:-0}" = 1 ]; then
  run_sync() { # object port workload clients...
    local object=$1 port=$2 workload=$3; shift 3
    local logs; logs=$(mktemp -d /tmp/concoord-bench.XXXXXX)
    ./target/release/concoord cluster -n 3 -o "$object" --base-port "$port" --log-dir "$logs" > "$logs/boot" 2>/dev/null &
    local cluster=$!
    for _ in $(seq 100); do [ -s "$logs/boot" ] && break; sleep 0.2; done
    local boot; boot=$(head -1 "$logs/boot")
    for clients in "$@"; do
      ./target/release/concoord-bench -b "$boot" --workload "$workload" --clients "$clients" --duration "$SECS" --json
    done
    kill -INT "$cluster"; wait "$cluster" 2>/dev/null || true
  }
  run_sync lock 24100 lock 1 16
  run_sync barrier 24200 barrier 8
  exit 0
fi
BASE=24000
LOGS=$(mktemp -d /tmp/concoord-bench.XXXXXX)
FLAGS=()
[ "${DURABLE:-0}" = 1 ] && FLAGS=(-w)
./target/release/concoord cluster -n 3 --base-port "$BASE" --log-dir "$LOGS" "${FLAGS[@]}" > "$LOGS/boot" 2>/dev/null &
CLUSTER=$!
trap 'kill -INT $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$LOGS/boot" ] && break; sleep 0.2; done
B=$(head -1 "$LOGS/boot")
leader_counters() {
  ./target/release/concoord status -b "$B" --json |
    python3 -c 'import sys,json; r=[json.loads(l) for l in sys.stdin]; l=[x for x in r if x.get("role")=="leader"][0]; print(l["fsyncs"], l["commands_executed"])'
}
if [ "${DURABLE:-0}" = 1 ]; then
  for clients in 1 16 64; do
    read -r f0 c0 < <(leader_counters)
    ./target/release/concoord-bench -b "$B" --workload incr --clients "$clients" --duration "$SECS" --json
    read -r f1 c1 < <(leader_counters)
    python3 -c "print('{\"clients\": $clients, \"leader_fsyncs\": $((f1-f0)), \"commands\": $((c1-c0)), \"fsyncs_per_command\": %.4f}' % ($((f1-f0))/max(1,$((c1-c0)))))"
  done
  exit 0
fi
for workload in incr get; do
  for clients in 1 16 64; do
    ./target/release/concoord-bench -b "$B" --workload "$workload" --clients "$clients" --duration "$SECS" --json
  done
done
# The original's proxy types: 64 callers sharing one proxy (one client).
for mode in serial blocking batched pipelined; do
  ./target/release/concoord-bench -b "$B" --workload incr --clients 64 --shared --mode "$mode" --duration "$SECS" --json
done
