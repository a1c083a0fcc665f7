#!/usr/bin/env bash
# Keeps the crate graph layered (docs/architecture.md): fails if a crate
# depends, directly or through another crate, on one it must not reach.
# Only normal dependencies count: tests may use anything (dev-dependencies).
#
#   scripts/check-layers.sh        # from anywhere in the workspace
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0

# deps CRATE: every package CRATE depends on (normal edges, all depths).
deps() {
    cargo tree --edges normal --prefix none --format '{p}' --package "$1" 2>/dev/null |
        awk '{print $1}' | sort -u
}

# forbid CRATE WHY DEP...: CRATE must not depend on any DEP.
forbid() {
    local crate=$1 why=$2
    shift 2
    local all
    if ! all=$(deps "$crate"); then
        echo "check-layers: cannot list the dependencies of $crate" >&2
        failed=1
        return
    fi
    if [ -z "$all" ]; then
        echo "check-layers: no package $crate" >&2
        failed=1
        return
    fi
    for dep in "$@"; do
        if grep -qx -- "$dep" <<<"$all"; then
            echo "check-layers: $crate depends on $dep ($why); see docs/architecture.md" >&2
            cargo tree --edges normal --invert "$dep" --package "$crate" 2>/dev/null | head -20 >&2
            failed=1
        fi
    done
}

# Every package of this workspace but one.
ours_except() {
    cargo metadata --no-deps --format-version 1 |
        grep -o '"name":"[^"]*","version"' | sed 's/"name":"\([^"]*\)".*/\1/' |
        grep -vx -- "$1"
}

# shellcheck disable=SC2046
forbid paxos-core "the consensus core is sans-IO and knows nothing of ours" $(ours_except paxos-core)
forbid concoord-transport "the wire is below the replica and the client" \
    concoord-replica concoord-replica-cli concoord-client concoord-objects concoord-dsync
forbid concoord-object "the object interface is below everything but the macros" \
    concoord-replica concoord-replica-cli concoord-client concoord-transport concoord-objects concoord-dsync
forbid concoord-objects "objects are hosted by the runtime, not part of it" \
    concoord-replica concoord-replica-cli concoord-client concoord-transport
forbid concoord-dsync "objects are hosted by the runtime, not part of it" \
    concoord-replica concoord-replica-cli concoord-client concoord-transport
forbid concoord-client "clients compile neither the replica nor the server-side objects" \
    concoord-replica concoord-replica-cli concoord-objects concoord-dsync
forbid concoord-replica "the runtime is generic over the object and parses no flags" \
    concoord-replica-cli concoord-objects concoord-dsync concoord-client clap tracing-subscriber
forbid concoord-bench "a load generator is a client tool" \
    concoord-replica concoord-replica-cli concoord-objects concoord-dsync

if [ "$failed" -ne 0 ]; then
    echo "check-layers: FAILED" >&2
    exit 1
fi
echo "check-layers: ok"
