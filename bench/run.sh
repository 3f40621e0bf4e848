#!/usr/bin/env bash
# Runs every benchmark of bench/ and the accuracy evaluations, writes the report to
# build/bench-report.md, and puts it into docs/benchmarks.md between the "generated" markers
# (the analysis above them quotes dated figures and is written by hand). Each section names
# the command behind its figures. Needs a set-up build (scripts/setup.sh) and the shared
# test data (../shared/testdata or $FRS_TESTDATA).
#   bench/run.sh             full: 7 runs a figure, every setting (about 25 minutes on 2 cores)
#   bench/run.sh --quick     3 runs, fewer settings (under 10 minutes: docs/benchmarks.md
#                            says how long the last one took)
#   --no-docs                only the report, docs/benchmarks.md untouched
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FRS_BUILD_DIR:-$root/build}"
bin="$build/bench"
frs="$build/src/bin/frs"
data_given="${FRS_TESTDATA:-$root/../shared/testdata}"
data="$(cd "$data_given" 2>/dev/null && pwd || echo "$data_given")"
report="$build/bench-report.md"
# What the programs print besides their figures (progress, the server's log lines): one file
# per section here, never in the report.
logs="$build/bench-logs"
docs="$root/docs/benchmarks.md"
runs=7
quick=""
update_docs=1
for arg in "$@"; do
  case "$arg" in
    --quick) runs=3; quick="--quick" ;;
    --no-docs) update_docs=0 ;;
    *) echo "bench/run.sh: unknown option '$arg' (--quick, --no-docs)" >&2; exit 2 ;;
  esac
done
for program in bench_face_engine bench_search_latency bench_track_fusion; do
  if [[ ! -x "$bin/$program" ]]; then
    echo "bench/run.sh: $bin/$program is missing: run scripts/setup.sh first" >&2
    exit 1
  fi
done
if [[ ! -d "$data/lfw10" ]]; then
  echo "bench/run.sh: the shared test data is missing at $data (set FRS_TESTDATA)" >&2
  exit 1
fi

# `section TITLE FORMAT COMMAND...`: a heading, the command, and its output, as Markdown
# (FORMAT md) or in a code block (FORMAT text); its stderr goes to $logs/N.log.
section_number=0
section() {
  local title="$1" format="$2"
  shift 2
  section_number=$((section_number + 1))
  local log="$logs/$section_number.log"
  echo "$title: $*" >"$log"
  local shown="${*/#$build\//build/}"
  shown="${shown//$data/\$FRS_TESTDATA}"
  echo "### $title"
  echo
  echo "\`$shown\`"
  echo
  if [[ "$format" == text ]]; then echo '```'; fi
  local start=$SECONDS
  local status=0
  if [[ "$format" == text ]]; then
    "$@" 2>>"$log" || status=$?
    echo '```'
  else
    # Its headings go under this section's.
    "$@" 2>>"$log" | sed -E 's/^(#+) /\1### /' || status=$?
  fi
  if ((status)); then
    echo "bench/run.sh: '$title' failed (exit $status); its log: $log" >&2
    tail -5 "$log" >&2
    return "$status"
  fi
  echo
  echo "($((SECONDS - start)) s)"
  echo
}

rm -rf "$logs"
mkdir -p "$logs"
started=$SECONDS
{
  echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/run.sh $*\`, commit" \
       "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo "Machine: $(nproc) cores of $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "$(free -g | awk '/Mem:/ {print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME"), no GPU;" \
       "$(c++ --version | head -1); BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)."
  echo "Timings: median of $runs runs after a warm-up. The machine is shared and noisy: compare"
  echo "ratios within this run, not absolute times between runs."
  echo
  echo "## Speed"
  echo
  section "Detection, per face and end to end" md "$bin/bench_face_engine" --runs "$runs"
  section "Detection accuracy vs settings" text "$bin/bench_detection_accuracy" $quick
  section "Smallest face BlazeFace finds" text "$bin/bench_detector_min_face"
  section "Enrollment throughput" md "$bin/bench_enrollment_throughput"
  if [[ -n "$quick" ]]; then
    section "Search latency on a synthetic 100k gallery" md \
      "$bin/bench_search_latency" --faces 100000 --types "Flat;IVF1024,Flat"
    section "Live streams" md \
      "$bin/bench_live_streams" --seconds 15 --streams 1,2,4 --sizes 640x360 --naive-seconds 10
  else
    section "Search latency on a synthetic 100k gallery" md \
      "$bin/bench_search_latency" --faces 100000 --types "Flat;IVF1024,Flat;HNSW32"
    section "Live streams" md "$bin/bench_live_streams"
    section "Alignment constants" text "$bin/bench_alignment_calibration"
  fi
  if [[ -n "$quick" ]]; then
    section "Cluster mode on one PostgreSQL" md "$bin/bench_cluster" --alerts 1000 --enrollments 100 --failovers 3
    section "Cluster mode: real nodes over gRPC" md "$bin/bench_cluster_nodes" --alerts 100 --failovers 3
  else
    section "Cluster mode on one PostgreSQL" md "$bin/bench_cluster"
    section "Cluster mode: real nodes over gRPC" md "$bin/bench_cluster_nodes"
  fi
  echo "## Accuracy (docs/accuracy.md explains the protocol and the levers)"
  echo
  section "Enrollment gate limits" md "$bin/bench_enrollment_gate"
  section "Fusing a track's chips on the shared clip" md "$bin/bench_track_fusion"
  for set in "lfw10" "crops --named-files"; do
    for levers in "" "--enroll-gated" "--enroll 3 --template centroid" "--probe-chips 3"; do
      # shellcheck disable=SC2086
      section "frs eval $set $levers" text "$frs" eval "$data"/$set $levers --no-progress
    done
  done
  echo "Whole run: $((SECONDS - started)) s."
} | tee "$report"
echo "bench/run.sh: report written to $report, the programs' logs to $logs" >&2

if ((update_docs)); then
  begin='<!-- bench/run.sh output: everything below is replaced by each run -->'
  if ! grep -qF "$begin" "$docs"; then
    printf '\n## Latest run\n\n%s\n' "$begin" >>"$docs"
  fi
  # Keep the hand-written part up to the marker, then the fresh report.
  awk -v marker="$begin" '{print} $0 == marker {exit}' "$docs" >"$docs.new"
  echo >>"$docs.new"
  cat "$report" >>"$docs.new"
  mv "$docs.new" "$docs"
  echo "bench/run.sh: docs/benchmarks.md refreshed" >&2
fi
