#pragma once
// Requests per token per second: a token bucket per token name. A caller may burst up to
// `burst` calls, then `per_second` on average; beyond that a call is refused with how long
// to wait, so one runaway script cannot starve the dispatch consoles. Keys are bounded
// (kMaxKeys): past that, buckets full again are forgotten (a full bucket is a new one), and
// if that is not enough, new keys share one bucket.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace frs {

class RateLimiter {
 public:
  static constexpr std::size_t kMaxKeys = 10'000;
  // per_second <= 0: no limit.
  RateLimiter(double per_second, double burst) : per_second_(per_second), burst_(burst) {}

  // Zero when `key` may make a call now (and the call is counted); else how long until it
  // may.
  std::chrono::milliseconds take(const std::string& key, std::chrono::steady_clock::time_point now =
                                                             std::chrono::steady_clock::now());

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };
  double per_second_;
  double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // per key: token name, peer address
};

}  // namespace frs
