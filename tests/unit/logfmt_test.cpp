#include "frs/core/logfmt.h"

#include <gtest/gtest.h>

#include "frs/auth/rate_limit.h"

namespace frs {
namespace {

TEST(Logfmt, PlainWordsStayAsTheyAreOthersAreQuotedAndEscaped) {
  EXPECT_EQ(logfmt_value("gate-2"), "gate-2");
  EXPECT_EQ(logfmt_value(""), "\"\"");
  EXPECT_EQ(logfmt_value("no route to host"), "\"no route to host\"");
  EXPECT_EQ(logfmt_value("a=b"), "\"a=b\"");
  EXPECT_EQ(logfmt_value("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
  EXPECT_EQ(logfmt_value("two\nlines\t"), "\"two\\nlines\\x09\"");
}

TEST(RepeatedLines, OneLinePerKindPerIntervalWithTheCountLeftOut) {
  using std::chrono::seconds;
  RepeatedLines lines(seconds(10));
  const auto t0 = std::chrono::steady_clock::time_point{} + seconds(1000);
  EXPECT_EQ(lines.admit("ipv4:10.0.0.1 16", t0), 0);
  for (int i = 1; i <= 99; ++i) {
    EXPECT_FALSE(lines.admit("ipv4:10.0.0.1 16", t0 + std::chrono::milliseconds(i)));
  }
  EXPECT_EQ(lines.admit("ipv4:10.0.0.2 16", t0), 0) << "another kind is its own";
  EXPECT_EQ(lines.admit("ipv4:10.0.0.1 16", t0 + seconds(10)), 99);
  EXPECT_FALSE(lines.admit("ipv4:10.0.0.1 16", t0 + seconds(11)));
  EXPECT_EQ(lines.admit("ipv4:10.0.0.1 16", t0 + seconds(30)), 1);
}

TEST(RepeatedLines, KindsAreBounded) {
  RepeatedLines lines(std::chrono::seconds(10));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::seconds(1000);
  for (std::size_t i = 0; i < RepeatedLines::kMaxKinds + 500; ++i) {
    EXPECT_EQ(lines.admit("address " + std::to_string(i), t0), 0);
  }
  // Still summarising once the bound is passed, not failing or growing without end.
  EXPECT_EQ(lines.admit("address new", t0), 0);
  EXPECT_FALSE(lines.admit("address new", t0));
}

TEST(RateLimiter, KeysAreBoundedAndAFloodOfNewKeysSharesOneBucket) {
  RateLimiter limiter(1, 2);
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::seconds(1000);
  for (std::size_t i = 0; i < RateLimiter::kMaxKeys; ++i) {
    limiter.take("a" + std::to_string(i), t0);
    limiter.take("a" + std::to_string(i), t0);  // each bucket empty
  }
  // Past the bound, new keys share a bucket: two calls, then a wait.
  EXPECT_EQ(limiter.take("b1", t0).count(), 0);
  EXPECT_EQ(limiter.take("b2", t0).count(), 0);
  EXPECT_GT(limiter.take("b3", t0).count(), 0);
  // Once the old buckets are full again they are forgotten, and a new key has its own.
  const auto later = t0 + std::chrono::seconds(10);
  EXPECT_EQ(limiter.take("c1", later).count(), 0);
  EXPECT_EQ(limiter.take("c1", later).count(), 0);
  EXPECT_GT(limiter.take("c1", later).count(), 0);
  EXPECT_EQ(limiter.take("c2", later).count(), 0);
}

}  // namespace
}  // namespace frs
