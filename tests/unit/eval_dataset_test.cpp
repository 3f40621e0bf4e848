#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <opencv2/imgproc.hpp>

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

TEST(EvalDataset, ImagesFileReadsFilesIdentitiesAndGroupsAndListsBadRows) {
  testing::ScopedTempDir dir("eval-dataset");
  {
    std::ofstream csv(dir / "labels.csv");
    csv << "\n"
        << "file,age,race\n"
        << "images/a.jpg,30,White\n"
        << "images/b.jpg,40,Asian\n"
        << "images/a.jpg,30,White\n"  // listed twice
        << "images/c.jpg,50\n"        // a field short
        << ",20,Black\n"              // no file
        << "images/d.jpg,20,\n"       // no race: counted, in no group
        << "/abs/e.jpg,25,Asian\n";
  }
  ImagesFile file = read_images_csv(dir / "labels.csv", "race");
  EXPECT_FALSE(file.identities_given);
  ASSERT_EQ(file.images.size(), 4u);
  EXPECT_EQ(file.images[0].file, (dir / "images/a.jpg").lexically_normal());
  EXPECT_EQ(file.images[3].file, std::filesystem::path("/abs/e.jpg"));
  // Without an identity column each file is its own person.
  EXPECT_EQ(file.images[0].identity, file.images[0].file.string());
  EXPECT_NE(file.images[0].identity, file.images[1].identity);
  EXPECT_EQ(file.groups.groups_of.size(), 3u);
  EXPECT_EQ(file.groups.groups_of.at(file.images[1].identity), std::vector<std::string>{"Asian"});
  EXPECT_FALSE(file.groups.groups_of.count(file.images[2].identity));
  ASSERT_EQ(file.skipped.size(), 4u);
  EXPECT_NE(file.skipped[0].find("line 5"), std::string::npos) << file.skipped[0];
  EXPECT_NE(file.skipped[0].find("twice"), std::string::npos) << file.skipped[0];
  EXPECT_NE(file.skipped[1].find("got 2"), std::string::npos) << file.skipped[1];
  EXPECT_NE(file.skipped[2].find("empty file"), std::string::npos) << file.skipped[2];
  EXPECT_NE(file.skipped[3].find("no race"), std::string::npos) << file.skipped[3];

  // Without --group-by: the same photos, no groups.
  EXPECT_TRUE(read_images_csv(dir / "labels.csv").groups.groups_of.empty());
  try {
    read_images_csv(dir / "labels.csv", "ethnicity");
    ADD_FAILURE() << "a group column that is not there";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("file, age, race"), std::string::npos) << e.what();
  }

  {
    std::ofstream csv(dir / "identities.csv");
    csv << "identity,file\nann,a1.jpg\nann,a2.jpg\n,b.jpg\nbob,b1.jpg\n";
  }
  file = read_images_csv(dir / "identities.csv");
  EXPECT_TRUE(file.identities_given);
  ASSERT_EQ(file.images.size(), 3u);
  EXPECT_EQ(file.images[1].identity, "ann");
  EXPECT_EQ(file.images[2].identity, "bob");
  ASSERT_EQ(file.skipped.size(), 1u);
  EXPECT_NE(file.skipped[0].find("empty identity"), std::string::npos) << file.skipped[0];

  for (const char* bad : {"", "a.jpg,White\n", "file,race\n", "file,race\n,White\n"}) {
    std::ofstream(dir / "bad.csv") << bad;
    EXPECT_THROW(read_images_csv(dir / "bad.csv", "race"), Error) << bad;
  }
  EXPECT_THROW(read_images_csv(dir / "missing.csv"), Error);
  {
    std::ofstream csv(dir / "huge.csv");
    csv << "file\n";
    for (std::size_t i = 0; i <= kMaxListedImages; ++i) csv << i << ".jpg\n";
  }
  try {
    read_images_csv(dir / "huge.csv");
    ADD_FAILURE() << "more photos than the bound";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 20000"), std::string::npos) << e.what();
  }
}

// Pairs count within each group both images share, and across groups when they share none;
// images of no group and images without a descriptor count nowhere.
TEST(EvalDataset, GroupedComparisonsWithinAndAcrossGroups) {
  std::vector<EvalImage> images = four_people();  // p0..p3, three images each
  images[11].descriptor.reset();                  // one of p3's has none
  GroupsFile groups;
  groups.groups_of["p0"] = {"A"};
  groups.groups_of["p1"] = {"A", "B"};
  groups.groups_of["p2"] = {"B"};
  groups.groups_of["p3"] = {"B"};
  groups.groups_of["nobody"] = {"C"};  // a group with no image
  const GroupedComparisons c = grouped_comparisons(images, groups);
  ASSERT_EQ(c.names, (std::vector<std::string>{"A", "B", "C"}));
  // A: p0 and p1, 3 same-person pairs each, 3x3 different-people pairs.
  EXPECT_EQ(c.genuine[0].size(), 6u);
  EXPECT_EQ(c.impostor[0].size(), 9u);
  // B: p1, p2, p3 (two images): 3 + 3 + 1 same-person pairs; 9 + 6 + 6 different.
  EXPECT_EQ(c.genuine[1].size(), 7u);
  EXPECT_EQ(c.impostor[1].size(), 21u);
  EXPECT_TRUE(c.impostor[2].empty());
  // Across: p0 with p2 and with p3 (no common group): 3x3 + 3x2.
  EXPECT_EQ(c.across_impostor.size(), 15u);
  // Different people on different axes: sqrt(a^2 + b^2).
  EXPECT_NEAR(c.across_impostor.front(), std::hypot(1.0f, 1.0f), 1e-6);
}

// With a normaliser, every comparison frs eval makes (pairs, groups, searches) is the raw
// distance shifted by both faces' half offsets.
TEST(EvalDataset, ANormaliserShiftsEveryComparisonByBothFacesOffsets) {
  std::vector<EvalImage> images = four_people();
  // p0 and p1 packed close together (a region whose impostors lie near), p2 and p3 not.
  for (std::size_t i = 0; i < 6; ++i) {
    for (float& v : *images[i].descriptor) v *= 0.2f;
  }
  std::vector<Embedding> descriptors;
  std::vector<std::string> identities;
  for (const EvalImage& image : images) {
    descriptors.push_back(*image.descriptor);
    identities.push_back(image.identity);
  }
  ScoreNormaliser::FitOptions fit;
  fit.clusters = 2;
  fit.false_match_rate = 0.5;  // 12 photos: every cluster supported
  const ScoreNormaliser n = ScoreNormaliser::fit(descriptors, identities, fit);
  float spread = 0;
  for (const auto& c : n.clusters()) spread = std::max(spread, std::abs(c.offset));
  ASSERT_GT(spread, 0.0f) << "a normaliser that shifts nothing proves nothing here";
  const auto expected = [&](std::size_t i, std::size_t j) {
    return distance(descriptors[i], descriptors[j]) + n.half_offset(descriptors[i]) +
           n.half_offset(descriptors[j]);
  };

  const auto raw = all_pairs(images);
  const auto normalised = all_pairs(images, &n);
  ASSERT_EQ(normalised.size(), raw.size());
  EXPECT_FLOAT_EQ(normalised[0].distance, expected(0, 1));
  EXPECT_FLOAT_EQ(normalised.back().distance, expected(10, 11));

  GroupsFile groups;
  for (const char* p : {"p0", "p1", "p2", "p3"}) groups.groups_of[p] = {"all"};
  const GroupedComparisons c = grouped_comparisons(images, groups, &n);
  ASSERT_EQ(c.genuine[0].size(), 12u);
  EXPECT_FLOAT_EQ(c.genuine[0][0], expected(0, 1));

  // A search scores each enrolled face by the normalised distance too.
  OpenSetOptions options;
  options.holdout = 0.5;
  const auto plain = open_set_searches(images, options);
  options.normaliser = &n;
  const auto shifted = open_set_searches(images, options);
  ASSERT_EQ(shifted.size(), plain.size());
  bool any_moved = false;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    any_moved = any_moved || *shifted[i].nearest_distance != *plain[i].nearest_distance;
  }
  EXPECT_TRUE(any_moved);
}

TEST(EvalDataset, DegradationSpecsAndWhatTheyDoToAnImage) {
  const ImageDegradation none = parse_degradation("");
  EXPECT_FALSE(none.any());
  EXPECT_EQ(none.text(), "none");
  const ImageDegradation d = parse_degradation(" jpeg=30, scale=0.5 ,blur=1.5");
  EXPECT_DOUBLE_EQ(d.scale, 0.5);
  EXPECT_DOUBLE_EQ(d.blur_sigma, 1.5);
  EXPECT_EQ(d.jpeg_quality, 30);
  EXPECT_EQ(d.text(), "scale 0.5, blur 1.5 px, JPEG quality 30");
  for (const char* bad :
       {"scale=0", "scale=1.5", "blur=-1", "blur=21", "jpeg=0", "jpeg=101", "jpeg=50.5",
        "sharpen=2", "scale", "scale=", "scale=0.5x", "scale=nan", ",", "scale=0.5,,"}) {
    EXPECT_THROW(parse_degradation(bad), Error) << bad;
  }

  // A sharp checkerboard: smaller, softer, and changed by compression, in that order.
  cv::Mat board(200, 300, CV_8UC3);
  for (int y = 0; y < board.rows; ++y)
    for (int x = 0; x < board.cols; ++x)
      board.at<cv::Vec3b>(y, x) = ((x / 4 + y / 4) % 2) ? cv::Vec3b(255, 255, 255) : cv::Vec3b();
  const cv::Mat smaller = degraded(board, parse_degradation("scale=0.5"));
  EXPECT_EQ(smaller.size(), cv::Size(150, 100));
  const auto sharpness = [](const cv::Mat& bgr) {
    cv::Mat grey, edges;
    cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
    cv::Laplacian(grey, edges, CV_64F);
    cv::Scalar mean, sd;
    cv::meanStdDev(edges, mean, sd);
    return sd[0];
  };
  EXPECT_LT(sharpness(degraded(smaller, parse_degradation("blur=2"))), 0.5 * sharpness(smaller));
  const cv::Mat compressed = degraded(smaller, parse_degradation("jpeg=10"));
  EXPECT_EQ(compressed.size(), smaller.size());
  EXPECT_GT(cv::norm(compressed, smaller, cv::NORM_L1), 0);
  EXPECT_EQ(cv::norm(degraded(smaller, none), smaller, cv::NORM_L1), 0);
}

}  // namespace
}  // namespace frs
