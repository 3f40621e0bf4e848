#include <gtest/gtest.h>

#include "frs/vision/detector.h"

namespace frs {
namespace {

TEST(PlanDetectionViews, OnePassIsTheWholeImageWithAMargin) {
  const auto views = plan_detection_views({640, 360}, 0);
  ASSERT_EQ(views.size(), 1u);
  // 640 + 2 * 160 = 960, centred on the image.
  EXPECT_EQ(views[0].region, cv::Rect(-160, -300, 960, 960));
  EXPECT_FALSE(views[0].is_tile);
}

TEST(PlanDetectionViews, TilesCoverEveryPixelOfA1080pFrame) {
  const cv::Size frame(1920, 1080);
  const auto views = plan_detection_views(frame, 40);
  ASSERT_GT(views.size(), 1u);
  // Every tile size below the whole frame covers the frame completely and stays inside it.
  std::map<int, cv::Mat> coverage;
  for (const auto& v : views) {
    if (!v.is_tile) continue;
    EXPECT_EQ((v.region & cv::Rect({0, 0}, frame)), v.region);
    auto& c = coverage[v.region.width];
    if (c.empty()) c = cv::Mat::zeros(frame, CV_8U);
    c(v.region).setTo(1);
  }
  for (const auto& [side, c] : coverage) {
    EXPECT_EQ(cv::countNonZero(c), frame.area()) << "tile side " << side;
  }
  // The finest tiles make a 40-pixel face at least 16 pixels in the 256-pixel model input.
  int finest = 1 << 30;
  for (const auto& v : views) finest = std::min(finest, v.region.width);
  EXPECT_GE(40.0 * 256 / finest, 16.0);
}

TEST(PlanDetectionViews, MarksOnlyEdgesInsideTheImageAsInterior) {
  const auto views = plan_detection_views({1920, 1080}, 40);
  for (const auto& v : views) {
    if (!v.is_tile) continue;
    EXPECT_EQ(v.interior_left, v.region.x > 0);
    EXPECT_EQ(v.interior_top, v.region.y > 0);
    EXPECT_EQ(v.interior_right, v.region.br().x < 1920);
    EXPECT_EQ(v.interior_bottom, v.region.br().y < 1080);
  }
}

TEST(MergeDetections, BlendsOverlappingBoxesByScore) {
  std::vector<Detection> d(3);
  d[0].box = {0, 0, 10, 10};
  d[0].score = 0.9f;
  d[1].box = {2, 0, 10, 10};
  d[1].score = 0.3f;
  d[2].box = {100, 100, 10, 10};
  d[2].score = 0.6f;
  const auto merged = merge_detections(d, 0.3f);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_FLOAT_EQ(merged[0].score, 0.9f);
  EXPECT_NEAR(merged[0].box.x, (0 * 0.9 + 2 * 0.3) / 1.2, 1e-5);
  EXPECT_FLOAT_EQ(merged[1].box.x, 100.0f);
}

TEST(Iou, OfKnownBoxes) {
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {5, 0, 10, 10}), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {20, 20, 5, 5}), 0.0f);
}

}  // namespace
}  // namespace frs

namespace frs {
namespace {

TEST(MergeDetections, DropsAWeakerBoxLyingHalfInsideAStrongerOne) {
  std::vector<Detection> d(3);
  d[0].box = {12, 14, 116, 116};  // a face filling a 150x150 crop
  d[0].score = 0.95f;
  d[1].box = {-1, 57, 70, 70};  // the model's half-face echo: IoU 0.28, 81% inside d[0]
  d[1].score = 0.66f;
  d[2].box = {120, 0, 60, 60};  // a neighbour overlapping a little: kept
  d[2].score = 0.6f;
  const auto merged = merge_detections(d, 0.3f);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_FLOAT_EQ(merged[0].box.x, 12.0f);
  EXPECT_FLOAT_EQ(merged[1].box.x, 120.0f);
}

}  // namespace
}  // namespace frs
