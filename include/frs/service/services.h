#pragma once
// gRPC services of frs-server. This module is the only place that speaks grpc::Status:
// frs::Error codes map one to one (kInvalidArgument -> INVALID_ARGUMENT, ...).

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "frs/alerts/alert_feed.h"
#include "frs/alerts/alert_store.h"
#include "frs/core/admission.h"
#include "frs/core/cancel.h"
#include "frs/core/error.h"
#include "frs/eval/metrics.h"
#include "frs/gallery/enrollment.h"
#include "frs/gallery/gallery.h"
#include "frs/live/camera_leases.h"
#include "frs/live/camera_store.h"
#include "frs/live/live_recognizer.h"
#include "frs/service/access_control.h"
#include "frs/service/report.h"
#include "frs/vision/face_engine.h"

namespace frs::service {

// Largest watchlist size a calibration may be asked for (CreateWatchlist
// expected_identities, frs-server --default-expected-identities).
inline constexpr std::int64_t kMaxExpectedIdentities = 1'000'000'000;

// frs-server's default --max-distance-ceiling of a descriptor model: its
// default_watchlist_threshold (dlib-resnet-v1 0.496, faceplugin-v1 1.104, fused-v1 0.683)
// plus kCeilingMargin.
inline constexpr float kCeilingMargin = 0.05f;
float default_max_distance_ceiling(const DescriptorModel& model);

struct ServiceOptions {
  // Threshold of watchlists created without one: 0 (default) = calibrated with the built-in
  // impostor model (BuiltInImpostorModel) for the request's expected_identities (or
  // default_expected_identities) at default_target_fpir; > 0 = this fixed number.
  float default_max_distance = 0;
  double default_target_fpir = kDefaultTargetFpir;                        // (0, 1)
  std::int64_t default_expected_identities = kDefaultExpectedIdentities;  // >= 1
  EnrollmentRules enrollment;
  int max_photos_per_request = 32;
  // Called after a watchlist was created, deleted or authorised (the live path re-reads
  // what each camera matches against).
  std::function<void()> on_watchlists_changed;
  // Longest exigent authorisation, from its start. Default 48 h, range 1 h .. 30 days.
  std::chrono::hours exigent_max{48};
  // Which still-image searches need an authorisation in force: kLiveOnly (default) those
  // of watchlists created live_only, kAlways every one, kNever none.
  enum class SearchAuthorization { kNever, kLiveOnly, kAlways };
  SearchAuthorization search_authorization = SearchAuthorization::kLiveOnly;
  // How long alerts (and the suppressions learnt from them) are kept, to tell when a
  // suppression expires. Default 30 days.
  std::chrono::milliseconds alert_retention{std::chrono::hours(24 * 30)};
  // The face crop of an alert (empty when it is gone or has none): a re-embedding describes
  // the suppressions learnt from rejected alerts again from it. Null: they are not carried
  // over to the new model (and stop suppressing after the switch).
  std::function<std::vector<std::uint8_t>(std::int64_t alert_id)> alert_face;
  // Images decoded and analysed at once across all calls (each holds up to
  // ImageLimits::max_decoded_bytes); null = no bound. frs-server always sets it.
  std::shared_ptr<Admission> image_slots;
};

// The threshold of a watchlist of `model` created without one, calibrated with the model's
// built-in impostor model for `expected_identities` at options.default_target_fpir (at most
// the gallery's ceiling), and its basis as stored (JSON of frs.v1.ThresholdBasis).
std::pair<float, std::string> built_in_threshold(const Gallery& gallery,
                                                 const DescriptorModel& model,
                                                 const ServiceOptions& options,
                                                 std::int64_t expected_identities);

// The cancellation of a call: the client cancelled it, or its deadline passed. Long work
// checks it and stops (the CPU is not spent on an answer nobody waits for).
Cancellation cancellation_of(const Call& call);

// A slot of options.image_slots for one image (none when there is no bound): hold it while
// the image is decoded and analysed.
std::optional<Admission::Slot> image_slot(const ServiceOptions& options,
                                          const Cancellation& cancel);

// An error that carries status details for the client (the grpc-status-details-bin
// trailer: a serialized frs.v1.ErrorStatus).
class DetailedError : public Error {
 public:
  DetailedError(ErrorCode code, const std::string& message, std::string details)
      : Error(code, message), details_(std::move(details)) {}
  const std::string& details() const { return details_; }

 private:
  std::string details_;
};

// The server's interceptors, for ServerBuilder::experimental().SetInterceptorCreators: the
// access decision of every call (access_control.h), and a request that does not parse (a
// string field with invalid UTF-8) answered INVALID_ARGUMENT naming the field, not INTERNAL
// with no message. Call once, before the server starts (it also routes protobuf's log
// lines to the server log).
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
make_interceptors(AccessControl& access);

std::unique_ptr<grpc::Service> make_gallery_service(AccessControl& access, Gallery& gallery,
                                                    const FaceEngine& engine,
                                                    const ServiceOptions& options);
std::unique_ptr<grpc::Service> make_search_service(AccessControl& access, Gallery& gallery,
                                                   const FaceEngine& engine,
                                                   const ServiceOptions& options);
// Evaluation (frs.v1.Evaluation): accuracy on the caller's labelled photos, nothing stored.
std::unique_ptr<grpc::Service> make_evaluation_service(AccessControl& access,
                                                       const FaceEngine& engine,
                                                       const ServiceOptions& options);
// Cameras (frs.v1.Cameras): changes go to the live recognizer and the camera store.
// Cluster mode's view for the camera service (frs-server --store postgresql://...).
struct ClusterView {
  CameraLeaseStore* leases = nullptr;
  GalleryStore* gallery = nullptr;  // its last change number, against each node's
  std::string self;                 // this node's id
  std::chrono::milliseconds lease{5000};
};
// `cluster` (null: one node): cameras are stored for the cluster's nodes to share out
// (CameraAssigner), not started by the node that was called; ListCameras shows those
// running on this node, ClusterStatus all of them.
std::unique_ptr<grpc::Service> make_camera_service(AccessControl& access, LiveRecognizer& live,
                                                   CameraStore& cameras,
                                                   const ClusterView* cluster = nullptr);
struct AlertStreamLimits {
  // StreamAlerts calls open at once; more: RESOURCE_EXHAUSTED. Default 64, range 1..10000.
  int max_streams = 64;
  // A stream whose write has not completed for this long (the client stopped reading; its
  // window is full) is reset, freeing the server thread it holds. The client sees the
  // stream end (CANCELLED: a status cannot reach a client that reads nothing, it would
  // queue behind the unread alerts) and resumes with after_id as after any cut. A client
  // that reads again sooner loses nothing, or gets ABORTED "fell behind" if more alerts
  // came meanwhile than its queue holds. Default 10 s, range 100 ms .. 1 h.
  std::chrono::milliseconds write_timeout{10000};
  // StreamAlerts calls open at once by one token. Default 8, range 1..max_streams.
  int max_streams_per_token = 8;
};

// How alerts are reviewed.
struct AlertReviewRules {
  // Confirmations by different people (token names) that make an alert confirmed; one
  // rejection rejects it. frs-server --confirmations: default 2, range 1..3.
  int confirmations = 2;
  // Where a rejected alert's descriptors become suppressions of its identity (known
  // non-matches). Null: rejections teach nothing (tests of the alert log alone).
  Gallery* gallery = nullptr;
};

// Alerts (frs.v1.Alerts): the alert log, and the feed for streaming.
std::unique_ptr<grpc::Service> make_alert_service(AccessControl& access, AlertStore& alerts,
                                                  AlertFeed& feed,
                                                  const AlertReviewRules& review = {},
                                                  const AlertStreamLimits& limits = {});

// Tokens (frs.v1.Tokens): make, list and revoke API tokens.
std::unique_ptr<grpc::Service> make_token_service(AccessControl& access);
// Audit (frs.v1.Audit): list the audit log's rows, verify its hash chain, and the
// accountability report (from the audit log and `report`'s stores).
std::unique_ptr<grpc::Service> make_audit_service(AccessControl& access,
                                                  const ReportSources& report = {});

}  // namespace frs::service
