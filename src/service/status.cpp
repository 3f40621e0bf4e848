#include "frs/core/error.h"
#include "frs/service/services.h"

namespace frs::service {

Cancellation cancellation_of(const Call& call) {
  const grpc::ServerContext& context = call.context();
  const auto deadline = context.deadline();
  return Cancellation([&call, &context, deadline] {
    return context.IsCancelled() || std::chrono::system_clock::now() > deadline ||
           call.ended_by_token();
  });
}

std::optional<Admission::Slot> image_slot(const ServiceOptions& options,
                                          const Cancellation& cancel) {
  if (!options.image_slots) return std::nullopt;
  return options.image_slots->acquire(cancel);
}

grpc::Status to_status(const std::exception& e) {
  const auto* error = dynamic_cast<const Error*>(&e);
  if (error == nullptr) return {grpc::StatusCode::INTERNAL, e.what()};
  if (const auto* detailed = dynamic_cast<const DetailedError*>(&e)) {
    const grpc::Status plain = to_status(Error(detailed->code(), detailed->what()));
    return {plain.error_code(), plain.error_message(), detailed->details()};
  }
  switch (error->code()) {
    case ErrorCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
    case ErrorCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, e.what()};
    case ErrorCode::kAlreadyExists:
      return {grpc::StatusCode::ALREADY_EXISTS, e.what()};
    case ErrorCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()};
    case ErrorCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
    case ErrorCode::kCancelled:
      return {grpc::StatusCode::CANCELLED, e.what()};
    case ErrorCode::kUnauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED, e.what()};
    case ErrorCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, e.what()};
    case ErrorCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, e.what()};
    case ErrorCode::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, e.what()};
}

}  // namespace frs::service
