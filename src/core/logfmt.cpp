#include "frs/core/logfmt.h"

#include <cstdio>

namespace frs {

std::string logfmt_value(std::string_view value) {
  bool plain = !value.empty();
  for (const char c : value) {
    if (c == ' ' || c == '=' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(value);
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::optional<std::int64_t> RepeatedLines::admit(const std::string& kind,
                                                 std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (kinds_.size() >= kMaxKinds && !kinds_.contains(kind)) {
    std::erase_if(kinds_, [&](const auto& k) { return now - k.second.logged >= interval_; });
    if (kinds_.size() >= kMaxKinds) kinds_.clear();
  }
  auto [it, fresh] = kinds_.try_emplace(kind, Seen{now, 0});
  if (fresh) return 0;
  Seen& seen = it->second;
  if (now - seen.logged < interval_) {
    ++seen.left_out;
    return std::nullopt;
  }
  const std::int64_t left_out = seen.left_out;
  seen = Seen{now, 0};
  return left_out;
}

}  // namespace frs
