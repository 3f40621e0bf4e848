#pragma once
// Times people type and read: token expiry, audit log ranges, and (next) the validity of
// authorisations. Always UTC, so that a date means the same on every node and console.

#include <cstdint>
#include <string>
#include <string_view>

namespace frs {

inline constexpr std::int64_t kMsPerHour = 3'600'000;
inline constexpr std::int64_t kMsPerDay = 24 * kMsPerHour;

// The times frs accepts wherever a time enters (authorisations, token expiry, audit and
// report ranges): 2000-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z. Within
// them, a difference of two times never overflows and every time prints as a date.
inline constexpr std::int64_t kEarliestTimeMs = 946'684'800'000;
inline constexpr std::int64_t kLatestTimeMs = 4'102'444'800'000;

// Throws Error(kInvalidArgument) naming `field` unless kEarliestTimeMs <= unix_ms <
// kLatestTimeMs.
void check_time_in_range(std::int64_t unix_ms, std::string_view field);

enum class DateMeans {
  kStartOfDay,  // "2026-12-31" = 2026-12-31T00:00:00.000Z (a --since)
  kEndOfDay,    // "2026-12-31" = 2026-12-31T23:59:59.999Z (an --until or an expiry)
};

// Unix ms of `text`: a date (YYYY-MM-DD, read as `date_means` says) or an ISO 8601 / RFC
// 3339 date-time with a zone: 2026-12-01T18:30:00Z, 2026-12-01T18:30:00.250+01:00 (a space
// may replace the T). A date-time without a zone is refused, as is anything out of range
// (years 2000..2099, see kEarliestTimeMs). Throws Error(kInvalidArgument) naming `field`
// with an example.
std::int64_t parse_utc_time(std::string_view text, DateMeans date_means, std::string_view field);

// "2026-12-01T18:30:00.250Z" (milliseconds shown only when not zero).
std::string format_utc_time(std::int64_t unix_ms);

}  // namespace frs
