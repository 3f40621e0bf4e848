#!/usr/bin/env bash
# The whole test suite: set-up (as scripts/setup.sh, with warnings as errors), then every
# test with ctest, then the unit tests again under AddressSanitizer + UBSan, then the
# fuzzers for a minute each (scripts/fuzz.sh).
# Needs the shared test data at ../shared/testdata (or $FRS_TESTDATA).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
testdata="${FRS_TESTDATA:-$root/../shared/testdata}"
if [[ ! -d "$testdata/faces" ]]; then
  echo "test: the shared test data is missing at $testdata: put it beside the repository or set FRS_TESTDATA" >&2
  exit 1
fi

FRS_CMAKE_ARGS="-DFRS_WERROR=ON ${FRS_CMAKE_ARGS:-}" bash "$root/scripts/setup.sh"
build_dir="${FRS_BUILD_DIR:-$root/build}"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"

# Bad input must never crash: the decoder and reader tests again with sanitizers. A Debug
# build: dlib's network templates take 10+ minutes to compile optimised with sanitizers.
asan_dir="${FRS_ASAN_BUILD_DIR:-$root/build-asan}"
cmake -S "$root" -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFRS_WERROR=ON \
  -DFRS_SANITIZE=address,undefined -DFRS_BUILD_BENCH=OFF >/dev/null
cmake --build "$asan_dir" --target frs_unit_tests
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$asan_dir/tests/frs_unit_tests" --gtest_brief=1

# Hostile input: each libFuzzer target (clang, ASan + UBSan) for a bounded time
# (FRS_FUZZ_SECONDS, default 60) from its seeds and regression corpus.
bash "$root/scripts/fuzz.sh"
echo "test: all passed"
