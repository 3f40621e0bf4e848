#pragma once
// One camera's ingest: a GStreamer pipeline that decodes the camera's stream and hands
// over the newest frame only, on its own thread. A camera that fails (unreachable, cut,
// bad stream, end of stream) is retried with capped exponential back-off, forever, until
// stopped; its state and counters can be read at any time. Nothing here blocks another
// camera.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <thread>

namespace frs {

struct CameraSourceOptions {
  // How the logs call this camera (`camera=NAME`). Default: its URL without credentials.
  std::string name;
  // rtsp://..., http(s)://... (MJPEG, HLS: whatever GStreamer's uridecodebin plays), a
  // file path or file://. Files play at their own pace, like a live camera.
  std::string url;
  // RTSP: "tcp" (default: survives lossy links and NAT), "udp", or "auto" (UDP, then TCP).
  std::string rtsp_transport = "tcp";
  // RTSP jitter-buffer latency in milliseconds. Default 200, range 0..10000.
  int rtsp_latency_ms = 200;
  // A stream with no frame for this long is treated as failed and reconnected. Default 10 s.
  std::chrono::milliseconds stall_timeout{10000};
  // Back-off between attempts: starts at `initial_backoff`, doubles, capped at
  // `max_backoff`; back to the start after a connection that streamed for a while.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
};

enum class CameraState { kConnecting, kStreaming, kBackingOff, kStopped };
const char* to_string(CameraState state);

struct VideoFrame {
  cv::Mat bgr;
  std::uint64_t sequence = 0;  // frames delivered over this connection, from 1
  // When the frame was captured, Unix ms: the stream's presentation time mapped to the
  // wall clock (includes the jitter-buffer latency for RTSP).
  std::int64_t captured_at_ms = 0;
};

struct CameraCounters {
  std::uint64_t frames_in = 0;        // decoded frames that reached frs
  std::uint64_t frames_dropped = 0;   // of those, replaced by a newer one before frs took it
  std::uint64_t reconnects = 0;       // connection attempts after the first
  std::int64_t last_frame_at_ms = 0;  // Unix ms of the newest frame; 0 = none yet
};

struct CameraStatus {
  CameraState state = CameraState::kConnecting;
  std::string last_error;  // empty until something failed
  CameraCounters counters;
};

class CameraStream {
 public:
  // Called on the stream's thread with each new frame; must return quickly (hand the
  // frame to a queue). Frames that arrive while it runs replace each other.
  using FrameHandler = std::function<void(VideoFrame)>;

  // Starts connecting at once. Throws frs::Error(kInvalidArgument) for an option out of
  // range or a URL of a kind frs cannot play.
  CameraStream(const CameraSourceOptions& options, FrameHandler on_frame);
  // Stops within kStopTimeout whatever the source is doing: the stream's thread is joined
  // when it ends in time; one stuck in a call that never returns (a source that blocks:
  // a FIFO as the path, a hung network file system) is left to end by itself and never
  // calls on_frame again.
  ~CameraStream();
  CameraStream(const CameraStream&) = delete;
  CameraStream& operator=(const CameraStream&) = delete;

  static constexpr std::chrono::milliseconds kStopTimeout{3000};

  CameraStatus status() const;
  const CameraSourceOptions& options() const;

  // The GStreamer pipeline description used for `options` (for logs and tests).
  static std::string pipeline_description(const CameraSourceOptions& options);

 private:
  // What the stream's thread uses: shared with it, so that a thread left behind by the
  // destructor still has it.
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace frs
