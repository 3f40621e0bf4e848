#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, -DFRS_FUZZ=ON) and runs each for a
# bounded time from its seed corpus (made at build time from ../shared/testdata and valid
# requests) and its regression corpus (fuzz/regressions/TARGET). Fails on any crash, leak
# or timeout, naming the input; put that input in fuzz/regressions/TARGET/ once fixed, and
# the model tests replay it from then on.
#
#   scripts/fuzz.sh [OPTIONS] [TARGET...]   default targets: image requests config eval_csv
#     --build-only       build, do not run
#     --run-only         run what an earlier --build-only built
#     --unit-tests       also build frs_unit_tests in the same tree (ASan + UBSan; test.sh)
#   FRS_FUZZ_SECONDS=60  time per target
#   FRS_FUZZ_JOBS=N      targets run side by side (default: one per core); each fuzzer uses
#                        one core, so each gets as many executions as when run alone
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FRS_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${FRS_FUZZ_SECONDS:-60}"
jobs="${FRS_FUZZ_JOBS:-$(nproc)}"
testdata="${FRS_TESTDATA:-$root/../shared/testdata}"
do_build=1
do_run=1
unit_tests=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --build-only) do_run=0 ;;
    --run-only) do_build=0 ;;
    --unit-tests) unit_tests=1 ;;
    -*) echo "fuzz.sh: unknown option '$arg' (--build-only, --run-only, --unit-tests)" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(image requests config eval_csv)

if ((do_build)); then
  build_targets=(fuzz_corpora $(printf 'fuzz_%s ' "${targets[@]}"))
  ((unit_tests)) && build_targets+=(frs_unit_tests)
  # Line tables, not full debug info: reports keep file:line, and the build takes a third less
  # CPU (50 s against 77 s for src/vision/embedder.cpp, measured).
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRS_UNITY_BUILD=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" -DFRS_FUZZ=ON -DFRS_BUILD_TESTS=ON -DFRS_BUILD_BENCH=OFF -DFRS_TESTDATA="$testdata" >/dev/null
  cmake --build "$build" --target "${build_targets[@]}"
fi
((do_run)) || exit 0

# One target: its verdict on stdout, its report in $build/fuzz/TARGET.log.
fuzz_one() {
  local target="$1"
  local corpus="$build/fuzz/corpus/$target"
  local crashes="$build/fuzz/crashes/$target"
  local regressions="$root/fuzz/regressions/$target"
  mkdir -p "$corpus" "$crashes" "$regressions"
  # -timeout: one input taking longer is a hang; -rss_limit_mb: unbounded memory is a bug.
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
       LSAN_OPTIONS=suppressions="$root/fuzz/lsan.supp" \
       UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
       "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 \
       -print_final_stats=1 -artifact_prefix="$crashes/" \
       "$corpus" "$build/fuzz/seeds/$target" "$regressions" >"$build/fuzz/$target.log" 2>&1; then
    echo "fuzz: $target FAILED; the input is in $crashes/, the report in $build/fuzz/$target.log:"
    grep -E "ERROR|SUMMARY|Test unit written" "$build/fuzz/$target.log" | head -20 || true
    return 1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz/$target.log" \
    | sed "s/^/fuzz: $target /" || true
}

echo "fuzz: ${targets[*]} for ${seconds} s each, $jobs at a time"
# Each target's lines are printed once all are done, so that side-by-side runs do not mix.
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  rm -f "$build/fuzz/$target.status"
  (
    status=0
    fuzz_one "$target" >"$build/fuzz/$target.verdict" 2>&1 || status=$?
    echo "$status" >"$build/fuzz/$target.status"
  ) &
done
wait
status=0
for target in "${targets[@]}"; do
  cat "$build/fuzz/$target.verdict"
  [[ "$(cat "$build/fuzz/$target.status" 2>/dev/null)" == 0 ]] || status=1
done
exit $status
