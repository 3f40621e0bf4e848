#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/text_fields.h"
#include "frs/core/url.h"
#include "frs/service/services.h"
#include "frs/v1/live.grpc.pb.h"
#include "proto_convert.h"

namespace frs::service {
namespace {

namespace pb = ::frs::v1;
using ::frs::service::to_proto;  // the box conversion, beside this file's overloads

CameraConfig from_proto(const pb::CameraSpec& spec) {
  CameraConfig c;
  c.name = spec.name();
  c.source.url = spec.url();
  c.watchlists.assign(spec.watchlists().begin(), spec.watchlists().end());
  if (spec.analyse_fps() != 0) c.analyse_fps = spec.analyse_fps();
  if (spec.has_region() && spec.region().width() > 0 && spec.region().height() > 0) {
    c.region = cv::Rect(spec.region().x(), spec.region().y(), spec.region().width(),
                        spec.region().height());
  }
  if (!spec.rtsp_transport().empty()) c.source.rtsp_transport = spec.rtsp_transport();
  if (spec.rtsp_latency_ms() != 0) c.source.rtsp_latency_ms = spec.rtsp_latency_ms();
  return c;
}

void to_proto(const CameraReport& r, pb::Camera* out) {
  pb::CameraSpec* spec = out->mutable_spec();
  spec->set_name(r.config.name);
  spec->set_url(redact_url(r.config.source.url));  // credentials are used, never shown
  for (const auto& w : r.config.watchlists) spec->add_watchlists(w);
  spec->set_analyse_fps(r.config.analyse_fps);
  if (r.config.region) to_proto(cv::Rect2f(*r.config.region), spec->mutable_region());
  spec->set_rtsp_transport(r.config.source.rtsp_transport);
  spec->set_rtsp_latency_ms(r.config.source.rtsp_latency_ms);
  out->set_state(to_string(r.status.state));
  out->set_last_error(r.status.last_error);
  for (const std::string& w : r.matching_watchlists) out->add_matching_watchlists(w);
  const auto names = [](const std::vector<std::string>& list) {
    std::string text;
    for (const std::string& w : list) text += (text.empty() ? "" : ", ") + quote_for_message(w);
    return text;
  };
  const std::string outcome = r.matching_watchlists.empty() ? "this camera matches against nothing"
                                                            : "matched against the others only";
  std::string why;
  if (!r.missing_watchlists.empty()) {
    for (const std::string& w : r.missing_watchlists) out->add_missing_watchlists(w);
    why = "watchlist " + names(r.missing_watchlists) + " does not exist (deleted?)";
  }
  if (!r.unauthorized_watchlists.empty()) {
    for (const std::string& w : r.unauthorized_watchlists) out->add_unauthorized_watchlists(w);
    why += (why.empty() ? "" : "; ") + std::string("watchlist ") +
           names(r.unauthorized_watchlists) +
           " has no authorisation in force (frs watchlist authorize)";
  }
  if (!why.empty()) out->set_last_error(why + ": " + outcome);
  if (r.matching_watchlists.empty() && r.status.state == CameraState::kStreaming) {
    out->set_state("not_matching");
  }
  out->set_frames_in(r.status.counters.frames_in);
  out->set_frames_analysed(r.frames_analysed);
  out->set_frames_dropped(r.status.counters.frames_dropped + r.frames_skipped);
  out->set_faces(r.faces);
  out->set_tracks(r.tracks);
  out->set_alerts(r.alerts);
  out->set_reconnects(r.status.counters.reconnects);
  out->set_last_frame_at_ms(r.status.counters.last_frame_at_ms);
}

void to_proto(const Alert& a, int confirmations_needed, pb::Alert* out) {
  out->set_id(a.id);
  out->set_camera(a.camera);
  out->set_captured_at_ms(a.captured_at_ms);
  out->set_detected_at_ms(a.detected_at_ms);
  out->set_track_id(a.track_id);
  for (const TrackPoint& p : a.track_path) {
    pb::TrackPoint* point = out->add_track();
    point->set_at_ms(p.at_ms);
    to_proto(p.box, point->mutable_box());
  }
  out->set_identity_id(a.identity_id);
  out->set_external_id(a.external_id);
  out->set_display_name(a.display_name);
  out->set_watchlist(a.watchlist);
  out->set_face_id(a.face_id);
  out->set_distance(a.distance);
  if (a.runner_up_distance) out->set_runner_up_distance(*a.runner_up_distance);
  out->set_face_jpeg(std::string(a.face_jpeg.begin(), a.face_jpeg.end()));
  out->set_review(to_string(a.review));
  out->set_review_note(a.review_note);
  out->set_reviewed_by(a.reviewed_by);
  out->set_reviewed_at_ms(a.reviewed_at_ms);
  for (const AlertReview& r : a.reviews) {
    pb::AlertReview* review = out->add_reviews();
    review->set_reviewer(r.reviewer);
    review->set_decision(to_string(r.decision));
    review->set_note(r.note);
    review->set_at_ms(r.at_ms);
  }
  out->set_confirmations_needed(confirmations_needed);
}

AlertFilter from_proto(const pb::AlertFilter& f) {
  if (static_cast<std::size_t>(f.cameras_size()) > fields::kMaxNamesPerList ||
      static_cast<std::size_t>(f.watchlists_size()) > fields::kMaxNamesPerList) {
    throw Error(ErrorCode::kInvalidArgument,
                "an alert filter names at most " + std::to_string(fields::kMaxNamesPerList) +
                    " cameras and " + std::to_string(fields::kMaxNamesPerList) + " watchlists");
  }
  AlertFilter out;
  out.cameras.assign(f.cameras().begin(), f.cameras().end());
  out.watchlists.assign(f.watchlists().begin(), f.watchlists().end());
  if (f.max_distance() != 0) out.max_distance = f.max_distance();
  return out;
}

// The same test the log's query applies, for alerts that arrive live.
bool passes(const AlertFilter& f, const Alert& a) {
  auto in = [](const std::vector<std::string>& list, const std::string& v) {
    return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
  };
  return in(f.cameras, a.camera) && in(f.watchlists, a.watchlist) &&
         (!f.max_distance || a.distance <= *f.max_distance) && a.id > f.after_id;
}

class CameraService final : public pb::Cameras::Service {
 public:
  CameraService(AccessControl& access, LiveRecognizer& live, CameraStore& cameras,
                const ClusterView* cluster)
      : access_(access),
        live_(live),
        cameras_(cameras),
        cluster_(cluster != nullptr),
        view_(cluster ? *cluster : ClusterView{}) {}

  grpc::Status ClusterStatus(grpc::ServerContext* context, const pb::ClusterStatusRequest*,
                             pb::ClusterStatusResponse* response) override {
    return serve(access_, context, [&](Call&) {
      if (!cluster_) {
        throw Error(ErrorCode::kFailedPrecondition,
                    "this frs-server is not in cluster mode (frs-server --store "
                    "postgresql://...): it runs every camera itself (frs camera list)");
      }
      const std::int64_t now = view_.leases->now_ms();
      const std::uint64_t store_change = view_.gallery->last_change();
      std::map<std::string, int> held;
      std::map<std::string, CameraLease> leases;
      for (CameraLease& l : view_.leases->leases()) {
        if (l.expires_at_ms > now) ++held[l.node];
        leases[l.camera] = std::move(l);
      }
      for (const ClusterNode& n : view_.leases->nodes()) {
        pb::ClusterNodeStatus* out = response->add_nodes();
        out->set_id(n.id);
        out->set_address(n.address);
        out->set_version(n.version);
        out->set_heartbeat_age_ms(now - n.heartbeat_at_ms);
        out->set_alive(now - n.heartbeat_at_ms < view_.lease.count());
        out->set_cameras_held(held[n.id]);
        out->set_camera_capacity(n.camera_capacity);
        out->set_applied_change(n.applied_change);
        out->set_change_lag(store_change > n.applied_change ? store_change - n.applied_change : 0);
        out->set_started_at_ms(n.started_at_ms);
      }
      for (const CameraConfig& c : cameras_.list()) {
        pb::CameraLeaseStatus* out = response->add_cameras();
        out->set_camera(c.name);
        const auto it = leases.find(c.name);
        if (it == leases.end()) continue;
        const CameraLease& l = it->second;
        out->set_epoch(l.epoch);
        out->set_expires_in_ms(l.expires_at_ms - now);
        if (l.expires_at_ms <= now) continue;  // nobody holds it
        out->set_node(l.node);
        out->set_lease_age_ms(now - l.acquired_at_ms);
      }
      response->set_store_change(store_change);
      response->set_lease_ms(view_.lease.count());
      response->set_answered_by(view_.self);
    });
  }

  grpc::Status AddCamera(grpc::ServerContext* context, const pb::AddCameraRequest* request,
                         pb::Camera* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("cameras", request->spec().name());
      for (const auto& w : request->spec().watchlists()) call.target("watchlist_names", w);
      const CameraConfig config = from_proto(request->spec());
      if (cluster_) {
        // The node that claims it starts it (CameraAssigner), within a lease round.
        live_.check_new_camera(config);
        for (const CameraConfig& stored : cameras_.list()) {
          if (stored.name == config.name) {
            throw Error(ErrorCode::kAlreadyExists,
                        "camera " + quote_for_message(config.name) + " already exists");
          }
        }
        cameras_.put(config);
        CameraReport report;
        report.config = config;
        to_proto(report, response);
        return;
      }
      live_.add_camera(config);  // validates, then starts it
      try {
        cameras_.put(config);
      } catch (...) {
        live_.remove_camera(config.name);  // not stored: not running either
        throw;
      }
      for (const CameraReport& r : live_.cameras()) {
        if (r.config.name == config.name) to_proto(r, response);
      }
    });
  }

  grpc::Status RemoveCamera(grpc::ServerContext* context, const pb::RemoveCameraRequest* request,
                            pb::RemoveCameraResponse*) override {
    return serve(access_, context, [&](Call& call) {
      call.target("cameras", request->name());
      // A stored camera that could not start (say, a bad entry in the config file) is not
      // running, but can still be removed.
      bool running = !cluster_;  // in a cluster, its node stops it within a lease round
      if (running) try {
          live_.remove_camera(request->name());
        } catch (const Error& e) {
          if (e.code() != ErrorCode::kNotFound) throw;
          running = false;
        }
      if (!cameras_.remove(request->name()) && !running) {
        throw Error(ErrorCode::kNotFound,
                    "camera " + quote_for_message(request->name()) + " does not exist");
      }
    });
  }

  grpc::Status ListCameras(grpc::ServerContext* context, const pb::ListCamerasRequest*,
                           pb::ListCamerasResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      for (const CameraReport& r : live_.cameras()) to_proto(r, response->add_cameras());
      call.details()["cameras"] = response->cameras_size();
    });
  }

 private:
  AccessControl& access_;
  LiveRecognizer& live_;
  CameraStore& cameras_;
  bool cluster_;  // cameras are shared out by leases (CameraAssigner), not started here
  ClusterView view_;
};

// Streams that are writing, and since when: a watchdog resets those whose write has not
// completed within the limit (sync gRPC offers no write timeout; a Write to a client that
// reads nothing blocks its thread for good).
class StreamWatchdog {
 public:
  explicit StreamWatchdog(const AlertStreamLimits& limits)
      : limits_(limits), thread_([this] { watch(); }) {}
  ~StreamWatchdog() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // One open stream, registered for its lifetime; kResourceExhausted over max_streams.
  class Stream {
   public:
    Stream(StreamWatchdog& watchdog, grpc::ServerContext* context, const std::string& token)
        : watchdog_(watchdog), context_(context), token_(token) {
      std::lock_guard lock(watchdog_.mutex_);
      if (watchdog_.streams_.size() >= static_cast<std::size_t>(watchdog_.limits_.max_streams)) {
        throw Error(ErrorCode::kResourceExhausted,
                    "too many alert streams open (" +
                        std::to_string(watchdog_.limits_.max_streams) +
                        "): close one, or raise --max-alert-streams");
      }
      int& of_token = watchdog_.streams_of_token_[token_];
      if (of_token >= watchdog_.limits_.max_streams_per_token) {
        if (of_token == 0) watchdog_.streams_of_token_.erase(token_);
        throw Error(ErrorCode::kResourceExhausted,
                    "token '" + token_ + "' has " + std::to_string(of_token) +
                        " alert streams open, the most one token may: close one, or raise "
                        "--max-alert-streams-per-token");
      }
      ++of_token;
      watchdog_.streams_[context_] = std::nullopt;
    }
    ~Stream() {
      std::lock_guard lock(watchdog_.mutex_);
      watchdog_.streams_.erase(context_);
      if (--watchdog_.streams_of_token_[token_] <= 0) watchdog_.streams_of_token_.erase(token_);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    // Write, timed by the watchdog; false when the stream is gone (or was reset).
    bool write(grpc::ServerWriter<pb::Alert>* writer, const pb::Alert& message) {
      set_writing(std::chrono::steady_clock::now());
      const bool ok = writer->Write(message);
      set_writing(std::nullopt);
      return ok;
    }

   private:
    void set_writing(std::optional<std::chrono::steady_clock::time_point> since) {
      std::lock_guard lock(watchdog_.mutex_);
      watchdog_.streams_[context_] = since;
    }
    StreamWatchdog& watchdog_;
    grpc::ServerContext* context_;
    std::string token_;
  };

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(100));
      const auto now = std::chrono::steady_clock::now();
      for (auto& [context, since] : streams_) {
        if (!since || now - *since < limits_.write_timeout) continue;
        // Thread-safe, and it only schedules the cancellation: the blocked Write returns
        // false and the handler ends. Under the lock, so `context` is still alive.
        const std::string peer = context->peer();  // before the cancel empties it
        context->TryCancel();
        since.reset();
        spdlog::warn(
            "event=alert_stream_reset peer={} reason={}", logfmt_value(peer),
            logfmt_value("no write completed for " + std::to_string(limits_.write_timeout.count()) +
                         " ms: the client stopped reading"));
      }
    }
  }

  AlertStreamLimits limits_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  // Open streams: since when their current write has waited (none: not writing).
  std::map<grpc::ServerContext*, std::optional<std::chrono::steady_clock::time_point>> streams_;
  std::map<std::string, int> streams_of_token_;  // open streams per token name
  std::thread thread_;                           // last: started once the rest exists
};

class AlertService final : public pb::Alerts::Service {
 public:
  AlertService(AccessControl& access, AlertStore& alerts, AlertFeed& feed,
               const AlertReviewRules& review, const AlertStreamLimits& limits)
      : access_(access), alerts_(alerts), feed_(feed), review_(review), watchdog_(limits) {}

  grpc::Status StreamAlerts(grpc::ServerContext* context, const pb::StreamAlertsRequest* request,
                            grpc::ServerWriter<pb::Alert>* writer) override {
    return serve(access_, context, [&](Call& call) -> grpc::Status {
      if (request->with_images()) call.require_purpose("streaming alerts with face images");
      StreamWatchdog::Stream stream(watchdog_, context, call.caller().token);
      // Subscribed before the backlog is read, so an alert logged meanwhile is not missed
      // (ids already sent are skipped).
      const auto subscription = feed_.subscribe();
      AlertFilter filter = from_proto(request->filter());
      filter.after_id = request->live_only() ? alerts_.last_id() : request->after_id();
      filter.with_images = request->with_images();
      filter.limit = 100;
      call.details()["with_images"] = filter.with_images;
      call.details()["after_id"] = filter.after_id;
      // The row that the stream was opened, before any alert is sent; the one at its end
      // (written by serve) says how far it got.
      call.audit_now();
      std::int64_t sent = 0;
      const auto ended = [&](grpc::Status status) {
        call.details()["alerts_sent"] = sent;
        call.details()["last_id"] = filter.after_id;
        return status;
      };
      pb::Alert message;
      while (!context->IsCancelled() && !call.ended_by_token()) {
        const auto page = alerts_.list(filter);
        for (const Alert& a : page) {
          message.Clear();
          to_proto(a, review_.confirmations, &message);
          if (!stream.write(writer, message)) return ended(grpc::Status::CANCELLED);
          filter.after_id = a.id;
          ++sent;
        }
        if (page.size() < static_cast<std::size_t>(filter.limit)) break;
      }
      while (!context->IsCancelled() && !call.ended_by_token()) {
        auto a = subscription->next(std::chrono::milliseconds(250));
        if (subscription->fell_behind()) {
          return ended({grpc::StatusCode::ABORTED,
                        "fell behind: resume with after_id=" + std::to_string(filter.after_id)});
        }
        if (!a || !passes(filter, *a)) continue;
        if (!filter.with_images) a->face_jpeg.clear();
        message.Clear();
        to_proto(*a, review_.confirmations, &message);
        if (!stream.write(writer, message)) return ended(grpc::Status::CANCELLED);
        filter.after_id = a->id;
        ++sent;
      }
      return ended(grpc::Status::CANCELLED);
    });
  }

  grpc::Status ListAlerts(grpc::ServerContext* context, const pb::ListAlertsRequest* request,
                          pb::ListAlertsResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      AlertFilter filter = from_proto(request->filter());
      filter.after_id = request->after_id();
      filter.limit = request->page_size() == 0 ? 100 : request->page_size();
      const std::string& review = request->review();
      if (review == "pending") filter.review = ReviewState::kPending;
      if (review == "confirmed") filter.review = ReviewState::kConfirmed;
      if (review == "rejected") filter.review = ReviewState::kRejected;
      if (!review.empty() && !filter.review) {
        throw Error(
            ErrorCode::kInvalidArgument,
            "review must be pending, confirmed or rejected, got " + quote_for_message(review));
      }
      const auto page = alerts_.list(filter);
      for (const Alert& a : page) to_proto(a, review_.confirmations, response->add_alerts());
      call.details()["alerts_returned"] = page.size();
      if (!page.empty()) {
        call.details()["first_id"] = page.front().id;
        call.details()["last_id"] = page.back().id;
      }
      if (page.size() == static_cast<std::size_t>(filter.limit)) {
        response->set_next_after_id(page.back().id);
      }
    });
  }

  grpc::Status GetAlert(grpc::ServerContext* context, const pb::GetAlertRequest* request,
                        pb::Alert* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("alerts", request->id());
      const auto a = alerts_.get(request->id());
      if (!a) {
        throw Error(ErrorCode::kNotFound,
                    "alert " + std::to_string(request->id()) + " does not exist");
      }
      to_proto(*a, review_.confirmations, response);
    });
  }

  grpc::Status ReviewAlert(grpc::ServerContext* context, const pb::ReviewAlertRequest* request,
                           pb::Alert* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("alerts", request->id());
      // Who reviews is the token, never a request field: a reviewer field that names someone
      // else is refused rather than silently replaced.
      if (!request->reviewer().empty() && request->reviewer() != call.caller().token) {
        throw Error(ErrorCode::kInvalidArgument,
                    "reviewer " + quote_for_message(request->reviewer()) +
                        " is not the caller: the reviewer is the token's name ('" +
                        call.caller().token + "'); leave the field empty");
      }
      call.details()["decision"] = request->confirm() ? "confirmed" : "rejected";
      const Alert a = alerts_.review(
          request->id(), request->confirm() ? ReviewState::kConfirmed : ReviewState::kRejected,
          request->note(), call.caller().token, review_.confirmations);
      call.details()["outcome"] = to_string(a.review);
      call.details()["reviews"] = a.reviews.size();
      call.details()["watchlist"] = a.watchlist;
      call.details()["identity_id"] = a.identity_id;
      call.details()["detected_at_ms"] = a.detected_at_ms;
      if (a.review == ReviewState::kRejected && review_.gallery != nullptr) {
        call.details()["suppressions"] = record_suppressions(a, call);
      }
      to_proto(a, review_.confirmations, response);
    });
  }

 private:
  // A rejected alert's descriptors become known non-matches of its identity. Returns how
  // many were recorded (none when the identity was removed meanwhile, or the alert is from
  // before descriptors were kept).
  int record_suppressions(const Alert& rejected, Call& call) {
    const auto full = alerts_.get(rejected.id, false);
    if (!full) return 0;  // purged by retention meanwhile
    GalleryStore& store = review_.gallery->store();
    const auto identity = store.get_identity(rejected.identity_id);
    const auto watchlist = identity ? store.get_watchlist(identity->watchlist_id) : std::nullopt;
    if (!watchlist) return 0;  // the identity is gone: nothing left to confuse the face with
    // The alert's descriptors are of the model its watchlist had then; one re-embedded
    // since (another model, so another length: the registry's lengths differ) cannot use
    // them.
    const DescriptorModel& model = descriptor_model(watchlist->descriptor_model);
    std::vector<Suppression> add;
    for (const auto& descriptor : {full->face_descriptor, full->track_descriptor}) {
      if (!descriptor || descriptor->size() != model.dimension) continue;
      Suppression x;
      x.descriptor_model = watchlist->descriptor_model;
      x.identity_id = rejected.identity_id;
      x.descriptor = *descriptor;
      x.alert_id = rejected.id;
      x.alert_detected_at_ms = rejected.detected_at_ms;
      x.created_by = call.caller().token;
      x.note = rejected.review_note;
      add.push_back(x);
    }
    if (add.empty()) return 0;
    try {
      const auto stored = review_.gallery->add_suppressions(add);
      for (const Suppression& x : stored) call.details()["suppression_ids"].push_back(x.id);
      return static_cast<int>(stored.size());
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kNotFound) throw;
      return 0;  // the identity is gone: nothing left to confuse the face with
    }
  }

  AccessControl& access_;
  AlertStore& alerts_;
  AlertFeed& feed_;
  AlertReviewRules review_;
  StreamWatchdog watchdog_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_camera_service(AccessControl& access, LiveRecognizer& live,
                                                   CameraStore& cameras,
                                                   const ClusterView* cluster) {
  return std::make_unique<CameraService>(access, live, cameras, cluster);
}

std::unique_ptr<grpc::Service> make_alert_service(AccessControl& access, AlertStore& alerts,
                                                  AlertFeed& feed, const AlertReviewRules& review,
                                                  const AlertStreamLimits& limits) {
  if (review.confirmations < 1 || review.confirmations > 3) {
    throw Error(ErrorCode::kInvalidArgument,
                "confirmations must be in 1..3, got " + std::to_string(review.confirmations));
  }
  if (limits.max_streams < 1 || limits.max_streams > 10000 || limits.max_streams_per_token < 1 ||
      limits.max_streams_per_token > limits.max_streams ||
      limits.write_timeout < std::chrono::milliseconds(100) ||
      limits.write_timeout > std::chrono::hours(1)) {
    throw Error(ErrorCode::kInvalidArgument,
                "alert streams: max_streams must be in 1..10000, max_streams_per_token in "
                "1..max_streams and write_timeout in 100 ms..1 h");
  }
  return std::make_unique<AlertService>(access, alerts, feed, review, limits);
}

}  // namespace frs::service
