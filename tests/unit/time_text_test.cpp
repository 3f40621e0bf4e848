#include "frs/core/time_text.h"

#include <gtest/gtest.h>

#include <limits>

#include "frs/core/error.h"

namespace frs {
namespace {

std::string refusal_of(std::string_view text) {
  try {
    parse_utc_time(text, DateMeans::kEndOfDay, "--until");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

TEST(TimeText, TimesOutsideTheYears2000To2099AreRefusedWhereverTheyEnter) {
  EXPECT_EQ(parse_utc_time("2000-01-01", DateMeans::kStartOfDay, "x"), kEarliestTimeMs);
  EXPECT_EQ(parse_utc_time("2099-12-31", DateMeans::kEndOfDay, "x"), kLatestTimeMs - 1);
  EXPECT_EQ(format_utc_time(kEarliestTimeMs), "2000-01-01T00:00:00Z");
  EXPECT_EQ(format_utc_time(kLatestTimeMs), "2100-01-01T00:00:00Z");
  for (const char* outside : {"1999-12-31", "2100-01-01", "2150-01-01", "9999-12-31",
                              "1970-01-01T00:00:00Z", "2000-01-01T00:30:00+01:00"}) {
    EXPECT_NE(refusal_of(outside).find("outside the years 2000..2099"), std::string::npos)
        << outside << ": " << refusal_of(outside);
  }
  EXPECT_EQ(refusal_of("2026-12-31T18:30:00Z"), "");

  for (const std::int64_t ms :
       {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1}, std::int64_t{0},
        kEarliestTimeMs - 1, kLatestTimeMs, std::numeric_limits<std::int64_t>::max()}) {
    try {
      check_time_in_range(ms, "valid_until_ms");
      ADD_FAILURE() << ms << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("valid_until_ms is"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(check_time_in_range(kEarliestTimeMs, "x"));
  EXPECT_NO_THROW(check_time_in_range(kLatestTimeMs - 1, "x"));
  // Within the range, the longest difference is far from overflowing.
  EXPECT_LT(kLatestTimeMs - kEarliestTimeMs, std::numeric_limits<std::int64_t>::max() / 1000);
}

}  // namespace
}  // namespace frs
