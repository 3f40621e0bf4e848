#pragma once
// An authorisation for tests and benchmarks that run cameras: live matching needs one.

#include <chrono>
#include <cstdint>

#include "frs/core/clock.h"
#include "frs/gallery/store.h"

namespace frs::testing {

// Basis "policy", reference "test", in force from now for `lasting`.
inline Authorization test_authorization(
    std::int64_t watchlist_id, std::chrono::milliseconds lasting = std::chrono::hours(24)) {
  Authorization a;
  a.watchlist_id = watchlist_id;
  a.basis = "policy";
  a.reference = "test";
  a.valid_from_ms = now_unix_ms();
  a.valid_until_ms = a.valid_from_ms + lasting.count();
  a.recorded_by = "test";
  return a;
}

}  // namespace frs::testing
