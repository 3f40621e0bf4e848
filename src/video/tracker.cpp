#include "frs/video/tracker.h"

#include <algorithm>
#include <cmath>

#include "frs/core/error.h"

namespace frs {
namespace {

float iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

cv::Point2f centre(const cv::Rect2f& r) {
  return {r.x + r.width / 2, r.y + r.height / 2};
}

cv::Rect2f predict(const Track& t, std::int64_t at_ms) {
  const cv::Rect2f& last = t.path.back().box;
  const auto dt = static_cast<float>(at_ms - t.last_seen_ms());
  return {last.x + t.velocity.x * dt, last.y + t.velocity.y * dt, last.width, last.height};
}

// How well a detection fits a track's prediction: the IoU when it is high enough, else a
// small score for a near-enough centre of similar size, else 0 (no match).
float match_score(const cv::Rect2f& predicted, const cv::Rect2f& detected,
                  const TrackerOptions& o) {
  const float overlap = iou(predicted, detected);
  if (overlap >= o.min_iou) return overlap;
  const float size_ratio = std::max(predicted.width, detected.width) /
                           std::max(1e-3f, std::min(predicted.width, detected.width));
  const cv::Point2f shift = centre(predicted) - centre(detected);
  const float distance = std::sqrt(shift.dot(shift));
  if (size_ratio <= 1.5f && distance <= o.max_centre_shift * predicted.width) {
    return 1e-3f * (1.0f - distance / (o.max_centre_shift * predicted.width + 1e-3f));
  }
  return 0.0f;
}

}  // namespace

FaceTracker::FaceTracker(const TrackerOptions& options) : options_(options) {
  if (!(options.min_iou > 0 && options.min_iou <= 1)) {
    throw Error(ErrorCode::kInvalidArgument, "tracker min_iou must be in (0, 1]");
  }
  if (options.max_gap_ms < 1 || options.max_gap_ms > 60000) {
    throw Error(ErrorCode::kInvalidArgument, "tracker max_gap_ms must be in 1..60000");
  }
}

void FaceTracker::end_stale(std::int64_t now_ms) {
  std::vector<Track> still_active;
  for (Track& t : active_) {
    (now_ms - t.last_seen_ms() > options_.max_gap_ms ? ended_ : still_active)
        .push_back(std::move(t));
  }
  active_ = std::move(still_active);
}

std::vector<std::uint64_t> FaceTracker::update(std::int64_t at_ms,
                                               const std::vector<cv::Rect2f>& boxes) {
  end_stale(at_ms);
  struct Pair {
    float score;
    std::size_t track, box;
  };
  std::vector<Pair> pairs;
  for (std::size_t t = 0; t < active_.size(); ++t) {
    const cv::Rect2f predicted = predict(active_[t], at_ms);
    for (std::size_t b = 0; b < boxes.size(); ++b) {
      const float s = match_score(predicted, boxes[b], options_);
      if (s > 0) pairs.push_back({s, t, b});
    }
  }
  // Greedy, best pair first: with the few faces of one camera this equals the optimal
  // assignment in practice and is simple to reason about.
  std::sort(pairs.begin(), pairs.end(),
            [](const Pair& a, const Pair& b) { return a.score > b.score; });
  std::vector<std::uint64_t> ids(boxes.size(), 0);
  std::vector<bool> track_taken(active_.size(), false);
  for (const Pair& p : pairs) {
    if (track_taken[p.track] || ids[p.box] != 0) continue;
    track_taken[p.track] = true;
    Track& t = active_[p.track];
    const auto dt = static_cast<float>(at_ms - t.last_seen_ms());
    if (dt > 0) {
      // Smoothed, so one jittery box does not throw the prediction off.
      const cv::Point2f step = (centre(boxes[p.box]) - centre(t.path.back().box)) * (1.0f / dt);
      t.velocity = t.path.size() == 1 ? step : t.velocity * 0.5f + step * 0.5f;
    }
    t.path.push_back({at_ms, boxes[p.box]});
    ids[p.box] = t.id;
  }
  for (std::size_t b = 0; b < boxes.size(); ++b) {
    if (ids[b] != 0) continue;
    Track t;
    t.id = next_id_++;
    t.path.push_back({at_ms, boxes[b]});
    ids[b] = t.id;
    active_.push_back(std::move(t));
  }
  return ids;
}

std::vector<Track> FaceTracker::take_ended(std::int64_t now_ms) {
  end_stale(now_ms);
  std::vector<Track> out;
  out.swap(ended_);
  return out;
}

const Track* FaceTracker::find(std::uint64_t id) const {
  for (const Track& t : active_) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace frs
