#pragma once
// Joins one camera's face detections across frames into tracks: one track per person in
// view, so that decisions (and alerts) are made per person, not per frame. Association is
// greedy on IoU between each track's predicted box (constant-velocity motion) and the new
// detections, with a centre-distance fallback for faces that move far between analysed
// frames (at a few analysed frames per second a walking face often no longer overlaps).

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

namespace frs {

struct TrackerOptions {
  // Smallest IoU between a predicted and a detected box to join them. Default 0.3, (0, 1].
  float min_iou = 0.3f;
  // Without enough overlap, a detection still joins a track when its centre is within this
  // many box widths of the predicted centre and its size within a factor of 1.5 (boxes of
  // one size overlap by IoU 0.3 up to a shift of about half a width). Default 1.0, >= 0.
  float max_centre_shift = 1.0f;
  // A track not seen for this long has ended (the person left or turned away). Default
  // 1500 ms, range 1..60000.
  std::int64_t max_gap_ms = 1500;
};

struct TrackPoint {
  std::int64_t at_ms = 0;  // capture time of the frame, Unix ms
  cv::Rect2f box;          // pixels of that frame
};

struct Track {
  std::uint64_t id = 0;  // unique for the tracker's lifetime, from 1
  std::vector<TrackPoint> path;
  cv::Point2f velocity{0, 0};  // of the box centre, pixels per ms
  std::int64_t first_seen_ms() const { return path.front().at_ms; }
  std::int64_t last_seen_ms() const { return path.back().at_ms; }
};

class FaceTracker {
 public:
  explicit FaceTracker(const TrackerOptions& options = {});

  // Adds one frame's detections (captured at `at_ms`; frames in time order). Returns the
  // track id of each box, in order. Ends tracks not seen for max_gap_ms first.
  std::vector<std::uint64_t> update(std::int64_t at_ms, const std::vector<cv::Rect2f>& boxes);

  // Tracks that have ended since the last call (by update(), or by `now_ms` here).
  std::vector<Track> take_ended(std::int64_t now_ms);

  const std::vector<Track>& active() const { return active_; }
  const Track* find(std::uint64_t id) const;

 private:
  void end_stale(std::int64_t now_ms);

  TrackerOptions options_;
  std::uint64_t next_id_ = 1;
  std::vector<Track> active_;
  std::vector<Track> ended_;
};

}  // namespace frs
