#pragma once
// A bound on how many of something run at once across all callers (images being decoded
// and analysed: each holds up to ImageLimits::max_decoded_bytes of memory). A caller over
// the bound waits a little for a slot, then is refused, so the server's peak memory has a
// bound and a burst of requests queues briefly instead of piling up.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "frs/core/cancel.h"

namespace frs {

class Admission {
 public:
  // `slots` >= 1 holders at once; a caller waits up to `wait` for a slot. `what` names
  // the holders in the refusal ("images analysed").
  Admission(std::size_t slots, std::chrono::milliseconds wait, std::string what);

  class Slot {
   public:
    Slot(Slot&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class Admission;
    explicit Slot(Admission* owner) : owner_(owner) {}
    Admission* owner_;
  };

  // A slot, held until the Slot is destroyed. Throws Error(kResourceExhausted) when none
  // frees up within the wait (`wait`, else the one given at construction),
  // Error(kCancelled) when `cancel` fires while waiting.
  Slot acquire(const Cancellation& cancel = {},
               std::optional<std::chrono::milliseconds> wait = std::nullopt);
  // For work that must not be refused halfway (an evaluation's photos): wait as long as
  // the caller does.
  static constexpr std::chrono::milliseconds kUntilCancelled = std::chrono::hours(24 * 365);

  std::size_t slots() const { return slots_; }
  std::size_t in_use() const;

 private:
  void release();

  const std::size_t slots_;
  const std::chrono::milliseconds wait_;
  const std::string what_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::size_t in_use_ = 0;
};

}  // namespace frs
