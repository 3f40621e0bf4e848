#!/usr/bin/env bash
# Sets frs up (scripts/setup.sh) and runs the main job. At this stage that is the face
# engine on sample photos: detect the faces of a group photo, and compare two photos of one
# man and a photo of another.
#
#   scripts/run.sh                     the shared sample photos (../shared/testdata)
#   scripts/run.sh PHOTO_A PHOTO_B     your own photos
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
frs="${FRS_BUILD_DIR:-$root/build}/src/bin/frs"
out="${FRS_BUILD_DIR:-$root/build}/demo"
mkdir -p "$out"

if [[ $# -eq 2 ]]; then
  "$frs" detect --annotate "$out/annotated.jpg" "$1"
  "$frs" compare "$1" "$2"
  echo "boxes drawn on $1: $out/annotated.jpg"
  exit 0
fi

faces="${FRS_TESTDATA:-$root/../shared/testdata}/faces"
if [[ ! -d "$faces" ]]; then
  echo "run: no sample photos at $faces." >&2
  echo "     Run it on your own: scripts/run.sh PHOTO_A PHOTO_B (or set FRS_TESTDATA)." >&2
  exit 1
fi
group="$faces/knn/test/obama_and_biden.jpg"
echo "== frs detect: every face of $group"
"$frs" detect --annotate "$out/annotated.jpg" "$group"
echo "   boxes and landmarks drawn on $out/annotated.jpg"
echo "== frs compare: two photos of the same man (dlib's threshold: 0.6)"
"$frs" compare "$faces/obama.jpg" "$faces/obama2.jpg"
echo "== frs compare: two different men"
"$frs" compare "$faces/obama.jpg" "$faces/biden.jpg"
