#!/usr/bin/env bash
# Peak memory of frs-server while four clients search one large image at once (three
# rounds): the server's VmHWM, against its idle RSS. Extra arguments go to frs-server.
#   bench/peak_memory.sh IMAGE [--max-images-at-once 1 ...]
# docs/operations.md ("Limits") quotes it with an 8000x6000 JPEG (faces/obama.jpg scaled up).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${FRS_BUILD_DIR:-$root/build}/src/bin"
image="${1:?usage: bench/peak_memory.sh IMAGE [frs-server flags]}"
shift
data="$(mktemp -d)"
port=$((51000 + RANDOM % 1000))
"$bin/frs-server" --data-dir "$data" --listen "127.0.0.1:$port" --metrics-listen "" "$@" \
  > "$data/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  "$bin/frs" watchlist list --server "127.0.0.1:$port" > /dev/null 2>&1 && break
  sleep 0.2
done
"$bin/frs" watchlist create w --server "127.0.0.1:$port" > /dev/null
idle=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
busy=0
for _ in 1 2 3; do
  clients=()
  for i in 1 2 3 4; do
    "$bin/frs" search --server "127.0.0.1:$port" "$image" > "$data/out$i" 2>&1 &
    clients+=($!)
  done
  wait "${clients[@]}" || true
  busy=$((busy + $(cat "$data"/out* | grep -c "server busy" || true)))
done
peak=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
echo "frs-server $*: idle $((idle / 1024)) MiB, peak $((peak / 1024)) MiB; searches refused as busy: $busy of 12"
