#!/usr/bin/env bash
# Where the CPU goes while 3 replicas on loopback serve puts: a system-wide
# `perf record` (every process on the machine: replicas, load generator,
# kernel) taken in the middle of a `concoord-bench` run, then the share of
# the kernel against user space, per command, and the top symbols.
# Usage: scripts/cpu-profile.sh [memory|durable] [clients, default 64] [seconds, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-memory}"
CLIENTS="${2:-64}"
SECS="${3:-5}"
command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf; }
# shellcheck source=scripts/lib/three-replicas.sh
. scripts/lib/three-replicas.sh
start_three_replicas cpu-profile 16200 "$MODE"
"$BIN/concoord-bench" -b "$BOOT" --workload put --value-size 256 --mode serial --clients "$CLIENTS" \
  --duration $((SECS + 4)) --json >"$WORK/bench.json" 2>"$WORK/bench.err" &
BENCH=$!
sleep 2
perf record -a -F 997 -o "$WORK/perf.data" -- sleep "$SECS" >/dev/null 2>&1
wait "$BENCH" || { cat "$WORK/bench.err" >&2; exit 1; }
tail -1 "$WORK/bench.json"
report() { perf report -i "$WORK/perf.data" --no-children --stdio "$@" 2>/dev/null | grep -E '^ +[0-9]'; }
echo "-- kernel [k] vs user [.]:"
report --sort sym | awk '{ s[$2] += $1 } END { for (k in s) printf "%s %.1f%%\n", k, s[k] }'
echo "-- by command:"
report --sort comm | head -6
echo "-- top symbols:"
report --sort sym | head -"${TOP:-25}"
