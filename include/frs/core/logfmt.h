#pragma once
// Log lines as logfmt (`key=value` pairs, e.g. `camera=gate event=failed error="..."`):
// readable by people, and parsed as fields by log shippers (Loki, Vector, Fluent Bit).

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace frs {

// `value` as a logfmt value: as it is when it is a plain word, else in double quotes with
// quotes, backslashes and control characters escaped.
std::string logfmt_value(std::string_view value);

// Summarises repeated log lines, so that a flood (a script retrying with a bad token) costs
// one line per kind per interval, not one per event: the first line of a kind is logged,
// the others within `interval` after it only counted, and that count goes with the next
// line logged of the kind. Kinds are bounded (kMaxKinds): past that, the ones idle for an
// interval are forgotten, then all.
class RepeatedLines {
 public:
  static constexpr std::size_t kMaxKinds = 10'000;
  explicit RepeatedLines(std::chrono::milliseconds interval = std::chrono::seconds(10))
      : interval_(interval) {}
  // nullopt: leave this line out (counted). Else log it, with how many of its kind were
  // left out since the last one logged (0: none).
  std::optional<std::int64_t> admit(
      const std::string& kind,
      std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  struct Seen {
    std::chrono::steady_clock::time_point logged;
    std::int64_t left_out = 0;
  };
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::unordered_map<std::string, Seen> kinds_;
};

}  // namespace frs
