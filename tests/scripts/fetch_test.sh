#!/usr/bin/env bash
# models/fetch.sh on a copy of the models directory: a damaged extracted model is restored
# from its verified archive, and a converted model with the wrong checksum stops the
# script with a message naming the file. No network: the archives are already there.
#   fetch_test.sh MODELS_DIR CONVERTER
set -euo pipefail
src_models="$1"
converter="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/models/download"
cp "$src_models"/download/*.tgz "$work/models/download/"
cp "$src_models"/*.onnx "$src_models"/*.json "$src_models"/*.bin "$work/models/"
export FRS_MODELS="$work/models"

# 1. A damaged detector model and a converter that writes the wrong bytes.
echo "garbage" > "$work/models/face_detection_back_256x256_barracuda.onnx"
printf '#!/bin/sh\necho wrong > "$3"\n' > "$work/bad-convert"
chmod +x "$work/bad-convert"
if bash "$root/models/fetch.sh" --converter "$work/bad-convert" 2> "$work/err"; then
  fail "fetch.sh accepted a converted model with the wrong checksum"
fi
grep -q "checksum mismatch for $work/models/dlib_face_recognition_resnet_model_v1.dat" "$work/err" \
  || fail "no checksum message naming the file: $(cat "$work/err")"
want="$(awk '$2 == "face_detection_back_256x256_barracuda.onnx" {print $1}' "$root/models/SHA256SUMS")"
got="$(sha256sum "$work/models/face_detection_back_256x256_barracuda.onnx" | cut -d' ' -f1)"
[[ "$got" == "$want" ]] || fail "the damaged detector model was not restored from its archive"

# 2. Without a converter, the missing conversion is named.
rm -f "$work/models/dlib_face_recognition_resnet_model_v1.dat"
if bash "$root/models/fetch.sh" 2> "$work/err"; then fail "fetch.sh succeeded without a converter"; fi
grep -q "pass --converter" "$work/err" || fail "no hint about --converter: $(cat "$work/err")"

# 3. --download-only restores what is downloaded and leaves the conversion (no build yet).
echo "garbage" > "$work/models/fr_feature.onnx"
bash "$root/models/fetch.sh" --download-only > /dev/null || fail "--download-only failed"
[[ ! -e "$work/models/dlib_face_recognition_resnet_model_v1.dat" ]] \
  || fail "--download-only converted the descriptor model"
want="$(awk '$2 == "fr_feature.onnx" {print $1}' "$root/models/SHA256SUMS")"
[[ "$(sha256sum "$work/models/fr_feature.onnx" | cut -d' ' -f1)" == "$want" ]] \
  || fail "--download-only did not restore the damaged model from its archive"

# 4. The real converter: everything verifies, and a second run changes nothing.
bash "$root/models/fetch.sh" --converter "$converter" > /dev/null
before="$(ls -l --time-style=full-iso "$work/models")"
bash "$root/models/fetch.sh" --converter "$converter" > /dev/null
[[ "$(ls -l --time-style=full-iso "$work/models")" == "$before" ]] || fail "a second run changed files"
echo "fetch_test: ok"
