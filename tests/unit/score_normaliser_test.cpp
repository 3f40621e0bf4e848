#include "frs/core/score_normaliser.h"

#include <gtest/gtest.h>

#include <random>

#include "frs/core/error.h"

namespace frs {
namespace {

// Two groups of 200 people, one photo each: the first packed tight (their impostors lie
// close, as a region of descriptor space a model separates badly), the second spread out.
struct TwoGroups {
  std::vector<Embedding> descriptors;
  std::vector<std::string> identities;
  std::vector<int> group;
};

TwoGroups two_groups(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> tight(0.0f, 0.05f), wide(0.0f, 0.3f);
  TwoGroups out;
  for (int i = 0; i < 400; ++i) {
    const bool first = i % 2 == 0;
    Embedding d(4);
    for (float& v : d) v = first ? tight(rng) : wide(rng);
    if (!first) d[0] += 3.0f;
    out.descriptors.push_back(d);
    out.identities.push_back("person " + std::to_string(i));
    out.group.push_back(first ? 0 : 1);
  }
  return out;
}

// Within-group false-match rates of `set` at `threshold` of `score`.
template <typename Score>
std::pair<double, double> group_rates(const TwoGroups& set, float threshold, Score score) {
  std::size_t errors[2] = {0, 0}, trials[2] = {0, 0};
  for (std::size_t i = 0; i < set.descriptors.size(); ++i) {
    for (std::size_t j = i + 1; j < set.descriptors.size(); ++j) {
      if (set.group[i] != set.group[j]) continue;
      const int g = set.group[i];
      ++trials[g];
      errors[g] += score(set.descriptors[i], set.descriptors[j]) <= threshold;
    }
  }
  return {static_cast<double>(errors[0]) / static_cast<double>(trials[0]),
          static_cast<double>(errors[1]) / static_cast<double>(trials[1])};
}

TEST(ScoreNormaliser, EvensOutTheFalseMatchesOfADenseAndASparseRegion) {
  const TwoGroups fit_set = two_groups(1), judged = two_groups(2);  // other people
  ScoreNormaliser::FitOptions options;
  options.clusters = 2;
  options.false_match_rate = 0.01;
  const ScoreNormaliser n = ScoreNormaliser::fit(fit_set.descriptors, fit_set.identities, options);
  ASSERT_EQ(n.clusters().size(), 2u);
  // The clusters are the two groups, found without their labels.
  const std::size_t tight = n.cluster_of(judged.descriptors[0]);
  const std::size_t wide = n.cluster_of(judged.descriptors[1]);
  ASSERT_NE(tight, wide);
  EXPECT_EQ(n.clusters()[tight].members, 200u);
  EXPECT_TRUE(n.clusters()[tight].supported && n.clusters()[wide].supported);
  // The tight region needs a stricter threshold: its comparisons are pushed apart, the
  // wide region's drawn together.
  EXPECT_LT(n.clusters()[tight].threshold, n.clusters()[wide].threshold);
  EXPECT_GT(n.clusters()[tight].offset, n.clusters()[wide].offset);
  EXPECT_FLOAT_EQ(n.half_offset(judged.descriptors[0]), n.clusters()[tight].offset / 2);

  // At one threshold each, the tight group falsely matches far more often than the wide
  // one on raw distances, and about as often once normalised.
  const auto raw = [](const Embedding& a, const Embedding& b) { return distance(a, b); };
  const auto normalised = [&](const Embedding& a, const Embedding& b) {
    return n.normalised(distance(a, b), a, b);
  };
  const auto before = group_rates(judged, n.global_threshold(), raw);
  EXPECT_GT(before.first, 0.02) << before.first;
  EXPECT_LT(before.second, 0.001) << before.second;
  const auto after = group_rates(judged, n.global_threshold(), normalised);
  EXPECT_GT(after.first, 0.002) << after.first;
  EXPECT_GT(after.second, 0.002) << after.second;
  EXPECT_LT(std::max(after.first, after.second) / std::min(after.first, after.second), 5.0)
      << after.first << " " << after.second;

  // Deterministic for a seed.
  const ScoreNormaliser again =
      ScoreNormaliser::fit(fit_set.descriptors, fit_set.identities, options);
  for (std::size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(again.clusters()[c].centroid, n.clusters()[c].centroid);
    EXPECT_EQ(again.clusters()[c].offset, n.clusters()[c].offset);
  }
}

TEST(ScoreNormaliser, RefusesWhatItCannotFitAndDescriptorsOfAnotherModel) {
  const TwoGroups set = two_groups(3);
  ScoreNormaliser::FitOptions options;
  options.clusters = 1;
  EXPECT_THROW(ScoreNormaliser::fit(set.descriptors, set.identities, options), Error);
  options.clusters = 201;  // 400 photos make at most 200
  EXPECT_THROW(ScoreNormaliser::fit(set.descriptors, set.identities, options), Error);
  options.clusters = 2;
  options.false_match_rate = 0;
  EXPECT_THROW(ScoreNormaliser::fit(set.descriptors, set.identities, options), Error);
  options.false_match_rate = 0.01;
  const std::vector<std::string> one_person(set.descriptors.size(), "same");
  EXPECT_THROW(ScoreNormaliser::fit(set.descriptors, one_person, options), Error);
  std::vector<Embedding> mixed = set.descriptors;
  mixed[7].push_back(1.0f);
  EXPECT_THROW(ScoreNormaliser::fit(mixed, set.identities, options), Error);
  EXPECT_THROW(ScoreNormaliser::fit(set.descriptors, std::span(set.identities).first(3), options),
               Error);

  const ScoreNormaliser n = ScoreNormaliser::fit(set.descriptors, set.identities, options);
  EXPECT_THROW(n.cluster_of(Embedding(128, 0.0f)), Error);
  // Nothing fitted: distances pass unchanged.
  EXPECT_EQ(ScoreNormaliser().normalised(0.42f, Embedding(4), Embedding(4)), 0.42f);
}

// A cluster with too few comparisons for its rate is left unshifted, not guessed at.
TEST(ScoreNormaliser, AClusterWithTooFewComparisonsIsNotShifted) {
  const TwoGroups set = two_groups(4);
  ScoreNormaliser::FitOptions options;
  options.clusters = 2;
  options.false_match_rate = 1e-5;  // 400 photos: 80,000 comparisons make 0.8 errors
  const ScoreNormaliser n = ScoreNormaliser::fit(set.descriptors, set.identities, options);
  for (const auto& c : n.clusters()) {
    EXPECT_FALSE(c.supported);
    EXPECT_EQ(c.offset, 0.0f);
  }
}

// Written and read back, a normaliser scores every comparison as before; what is not a
// normaliser is refused with the reason.
TEST(ScoreNormaliser, ReadsBackWhatItWritesAndRefusesAnythingElse) {
  const TwoGroups set = two_groups(5);
  ScoreNormaliser::FitOptions options;
  options.clusters = 3;
  ScoreNormaliser n = ScoreNormaliser::fit(set.descriptors, set.identities, options);
  n.descriptor_model = "dlib-resnet-v1";
  n.fitted_on = "two groups";
  const ScoreNormaliser back = ScoreNormaliser::from_json(n.to_json());
  EXPECT_EQ(back.descriptor_model, "dlib-resnet-v1");
  EXPECT_EQ(back.fitted_on, "two groups");
  EXPECT_EQ(back.clusters().size(), 3u);
  EXPECT_FLOAT_EQ(back.global_threshold(), n.global_threshold());
  for (std::size_t i = 0; i < 20; ++i) {
    const Embedding& a = set.descriptors[i];
    const Embedding& b = set.descriptors[i + 20];
    const float raw = distance(a, b);
    EXPECT_FLOAT_EQ(back.normalised(raw, a, b), n.normalised(raw, a, b));
  }

  const std::string good = n.to_json();
  const auto edited = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  for (const std::string& bad :
       {std::string(""), std::string("[]"), std::string("{}"), std::string("not json"),
        edited("frs-score-normaliser-1", "frs-score-normaliser-9"),
        edited("\"descriptor_model\":\"dlib-resnet-v1\"", "\"descriptor_model\":\"\""),
        edited("\"offset\":", "\"offset\":1e9,\"x\":"),
        edited("\"centroid\":[", "\"centroid\":[\"a\","),
        edited("\"centroid\":[", "\"centroid\":[1.0,"),  // one longer than the others
        edited("\"members\":", "\"members\":-1,\"y\":"),
        edited("\"global_threshold\":", "\"global_threshold\":null,\"z\":"),
        std::string(17u << 20, ' ')}) {
    EXPECT_THROW(ScoreNormaliser::from_json(bad), Error) << bad.substr(0, 200);
  }
}

}  // namespace
}  // namespace frs
