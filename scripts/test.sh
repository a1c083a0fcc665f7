#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, doctests, the deterministic
# simulation (SIM_SEEDS seeds per sweep, default 1000), the replica simulation
# (REPLICA_SIM_SEEDS seeds per scenario, default 24) and the real-process tests
# (replicas as separate processes on loopback, killed with SIGKILL).
# Needs a Rust toolchain, root (the partition tests use network namespaces)
# and iproute2, which it installs if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Partition tests need `ip` (iproute2); the full-disk test mounts a tmpfs.
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v mount >/dev/null || missing+=(mount)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

export SIM_SEEDS="${SIM_SEEDS:-1000}"
# The real-process tests run the binaries; build them first.
cargo build --release --workspace --bins
cargo test --workspace --release "$@"
# The replica simulation catches each of its injected bugs (a rebuild of the
# replica with the bug hooks compiled in).
cargo test --release -p concoord-replica-sim --features bug-injection --test injected_bugs
