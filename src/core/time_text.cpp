#include "frs/core/time_text.h"

#include <charconv>
#include <chrono>
#include <cstdio>

#include "frs/core/error.h"
#include "frs/core/text.h"

namespace frs {
namespace {

// Reads exactly `digits` decimal digits at `at`; false when they are not there.
bool read_number(std::string_view text, std::size_t& at, int digits, int& value) {
  if (at + static_cast<std::size_t>(digits) > text.size()) return false;
  value = 0;
  for (int i = 0; i < digits; ++i) {
    const char c = text[at + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  at += static_cast<std::size_t>(digits);
  return true;
}

bool expect(std::string_view text, std::size_t& at, char c) {
  if (at >= text.size() || text[at] != c) return false;
  ++at;
  return true;
}

}  // namespace

std::int64_t parse_utc_time(std::string_view text, DateMeans date_means, std::string_view field) {
  const auto refuse = [&](const std::string& why) -> std::int64_t {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(field) + " " + quote_for_message(text) + " " + why +
                    ": give a date (2026-12-31) or a date-time with a zone "
                    "(2026-12-01T18:30:00Z, 2026-12-01T18:30:00+01:00)");
  };
  std::size_t at = 0;
  int year = 0, month = 0, day = 0;
  if (!read_number(text, at, 4, year) || !expect(text, at, '-') ||
      !read_number(text, at, 2, month) || !expect(text, at, '-') ||
      !read_number(text, at, 2, day)) {
    return refuse("is not a date");
  }
  using namespace std::chrono;
  const year_month_day date{std::chrono::year(year),
                            std::chrono::month(static_cast<unsigned>(month)),
                            std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return refuse("is not a valid date");
  if (year < 2000 || year > 2099) return refuse("is outside the years 2000..2099");
  const std::int64_t day_ms =
      duration_cast<milliseconds>(sys_days(date).time_since_epoch()).count();
  if (at == text.size()) {
    return date_means == DateMeans::kStartOfDay ? day_ms : day_ms + kMsPerDay - 1;
  }
  if (text[at] != 'T' && text[at] != 't' && text[at] != ' ') return refuse("is not a date-time");
  ++at;
  int hour = 0, minute = 0, second = 0, millis = 0;
  if (!read_number(text, at, 2, hour) || !expect(text, at, ':') ||
      !read_number(text, at, 2, minute)) {
    return refuse("has no valid time of day");
  }
  if (at < text.size() && text[at] == ':' && (++at, !read_number(text, at, 2, second))) {
    return refuse("has no valid seconds");
  }
  if (at < text.size() && (text[at] == '.' || text[at] == ',')) {
    ++at;
    int digits = 0, scale = 100;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (digits < 3) millis += (text[at] - '0') * scale;
      scale /= 10;
      ++digits;
      ++at;
    }
    if (digits == 0) return refuse("has a decimal point without digits");
  }
  if (hour > 23 || minute > 59 || second > 60) return refuse("has no valid time of day");
  if (second == 60) second = 59;  // a leap second: the last representable millisecond
  std::int64_t offset_minutes = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at] == '-' ? -1 : 1;
    ++at;
    int offset_hours = 0, offset_mins = 0;
    if (!read_number(text, at, 2, offset_hours)) return refuse("has no valid zone offset");
    if (at < text.size() && text[at] == ':') ++at;
    if (!read_number(text, at, 2, offset_mins) || offset_hours > 23 || offset_mins > 59) {
      return refuse("has no valid zone offset");
    }
    offset_minutes = sign * (offset_hours * 60 + offset_mins);
  } else {
    return refuse("has no zone (add Z for UTC, or an offset such as +01:00)");
  }
  if (at != text.size()) return refuse("has text after the time");
  const std::int64_t ms =
      day_ms + ((hour * 60LL + minute) * 60 + second) * 1000 + millis - offset_minutes * 60'000;
  if (ms < kEarliestTimeMs || ms >= kLatestTimeMs) return refuse("is outside the years 2000..2099");
  return ms;
}

void check_time_in_range(std::int64_t unix_ms, std::string_view field) {
  if (unix_ms >= kEarliestTimeMs && unix_ms < kLatestTimeMs) return;
  throw Error(ErrorCode::kInvalidArgument,
              std::string(field) + " is " + std::to_string(unix_ms) +
                  " ms, outside the years 2000..2099 (Unix milliseconds from " +
                  std::to_string(kEarliestTimeMs) + " to " + std::to_string(kLatestTimeMs - 1) +
                  ")");
}

std::string format_utc_time(std::int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(unix_ms)};
  const sys_days day = floor<days>(t);
  const year_month_day date(day);
  const hh_mm_ss clock(floor<milliseconds>(t - day));
  char text[40];
  const int millis = static_cast<int>(clock.subseconds().count());
  if (millis == 0) {
    std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02dZ",
                  static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
                  static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()));
  } else {
    std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                  static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
                  static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()), millis);
  }
  return text;
}

}  // namespace frs
