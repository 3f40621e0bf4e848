#pragma once
// Timing helpers shared by the bench programs (test data access is in tests/support).

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace frs::bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The value at fraction `p` (0..1) of the sorted values; 0 for none.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// "a,b,c" -> {"a", "b", "c"} (a command-line list).
inline std::vector<std::string> split(const std::string& text, char separator = ',') {
  std::vector<std::string> parts;
  std::stringstream list(text);
  for (std::string t; std::getline(list, t, separator);) parts.push_back(t);
  return parts;
}

// Milliseconds that `f` takes, median of `runs` runs after one warm-up run.
template <typename F>
double median_ms(int runs, F&& f) {
  f();
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  return median(times);
}

// The server code a bench runs logs through spdlog, whose default logger writes to stdout,
// where the bench's figures go: bench/run.sh puts stdout into docs/benchmarks.md and keeps
// stderr in a log file of its own.
inline void send_logs_to_stderr() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
}

}  // namespace frs::bench
