#pragma once
// The one exception type that frs library code throws at module edges. Third-party
// exceptions (dlib, OpenCV) are caught where they arise and turned into an Error whose
// message says which input was wrong and how to fix it.

#include <stdexcept>
#include <string>

namespace frs {

enum class ErrorCode {
  kInvalidArgument,     // the caller's input is wrong (bad image bytes, bad option)
  kNotFound,            // a named file, model or record does not exist
  kAlreadyExists,       // a record with that key already exists
  kResourceExhausted,   // input over a documented size limit
  kFailedPrecondition,  // the system is not set up for the request (e.g. models missing)
  kInternal,            // a bug or an unexpected failure of a library we call
  kCancelled,           // the caller gave up (cancelled, or its deadline passed): work stopped
  kUnauthenticated,     // no credential, or one that is wrong, revoked or expired
  kPermissionDenied,    // a valid credential whose role may not do this
  kUnavailable,         // a service frs depends on cannot be used now (e.g. the audit log)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace frs
