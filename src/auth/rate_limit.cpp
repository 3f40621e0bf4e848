#include "frs/auth/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace frs {

std::chrono::milliseconds RateLimiter::take(const std::string& key,
                                            std::chrono::steady_clock::time_point now) {
  if (per_second_ <= 0) return std::chrono::milliseconds(0);
  std::lock_guard lock(mutex_);
  const auto refilled = [&](const Bucket& b) {
    return b.tokens + std::chrono::duration<double>(now - b.updated).count() * per_second_;
  };
  std::string kept_key = key;
  if (buckets_.size() >= kMaxKeys && !buckets_.contains(key)) {
    std::erase_if(buckets_, [&](const auto& k) { return refilled(k.second) >= burst_; });
    if (buckets_.size() >= kMaxKeys) kept_key = "(the keys beyond the bound)";
  }
  auto [it, fresh] = buckets_.try_emplace(kept_key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    const double seconds = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, seconds) * per_second_);
    b.updated = std::max(b.updated, now);
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return std::chrono::milliseconds(0);
  }
  const double wait_s = (1 - b.tokens) / per_second_;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_s * 1000)));
}

}  // namespace frs
