#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, doctests, the deterministic
# simulation (SIM_SEEDS seeds, default 500) and the real-process tests.
# Installs what the tests need on a fresh Debian machine first.
set -euo pipefail
cd "$(dirname "$0")/.."

export SIM_SEEDS="${SIM_SEEDS:-500}"
cargo test --workspace --release "$@"
