#!/usr/bin/env bash
# How cost grows with work: durable KeyValue puts (`-w`) on loopback while
# one thing grows at a time — replicas (3, 5, 7), clients (1, 64, 512 with a
# connection each; 2 048 callers multiplexed on one connection), value size
# (256 B, 64 KiB, 1 MiB). Prints one JSON line per run, each with the
# leader's syncs per put and its CPU seconds per 1 000 puts.
#
# Usage: scripts/scaling-bench.sh [seconds per run, default 5]
# MEMORY=1 runs in-memory replicas instead; VALUES_ONLY=1 runs only the
# value-size rows (3 replicas).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
cargo build --release --bins -q
FLAGS=(-w)
[ "${MEMORY:-0}" = 1 ] && FLAGS=()
BASE=24300
CLUSTER=
stop_cluster() {
  [ -n "$CLUSTER" ] && { kill -INT "$CLUSTER" 2>/dev/null; wait "$CLUSTER" 2>/dev/null || true; }
  CLUSTER=
}
trap stop_cluster EXIT

start_cluster() { # replicas
  LOGS=$(mktemp -d /tmp/concoord-scaling.XXXXXX)
  ./target/release/concoord cluster -n "$1" -o keyvalue --base-port "$BASE" --log-dir "$LOGS" "${FLAGS[@]}" > "$LOGS/boot" 2>/dev/null &
  CLUSTER=$!
  for _ in $(seq 100); do [ -s "$LOGS/boot" ] && break; sleep 0.2; done
  B=$(head -1 "$LOGS/boot")
}

# The leader's address, syncs, executed commands and process CPU seconds
# (utime+stime).
leader_counters() {
  ./target/release/concoord status -b "$B" --json | python3 -c '
import sys, json, os
r = [json.loads(l) for l in sys.stdin]
l = [x for x in r if x.get("role") == "leader"][0]
port = l["addr"].rsplit(":", 1)[1]
cpu = 0.0
for pid in os.listdir("/proc"):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        if b"replica" in cmd and b"-p" in cmd and cmd[cmd.index(b"-p") + 1] == port.encode():
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
print(l["addr"], l["fsyncs"], l["commands_executed"], cpu)'
}

run() { # replicas, then concoord-bench arguments
  local replicas=$1; shift
  read -r l0 f0 c0 t0 < <(leader_counters)
  local out
  out=$(./target/release/concoord-bench -b "$B" --workload put --duration "$SECS" --json "$@")
  read -r l1 f1 c1 t1 < <(leader_counters)
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
f, c, t = int(sys.argv[3]), max(1, int(sys.argv[4])), float(sys.argv[5])
same = sys.argv[7] == sys.argv[8]
r.update(replicas=int(sys.argv[2]), durable=sys.argv[6] == "1", leader_changed=not same,
         leader_fsyncs_per_put=round(f / c, 4) if same else None,
         leader_cpu_ms_per_1000_puts=round(t * 1e6 / c, 1) if same else None)
print(json.dumps(r))' "$out" "$replicas" $((f1 - f0)) $((c1 - c0)) "$(python3 -c "print($t1 - $t0)")" "$([ "${MEMORY:-0}" = 1 ] && echo 0 || echo 1)" "$l0" "$l1"
}

REPLICAS=(3 5 7)
[ "${VALUES_ONLY:-0}" = 1 ] && REPLICAS=(3)
for replicas in "${REPLICAS[@]}"; do
  start_cluster "$replicas"
  if [ "${VALUES_ONLY:-0}" != 1 ]; then
    for clients in 1 64 512; do
      run "$replicas" --clients "$clients"
    done
  fi
  if [ "$replicas" = 3 ]; then
    [ "${VALUES_ONLY:-0}" = 1 ] || run 3 --clients 2048 --shared
    for size in 65536 1048576; do
      for clients in 1 16; do
        # 64 keys: the object holds at most 64 values (64 MiB at 1 MiB).
        run 3 --clients "$clients" --value-size "$size" --keys 64
      done
    done
  fi
  stop_cluster
done
