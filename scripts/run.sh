#!/usr/bin/env bash
# Sets frs up (scripts/setup.sh) and runs the main job: live recognition. It starts
# frs-server on an embedded store, a camera, enrolls one person, and prints alerts as they
# arrive (Ctrl-C stops everything).
#
#   scripts/run.sh                     the shared clip served as a loopback RTSP camera
#                                      (frs-test-camera), Lin-Manuel Miranda's photo enrolled
#   scripts/run.sh VIDEO PHOTO         your own video file (served the same way) or camera
#                                      URL (rtsp://, http(s)://), and a photo of the person
#                                      to look for
#   FRS_RUN_SECONDS=60 scripts/run.sh  stop after a minute (default: until Ctrl-C; 40 s when
#                                      not run from a terminal)
# Ports (loopback): gRPC 50151, RTSP 18554, metrics 19464; override with FRS_RUN_GRPC_PORT,
# FRS_RUN_RTSP_PORT, FRS_RUN_METRICS_PORT.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
bin="${FRS_BUILD_DIR:-$root/build}/src/bin"
work="${FRS_BUILD_DIR:-$root/build}/demo"
grpc_port="${FRS_RUN_GRPC_PORT:-50151}"
rtsp_port="${FRS_RUN_RTSP_PORT:-18554}"
metrics_port="${FRS_RUN_METRICS_PORT:-19464}"

if [[ $# -eq 2 ]]; then
  source_arg="$1"
  photo="$2"
  name="$(basename "${photo%.*}")"
elif [[ $# -eq 0 ]]; then
  testdata="${FRS_TESTDATA:-$root/../shared/testdata}"
  source_arg="$testdata/video/short_hamilton_clip.mp4"
  photo="$testdata/faces/lin-manuel-miranda.png"
  name="Lin-Manuel Miranda"
  if [[ ! -f "$source_arg" || ! -f "$photo" ]]; then
    echo "run: the shared clip and photo are not at $testdata." >&2
    echo "     Run it on your own: scripts/run.sh VIDEO_FILE_OR_CAMERA_URL PHOTO" >&2
    echo "     (or set FRS_TESTDATA to the shared test data folder)." >&2
    exit 1
  fi
else
  echo "usage: scripts/run.sh [VIDEO_FILE_OR_CAMERA_URL PHOTO]" >&2
  exit 2
fi
[[ -f "$photo" ]] || { echo "run: no photo at '$photo'" >&2; exit 1; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

rm -rf "$work/data"
mkdir -p "$work/data"
server="127.0.0.1:$grpc_port"
export FRS_SERVER="$server"
# The admin token frs-server writes on its first start, and the purpose every call records
# in the audit log.
export FRS_TOKEN_FILE="$work/data/admin.token"
export FRS_PURPOSE="demo: scripts/run.sh"
frs() { "$bin/frs" "$@"; }

if [[ "$source_arg" == *://* ]]; then
  url="$source_arg"
else
  [[ -f "$source_arg" ]] || { echo "run: no video file at '$source_arg'" >&2; exit 1; }
  "$bin/frs-test-camera" "$source_arg" --port "$rtsp_port" >"$work/camera.log" 2>&1 &
  pids+=($!)
  url="rtsp://127.0.0.1:$rtsp_port/camera"
fi

"$bin/frs-server" --listen "$server" --data-dir "$work/data" \
  --metrics-listen "127.0.0.1:$metrics_port" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  if frs watchlist list >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "run: frs-server stopped; its log ($work/server.log):" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
  fi
  sleep 0.5
done

echo "== frs-server on $server (log: $work/server.log, metrics: http://127.0.0.1:$metrics_port/metrics)"
frs watchlist create demo --description "scripts/run.sh"
# Live matching needs a legal basis in force: the demo records one, for a day.
frs watchlist authorize demo --basis policy --reference demo \
  --until "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" --issued-by "scripts/run.sh"
frs enroll --watchlist demo --name "$name" "$photo"
frs camera add demo-camera "$url" --watchlist demo
echo "== alerts as they arrive (every alert is a candidate for a human to confirm or reject):"

seconds="${FRS_RUN_SECONDS:-}"
if [[ -z "$seconds" && ! -t 0 ]]; then seconds=40; fi
if [[ -n "$seconds" ]]; then
  timeout --foreground "$seconds" "$bin/frs" alerts --follow || true
  echo "== after $seconds s:"
  frs camera list
else
  frs alerts --follow
fi
