#pragma once
// gRPC services of frs-server. This module is the only place that speaks grpc::Status:
// frs::Error codes map one to one (kInvalidArgument -> INVALID_ARGUMENT, ...).

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <memory>

#include "frs/gallery/enrollment.h"
#include "frs/gallery/gallery.h"
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

grpc::Status to_status(const std::exception& e);

std::unique_ptr<grpc::Service> make_gallery_service(Gallery& gallery, const FaceEngine& engine,
                                                    const ServiceOptions& options);
std::unique_ptr<grpc::Service> make_search_service(Gallery& gallery, const FaceEngine& engine,
                                                   const ServiceOptions& options);

}  // namespace frs::service
