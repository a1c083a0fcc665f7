# Sourced by the measurement scripts: builds the release binaries and starts
# three KeyValue replicas on loopback, stopped (and their directory removed)
# when the script exits.
# Usage: start_three_replicas NAME PORT MODE   (MODE: memory or durable)
# Sets BIN, WORK (the replicas' directory), PIDS (their processes, in port
# order; callers may append their own) and BOOT (the -b list). With
# METRICS_PORT set, replica i serves its metrics on METRICS_PORT + i. With
# BIN set, its binaries are used as they are (to compare two builds).
start_three_replicas() {
  local name=$1 port=$2 mode=$3 args i
  if [ -z "${BIN:-}" ]; then
    cargo build --release --bins -q
    BIN=target/release
  fi
  WORK=$(mktemp -d "/tmp/concoord-$name.XXXXXX")
  PIDS=()
  trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
  for i in 0 1 2; do
    args=()
    [ "$mode" = durable ] && args=(-w --data-dir "$WORK/r$i")
    [ -n "${METRICS_PORT:-}" ] && args+=(--metrics-addr "127.0.0.1:$((METRICS_PORT + i))")
    if [ "$i" = 0 ]; then
      "$BIN/concoord" replica -o keyvalue -a 127.0.0.1 -p "$port" "${args[@]}" \
        --new-instance --peer-secret "$WORK/secret" >"$WORK/r0.log" 2>&1 &
      PIDS+=($!)
      for _ in $(seq 50); do [ -s "$WORK/secret" ] && break; sleep 0.1; done
    else
      "$BIN/concoord" replica -o keyvalue -a 127.0.0.1 -p $((port + i)) "${args[@]}" \
        -b "127.0.0.1:$port" --peer-secret "$WORK/secret" >"$WORK/r$i.log" 2>&1 &
      PIDS+=($!)
    fi
  done
  sleep 3
  BOOT="127.0.0.1:$port, 127.0.0.1:$((port + 1)), 127.0.0.1:$((port + 2))"
}
