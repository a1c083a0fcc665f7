#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, doctests, the deterministic
# simulation (SIM_SEEDS seeds per sweep, default 1000), the replica simulation
# (REPLICA_SIM_SEEDS seeds per scenario, default 24) and the real-process tests
# (replicas as separate processes on loopback, killed with SIGKILL).
# Needs a Rust toolchain, root (the partition tests use network namespaces),
# iproute2, dig (bind9-dnsutils) and OpenSSH (the openreplica tests run sshd
# in namespaces), which it installs if missing, and moto_server (PyPI
# moto[server], a local Route53 for the Route53 test), which it pip-installs
# if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Partition tests need `ip` (iproute2); the full-disk test mounts a tmpfs;
# the name-server tests ask with `dig`.
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v mount >/dev/null || missing+=(mount)
# The openreplica tests run real sshd servers and the ssh client.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
# The Route53 test runs moto_server and reads it back with boto3 (Python).
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The Route53 test publishes to moto_server on loopback, never to AWS.
if ! command -v moto_server >/dev/null || ! python3 -c "import moto.server, boto3" 2>/dev/null; then
  # A Debian python3 refuses pip into the system without this flag (PEP 668).
  python3 -m pip install -q 'moto[server]' ||
    python3 -m pip install -q --break-system-packages 'moto[server]'
fi

export SIM_SEEDS="${SIM_SEEDS:-1000}"
# The real-process tests run the binaries; build them first. The Route53 test
# runs `concoord` built with the route53 feature (the AWS SDK, off by
# default), kept as concoord-route53; the default build then puts the plain
# binary back. Cargo keeps both builds' artifacts apart, so a later run
# recompiles neither.
cargo build --release -p concoord-cli --features route53
cp target/release/concoord target/release/concoord-route53
cargo build --release --workspace --bins
cargo test --workspace --release "$@"
# The replica simulation catches each of its injected bugs (a rebuild of the
# replica with the bug hooks compiled in).
cargo test --release -p concoord-replica-sim --features bug-injection --test injected_bugs
