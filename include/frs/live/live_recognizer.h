#pragma once
// Recognition on live video: every camera's newest frame goes, at the camera's analysis
// rate, to a shared pool of workers that detect and align the faces, follow them with one
// tracker per camera, embed only each track's best few chips, search the camera's
// watchlists, and decide per track. A decision becomes an alert written to the alert log
// first, then published to subscribers. Frames never queue up: a camera holds at most one
// waiting frame, and a newer one replaces it (counted as dropped).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "frs/alerts/alert_feed.h"
#include "frs/alerts/alert_store.h"
#include "frs/core/histogram.h"
#include "frs/gallery/gallery.h"
#include "frs/video/camera_sources.h"
#include "frs/video/camera_stream.h"
#include "frs/video/tracker.h"
#include "frs/vision/face_engine.h"

namespace frs {

struct CameraConfig {
  std::string name;  // unique; 1..64 characters
  CameraSourceOptions source;
  std::vector<std::string> watchlists;  // empty = all watchlists
  // Frames analysed per second at most. Default 5, range 0.1..60.
  double analyse_fps = 5;
  std::optional<cv::Rect> region;  // only faces whose centre lies inside; pixels
};

struct DecisionOptions {
  // Descriptors computed for the first chips of a track, one per analysed frame. Default
  // 3, range 1..32.
  int chips_per_track = 3;
  // After those, while the track has no decision, a chip is embedded again when its
  // quality (estimate_quality: judged before alignment, so that only the faces about to
  // be embedded pay for landmarks) beats the track's best so far by `quality_gain`
  // (default 0.05, range 0..1),
  // or when `retry_ms` have passed since the last try (default 500 ms; a face's distance
  // varies with expression and light more than the quality score tells).
  float quality_gain = 0.05f;
  std::int64_t retry_ms = 500;
  // Each search uses the quality-weighted mean of the descriptors of the track's best
  // `fuse_chips` chips so far (by measured quality), not the newest chip alone: a mean of
  // several sightings is a steadier picture of a face, and one odd chip cannot alert on
  // its own (docs/accuracy.md, "Fusing a track's chips"). Default 5, range 1..32; 1 = each
  // chip searched alone.
  int fuse_chips = 5;
  // A match needs the identity's distance at least this far below the runner-up
  // identity's (when there is one). Default 0 = off; range 0..1.
  float margin = 0;
  // Matching searches (of the same track, for the same identity) needed to alert.
  // Default 1; raise it to ask for agreement over several chips. Range 1..32.
  int votes_needed = 1;
  // When the runner-up identity is within `thin_margin` of the match (default 0.05, range
  // 0..1; 0 = off), the alert waits for `thin_margin_votes` matching searches (default 2,
  // range 1..32): two people who look alike need the track's chips to agree.
  float thin_margin = 0.05f;
  int thin_margin_votes = 2;
  // After an alert for an identity on a camera, no new alert for that pair for this long
  // (a broken and restarted track is the same sighting). Default 60000 ms.
  std::int64_t cooldown_ms = 60000;
  TrackerOptions tracker;
};

struct CameraReport {
  CameraConfig config;
  CameraStatus status;
  std::uint64_t frames_analysed = 0;
  std::uint64_t frames_skipped = 0;  // replaced by a newer frame while waiting for a worker
  std::uint64_t faces = 0;
  std::uint64_t tracks = 0;
  std::uint64_t alerts = 0;
  // Watchlists the camera names that do not exist now (deleted): not matched against.
  std::vector<std::string> missing_watchlists;
  // Watchlists it would match against (named, or all) that have no authorisation in force:
  // not matched against until one is recorded.
  std::vector<std::string> unauthorized_watchlists;
  // What it matches against now: existing, authorised watchlists, by name.
  std::vector<std::string> matching_watchlists;
};

// What add_camera does when a watchlist the camera names does not exist.
enum class MissingWatchlists {
  kRefuse,  // kNotFound (a camera added through the API)
  kReport,  // start it and report them (stored cameras at start-up: deleted meanwhile)
};

// A camera starting or stopping matching against some watchlists, for the audit log. A
// camera matches against a watchlist while both exist and the watchlist has an
// authorisation in force; each change of that set is one event.
struct MatchingEvent {
  std::string camera;
  bool started = true;                  // false: stopped
  std::vector<std::string> watchlists;  // the watchlists whose matching started or stopped
  // "camera added", "camera removed", "server stopping", "authorised", "authorisation
  // expired", "watchlist deleted", "watchlist created"
  std::string reason;
};

class LiveRecognizer {
 public:
  // `workers` threads analyse frames of all cameras (default 0 = one per core).
  LiveRecognizer(const FaceEngine& engine, Gallery& gallery, AlertStore& alerts, AlertFeed& feed,
                 const DecisionOptions& decisions, int workers = 0);
  ~LiveRecognizer();  // stops every camera and worker
  LiveRecognizer(const LiveRecognizer&) = delete;
  LiveRecognizer& operator=(const LiveRecognizer&) = delete;

  // Where cameras may point (frs-server always sets one); without, any URL CameraStream
  // plays is accepted. Call before adding cameras.
  void set_source_policy(CameraSourcePolicy policy) { source_policy_ = std::move(policy); }
  // Told of every MatchingEvent. A listener that throws when a camera starts stops the
  // camera from being added (the record could not be kept). Call before adding cameras.
  void set_matching_listener(std::function<void(const MatchingEvent&)> listener) {
    matching_listener_ = std::move(listener);
  }

  // kInvalidArgument for bad settings or a source the policy refuses, kAlreadyExists for a
  // name in use, kNotFound for an unknown watchlist (with MissingWatchlists::kRefuse).
  void add_camera(const CameraConfig& camera,
                  MissingWatchlists missing = MissingWatchlists::kRefuse);
  // What add_camera checks before it starts a camera (kInvalidArgument, kNotFound for an
  // unknown watchlist), without starting it: in cluster mode the node that claims the
  // camera starts it.
  void check_new_camera(const CameraConfig& camera) const;
  // Re-reads which watchlists each camera matches against now (a watchlist deleted,
  // created or authorised); the recognizer also does so by itself every second, which is
  // when expiring authorisations stop matching (the search path itself never matches
  // against a watchlist without an authorisation in force).
  void refresh_matching();
  // kNotFound for an unknown name.
  void remove_camera(const std::string& name);
  std::vector<CameraReport> cameras() const;

  // Prometheus text exposition of the live path: per-camera counters and state, frames
  // waiting, and the latency of each stage (detect a frame, align a face, embed a chip,
  // search a descriptor, the whole frame, capture-to-alert).
  std::string prometheus_metrics() const;

 private:
  struct Camera;
  void work();
  void analyse(Camera& camera, VideoFrame frame);
  std::shared_ptr<Camera> next_ready();                           // caller holds mutex_
  void tell_matching(const MatchingEvent& event) noexcept;        // failures are logged
  std::vector<std::string> stop_camera(const std::string& name);  // what it matched against
  // The watchlists a camera matches against at `at_ms` (existing and authorised), with
  // the reasons the others are left out.
  struct MatchingSet {
    std::vector<Watchlist> matching;
    std::vector<std::string> missing, unauthorized;
  };
  MatchingSet matching_set(const CameraConfig& config, std::int64_t at_ms) const;
  void monitor();  // refresh_matching() every second until stopping_

  const FaceEngine& engine_;
  Gallery& gallery_;
  AlertStore& alerts_;
  AlertFeed& feed_;
  DecisionOptions decisions_;
  std::optional<CameraSourcePolicy> source_policy_;
  std::function<void(const MatchingEvent&)> matching_listener_;

  LatencyHistogram detect_ms_, align_ms_, embed_ms_, search_ms_, frame_ms_, alert_delay_ms_;

  mutable std::mutex mutex_;
  std::mutex refresh_mutex_;  // one change of a camera's matching set at a time
  std::condition_variable frame_ready_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Camera>> cameras_;
  std::string served_last_;  // camera whose frame a worker took last
  std::vector<std::thread> workers_;
  std::condition_variable monitor_wake_;
  std::thread monitor_;  // last: started once the rest exists
};

}  // namespace frs
