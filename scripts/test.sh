#!/usr/bin/env bash
# The whole test suite: set-up (as scripts/setup.sh, with warnings as errors), then every
# test with ctest, then the unit tests again under AddressSanitizer + UBSan, then the
# fuzzers for a minute each (scripts/fuzz.sh).
# Needs the shared test data at ../shared/testdata (or $FRS_TESTDATA).
#
# The order is chosen for time (docs/operations.md, "Where the test suite's time goes"): the
# Release build makes what ctest runs first; the benchmarks and the sanitizer build (clang:
# the unit tests and the fuzz targets from one set of objects) are built while ctest runs,
# at the lowest CPU priority, so that they take only the CPU the tests leave idle (much of
# ctest waits on live video and on leases); the fuzzers run side by side, one per core.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
testdata="${FRS_TESTDATA:-$root/../shared/testdata}"
if [[ ! -d "$testdata/faces" ]]; then
  echo "test: the shared test data is missing at $testdata: put it beside the repository or set FRS_TESTDATA" >&2
  exit 1
fi
build_dir="${FRS_BUILD_DIR:-$root/build}"
sanitizer_dir="${FRS_FUZZ_BUILD_DIR:-$root/build-fuzz}"
export FRS_FUZZ_BUILD_DIR="$sanitizer_dir"

# Where the time went, phase by phase: printed at the end (and on failure).
phase_times=()
phase_started=$SECONDS
phase_done() {
  phase_times+=("$(printf '%-44s %5d s' "$1" $((SECONDS - phase_started)))")
  phase_started=$SECONDS
}
report_times() {
  echo "test: where the time went (total $((SECONDS / 60)) min $((SECONDS % 60)) s):"
  printf 'test:   %s\n' "${phase_times[@]}"
}
trap report_times EXIT

FRS_CMAKE_ARGS="-DFRS_WERROR=ON ${FRS_CMAKE_ARGS:-}" FRS_SETUP_TARGETS="frs_unit_tests frs_model_tests" \
  bash "$root/scripts/setup.sh"
phase_done "set-up: packages, models, build for ctest"

# Meanwhile, at nice 19: the rest of the Release build (benchmarks), then the sanitizer build.
# In a session of its own (setsid), so that a failure below stops the whole build with it. A
# session is its own scheduling group where the kernel groups sessions (autogroup): nice
# alone would only rank it against itself there, and the build took half the CPU from ctest
# (ctest 831 s instead of 439 s, measured); the group's own nice value ranks it below ctest.
background_log="$build_dir/test-background-build.log"
setsid nice -n 19 bash -c '
  echo 19 >/proc/self/autogroup 2>/dev/null || true
  cmake --build "$1" && bash "$2/scripts/fuzz.sh" --build-only --unit-tests' \
  background-build "$build_dir" "$root" >"$background_log" 2>&1 &
background=$!
trap 'kill -- -$background 2>/dev/null || true; report_times' EXIT

ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
phase_done "ctest (benchmarks and sanitizer build beside it)"
if ! wait $background; then
  echo "test: the benchmarks' or the sanitizer build failed ($background_log):" >&2
  tail -40 "$background_log" >&2
  exit 1
fi
phase_done "rest of that build, after ctest"

# Bad input must never crash: the unit tests again with ASan + UBSan (clang; the objects the
# fuzzers are built from), in shards side by side (gtest's sharding: each test runs in exactly
# one shard) against one PostgreSQL server; each shard's output is shown if it fails. Four
# shards on two cores, so that the shard with the longest tests leaves no core idle (46 s,
# against 54 s with two shards and 66 s with one process, in fresh clones).
postgres_state="$sanitizer_dir/unit-tests-postgres.state"
bash "$root/tests/scripts/postgres.sh" start "$postgres_state" >/dev/null
trap 'bash "$root/tests/scripts/postgres.sh" stop "$postgres_state" >/dev/null 2>&1 || true; report_times' EXIT
shards=4
shard_pids=()
for ((shard = 0; shard < shards; ++shard)); do
  FRS_TEST_POSTGRES_STATE="$postgres_state" GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$shard \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$sanitizer_dir/tests/frs_unit_tests" --gtest_brief=1 >"$sanitizer_dir/unit-tests-shard-$shard.log" 2>&1 &
  shard_pids+=($!)
done
shards_failed=0
for ((shard = 0; shard < shards; ++shard)); do
  if ! wait "${shard_pids[$shard]}"; then
    echo "test: unit tests under ASan + UBSan, shard $((shard + 1)) of $shards, failed:" >&2
    cat "$sanitizer_dir/unit-tests-shard-$shard.log" >&2
    shards_failed=1
  fi
done
bash "$root/tests/scripts/postgres.sh" stop "$postgres_state" >/dev/null
trap report_times EXIT
((shards_failed == 0)) || exit 1
tail -q -n 1 "$sanitizer_dir"/unit-tests-shard-*.log
phase_done "unit tests under ASan + UBSan"

# Hostile input: each libFuzzer target for a bounded time (FRS_FUZZ_SECONDS, default 60)
# from its seeds and regression corpus, one per core at a time.
bash "$root/scripts/fuzz.sh" --run-only
phase_done "fuzzers"
echo "test: all passed"
