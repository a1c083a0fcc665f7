#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, doctests, the deterministic
# simulation (SIM_SEEDS seeds per sweep, default 500) and the real-process tests
# (replicas as separate processes on loopback, killed with SIGKILL).
# Needs only a Rust toolchain; installs nothing else so far.
set -euo pipefail
cd "$(dirname "$0")/.."

export SIM_SEEDS="${SIM_SEEDS:-500}"
# The real-process tests run the binaries; build them first.
cargo build --release --workspace --bins
cargo test --workspace --release "$@"
