#include <gtest/gtest.h>

#include <algorithm>
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

TEST(EvalMetrics, GroupRatesAgainstTheBestGroupAndTheStatedRate) {
  GroupedComparisons c;
  c.names = {"A", "B", "C"};
  c.genuine = {{0.3f, 0.6f}, {0.2f, 0.3f}, {}};
  c.impostor = {{0.4f, 0.9f}, {0.45f, 0.8f, 0.9f, 0.95f}, {}};
  c.across_impostor = {0.5f, 0.51f, 0.7f};
  const GroupFigures f = group_figures(c, 0.5f, 0.05);
  EXPECT_EQ(f.threshold, 0.5f);
  ASSERT_EQ(f.groups.size(), 3u);
  const GroupRates& a = f.groups[0];
  const GroupRates& b = f.groups[1];
  EXPECT_EQ(a.group, "A");
  EXPECT_EQ(a.fmr.errors, 1u);
  EXPECT_EQ(a.fmr.trials, 2u);
  EXPECT_EQ(a.fnmr.errors, 1u);
  EXPECT_EQ(b.fmr.errors, 1u);
  EXPECT_EQ(b.fmr.trials, 4u);
  EXPECT_EQ(b.fnmr.errors, 0u);
  EXPECT_DOUBLE_EQ(*a.fmr_ratio, 2.0);  // 0.5 against B's 0.25
  EXPECT_DOUBLE_EQ(*b.fmr_ratio, 1.0);
  EXPECT_FALSE(a.fnmr_ratio.has_value());  // the best group's FNMR is 0
  EXPECT_DOUBLE_EQ(*a.fmr_to_stated, 10.0);
  EXPECT_DOUBLE_EQ(*b.fmr_to_stated, 5.0);
  // C has no comparison: no rate, no ratio, and not the best.
  EXPECT_EQ(f.groups[2].fmr.trials, 0u);
  EXPECT_FALSE(f.groups[2].fmr_ratio.has_value());
  EXPECT_FALSE(f.groups[2].fmr_to_stated.has_value());
  EXPECT_EQ(f.worst_group, "A");
  EXPECT_EQ(f.best_group, "B");
  EXPECT_DOUBLE_EQ(*f.fmr_differential, 2.0);
  EXPECT_EQ(f.across_groups_fmr.errors, 1u);  // 0.5 matches at 0.5
  EXPECT_EQ(f.across_groups_fmr.trials, 3u);

  // A best group with no false match: the differential is unknown, not infinite or 1.
  const GroupFigures strict = group_figures(c, 0.42f);
  EXPECT_EQ(strict.worst_group, "A");
  EXPECT_EQ(strict.best_group, "B");
  EXPECT_FALSE(strict.fmr_differential.has_value());
  EXPECT_FALSE(strict.stated_fmr.has_value());
  EXPECT_FALSE(strict.groups[0].fmr_to_stated.has_value());
}

// The group whose impostors lie nearest sets the threshold for everyone; a group too small
// to calibrate is listed with its reason.
TEST(EvalMetrics, CalibrationForEveryGroupTakesTheStrictestGroup) {
  std::mt19937 rng(7);
  GroupedComparisons c;
  c.names = {"far", "near", "tiny"};
  std::normal_distribution<float> far(0.95f, 0.08f), near(0.80f, 0.08f);
  c.impostor.resize(3);
  c.genuine.resize(3);
  for (int i = 0; i < 20000; ++i) c.impostor[0].push_back(far(rng));
  for (int i = 0; i < 1000; ++i) c.impostor[1].push_back(near(rng));
  for (int i = 0; i < 50; ++i) c.impostor[2].push_back(near(rng));
  std::vector<float> pooled = c.impostor[0];
  pooled.insert(pooled.end(), c.impostor[1].begin(), c.impostor[1].end());
  pooled.insert(pooled.end(), c.impostor[2].begin(), c.impostor[2].end());

  // One identity at FPIR 0.01: each comparison may match with probability 0.01, read off
  // the distances (z(0.01) = -2.326).
  const CalibrationForEveryGroup every = calibrate_for_every_group(pooled, c, 0.01, 1);
  ASSERT_EQ(every.groups.size(), 3u);
  ASSERT_TRUE(every.groups[0].calibration && every.groups[1].calibration);
  EXPECT_FALSE(every.groups[2].calibration.has_value());
  EXPECT_NE(every.groups[2].problem.find("at least 100"), std::string::npos);
  EXPECT_NEAR(every.groups[0].calibration->max_distance, 0.95 - 0.186, 0.015);
  EXPECT_NEAR(every.groups[1].calibration->max_distance, 0.80 - 0.186, 0.03);
  EXPECT_EQ(every.bound_by, "near");
  EXPECT_EQ(every.binding.max_distance, every.groups[1].calibration->max_distance);
  // At the pooled threshold the near group's comparisons match far more often than stated
  // (Phi(-1) = 0.16 in theory); at the binding one, as stated.
  const auto near_fmr = [&](float threshold) {
    return static_cast<double>(std::count_if(c.impostor[1].begin(), c.impostor[1].end(),
                                             [&](float d) { return d <= threshold; })) /
           static_cast<double>(c.impostor[1].size());
  };
  EXPECT_GT(near_fmr(every.pooled.max_distance), 0.05);
  EXPECT_LE(near_fmr(every.binding.max_distance), 0.01);

  // Only far: the pooled comparisons (far's own) bind.
  GroupedComparisons far_only = c;
  far_only.names.resize(1);
  far_only.impostor.resize(1);
  const CalibrationForEveryGroup alone =
      calibrate_for_every_group(c.impostor[0], far_only, 0.01, 1);
  EXPECT_EQ(alone.bound_by, "");
  EXPECT_EQ(alone.binding.max_distance, alone.pooled.max_distance);
}

// The rate the built-in calibration states at its own default threshold is the per-comparison
// FMR it was calibrated for (the two are inverses).
TEST(EvalMetrics, BuiltInStatedRateInvertsTheBuiltInCalibration) {
  for (const DescriptorModel& model : descriptor_models()) {
    const Calibration c = calibrate_built_in(model, kDefaultTargetFpir, kDefaultExpectedIdentities);
    EXPECT_NEAR(built_in_fmr_at(model, c.max_distance) / c.per_comparison_fmr, 1.0, 1e-3)
        << model.id;
    EXPECT_GT(built_in_fmr_at(model, c.max_distance + 0.05f), c.per_comparison_fmr) << model.id;
  }
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
