#include <gtest/gtest.h>

#include "frs/vision/detector.h"

namespace frs {
namespace {

TEST(PlanDetectionViews, OnePassIsTheWholeImageWithAMarginWhenAFaceCouldFillIt) {
  // A square image: a quarter of its side of margin all round (500 + 2 * 125 = 750), so a
  // face filling the image fills two thirds of the view.
  auto views = plan_detection_views({500, 500}, 0);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].region, cv::Rect(-125, -125, 750, 750));
  EXPECT_FALSE(views[0].is_tile());
  // A wide frame: its height (the largest face) is already under two thirds of its width.
  views = plan_detection_views({640, 360}, 0);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].region, cv::Rect(0, -140, 640, 640));
  // In between: 400x300 needs a view of 450 (300 * 1.5).
  views = plan_detection_views({400, 300}, 0);
  EXPECT_EQ(views[0].region, cv::Rect(-25, -75, 450, 450));
}

TEST(PlanDetectionViews, TilesCoverEveryPixelOfA1080pFrame) {
  const cv::Size frame(1920, 1080);
  const auto views = plan_detection_views(frame, 40);
  ASSERT_GT(views.size(), 1u);
  // Every tile size below the whole frame covers the frame completely and stays inside it.
  std::map<int, cv::Mat> coverage;
  for (const auto& v : views) {
    if (!v.is_tile()) continue;
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

TEST(PlanDetectionViews, LaysOutA1080pFrameExactly) {
  // 1920x1080, 40-pixel faces: the whole frame (1920 pixels: faces from 120 px), then
  // 640-pixel tiles (40 px faces are 16 px in the model input) that keep faces up to 160 px
  // and so overlap by 160 (step 480); the last tile of a row or column is pushed back inside.
  const auto views = plan_detection_views({1920, 1080}, 40);
  std::vector<cv::Rect> tiles;
  for (const auto& v : views) {
    if (v.is_tile()) {
      tiles.push_back(v.region);
      EXPECT_FLOAT_EQ(v.max_face, 160.0f);
    }
  }
  std::vector<cv::Rect> expected;
  for (int y : {0, 440})
    for (int x : {0, 480, 960, 1280}) expected.emplace_back(x, y, 640, 640);
  EXPECT_EQ(tiles, expected);
  EXPECT_EQ(views.size(), 9u);
  EXPECT_FLOAT_EQ(views[0].max_face, 0.0f);

  // Only edges inside the frame are interior (a face touching them may be cut).
  const DetectionView& middle = views[2];  // (480, 0, 640): left and right inside, top not
  EXPECT_EQ(middle.region, cv::Rect(480, 0, 640, 640));
  EXPECT_TRUE(middle.interior_left);
  EXPECT_TRUE(middle.interior_right);
  EXPECT_FALSE(middle.interior_top);
  EXPECT_TRUE(middle.interior_bottom);
  const DetectionView& corner = views[8];  // (1280, 440, 640): touches right and bottom
  EXPECT_EQ(corner.region, cv::Rect(1280, 440, 640, 640));
  EXPECT_TRUE(corner.interior_left);
  EXPECT_TRUE(corner.interior_top);
  EXPECT_FALSE(corner.interior_right);
  EXPECT_FALSE(corner.interior_bottom);
}

TEST(PlanDetectionViews, A640x360FrameIsOneViewFor40PixelFaces) {
  // The 640-pixel whole view already shows a 40-pixel face at 16 model pixels.
  EXPECT_EQ(plan_detection_views({640, 360}, 40).size(), 1u);
  // A 960x540 frame: the whole view finds faces from 60 px; one level of 640-pixel tiles
  // (keeping up to 160 px) finds the 40..60 px ones.
  const auto views = plan_detection_views({960, 540}, 40);
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[1].region, cv::Rect(0, 0, 640, 640));
  EXPECT_EQ(views[2].region, cv::Rect(320, 0, 640, 640));
  EXPECT_FLOAT_EQ(views[1].max_face, 160.0f);
  EXPECT_FALSE(views[1].interior_bottom);
  EXPECT_TRUE(views[1].interior_right);
}

TEST(PlanDetectionViews, SmallFacesTakeSeveralLevelsThatEachBridgeTheLevelAbove) {
  for (const cv::Size frame :
       {cv::Size(1920, 1080), cv::Size(1280, 720), cv::Size(4000, 3000), cv::Size(480, 640)}) {
    for (int min_face : {10, 20, 40, 80}) {
      const auto views = plan_detection_views(frame, min_face);
      // The whole view finds faces from its side / 16; each tile keeps faces up to its
      // max_face, which must reach the smallest face of the coarser views.
      double found_from = views[0].region.width / 16.0;
      int previous_side = views[0].region.width;
      for (const auto& v : views) {
        if (!v.is_tile()) continue;
        if (v.region.width != previous_side) {
          EXPECT_GE(v.max_face, std::floor(found_from)) << frame << " min face " << min_face;
          EXPECT_LE(v.max_face, v.region.width / 3.0) << frame;
          found_from = v.region.width / 16.0;
          previous_side = v.region.width;
        }
      }
      EXPECT_TRUE(found_from <= min_face || previous_side == 128) << frame << " " << min_face;
    }
  }
}

// A 1x1,000,000 image planned 3,580 views, a 50 Mpx photo 257: at most max_views are
// planned, by looking for larger faces; images within the limit are planned as before.
TEST(PlanDetectionViews, NeverPlansMoreThanMaxViews) {
  for (const cv::Size size : {cv::Size(1, 1000000), cv::Size(8660, 5773), cv::Size(20000, 1000),
                              cv::Size(3840, 2160), cv::Size(1920, 1080)}) {
    const auto unlimited = plan_detection_views(size, 40);
    const auto capped = plan_detection_views(size, 40, 128);
    EXPECT_LE(capped.size(), 128u) << size;
    EXPECT_GE(capped.size(), 1u) << size;
    if (unlimited.size() <= 128) {
      EXPECT_EQ(capped.size(), unlimited.size()) << size;
    }
  }
  EXPECT_EQ(plan_detection_views(cv::Size(1920, 1080), 40, 128).size(), 9u);
  EXPECT_EQ(plan_detection_views(cv::Size(1920, 1080), 40, 1).size(), 1u);
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
