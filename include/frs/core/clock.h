#pragma once
// Wall-clock time as frs stores and sends it: Unix time in milliseconds (UTC).

#include <chrono>
#include <cstdint>

namespace frs {

inline std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace frs
