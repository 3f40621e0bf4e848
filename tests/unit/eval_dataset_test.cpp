#include <gtest/gtest.h>

#include <fstream>

#include "frs/core/error.h"
#include "frs/eval/dataset.h"
#include "synthetic.h"
#include "testdata.h"

namespace frs {
namespace {

using testing::axis;

// Four people, three images each, on their own axis at 1.0, 0.9 and 0.8 (qualities 0.1, 0.9
// and 0.5).
std::vector<EvalImage> four_people() {
  std::vector<EvalImage> images;
  const float values[] = {1.0f, 0.9f, 0.8f}, qualities[] = {0.1f, 0.9f, 0.5f};
  for (std::size_t person = 0; person < 4; ++person) {
    for (int i = 0; i < 3; ++i) {
      EvalImage image;
      image.identity = "p" + std::to_string(person);
      image.file = image.identity + "_" + std::to_string(i) + ".jpg";
      image.descriptor = axis(person, values[i]);
      image.quality = qualities[i];
      images.push_back(image);
    }
  }
  return images;
}

TEST(EvalDataset, OpenSetFoldsEnrollTheOthersAndSearchEveryImage) {
  OpenSetOptions options;
  options.holdout = 0.5;  // two folds of two people
  const auto searches = open_set_searches(four_people(), options);
  std::size_t mated = 0, non_mated = 0;
  for (const SearchOutcome& s : searches) {
    ASSERT_TRUE(s.nearest_distance.has_value());
    if (s.mated) {
      ++mated;
      EXPECT_TRUE(s.nearest_right);
      // The first image (1.0) is enrolled: the others are 0.1 and 0.2 from it.
      EXPECT_TRUE(std::abs(*s.nearest_distance - 0.1f) < 1e-5f ||
                  std::abs(*s.nearest_distance - 0.2f) < 1e-5f);
    } else {
      ++non_mated;
      EXPECT_FALSE(s.nearest_right);
      EXPECT_GT(*s.nearest_distance, 1.2f);  // another axis: sqrt(v^2 + 1)
    }
  }
  EXPECT_EQ(mated, 8u);       // per fold: 2 enrolled people x 2 other images
  EXPECT_EQ(non_mated, 12u);  // every image once, in its own fold

  // The best image (quality 0.9, at 0.9) enrolled instead: both others are 0.1 away.
  options.enroll_best = true;
  for (const SearchOutcome& s : open_set_searches(four_people(), options)) {
    if (s.mated) {
      EXPECT_NEAR(*s.nearest_distance, 0.1f, 1e-5f);
    }
  }
}

TEST(EvalDataset, SeveralChipsPerSearchAreFusedAsAskedFor) {
  OpenSetOptions options;
  options.holdout = 0.5;
  options.probe_chips = 2;  // of 3 images: one search per identity, the third left over
  auto mated_distances = [&](ProbeFusion fusion) {
    options.fusion = fusion;
    std::vector<float> out;
    std::size_t non_mated = 0;
    for (const SearchOutcome& s : open_set_searches(four_people(), options)) {
      if (s.mated) {
        out.push_back(*s.nearest_distance);
      } else {
        ++non_mated;
      }
    }
    EXPECT_EQ(non_mated, 4u);  // one chunk of 2 per person, each in its own fold
    return out;
  };
  // Mated chunks: the images at 0.9 (quality 0.9) and 0.8 (quality 0.5); enrolled: 1.0.
  for (float d : mated_distances(ProbeFusion::kMean)) EXPECT_NEAR(d, 0.15f, 1e-5f);
  for (float d : mated_distances(ProbeFusion::kAnyChip)) EXPECT_NEAR(d, 0.1f, 1e-5f);
  const float weighted = 1.0f - (0.9f * 0.9f + 0.8f * 0.5f) / 1.4f;
  const auto q = mated_distances(ProbeFusion::kQualityWeighted);
  ASSERT_EQ(q.size(), 4u);  // 2 enrolled people per fold, 2 folds
  for (float d : q) EXPECT_NEAR(d, weighted, 1e-5f);
}

TEST(EvalDataset, CohortNormalisationSubtractsTheNearestCohortDistances) {
  OpenSetOptions options;
  options.holdout = 0.5;
  options.cohort_k = 1;
  for (const SearchOutcome& s : open_set_searches(four_people(), options)) {
    if (!s.mated) continue;
    // A probe at 0.9 (0.1 from its enrolled photo) or 0.8 (0.2 from it) on its axis; its
    // nearest cohort photo is another person's at 0.8 on another axis.
    const float at_09 = 0.1f - std::sqrt(0.81f + 0.64f);
    const float at_08 = 0.2f - std::sqrt(0.64f + 0.64f);
    EXPECT_TRUE(std::abs(*s.nearest_distance - at_09) < 1e-4f ||
                std::abs(*s.nearest_distance - at_08) < 1e-4f)
        << *s.nearest_distance;
  }
  options.cohort_k = 1001;
  EXPECT_THROW(open_set_searches(four_people(), options), Error);
}

TEST(EvalDataset, OpenSetRefusesWhatItCannotRun) {
  OpenSetOptions options;
  options.holdout = 0.7;
  EXPECT_THROW(open_set_searches(four_people(), options), Error);
  options.holdout = 0.3;
  options.enroll_per_identity = 0;
  EXPECT_THROW(open_set_searches(four_people(), options), Error);
  options.enroll_per_identity = 1;
  options.probe_chips = 0;
  EXPECT_THROW(open_set_searches(four_people(), options), Error);
  options.probe_chips = 1;
  auto one_person = four_people();
  one_person.resize(3);
  EXPECT_THROW(open_set_searches(one_person, options), Error);
}

TEST(EvalDataset, PairsFileListsMalformedRowsAndReusesImages) {
  testing::ScopedTempDir dir("eval-dataset");
  {
    std::ofstream csv(dir / "pairs.csv");
    csv << "a,b,same\n"        // header
        << "x.jpg,y.jpg,1\n"   // relative to the CSV's folder
        << "x.jpg,z.jpg,no\n"  // x.jpg again: one image
        << "x.jpg,y.jpg\n"     // too few fields
        << "x.jpg,y.jpg,perhaps\n"
        << "\n"
        << "/abs/w.jpg,y.jpg,TRUE\n";
  }
  const PairsFile file = read_pairs_csv(dir / "pairs.csv");
  ASSERT_EQ(file.pairs.size(), 3u);
  EXPECT_EQ(file.images.size(), 4u);
  EXPECT_EQ(file.images[file.pairs[0].a].file, (dir / "x.jpg").lexically_normal());
  EXPECT_EQ(file.pairs[1].a, file.pairs[0].a);
  EXPECT_TRUE(file.pairs[0].same);
  EXPECT_FALSE(file.pairs[1].same);
  EXPECT_TRUE(file.pairs[2].same);
  ASSERT_EQ(file.skipped.size(), 2u);
  EXPECT_NE(file.skipped[0].find("line 4"), std::string::npos) << file.skipped[0];
  EXPECT_NE(file.skipped[1].find("perhaps"), std::string::npos) << file.skipped[1];
  EXPECT_THROW(read_pairs_csv(dir / "missing.csv"), Error);
}

}  // namespace
}  // namespace frs
