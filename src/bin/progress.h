#pragma once
// The one-line progress bar of long CLI runs (bulk enrollment, evaluation), on stderr so
// that --json output on stdout stays clean.

#include <cstddef>
#include <cstdio>
#include <string>

namespace frs::cli {

inline void print_progress(std::size_t done, std::size_t total, double seconds, const char* unit) {
  const double rate = static_cast<double>(done) / (seconds > 1e-3 ? seconds : 1e-3);
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  const auto filled =
      total
          ? static_cast<std::size_t>(30.0 * static_cast<double>(done) / static_cast<double>(total))
          : 30;
  std::fprintf(stderr, "\r[%-30s] %zu/%zu %s  %.1f/s  ETA %.0fs  ",
               std::string(filled, '#').c_str(), done, total, unit, rate, eta);
}

}  // namespace frs::cli
