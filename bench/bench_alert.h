#pragma once
// The alert the cluster benchmarks write: about a real one's size.

#include <string>

#include "frs/alerts/alert_store.h"

namespace frs::bench {

// Alert number `i`: one of 8 cameras, a one-point track, a 6 kB face crop (about a real
// crop's size).
inline Alert bench_alert(int i) {
  Alert a;
  a.camera = "camera-" + std::to_string(i % 8);
  a.watchlist = "wanted";
  a.distance = 0.4f;
  a.detected_at_ms = i;
  a.track_path = {{1, {10, 20, 30, 40}}};
  a.face_jpeg.assign(6000, 0x5a);
  return a;
}

}  // namespace frs::bench
