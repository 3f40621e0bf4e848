#pragma once
// gRPC services of frs-server. This module is the only place that speaks grpc::Status:
// frs::Error codes map one to one (kInvalidArgument -> INVALID_ARGUMENT, ...).

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <memory>

#include "frs/alerts/alert_feed.h"
#include "frs/alerts/alert_store.h"
#include "frs/core/error.h"
#include "frs/gallery/enrollment.h"
#include "frs/gallery/gallery.h"
#include "frs/live/camera_store.h"
#include "frs/live/live_recognizer.h"
#include "frs/vision/face_engine.h"

namespace frs::service {

struct ServiceOptions {
  // max_distance of a watchlist created without one. Default 0.5: dlib's 0.6 is a 1:1
  // verification value, and in 1:N search on hard photos it let about a third of
  // never-enrolled people match someone (docs/accuracy.md).
  float default_max_distance = 0.5f;
  EnrollmentRules enrollment;
  int max_photos_per_request = 32;
};

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

grpc::Status to_status(const std::exception& e);

// Runs `body`, turning any exception into the matching gRPC status.
template <typename F>
grpc::Status guarded(F&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return to_status(e);
  }
}

std::unique_ptr<grpc::Service> make_gallery_service(Gallery& gallery, const FaceEngine& engine,
                                                    const ServiceOptions& options);
std::unique_ptr<grpc::Service> make_search_service(Gallery& gallery, const FaceEngine& engine,
                                                   const ServiceOptions& options);
// Evaluation (frs.v1.Evaluation): accuracy on the caller's labelled photos, nothing stored.
std::unique_ptr<grpc::Service> make_evaluation_service(const FaceEngine& engine);
// Cameras (frs.v1.Cameras): changes go to the live recognizer and the camera store.
std::unique_ptr<grpc::Service> make_camera_service(LiveRecognizer& live, CameraStore& cameras);
// Alerts (frs.v1.Alerts): the alert log, and the feed for streaming.
std::unique_ptr<grpc::Service> make_alert_service(AlertStore& alerts, AlertFeed& feed);

}  // namespace frs::service
