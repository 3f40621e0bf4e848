#include "frs/live/live_recognizer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/text_fields.h"
#include "frs/core/url.h"

namespace frs {
// What a camera keeps per track. Not in the anonymous namespace: LiveRecognizer::Camera
// holds it, and a class with linkage must not hold a type without (-Wsubobject-linkage).
namespace live_tracks {

// One identity's evidence within one track.
struct Vote {
  int count = 0;
  Candidate best;                           // the nearest sighting
  std::optional<float> runner_up_distance;  // next identity at that sighting
  std::int64_t captured_at_ms = 0;
  std::vector<std::uint8_t> face_jpeg;
  Embedding face_descriptor{};   // the sighting's own descriptor
  Embedding track_descriptor{};  // the track's fused descriptor that was searched
};

// A chip embedded for a track, with its measured quality (after alignment).
struct TrackChip {
  Embedding descriptor{};
  float quality = 0;
};

struct TrackState {
  float best_quality = -1;
  int descriptors = 0;
  // By descriptor model: the best `fuse_chips` so far, best first.
  std::map<std::string, std::vector<TrackChip>, std::less<>> best_chips;
  std::int64_t last_try_ms = 0;
  std::map<std::int64_t, Vote> votes;  // by identity id
  std::set<std::int64_t> alerted;
};

}  // namespace live_tracks

namespace {

using live_tracks::TrackChip;
using live_tracks::TrackState;
using live_tracks::Vote;

// Adds a chip to the track's best ones (of one model) and returns the descriptor to search
// with: the quality-weighted mean of the best `fuse_chips` chips.
Embedding fuse_into(std::vector<TrackChip>& chips, const Embedding& descriptor, float quality,
                    int fuse_chips) {
  chips.insert(std::upper_bound(chips.begin(), chips.end(), quality,
                                [](float q, const TrackChip& c) { return q > c.quality; }),
               TrackChip{descriptor, quality});
  if (chips.size() > static_cast<std::size_t>(fuse_chips)) chips.pop_back();
  if (chips.size() == 1) return descriptor;
  std::vector<Embedding> descriptors;
  std::vector<float> weights;
  for (const TrackChip& c : chips) {
    descriptors.push_back(c.descriptor);
    weights.push_back(std::max(0.05f, c.quality));  // a poor chip still counts a little
  }
  return weighted_mean_embedding(descriptors, weights);
}

std::vector<std::uint8_t> face_crop_jpeg(const cv::Mat& bgr, const cv::Rect2f& box) {
  // A little context around the face helps the human who reviews the alert.
  const float pad = 0.25f * std::max(box.width, box.height);
  const cv::Rect wanted(
      cv::Point(static_cast<int>(box.x - pad), static_cast<int>(box.y - pad)),
      cv::Point(static_cast<int>(box.br().x + pad), static_cast<int>(box.br().y + pad)));
  const cv::Rect inside = wanted & cv::Rect(0, 0, bgr.cols, bgr.rows);
  std::vector<std::uint8_t> jpeg;
  if (inside.area() > 0) cv::imencode(".jpg", bgr(inside), jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
  return jpeg;
}

void check_camera(const CameraConfig& c) {
  // Names go into logs, metrics labels and terminals: printable text only.
  check_text(c.name, "camera name", fields::kCameraName);
  check_text(c.source.url, "camera URL", fields::kCameraUrl);
  if (c.watchlists.size() > fields::kMaxNamesPerList) {
    throw Error(ErrorCode::kInvalidArgument,
                "a camera checks at most " + std::to_string(fields::kMaxNamesPerList) +
                    " watchlists, got " + std::to_string(c.watchlists.size()));
  }
  for (const std::string& w : c.watchlists) check_text(w, "watchlist name", fields::kWatchlistName);
  if (!(c.analyse_fps >= 0.1 && c.analyse_fps <= 60)) {
    throw Error(ErrorCode::kInvalidArgument, "camera " + quote_for_message(c.name) +
                                                 ": analyse_fps must be in 0.1..60, got " +
                                                 std::to_string(c.analyse_fps));
  }
  if (c.region && (c.region->width <= 0 || c.region->height <= 0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "camera " + quote_for_message(c.name) + ": empty region");
  }
}

}  // namespace

struct LiveRecognizer::Camera {
  explicit Camera(const CameraConfig& c, const TrackerOptions& t) : config(c), tracker(t) {}
  CameraConfig config;
  std::unique_ptr<CameraStream> stream;

  // Under LiveRecognizer::mutex_.
  std::optional<VideoFrame> pending;
  bool busy = false;
  bool removed = false;
  std::chrono::steady_clock::time_point next_due{};  // when the next frame may be taken
  std::uint64_t frames_analysed = 0, frames_skipped = 0, faces = 0, tracks = 0, alerts = 0;
  std::vector<Watchlist> matching;  // what it matches against (matching_set, kept current)

  // Only the worker that holds `busy` touches these.
  std::chrono::steady_clock::time_point last_summary = std::chrono::steady_clock::now();
  FaceTracker tracker;
  std::map<std::uint64_t, live_tracks::TrackState> track_states;
  std::map<std::int64_t, std::int64_t> last_alert_ms;  // by identity id
};

LiveRecognizer::LiveRecognizer(const FaceEngine& engine, Gallery& gallery, AlertStore& alerts,
                               AlertFeed& feed, const DecisionOptions& decisions, int workers)
    : engine_(engine), gallery_(gallery), alerts_(alerts), feed_(feed), decisions_(decisions) {
  if (decisions.chips_per_track < 1 || decisions.chips_per_track > 32 ||
      decisions.votes_needed < 1 || decisions.votes_needed > 32 || decisions.fuse_chips < 1 ||
      decisions.fuse_chips > 32 || decisions.thin_margin_votes < 1 ||
      decisions.thin_margin_votes > 32) {
    throw Error(ErrorCode::kInvalidArgument,
                "chips_per_track, votes_needed, fuse_chips and thin_margin_votes must be in "
                "1..32");
  }
  if (decisions.margin < 0 || decisions.margin > 1 || decisions.thin_margin < 0 ||
      decisions.thin_margin > 1 || decisions.quality_gain < 0 || decisions.quality_gain > 1 ||
      decisions.cooldown_ms < 0 || decisions.retry_ms < 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "margin, thin_margin and quality_gain must be in 0..1, cooldown_ms >= 0, "
                "retry_ms >= 1");
  }
  FaceTracker validate(decisions.tracker);
  const int count =
      workers > 0 ? workers : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < count; ++i) workers_.emplace_back([this] { work(); });
  monitor_ = std::thread([this] { monitor(); });
}

LiveRecognizer::~LiveRecognizer() {
  std::map<std::string, std::shared_ptr<Camera>> cameras;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    cameras.swap(cameras_);
  }
  frame_ready_.notify_all();
  monitor_wake_.notify_all();
  for (auto& w : workers_) w.join();
  monitor_.join();
  for (const auto& [name, camera] : cameras) {
    std::vector<std::string> names;
    for (const Watchlist& w : camera->matching) names.push_back(w.name);
    if (!names.empty()) tell_matching({name, false, names, "server stopping"});
  }
  cameras.clear();  // stops the streams (joins their threads)
}

void LiveRecognizer::tell_matching(const MatchingEvent& event) noexcept {
  if (!matching_listener_) return;
  try {
    matching_listener_(event);
  } catch (const std::exception& e) {
    spdlog::error("camera={} event=matching_record_failed error={}", logfmt_value(event.camera),
                  logfmt_value(e.what()));
  }
}

void LiveRecognizer::check_new_camera(const CameraConfig& config) const {
  check_camera(config);
  if (source_policy_) check_camera_source(config.source.url, *source_policy_);
  for (const std::string& w : config.watchlists) {
    if (gallery_.store().find_watchlist(w)) continue;
    throw Error(ErrorCode::kNotFound,
                "camera " + quote_for_message(config.name) + ": watchlist " + quote_for_message(w) +
                    " does not exist (create it first; no watchlists = all of them)");
  }
}

void LiveRecognizer::add_camera(const CameraConfig& config, MissingWatchlists missing) {
  if (missing == MissingWatchlists::kRefuse) {
    check_new_camera(config);
  } else {
    check_camera(config);
    if (source_policy_) check_camera_source(config.source.url, *source_policy_);
    for (const std::string& w : config.watchlists) {
      if (gallery_.store().find_watchlist(w)) continue;
      spdlog::warn("camera={} event=watchlist_missing watchlist={}", logfmt_value(config.name),
                   logfmt_value(w));
    }
  }
  auto camera = std::make_shared<Camera>(config, decisions_.tracker);
  {
    std::lock_guard lock(mutex_);
    if (cameras_.count(config.name)) {
      throw Error(ErrorCode::kAlreadyExists,
                  "camera " + quote_for_message(config.name) + " already exists");
    }
    cameras_[config.name] = camera;
  }
  const auto min_gap = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / config.analyse_fps));
  std::weak_ptr<Camera> weak = camera;
  CameraSourceOptions source = config.source;
  source.name = config.name;
  try {
    auto stream = std::make_unique<CameraStream>(source, [this, weak, min_gap](VideoFrame f) {
      auto c = weak.lock();
      if (!c) return;
      const auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard lock(mutex_);
        if (now < c->next_due) return;  // over the analysis rate
        // Frames are due on a fixed schedule so the analysed rate is the configured one
        // (a minimum gap since the last accepted frame gave 7.5 of 10 fps from a 30 fps
        // stream); after a pause the schedule starts again from now.
        c->next_due = now - c->next_due > min_gap ? now + min_gap : c->next_due + min_gap;
        if (c->pending) ++c->frames_skipped;  // never a backlog: the newest frame wins
        c->pending = std::move(f);
      }
      frame_ready_.notify_one();
    });
    std::lock_guard lock(mutex_);  // workers and cameras() read it under the lock
    camera->stream = std::move(stream);
  } catch (...) {
    std::lock_guard lock(mutex_);
    cameras_.erase(config.name);
    throw;
  }
  {
    std::lock_guard refresh(refresh_mutex_);
    const MatchingSet set = matching_set(config, now_unix_ms());
    std::vector<std::string> names;
    for (const Watchlist& w : set.matching) names.push_back(w.name);
    if (matching_listener_ && !names.empty()) {
      try {
        matching_listener_({config.name, true, names, "camera added"});
      } catch (...) {
        stop_camera(config.name);  // not recorded: not matching either
        throw;
      }
    }
    std::lock_guard lock(mutex_);
    camera->matching = set.matching;
  }
  std::string watchlists;
  for (const std::string& w : config.watchlists) watchlists += (watchlists.empty() ? "" : ",") + w;
  spdlog::info("camera={} event=added url={} analyse_fps={} watchlists={}",
               logfmt_value(config.name), logfmt_value(redact_url(config.source.url)),
               config.analyse_fps, logfmt_value(watchlists.empty() ? "all" : watchlists));
}

void LiveRecognizer::remove_camera(const std::string& name) {
  std::lock_guard refresh(refresh_mutex_);
  const std::vector<std::string> watchlists = stop_camera(name);
  if (!watchlists.empty()) tell_matching({name, false, watchlists, "camera removed"});
  spdlog::info("camera={} event=removed", logfmt_value(name));
}

std::vector<std::string> LiveRecognizer::stop_camera(const std::string& name) {
  std::shared_ptr<Camera> camera;
  std::unique_ptr<CameraStream> stream;
  {
    std::lock_guard lock(mutex_);
    auto it = cameras_.find(name);
    if (it == cameras_.end()) {
      throw Error(ErrorCode::kNotFound, "camera " + quote_for_message(name) + " does not exist");
    }
    camera = it->second;
    camera->removed = true;
    cameras_.erase(it);
    stream = std::move(camera->stream);  // under the lock: workers read it under the lock
  }
  // Stopped outside the lock (it joins the stream's thread, whose frame handler takes the
  // lock); a worker still analysing the camera's last frame keeps `camera` alive.
  stream.reset();
  std::vector<std::string> names;
  std::lock_guard lock(mutex_);
  for (const Watchlist& w : camera->matching) names.push_back(w.name);
  return names;
}

LiveRecognizer::MatchingSet LiveRecognizer::matching_set(const CameraConfig& config,
                                                         std::int64_t at_ms) const {
  MatchingSet out;
  std::vector<Watchlist> named;
  if (config.watchlists.empty()) {
    named = gallery_.store().list_watchlists();
  } else {
    for (const std::string& name : config.watchlists) {
      if (auto w = gallery_.store().find_watchlist(name)) {
        named.push_back(std::move(*w));
      } else {
        out.missing.push_back(name);
      }
    }
  }
  for (Watchlist& w : named) {
    if (gallery_.authorization_in_force(w.id, at_ms)) {
      out.matching.push_back(std::move(w));
    } else {
      out.unauthorized.push_back(w.name);
    }
  }
  return out;
}

void LiveRecognizer::refresh_matching() {
  std::lock_guard refresh(refresh_mutex_);
  std::vector<std::pair<std::string, CameraConfig>> configs;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, c] : cameras_) configs.emplace_back(name, c->config);
  }
  const std::int64_t now = now_unix_ms();
  for (const auto& [name, config] : configs) {
    const MatchingSet set = matching_set(config, now);
    std::vector<Watchlist> before;
    {
      std::lock_guard lock(mutex_);
      const auto it = cameras_.find(name);
      if (it == cameras_.end()) continue;  // removed meanwhile (and told so)
      before = it->second->matching;
      it->second->matching = set.matching;
    }
    // By id: a watchlist deleted and created again under its name is another watchlist.
    const auto has = [](const std::vector<Watchlist>& list, const Watchlist& w) {
      return std::any_of(list.begin(), list.end(),
                         [&](const Watchlist& x) { return x.id == w.id; });
    };
    const auto listed = [](const std::vector<std::string>& list, const std::string& w) {
      return std::find(list.begin(), list.end(), w) != list.end();
    };
    std::map<std::string, std::vector<std::string>> stopped, started;  // by reason
    for (const Watchlist& w : before) {
      if (has(set.matching, w)) continue;
      stopped[listed(set.unauthorized, w.name) ? "authorisation expired" : "watchlist deleted"]
          .push_back(w.name);
    }
    for (const Watchlist& w : set.matching) {
      if (!has(before, w)) started["authorised"].push_back(w.name);
    }
    for (const auto& [reason, names] : stopped) {
      tell_matching({name, false, names, reason});
      for (const std::string& w : names) {
        spdlog::warn("camera={} event=matching_stopped watchlist={} reason={}", logfmt_value(name),
                     logfmt_value(w), logfmt_value(reason));
      }
    }
    for (const auto& [reason, names] : started) {
      tell_matching({name, true, names, reason});
      for (const std::string& w : names) {
        spdlog::info("camera={} event=matching_started watchlist={} reason={}", logfmt_value(name),
                     logfmt_value(w), logfmt_value(reason));
      }
    }
  }
}

void LiveRecognizer::monitor() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    monitor_wake_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) return;
    lock.unlock();
    try {
      refresh_matching();
    } catch (const std::exception& e) {
      spdlog::error("event=matching_refresh_failed error={}", logfmt_value(e.what()));
    }
    lock.lock();
  }
}

std::vector<CameraReport> LiveRecognizer::cameras() const {
  std::vector<CameraConfig> configs;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, c] : cameras_) configs.push_back(c->config);
  }
  // Which watchlists exist and are authorised, asked before taking the lock (store reads).
  std::map<std::string, MatchingSet> sets;
  const std::int64_t now = now_unix_ms();
  for (const CameraConfig& config : configs) sets[config.name] = matching_set(config, now);
  std::vector<CameraReport> out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, c] : cameras_) {
    CameraReport r;
    r.config = c->config;
    r.status = c->stream ? c->stream->status() : CameraStatus{};
    r.frames_analysed = c->frames_analysed;
    r.frames_skipped = c->frames_skipped;
    r.faces = c->faces;
    r.tracks = c->tracks;
    r.alerts = c->alerts;
    const auto it = sets.find(name);
    if (it != sets.end()) {
      r.missing_watchlists = it->second.missing;
      r.unauthorized_watchlists = it->second.unauthorized;
      for (const Watchlist& w : it->second.matching) r.matching_watchlists.push_back(w.name);
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::shared_ptr<LiveRecognizer::Camera> LiveRecognizer::next_ready() {
  // Oldest-waiting first would need timestamps; cameras are few, so take the first ready
  // one after the one served last (round robin keeps one camera from starving others).
  std::shared_ptr<Camera> first_ready;
  for (auto& [name, c] : cameras_) {
    if (!c->pending || c->busy) continue;
    if (!first_ready) first_ready = c;
    if (name > served_last_) {
      served_last_ = name;
      return c;
    }
  }
  if (first_ready) served_last_ = first_ready->config.name;
  return first_ready;
}

void LiveRecognizer::work() {
  while (true) {
    std::shared_ptr<Camera> camera;
    VideoFrame frame;
    {
      std::unique_lock lock(mutex_);
      frame_ready_.wait(lock, [&] { return stopping_ || (camera = next_ready()) != nullptr; });
      if (stopping_) return;
      frame = std::move(*camera->pending);
      camera->pending.reset();
      camera->busy = true;
    }
    try {
      analyse(*camera, std::move(frame));
    } catch (const std::exception&) {
      // A frame that cannot be analysed is skipped; the camera goes on.
    }
    {
      std::lock_guard lock(mutex_);
      camera->busy = false;
    }
    frame_ready_.notify_one();
  }
}

namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

void LiveRecognizer::analyse(Camera& camera, VideoFrame frame) {
  const auto frame_start = std::chrono::steady_clock::now();
  std::vector<Detection> faces = engine_.detect(frame.bgr);
  detect_ms_.record(ms_since(frame_start));
  if (camera.config.region) {
    std::erase_if(faces, [&](const Detection& f) {
      const cv::Point2f c(f.box.x + f.box.width / 2, f.box.y + f.box.height / 2);
      return !cv::Rect2f(*camera.config.region).contains(c);
    });
  }
  std::vector<cv::Rect2f> boxes;
  for (const Detection& f : faces) boxes.push_back(f.box);
  const std::vector<std::uint64_t> ids = camera.tracker.update(frame.captured_at_ms, boxes);
  for (const Track& ended : camera.tracker.take_ended(frame.captured_at_ms)) {
    camera.track_states.erase(ended.id);
  }
  std::uint64_t new_tracks = 0;
  std::vector<Alert> decided;
  // The watchlists searched in this frame, by descriptor model, found before its first
  // search.
  using TargetsByModel = std::map<std::string, std::vector<std::string>>;
  std::optional<TargetsByModel> targets;
  for (std::size_t i = 0; i < faces.size(); ++i) {
    auto [state_it, created] = camera.track_states.try_emplace(ids[i]);
    new_tracks += created ? 1 : 0;
    TrackState& track = state_it->second;
    const Detection& face = faces[i];
    const bool first_chips = track.descriptors < decisions_.chips_per_track;
    const bool undecided = track.alerted.empty();
    if (!first_chips && !undecided) continue;
    // Landmarks cost several ms a face: only the faces about to be embedded get them,
    // chosen by a quality estimate from the detection alone.
    const float quality = estimate_quality(frame.bgr, face).score;
    const bool better = quality > track.best_quality + decisions_.quality_gain;
    const bool retry_due = frame.captured_at_ms - track.last_try_ms >= decisions_.retry_ms;
    if (!first_chips && !better && !retry_due) continue;
    track.best_quality = std::max(track.best_quality, quality);
    track.last_try_ms = frame.captured_at_ms;
    ++track.descriptors;
    const auto align_start = std::chrono::steady_clock::now();
    std::vector<Face> one = {engine_.align(frame.bgr, face)};
    align_ms_.record(ms_since(align_start));
    // Only watchlists with an authorisation in force at this moment: one that has just
    // expired is not matched against even before the monitor notices.
    if (!targets) {
      std::vector<Watchlist> matching;
      {
        std::lock_guard lock(mutex_);
        matching = camera.matching;
      }
      std::vector<std::string> names;
      const std::int64_t now = now_unix_ms();
      for (const Watchlist& w : matching) {
        if (gallery_.authorization_in_force(w.id, now)) names.push_back(w.name);
      }
      // A deleted watchlist does not stop matching against the camera's others (cameras()
      // reports it; the names collected here are not needed).
      std::vector<std::string> deleted;
      targets = names.empty() ? TargetsByModel{} : gallery_.watchlists_by_model(names, &deleted);
    }
    // Each model's watchlists are matched with the track described by that model; the
    // runner-up of a decision is of the same model (distances of two are not comparable).
    for (const auto& [model_id, names] : *targets) {
      const DescriptorModel& model = descriptor_model(model_id);
      const auto embed_start = std::chrono::steady_clock::now();
      std::vector<Face> described = one;
      engine_.embed(described, model);
      embed_ms_.record(ms_since(embed_start));
      const Embedding& face_descriptor = *described[0].embedding;
      std::vector<Embedding> query = {fuse_into(track.best_chips[model_id], face_descriptor,
                                                one[0].quality.score, decisions_.fuse_chips)};
      engine_.finish(query[0], &model);  // a mean of unit descriptors is shorter than one
      // Two identities, unrestricted, so the runner-up is known; each watchlist's own
      // threshold is applied below.
      const auto search_start = std::chrono::steady_clock::now();
      std::vector<std::string> deleted;
      const auto found = gallery_.search(query, model_id, names, 2, 4.0f, &deleted)[0];
      search_ms_.record(ms_since(search_start));
      if (found.empty()) continue;
      const Candidate& best = found[0];
      const auto watchlist = gallery_.store().find_watchlist(best.watchlist);
      if (!watchlist || best.distance > gallery_.threshold_of(*watchlist)) continue;
      Vote& vote = track.votes[best.identity_id];
      ++vote.count;
      if (vote.count == 1 || best.distance < vote.best.distance) {
        vote.best = best;
        vote.runner_up_distance =
            found.size() > 1 ? std::optional<float>(found[1].distance) : std::nullopt;
        vote.captured_at_ms = frame.captured_at_ms;
        vote.face_jpeg = face_crop_jpeg(frame.bgr, face.box);
        vote.face_descriptor = face_descriptor;
        vote.track_descriptor = query[0];
      }
      if (track.alerted.count(best.identity_id) || vote.count < decisions_.votes_needed) continue;
      const float margin = found.size() > 1 ? found[1].distance - best.distance : 1.0f;
      if (decisions_.margin > 0 && margin < decisions_.margin) continue;
      if (margin < decisions_.thin_margin && vote.count < decisions_.thin_margin_votes) continue;
      track.alerted.insert(best.identity_id);
      auto last = camera.last_alert_ms.find(best.identity_id);
      if (last != camera.last_alert_ms.end() &&
          frame.captured_at_ms - last->second < decisions_.cooldown_ms) {
        continue;  // the same sighting, seen again by a restarted track
      }
      camera.last_alert_ms[best.identity_id] = frame.captured_at_ms;
      Alert alert;
      alert.camera = camera.config.name;
      alert.captured_at_ms = vote.captured_at_ms;
      alert.detected_at_ms = now_unix_ms();
      alert.track_id = ids[i];
      if (const Track* t = camera.tracker.find(ids[i])) alert.track_path = t->path;
      alert.identity_id = vote.best.identity_id;
      alert.external_id = vote.best.external_id;
      alert.display_name = vote.best.display_name;
      alert.watchlist = vote.best.watchlist;
      alert.face_id = vote.best.face_id;
      alert.distance = vote.best.distance;
      alert.runner_up_distance = vote.runner_up_distance;
      alert.face_jpeg = vote.face_jpeg;
      alert.face_descriptor = vote.face_descriptor;
      alert.track_descriptor = vote.track_descriptor;
      decided.push_back(std::move(alert));
    }
  }
  for (Alert& alert : decided) {
    // Logged before anyone hears of it: a subscriber never sees an alert the log lacks.
    const Alert stored = alerts_.append(std::move(alert));
    feed_.publish(stored);
    const auto delay_ms = now_unix_ms() - stored.captured_at_ms;
    alert_delay_ms_.record(static_cast<double>(delay_ms));
    // Ids only: names of watchlisted people stay in the access-controlled alert log.
    spdlog::info(
        "camera={} event=alert alert_id={} track_id={} identity_id={} watchlist={} "
        "distance={:.3f} delay_ms={}",
        logfmt_value(camera.config.name), stored.id, stored.track_id, stored.identity_id,
        logfmt_value(stored.watchlist), stored.distance, delay_ms);
  }
  frame_ms_.record(ms_since(frame_start));
  // A line a minute per working camera: enough to see one fall behind in the logs alone.
  const auto now = std::chrono::steady_clock::now();
  const bool summary_due = now - camera.last_summary >= std::chrono::minutes(1);
  CameraCounters stream;
  CameraReport totals;
  {
    std::lock_guard lock(mutex_);
    ++camera.frames_analysed;
    camera.faces += faces.size();
    camera.tracks += new_tracks;
    camera.alerts += decided.size();
    if (summary_due) {
      if (camera.stream) stream = camera.stream->status().counters;
      totals.frames_analysed = camera.frames_analysed;
      totals.frames_skipped = camera.frames_skipped;
      totals.faces = camera.faces;
      totals.tracks = camera.tracks;
      totals.alerts = camera.alerts;
    }
  }
  if (summary_due) {
    camera.last_summary = now;
    spdlog::info(
        "camera={} event=summary frames_in={} frames_analysed={} frames_skipped={} "
        "frames_dropped={} faces={} tracks={} alerts={} reconnects={}",
        logfmt_value(camera.config.name), stream.frames_in, totals.frames_analysed,
        totals.frames_skipped, stream.frames_dropped, totals.faces, totals.tracks, totals.alerts,
        stream.reconnects);
  }
}

}  // namespace frs

namespace frs {

std::string LiveRecognizer::prometheus_metrics() const {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  const std::vector<CameraReport> reports = cameras();
  std::map<std::string, bool> waiting;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, c] : cameras_) waiting[name] = c->pending.has_value();
  }
  auto per_camera = [&](const char* name, const char* type, const char* help, auto value) {
    family(name, type, help);
    for (const CameraReport& r : reports) {
      out += std::string(name) + "{camera=\"" + prometheus_label_value(r.config.name) + "\"} " +
             std::to_string(value(r)) + "\n";
    }
  };
  per_camera("frs_camera_frames_in_total", "counter", "Decoded frames that reached frs.",
             [](const CameraReport& r) { return r.status.counters.frames_in; });
  per_camera("frs_camera_frames_analysed_total", "counter", "Frames analysed.",
             [](const CameraReport& r) { return r.frames_analysed; });
  per_camera("frs_camera_frames_dropped_total", "counter",
             "Frames replaced by a newer one before they were used.", [](const CameraReport& r) {
               return r.status.counters.frames_dropped + r.frames_skipped;
             });
  per_camera("frs_camera_reconnects_total", "counter", "Connection attempts after the first.",
             [](const CameraReport& r) { return r.status.counters.reconnects; });
  per_camera("frs_camera_faces_total", "counter", "Faces found in analysed frames.",
             [](const CameraReport& r) { return r.faces; });
  per_camera("frs_camera_tracks_total", "counter", "People followed.",
             [](const CameraReport& r) { return r.tracks; });
  per_camera("frs_camera_alerts_total", "counter", "Alerts raised.",
             [](const CameraReport& r) { return r.alerts; });
  per_camera(
      "frs_camera_streaming", "gauge", "1 while the camera delivers frames.",
      [](const CameraReport& r) { return r.status.state == CameraState::kStreaming ? 1 : 0; });
  per_camera("frs_camera_frames_waiting", "gauge", "Frames waiting for a worker (at most 1).",
             [&](const CameraReport& r) { return waiting[r.config.name] ? 1 : 0; });
  const std::pair<const char*, const LatencyHistogram*> stages[] = {
      {"frs_stage_detect_seconds", &detect_ms_},  {"frs_stage_align_seconds", &align_ms_},
      {"frs_stage_embed_seconds", &embed_ms_},    {"frs_stage_search_seconds", &search_ms_},
      {"frs_frame_analysis_seconds", &frame_ms_}, {"frs_alert_delay_seconds", &alert_delay_ms_}};
  for (const auto& [name, histogram] : stages) {
    family(name, "histogram", "Latency of a live-path stage (alert delay: capture to alert).");
    out += histogram->prometheus(name, "");
  }
  return out;
}

}  // namespace frs
