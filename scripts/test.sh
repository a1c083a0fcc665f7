#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, doctests, the deterministic
# simulation (SIM_SEEDS seeds per sweep, default 500) and the real-process tests
# (replicas as separate processes on loopback, killed with SIGKILL).
# Needs a Rust toolchain, root (the partition tests use network namespaces)
# and iproute2, which it installs if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ip >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi

export SIM_SEEDS="${SIM_SEEDS:-500}"
# The real-process tests run the binaries; build them first.
cargo build --release --workspace --bins
cargo test --workspace --release "$@"
