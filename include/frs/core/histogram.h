#pragma once
// A latency histogram with fixed buckets, in the shape Prometheus exposes: cumulative
// counts per upper bound, a sum and a count. Thread-safe; recording is a few atomic adds.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace frs {

class LatencyHistogram {
 public:
  // Upper bounds in milliseconds: from a fast stage (a search) to a slow frame.
  static constexpr std::array<double, 12> kBoundsMs = {1,   2.5, 5,   10,   25,   50,
                                                       100, 250, 500, 1000, 2500, 5000};

  void record(double ms) {
    std::size_t i = 0;
    while (i < kBoundsMs.size() && ms > kBoundsMs[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(static_cast<std::uint64_t>(ms * 1000), std::memory_order_relaxed);
  }

  // Prometheus text lines for metric `name` (a histogram in seconds) with `labels`
  // ("" or `camera="x"`).
  std::string prometheus(const std::string& name, const std::string& labels) const {
    std::string out;
    std::uint64_t cumulative = 0;
    const std::string sep = labels.empty() ? "" : labels + ",";
    for (std::size_t i = 0; i <= kBoundsMs.size(); ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      const std::string le =
          i < kBoundsMs.size() ? std::to_string(kBoundsMs[i] / 1000.0) : std::string("+Inf");
      out += name + "_bucket{" + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    const std::string braces = labels.empty() ? "" : "{" + labels + "}";
    out += name + "_sum" + braces + " " +
           std::to_string(static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6) +
           "\n";
    out += name + "_count" + braces + " " + std::to_string(cumulative) + "\n";
    return out;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBoundsMs.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

}  // namespace frs
