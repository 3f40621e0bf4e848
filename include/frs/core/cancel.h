#pragma once
// Long work (analysing an image, a batch of photos) stops when its caller no longer wants
// the result: a gRPC call cancelled or past its deadline. The work asks between units (a
// detector view, a batch of descriptors, a photo), so stopping costs at most one unit.

#include <functional>
#include <utility>

#include "frs/core/error.h"

namespace frs {

class Cancellation {
 public:
  Cancellation() = default;  // never cancelled
  explicit Cancellation(std::function<bool()> is_cancelled)
      : is_cancelled_(std::move(is_cancelled)) {}

  bool cancelled() const { return is_cancelled_ && is_cancelled_(); }
  // Throws Error(kCancelled) once cancelled.
  void check() const {
    if (cancelled()) {
      throw Error(ErrorCode::kCancelled, "the call was cancelled or its deadline passed");
    }
  }

 private:
  std::function<bool()> is_cancelled_;
};

}  // namespace frs
