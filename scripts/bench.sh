#!/usr/bin/env bash
# Starts a local 3-replica Counter instance, runs the load generator for each
# workload and client count, prints one JSON line per run, and stops the
# instance. Usage: scripts/bench.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
cargo build --release --bins -q
BASE=24000
./target/release/concoord cluster -n 3 --base-port "$BASE" --log-dir /tmp/concoord-bench-logs > /tmp/concoord-bench-boot 2>/dev/null &
CLUSTER=$!
trap 'kill -INT $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s /tmp/concoord-bench-boot ] && break; sleep 0.2; done
B=$(head -1 /tmp/concoord-bench-boot)
for workload in incr get; do
  for clients in 1 16 64; do
    ./target/release/concoord-bench -b "$B" --workload "$workload" --clients "$clients" --duration "$SECS" --json
  done
done
# The original's proxy types: 64 callers sharing one proxy (one client).
for mode in serial blocking batched pipelined; do
  ./target/release/concoord-bench -b "$B" --workload incr --clients 64 --shared --mode "$mode" --duration "$SECS" --json
done
