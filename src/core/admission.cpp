#include "frs/core/admission.h"

#include <algorithm>

namespace frs {

Admission::Admission(std::size_t slots, std::chrono::milliseconds wait, std::string what)
    : slots_(std::max<std::size_t>(1, slots)), wait_(wait), what_(std::move(what)) {}

Admission::Slot::~Slot() {
  if (owner_ != nullptr) owner_->release();
}

Admission::Slot Admission::acquire(const Cancellation& cancel,
                                   std::optional<std::chrono::milliseconds> wait) {
  const auto patience = wait.value_or(wait_);
  const auto give_up = std::chrono::steady_clock::now() + patience;
  std::unique_lock lock(mutex_);
  while (in_use_ >= slots_) {
    // Woken by a release, or every 50 ms to see whether the caller gave up.
    const auto next =
        std::min(give_up, std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
    freed_.wait_until(lock, next, [this] { return in_use_ < slots_; });
    if (in_use_ < slots_) break;
    cancel.check();
    if (std::chrono::steady_clock::now() >= give_up) {
      throw Error(ErrorCode::kResourceExhausted,
                  "server busy: " + std::to_string(slots_) + " " + what_ +
                      " at once already, none finished within " + std::to_string(patience.count()) +
                      " ms; retry shortly");
    }
  }
  ++in_use_;
  return Slot(this);
}

std::size_t Admission::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

void Admission::release() {
  {
    std::lock_guard lock(mutex_);
    --in_use_;
  }
  freed_.notify_one();
}

}  // namespace frs
