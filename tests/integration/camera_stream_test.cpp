// Camera ingest against a real RTSP server on loopback (frs-test-camera serving the shared
// clip) and against the clip as a file: frames arrive, a camera that goes away is retried
// and comes back, and bad URLs fail with a reason without blocking anything.

#include "frs/video/camera_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "child_processes.h"
#include "frs/core/error.h"

namespace frs::testing {
namespace {

using namespace std::chrono_literals;

// Polls `status` until `done` holds or `limit` passes.
template <typename Done>
bool wait_until(const CameraStream& stream, Done done, std::chrono::seconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (done(stream.status())) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done(stream.status());
}

TEST(CameraStream, RtspFramesArriveAndALostCameraIsRetriedUntilItIsBack) {
  TestCamera camera;
  std::atomic<int> frames{0};
  std::atomic<int> width{0};
  std::atomic<std::int64_t> captured_at{0};
  CameraSourceOptions options;
  options.url = camera.url();
  options.initial_backoff = 200ms;
  options.max_backoff = 1000ms;
  options.stall_timeout = 3000ms;
  CameraStream stream(options, [&](VideoFrame f) {
    width = f.bgr.cols;
    captured_at = f.captured_at_ms;
    ++frames;
  });
  ASSERT_TRUE(wait_until(
      stream, [&](const CameraStatus&) { return frames >= 30; }, 20s))
      << "state " << to_string(stream.status().state) << ": " << stream.status().last_error;
  EXPECT_EQ(width, 640);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  // Stamped with the wall clock (Unix ms), not the stream's own timestamps (which start at 0):
  // recent, with a margin for a loaded machine.
  EXPECT_NEAR(static_cast<double>(captured_at), static_cast<double>(now_ms), 60'000.0);
  CameraStatus streaming = stream.status();
  EXPECT_EQ(streaming.state, CameraState::kStreaming);
  EXPECT_GE(streaming.counters.frames_in, 30u);

  camera.stop();  // the camera disappears (kill -9: no RTSP teardown)
  ASSERT_TRUE(wait_until(
      stream,
      [&](const CameraStatus& s) { return s.counters.reconnects > streaming.counters.reconnects; },
      20s));
  EXPECT_FALSE(stream.status().last_error.empty());
  const int before = frames;
  camera.start();
  ASSERT_TRUE(wait_until(
      stream,
      [&](const CameraStatus& s) { return s.state == CameraState::kStreaming && frames > before; },
      30s))
      << "state " << to_string(stream.status().state) << ": " << stream.status().last_error;
}

TEST(CameraStream, AFilePlaysAtItsOwnPace) {
  std::atomic<int> frames{0};
  CameraSourceOptions options;
  options.url = hamilton_clip().string();
  CameraStream stream(options, [&](VideoFrame) { ++frames; });
  ASSERT_TRUE(wait_until(
      stream, [&](const CameraStatus&) { return frames >= 1; }, 20s))
      << stream.status().last_error;
  // 60 frames: 2 s of the clip at its 29.97 frames a second. Played at that pace, not as fast
  // as the file can be decoded (hundreds a second); a loaded machine can only slow it.
  const int first = frames;
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(
      stream, [&](const CameraStatus&) { return frames >= first + 60; }, 60s))
      << stream.status().last_error;
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_GE(elapsed_s, 0.75 * 60 / 29.97) << "60 frames in " << elapsed_s << " s";
}

TEST(CameraStream, BadSourcesFailWithAReasonAndKeepRetrying) {
  CameraSourceOptions options;
  options.url = "rtsp://127.0.0.1:" + std::to_string(free_port()) + "/nothing-listens";
  options.initial_backoff = 100ms;
  options.max_backoff = 200ms;
  CameraStream stream(options, [](VideoFrame) {});
  ASSERT_TRUE(wait_until(
      stream, [](const CameraStatus& s) { return s.counters.reconnects >= 2; }, 30s));
  EXPECT_FALSE(stream.status().last_error.empty());

  options.url = "/no/such/video.mp4";
  CameraStream missing(options, [](VideoFrame) {});
  ASSERT_TRUE(wait_until(
      missing, [](const CameraStatus& s) { return !s.last_error.empty(); }, 20s));

  options.url = "ftp://example.org/video.mp4";
  EXPECT_THROW(CameraStream(options, [](VideoFrame) {}), Error);
  options.url = hamilton_clip().string();
  options.rtsp_transport = "carrier-pigeon";
  EXPECT_THROW(CameraStream(options, [](VideoFrame) {}), Error);
}

}  // namespace
}  // namespace frs::testing
