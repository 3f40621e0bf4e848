#!/usr/bin/env bash
# Runs every benchmark and the accuracy evaluations, and writes the report to
# build/bench-report.md (docs/benchmarks.md and docs/accuracy.md quote it). Needs a set-up build (scripts/setup.sh) and ../shared/testdata.
#   bench/run.sh           full (about 25 minutes on 2 cores; HNSW32 over 100k takes 5,
#                          the live streams 10)
#   bench/run.sh --quick   fewer runs and settings (about 4 minutes measured before the
#                          live-stream and accuracy sections; those add about 2 by their
#                          own run times: 3 x 19 s + 10 s, and 4 evaluations of ~10 s)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${FRS_BUILD_DIR:-$root/build}/bench"
report="${FRS_BUILD_DIR:-$root/build}/bench-report.md"
runs=7
quick=""
if [[ "${1:-}" == "--quick" ]]; then runs=3; quick="--quick"; fi

{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d)"
  echo
  "$bin/bench_face_engine" --runs "$runs"
  echo
  echo "## Detection accuracy (bench_detection_accuracy $quick)"
  echo
  echo '```'
  "$bin/bench_detection_accuracy" $quick
  echo '```'
  echo
  echo "## Enrollment throughput (bench_enrollment_throughput)"
  echo
  "$bin/bench_enrollment_throughput"
  echo
  echo "## Search latency on a synthetic 100k gallery (bench_search_latency)"
  echo
  if [[ -n "$quick" ]]; then
    "$bin/bench_search_latency" --faces 100000 --types "Flat;IVF1024,Flat"
  else
    "$bin/bench_search_latency" --faces 100000 --types "Flat;IVF1024,Flat;HNSW32"
  fi
  echo
  echo "## Live streams (bench_live_streams)"
  echo
  if [[ -n "$quick" ]]; then
    "$bin/bench_live_streams" --seconds 15 --streams 1,2,4 --sizes 640x360 --naive-seconds 10
  else
    "$bin/bench_live_streams"
  fi
  echo
  echo "## Accuracy on the shared sets (frs eval; docs/accuracy.md)"
  echo
  frs="${FRS_BUILD_DIR:-$root/build}/src/bin/frs"
  data="${FRS_TESTDATA:-$root/../shared/testdata}"
  for set in "lfw10" "crops --named-files"; do
    for levers in "" "--enroll 3 --template centroid"; do
      echo "### frs eval $set $levers"
      echo '```'
      # shellcheck disable=SC2086
      "$frs" eval "$data"/$set $levers --no-progress
      echo '```'
    done
  done
  echo
  echo "## Smallest face BlazeFace finds in its 256-pixel input (bench_detector_min_face)"
  echo
  echo '```'
  "$bin/bench_detector_min_face"
  echo '```'
} | tee "$report"
echo "report written to $report" >&2
