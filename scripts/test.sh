#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, doctests, the deterministic
# simulation (SIM_SEEDS seeds per sweep, default 1000) and the real-process tests
# (replicas as separate processes on loopback, killed with SIGKILL).
# Needs a Rust toolchain, root (the partition tests use network namespaces),
# iproute2 and OpenSSH (the openreplica tests run sshd in namespaces), which it
# installs if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Partition tests need `ip` (iproute2); the full-disk test mounts a tmpfs.
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v mount >/dev/null || missing+=(mount)
# The openreplica tests run real sshd servers and the ssh client.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

export SIM_SEEDS="${SIM_SEEDS:-1000}"
# The real-process tests run the binaries; build them first.
cargo build --release --workspace --bins
cargo test --workspace --release "$@"
