#!/usr/bin/env bash
# Where a durable write's time goes under load: 3 durable KeyValue replicas
# on loopback with `--metrics-addr`, `concoord-bench` putting 256 B values
# from CLIENTS clients, and each replica's histograms read before and after
# the run. Prints the client's JSON line, then per replica (leader first) the
# mean of: proposal to execution at the leader (`commit_latency_seconds`),
# a turn's records staged to durable (`sync_wait_seconds`: the wait for the
# sync job before it plus its own) and one `fdatasync` (`fsync_seconds`),
# with the syncs per second.
# Usage: scripts/write-wait-bench.sh [clients, default 64] [seconds, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${1:-64}"
SECS="${2:-5}"
# shellcheck source=scripts/lib/three-replicas.sh
. scripts/lib/three-replicas.sh
METRICS_PORT=16290
start_three_replicas write-wait 16200 "${MODE:-durable}"
scrape() {
  for i in 0 1 2; do
    echo "# replica $i"
    curl -s "http://127.0.0.1:$((METRICS_PORT + i))/metrics"
  done
}
"$BIN/concoord-bench" -b "$BOOT" --workload put --value-size 256 --mode serial \
  --clients "$CLIENTS" --duration 1 --json >/dev/null 2>&1
scrape >"$WORK/before.txt"
"$BIN/concoord-bench" -b "$BOOT" --workload put --value-size 256 --mode serial \
  --clients "$CLIENTS" --duration "$SECS" --json 2>/dev/null | tail -1
scrape >"$WORK/after.txt"
python3 - "$WORK/before.txt" "$WORK/after.txt" "$SECS" <<'PY'
import re, sys

def read(path):
    replicas, cur = [], None
    for line in open(path):
        if line.startswith("# replica"):
            cur = {}
            replicas.append(cur)
            continue
        m = re.match(r'(concoord_\w+?)(?:\{(.*)\})? ([\d.e+-]+|NaN)$', line.strip())
        if m and cur is not None:
            cur[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return replicas

before, after, secs = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])

def delta(i, key):
    return after[i].get(key, 0.0) - before[i].get(key, 0.0)

def mean_ms(i, name):
    n = delta(i, (f"concoord_{name}_count", ""))
    return f"{delta(i, (f'concoord_{name}_sum', '')) / n * 1000:.3f} ms" if n else "-"

leader = [i for i in range(3) if after[i].get(("concoord_role", 'role="leader"')) == 1.0]
for i in leader + [i for i in range(3) if i not in leader]:
    role = "leader" if i in leader else "follower"
    syncs = delta(i, ("concoord_fsyncs_total", ""))
    print(f"replica {i} ({role}): commit {mean_ms(i, 'commit_latency_seconds')}, "
          f"sync wait {mean_ms(i, 'sync_wait_seconds')}, fdatasync {mean_ms(i, 'fsync_seconds')}, "
          f"{syncs / secs:.0f} syncs/s")
PY
