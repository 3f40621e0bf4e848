#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, -DFRS_FUZZ=ON) and runs each for a
# bounded time from its seed corpus (made at build time from ../shared/testdata and valid
# requests) and its regression corpus (fuzz/regressions/TARGET). Fails on any crash, leak
# or timeout, naming the input; put that input in fuzz/regressions/TARGET/ once fixed, and
# the model tests replay it from then on.
#
#   scripts/fuzz.sh [TARGET...]       default: image requests config eval_csv
#   FRS_FUZZ_SECONDS=60               time per target
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FRS_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${FRS_FUZZ_SECONDS:-60}"
testdata="${FRS_TESTDATA:-$root/../shared/testdata}"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(image requests config eval_csv)

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFRS_FUZZ=ON -DFRS_BUILD_TESTS=OFF -DFRS_BUILD_BENCH=OFF -DFRS_TESTDATA="$testdata" >/dev/null
cmake --build "$build" --target fuzz_corpora $(printf 'fuzz_%s ' "${targets[@]}")

status=0
for target in "${targets[@]}"; do
  corpus="$build/fuzz/corpus/$target"
  crashes="$build/fuzz/crashes/$target"
  regressions="$root/fuzz/regressions/$target"
  mkdir -p "$corpus" "$crashes" "$regressions"
  echo "fuzz: $target for ${seconds} s"
  # -timeout: one input taking longer is a hang; -rss_limit_mb: unbounded memory is a bug.
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
       LSAN_OPTIONS=suppressions="$root/fuzz/lsan.supp" \
       UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
       "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 \
       -print_final_stats=1 -artifact_prefix="$crashes/" \
       "$corpus" "$build/fuzz/seeds/$target" "$regressions" >"$build/fuzz/$target.log" 2>&1; then
    status=1
    echo "fuzz: $target FAILED; the input is in $crashes/, the report in $build/fuzz/$target.log:" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$build/fuzz/$target.log" | head -20 >&2 || true
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz/$target.log" \
      | sed "s/^/fuzz: $target /" || true
  fi
done
exit $status
