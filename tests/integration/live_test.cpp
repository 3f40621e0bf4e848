// The live path end to end, in process: the shared clip served over loopback RTSP by
// frs-test-camera, a gallery, the live recognizer and the alert log.
//   - with nobody enrolled: no alert at all;
//   - with Lin-Manuel Miranda (faces/lin-manuel-miranda.png) and twelve other people
//     enrolled: an alert for him, under the threshold, within 10 analysed frames (2 s at 5
//     a second) of the first his face was found in, and no alert for anyone else over more
//     than a whole loop of the clip (which ends on the audience).
// Windows are counted in frames of the clip received, not in seconds: a loaded machine or a
// reconnection stretches the seconds, not what was seen.

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "child_processes.h"
#include "frs/gallery/enrollment.h"
#include "frs/live/live_recognizer.h"
#include "model_fixture.h"
#include "test_authorizations.h"

namespace frs::testing {
namespace {

using namespace std::chrono_literals;

void enroll(Gallery& gallery, std::int64_t watchlist_id, const std::string& name,
            const std::filesystem::path& photo) {
  std::ifstream in(photo, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const PreparedPhoto p = prepare_photo(
      shared_dlib_engine(), {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()},
      std::nullopt);
  ASSERT_TRUE(p.accepted) << photo << ": " << p.reason;
  Identity identity;
  identity.watchlist_id = watchlist_id;
  identity.external_id = name;
  identity.display_name = name;
  gallery.enroll(identity, {p.face});
}

// The watchlist every test enrolls into, at a fixed threshold (not the server's default),
// authorised for live matching.
Watchlist create_wanted(Gallery& gallery) {
  Watchlist w;
  w.name = "wanted";
  w.max_distance = 0.5f;
  const Watchlist created = gallery.create_watchlist(w);
  gallery.authorize(test_authorization(created.id));
  return created;
}

// The camera "stage": the shared clip served by `camera`.
CameraConfig stage(const TestCamera& camera) {
  CameraConfig config;
  config.name = "stage";
  config.source.url = camera.url();
  return config;
}

// Waits until the camera delivers frames. Its first connection can take one retry on a
// loaded machine (a stall is retried after 10 s), which is the stream's business, not what
// these tests time.
void wait_for_streaming(LiveRecognizer& live) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    const CameraReport report = live.cameras().at(0);
    if (report.status.state == CameraState::kStreaming) return;
    std::this_thread::sleep_for(100ms);
  }
  FAIL() << "the camera did not stream within 30 s: " << live.cameras().at(0).status.last_error;
}

// Collects what the feed delivers while the camera receives `loops` loops of the clip.
std::vector<Alert> alerts_during(LiveRecognizer& live, AlertSubscription& subscription,
                                 double loops) {
  std::vector<Alert> got;
  const bool played = clip_played(
      [&] {
        while (auto a = subscription.next(0ms)) got.push_back(std::move(*a));
        return live.cameras().at(0).status.counters.frames_in;
      },
      loops);
  EXPECT_TRUE(played) << "the camera did not play " << loops << " loops of the clip in 3 minutes";
  while (auto a = subscription.next(200ms)) got.push_back(std::move(*a));
  return got;
}

TEST(Live, AlertsForTheEnrolledPersonOnlyAndNothingWhenNobodyIsEnrolled) {
  ScopedTempDir dir("live");
  Gallery gallery(open_gallery_store(dir / "gallery.db"), GalleryOptions{});
  const Watchlist watchlist = create_wanted(gallery);
  AlertStore alerts(dir / "alerts.db");
  AlertFeed feed;
  auto subscription = feed.subscribe();
  TestCamera camera;
  LiveRecognizer live(shared_dlib_engine(), gallery, alerts, feed, DecisionOptions{}, 2);
  const CameraConfig config = stage(camera);
  live.add_camera(config);
  ASSERT_NO_FATAL_FAILURE(wait_for_streaming(live));

  // Nobody enrolled: a whole loop of the clip (9.2 s) and more, no alert.
  EXPECT_TRUE(alerts_during(live, *subscription, 1.3).empty());
  const CameraReport first = live.cameras().at(0);
  EXPECT_EQ(first.status.state, CameraState::kStreaming) << first.status.last_error;
  EXPECT_GT(first.frames_analysed, 10u);
  EXPECT_GT(first.faces, 0u);
  EXPECT_EQ(first.alerts, 0u);

  live.remove_camera("stage");
  // Him and twelve others: Obama, Biden and the ten lfw10 people (none of them in the clip).
  enroll(gallery, watchlist.id, "Lin-Manuel Miranda", face_path("lin-manuel-miranda.png"));
  enroll(gallery, watchlist.id, "Barack Obama", face_path("obama.jpg"));
  enroll(gallery, watchlist.id, "Joe Biden", face_path("biden.jpg"));
  for (const auto& p : read_identity_tree(testdata_dir() / "lfw10")) {
    if (gallery.store().find_identity(watchlist.id, p.identity)) continue;
    enroll(gallery, watchlist.id, p.identity, p.file);
  }
  // Two loops, on a fresh connection (no track from before the enrolment carries over): he
  // is on stage for the first 7 s of each.
  live.add_camera(config);
  ASSERT_NO_FATAL_FAILURE(wait_for_streaming(live));
  const std::vector<Alert> got = alerts_during(live, *subscription, 2.1);
  ASSERT_FALSE(got.empty()) << "no alert for him in two loops of the clip";
  for (const Alert& a : got) {
    EXPECT_EQ(a.display_name, "Lin-Manuel Miranda")
        << "alert " << a.id << " at distance " << a.distance;
    EXPECT_LE(a.distance, 0.5f);
    EXPECT_EQ(a.camera, "stage");
    EXPECT_EQ(a.watchlist, "wanted");
    EXPECT_FALSE(a.face_jpeg.empty());
    ASSERT_FALSE(a.track_path.empty());
    // From the first frame his track was seen in to the decision, in analysed frames (one
    // track point each).
    EXPECT_LE(a.track_path.size(), 10u)
        << "alert " << a.id << " after " << a.detected_at_ms - a.track_path.front().at_ms << " ms";
  }
  // Written to the log before delivery, with the same id.
  const auto logged = alerts.get(got.front().id);
  ASSERT_TRUE(logged.has_value());
  EXPECT_EQ(logged->display_name, "Lin-Manuel Miranda");
  EXPECT_EQ(logged->review, ReviewState::kPending);
  // One alert per sighting: the cooldown holds across the clip's loops.
  EXPECT_EQ(got.size(), 1u);
}

// Two identities enrolled from the same photo (a duplicate record: the thinnest margin
// there is): the alert waits until the track's searches agree, and never comes when the
// agreement asked for is more than one sighting can give.
TEST(Live, LookalikeIdentitiesAlertOnlyWhenTheTracksSearchesAgree) {
  auto alerts_with = [](int thin_margin_votes) {
    ScopedTempDir dir("live_thin");
    Gallery gallery(open_gallery_store(dir / "gallery.db"), GalleryOptions{});
    const Watchlist watchlist = create_wanted(gallery);
    enroll(gallery, watchlist.id, "Lin-Manuel Miranda", face_path("lin-manuel-miranda.png"));
    enroll(gallery, watchlist.id, "L. M. Miranda", face_path("lin-manuel-miranda.png"));
    AlertStore alerts(dir / "alerts.db");
    AlertFeed feed;
    auto subscription = feed.subscribe();
    TestCamera camera;
    DecisionOptions decisions;
    decisions.thin_margin_votes = thin_margin_votes;
    LiveRecognizer live(shared_dlib_engine(), gallery, alerts, feed, decisions, 2);
    live.add_camera(stage(camera));
    wait_for_streaming(live);
    return alerts_during(live, *subscription, 1);  // one loop: he is on stage for 7 s
  };
  const std::vector<Alert> agreed = alerts_with(2);
  ASSERT_EQ(agreed.size(), 1u);
  ASSERT_TRUE(agreed[0].runner_up_distance.has_value());
  EXPECT_LT(*agreed[0].runner_up_distance - agreed[0].distance, 0.05f);
  // 5 analysed frames a second for 7 s: far fewer than 32 searches of one track.
  EXPECT_TRUE(alerts_with(32).empty());
}

}  // namespace
}  // namespace frs::testing
