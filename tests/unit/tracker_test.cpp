#include "frs/video/tracker.h"

#include <gtest/gtest.h>

#include "frs/core/error.h"

namespace frs {
namespace {

TEST(FaceTracker, FollowsTwoMovingFacesWithStableIds) {
  FaceTracker tracker;
  std::uint64_t left = 0, right = 0;
  for (int frame = 0; frame < 10; ++frame) {
    const std::int64_t at = 1000 + frame * 200;  // 5 analysed frames a second
    const float step = 15.0f * static_cast<float>(frame);
    // Listed in a different order every other frame: ids follow the faces, not the order.
    std::vector<cv::Rect2f> boxes = {{100 + step, 100, 60, 60}, {400 - step, 120, 50, 50}};
    if (frame % 2) std::swap(boxes[0], boxes[1]);
    const auto ids = tracker.update(at, boxes);
    const std::uint64_t this_left = frame % 2 ? ids[1] : ids[0];
    const std::uint64_t this_right = frame % 2 ? ids[0] : ids[1];
    if (frame == 0) {
      left = this_left;
      right = this_right;
      EXPECT_NE(left, right);
    }
    EXPECT_EQ(this_left, left) << "frame " << frame;
    EXPECT_EQ(this_right, right) << "frame " << frame;
  }
  ASSERT_NE(tracker.find(left), nullptr);
  EXPECT_EQ(tracker.find(left)->path.size(), 10u);
  EXPECT_NEAR(tracker.find(left)->velocity.x, 15.0f / 200.0f, 1e-4f);
}

TEST(FaceTracker, AFastFaceIsFollowedByItsMotionAndACloseOneByItsCentre) {
  FaceTracker tracker;
  // 40 px per frame for a 60 px face: IoU with the last box 0.2, under min_iou; the
  // centre rule joins the second frame, the motion model the later ones.
  std::uint64_t id = 0;
  for (int frame = 0; frame < 6; ++frame) {
    const auto ids = tracker.update(frame * 200, {{40.0f * static_cast<float>(frame), 0, 60, 60}});
    if (frame == 0) id = ids[0];
    EXPECT_EQ(ids[0], id) << "frame " << frame;
  }
  // A face appearing far away is someone else.
  const auto ids = tracker.update(1200, {{240, 0, 60, 60}, {900, 500, 60, 60}});
  EXPECT_EQ(ids[0], id);
  EXPECT_NE(ids[1], id);
}

TEST(FaceTracker, TracksEndAfterTheGapAndAreHandedOverOnce) {
  TrackerOptions options;
  options.max_gap_ms = 1000;
  FaceTracker tracker(options);
  const auto first = tracker.update(0, {{10, 10, 50, 50}});
  tracker.update(500, {{12, 10, 50, 50}});
  EXPECT_TRUE(tracker.take_ended(1400).empty());  // 900 ms unseen: still active
  const auto ended = tracker.take_ended(1600);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].id, first[0]);
  EXPECT_EQ(ended[0].path.size(), 2u);
  EXPECT_EQ(ended[0].first_seen_ms(), 0);
  EXPECT_EQ(ended[0].last_seen_ms(), 500);
  EXPECT_TRUE(tracker.take_ended(5000).empty());
  // The same place later is a new track.
  EXPECT_NE(tracker.update(6000, {{12, 10, 50, 50}})[0], first[0]);
  EXPECT_TRUE(tracker.active().size() == 1u);
}

TEST(FaceTracker, RejectsBadOptions) {
  TrackerOptions o;
  o.min_iou = 0;
  EXPECT_THROW(FaceTracker{o}, Error);
  o = {};
  o.max_gap_ms = 0;
  EXPECT_THROW(FaceTracker{o}, Error);
}

}  // namespace
}  // namespace frs
