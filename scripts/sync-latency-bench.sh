#!/usr/bin/env bash
# Where a single client's durable write waits: 3 durable KeyValue replicas on
# loopback and one serial client putting 256 B values. A first run measures
# the client (its JSON line); a second one, with `strace` timing every
# fdatasync of the leader and of one follower (tracing slows the client, so
# that run's client figures are not printed), prints each replica's sync
# count and p50/p90/p99, and the follower's syncs split by whether they
# overlapped one of the leader's (same disk).
# Usage: scripts/sync-latency-bench.sh [seconds, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
command -v strace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace; }
# shellcheck source=scripts/lib/three-replicas.sh
. scripts/lib/three-replicas.sh
start_three_replicas sync-latency 16100 durable
"$BIN/concoord-bench" -b "$BOOT" --workload put --value-size 256 --mode serial --clients 1 \
  --duration "$SECS" --json 2>/dev/null | tail -1
strace -f --seccomp-bpf -T -tt -e trace=fdatasync,fsync -p "${PIDS[0]}" -o "$WORK/leader.strace" 2>/dev/null &
PIDS+=($!)
strace -f --seccomp-bpf -T -tt -e trace=fdatasync,fsync -p "${PIDS[1]}" -o "$WORK/follower.strace" 2>/dev/null &
PIDS+=($!)
sleep 1
"$BIN/concoord-bench" -b "$BOOT" --workload put --value-size 256 --mode serial --clients 1 \
  --duration "$SECS" --json >/dev/null 2>&1
kill "${PIDS[3]}" "${PIDS[4]}" 2>/dev/null || true
sleep 0.5
python3 - "$WORK/leader.strace" "$WORK/follower.strace" <<'EOF'
import bisect, re, sys

def syncs(path):
    out = []
    for line in open(path):
        m = re.search(r"(\d+):(\d+):([\d.]+) f(?:data)?sync\(.*<([\d.]+)>$", line.strip())
        if m:
            start = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
            out.append((start, start + float(m.group(4))))
    return out

def p(ms, q):
    return ms[min(len(ms) - 1, int(len(ms) * q))]

def show(name, spans):
    ms = sorted((e - s) * 1000 for s, e in spans)
    if ms:
        print(f"{name}: {len(ms)} syncs, p50 {p(ms, .5):.3f} p90 {p(ms, .9):.3f} p99 {p(ms, .99):.3f} ms")

leader, follower = syncs(sys.argv[1]), syncs(sys.argv[2])
show("leader", leader)
show("follower", follower)
starts = [s for s, _ in leader]
overlapping, alone = [], []
for s, e in follower:
    i = bisect.bisect_right(starts, e)
    hit = any(leader[j][0] < e and leader[j][1] > s for j in range(max(0, i - 4), i))
    (overlapping if hit else alone).append((s, e))
show("follower, overlapping a leader sync", overlapping)
show("follower, alone", alone)
EOF
