#include <gtest/gtest.h>

#include <random>

#include "frs/core/error.h"
#include "frs/eval/metrics.h"

namespace frs {
namespace {

TEST(EvalMetrics, VerificationCountsOnHandMadePairs) {
  // Genuine 0.2 0.4 0.55 0.7; impostor 0.45 0.6 0.8 0.9 1.0.
  const std::vector<LabelledDistance> pairs = {{0.2f, true},  {0.45f, false}, {0.4f, true},
                                               {0.6f, false}, {0.55f, true},  {0.8f, false},
                                               {0.7f, true},  {0.9f, false},  {1.0f, false}};
  const std::vector<double> targets = {0.2, 0.1};
  const Verification v = verify(pairs, 0.5f, targets);
  EXPECT_EQ(v.genuine, 4u);
  EXPECT_EQ(v.impostor, 5u);
  EXPECT_EQ(v.fmr.errors, 1u);   // 0.45
  EXPECT_EQ(v.fnmr.errors, 2u);  // 0.55, 0.7
  EXPECT_DOUBLE_EQ(v.accuracy, 6.0 / 9.0);
  ASSERT_EQ(v.at_fmr.size(), 2u);
  // FMR 0.2 of 5 impostors allows one false match: the threshold stops just under 0.6.
  EXPECT_LT(v.at_fmr[0].point.threshold, 0.6f);
  EXPECT_GT(v.at_fmr[0].point.threshold, 0.5999f);
  EXPECT_EQ(v.at_fmr[0].point.achieved.errors, 1u);
  EXPECT_EQ(v.at_fmr[0].fnmr.errors, 1u);  // 0.7
  EXPECT_EQ(v.at_fmr[0].point.support, Support::kFew);
  // FMR 0.1 allows none: under 0.45, and 5 impostors cannot really support it.
  EXPECT_LT(v.at_fmr[1].point.threshold, 0.45f);
  EXPECT_EQ(v.at_fmr[1].point.achieved.errors, 0u);
  EXPECT_EQ(v.at_fmr[1].fnmr.errors, 2u);
  EXPECT_EQ(v.at_fmr[1].point.support, Support::kTooFew);
}

TEST(EvalMetrics, ThresholdNeverLetsATiedNegativeThrough) {
  const std::vector<float> negatives = {0.9f, 0.5f, 0.3f, 0.5f};
  const ThresholdAt t = threshold_at(negatives, 0.5);  // two of four allowed
  EXPECT_LT(t.threshold, 0.5f);
  EXPECT_EQ(t.achieved.errors, 1u);  // only 0.3: the tied pair at 0.5 would make three
  EXPECT_EQ(t.achieved.trials, 4u);
  EXPECT_EQ(support_for(0.01, 1000), Support::kEnough);
  EXPECT_EQ(support_for(0.01, 100), Support::kFew);
  EXPECT_EQ(support_for(0.01, 99), Support::kTooFew);
}

TEST(EvalMetrics, OpenSetIdentificationCountsOnHandMadeSearches) {
  const std::vector<SearchOutcome> searches = {
      {true, true, 0.3f},    {true, true, 0.55f},         {true, false, 0.4f},
      {false, false, 0.35f}, {false, false, 0.6f},        {false, false, 0.7f},
      {false, false, 0.8f},  {false, false, std::nullopt}};  // an empty gallery never alerts
  const std::vector<double> targets = {0.2, 0.1};
  const Identification id = identify(searches, 0.5f, targets);
  EXPECT_EQ(id.mated, 3u);
  EXPECT_EQ(id.non_mated, 5u);
  EXPECT_DOUBLE_EQ(id.rank1, 2.0 / 3.0);
  EXPECT_EQ(id.fnir.errors, 2u);  // 0.55 too far, and the wrong person
  EXPECT_EQ(id.fpir.errors, 1u);  // 0.35
  ASSERT_EQ(id.at_fpir.size(), 2u);
  EXPECT_EQ(id.at_fpir[0].point.achieved.errors, 1u);
  EXPECT_EQ(id.at_fpir[0].fnir.errors, 1u);  // only the wrong person
  EXPECT_LT(id.at_fpir[1].point.threshold, 0.35f);
  EXPECT_EQ(id.at_fpir[1].fnir.errors, 2u);
}

TEST(EvalMetrics, GroupRatesAgainstTheBestGroup) {
  const std::vector<GroupedDistance> pairs = {
      {0.3f, true, "A"},  {0.6f, true, "A"},  {0.4f, false, "A"},  {0.9f, false, "A"},
      {0.2f, true, "B"},  {0.3f, true, "B"},  {0.45f, false, "B"}, {0.8f, false, "B"},
      {0.9f, false, "B"}, {0.95f, false, "B"}};
  const auto groups = rates_by_group(pairs, 0.5f);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].group, "A");
  EXPECT_EQ(groups[0].fmr.errors, 1u);
  EXPECT_EQ(groups[0].fmr.trials, 2u);
  EXPECT_EQ(groups[0].fnmr.errors, 1u);
  EXPECT_EQ(groups[1].fmr.errors, 1u);
  EXPECT_EQ(groups[1].fmr.trials, 4u);
  EXPECT_EQ(groups[1].fnmr.errors, 0u);
  EXPECT_DOUBLE_EQ(*groups[0].fmr_ratio, 2.0);  // 0.5 against B's 0.25
  EXPECT_DOUBLE_EQ(*groups[1].fmr_ratio, 1.0);
  EXPECT_FALSE(groups[0].fnmr_ratio.has_value());  // the best group's FNMR is 0
}

TEST(EvalMetrics, CalibrationOnAKnownImpostorDistribution) {
  // Impostor distances ~ Normal(0.9, 0.08): the threshold for a per-comparison FMR p is
  // 0.9 + 0.08 * z(p).
  std::mt19937 rng(5);
  std::normal_distribution<float> impostor(0.9f, 0.08f);
  std::vector<float> distances(200000);
  for (float& d : distances) d = impostor(rng);

  // One identity: p = 0.01, 2,000 impostors under it: read off the data. z(0.01) = -2.3263.
  const Calibration one = calibrate(distances, 0.01, 1);
  EXPECT_FALSE(one.extrapolated);
  EXPECT_NEAR(one.per_comparison_fmr, 0.01, 1e-12);
  EXPECT_NEAR(one.max_distance, 0.9 - 0.08 * 2.3263, 0.003);

  // 1,000 identities: p = 1 - 0.99^(1/1000) = 1.00503e-5, two impostors' worth: the tail
  // is extrapolated. z(1.00503e-5) = -4.2638.
  const Calibration many = calibrate(distances, 0.01, 1000);
  EXPECT_TRUE(many.extrapolated);
  EXPECT_NEAR(many.per_comparison_fmr, 1.00503e-5, 1e-9);
  EXPECT_NEAR(many.tail_mean, 0.9, 0.01);
  EXPECT_NEAR(many.tail_sd, 0.08, 0.005);
  EXPECT_NEAR(many.max_distance, 0.9 - 0.08 * 4.2638, 0.006);
  // A larger watchlist needs a stricter threshold.
  EXPECT_LT(calibrate(distances, 0.01, 300000).max_distance, many.max_distance);
}

TEST(EvalMetrics, CalibrationRefusesWhatItCannotEstimate) {
  const std::vector<float> few(99, 0.8f), flat(1000, 0.8f);
  std::vector<float> enough(1000);
  for (std::size_t i = 0; i < enough.size(); ++i) enough[i] = 0.5f + 0.001f * i;
  EXPECT_THROW(calibrate(enough, 0, 10), Error);
  EXPECT_THROW(calibrate(enough, 1.5, 10), Error);
  EXPECT_THROW(calibrate(enough, 0.01, 0), Error);
  EXPECT_THROW(calibrate(few, 0.01, 10), Error);
  EXPECT_THROW(calibrate(flat, 0.001, 10), Error);  // no spread to extrapolate from
}

}  // namespace
}  // namespace frs

namespace frs {
namespace {

TEST(EvalCurves, VerificationCurveCountsEveryThreshold) {
  const std::vector<LabelledDistance> pairs = {{0.3f, true},  {0.5f, true},  {0.4f, false},
                                               {0.6f, false}, {0.7f, false}, {0.8f, false}};
  const auto curve = verification_curve(pairs);
  ASSERT_EQ(curve.size(), 6u);
  const double expected[6][3] = {{0.3, 0, 0.5}, {0.4, 0.25, 0.5}, {0.5, 0.25, 0},
                                 {0.6, 0.5, 0}, {0.7, 0.75, 0},   {0.8, 1, 0}};
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_FLOAT_EQ(curve[i].threshold, static_cast<float>(expected[i][0])) << i;
    EXPECT_DOUBLE_EQ(curve[i].false_accept, expected[i][1]) << i;
    EXPECT_DOUBLE_EQ(curve[i].false_reject, expected[i][2]) << i;
  }
}

TEST(EvalCurves, IdentificationCurveMissesWrongNearestAtEveryThreshold) {
  const std::vector<SearchOutcome> searches = {
      {true, true, 0.3f},           // mated, right: found from 0.3
      {true, false, 0.2f},          // mated, someone else nearest: a miss at any threshold
      {false, false, 0.4f},         // stranger: a false alert from 0.4
      {false, false, std::nullopt}  // stranger, empty gallery: never an alert
  };
  const auto curve = identification_curve(searches);
  ASSERT_EQ(curve.size(), 2u);
  EXPECT_FLOAT_EQ(curve[0].threshold, 0.3f);
  EXPECT_DOUBLE_EQ(curve[0].false_accept, 0);
  EXPECT_DOUBLE_EQ(curve[0].false_reject, 0.5);
  EXPECT_FLOAT_EQ(curve[1].threshold, 0.4f);
  EXPECT_DOUBLE_EQ(curve[1].false_accept, 0.5);
  EXPECT_DOUBLE_EQ(curve[1].false_reject, 0.5);
}

TEST(EvalCurves, ACurveIsThinnedButKeepsItsEnd) {
  std::vector<LabelledDistance> pairs;
  for (int i = 0; i < 1000; ++i) pairs.push_back({0.001f * static_cast<float>(i), i % 2 == 0});
  const auto curve = verification_curve(pairs, 10);
  ASSERT_LE(curve.size(), 10u);
  ASSERT_GE(curve.size(), 9u);
  EXPECT_FLOAT_EQ(curve.back().threshold, 0.999f);
  EXPECT_DOUBLE_EQ(curve.back().false_accept, 1);
  EXPECT_DOUBLE_EQ(curve.back().false_reject, 0);
  for (std::size_t i = 1; i < curve.size(); ++i) {
    EXPECT_LT(curve[i - 1].threshold, curve[i].threshold);
  }
}

}  // namespace
}  // namespace frs
