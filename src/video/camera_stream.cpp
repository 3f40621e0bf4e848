#include "frs/video/camera_stream.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/text.h"
#include "frs/core/url.h"

namespace frs {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool is_rtsp(const std::string& url) {
  return starts_with(url, "rtsp://") || starts_with(url, "rtsps://");
}

// The URI uridecodebin gets: http(s) and file URIs as given, a plain path as file://.
std::string uri_of(const std::string& url) {
  if (starts_with(url, "http://") || starts_with(url, "https://") || starts_with(url, "file://")) {
    return url;
  }
  GError* error = nullptr;
  gchar* uri = gst_filename_to_uri(url.c_str(), &error);
  if (uri == nullptr) {
    const std::string why = error ? error->message : "unknown";
    g_clear_error(&error);
    throw Error(ErrorCode::kInvalidArgument,
                "camera URL '" + redact_url(url) + "' is not usable: " + why);
  }
  std::string out = uri;
  g_free(uri);
  return out;
}

struct Unref {
  void operator()(gpointer p) const { gst_object_unref(p); }
};
using ElementPtr = std::unique_ptr<GstElement, Unref>;
using BusPtr = std::unique_ptr<GstBus, Unref>;

// Stops and releases a pipeline however the connection ends.
struct PipelineGuard {
  GstElement* pipeline;
  ~PipelineGuard() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
};

std::string message_text(GstMessage* message) {
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS) return "end of stream";
  GError* error = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(message, &error, &debug);
  std::string text = error ? error->message : "unknown error";
  if (debug != nullptr && *debug != '\0') {
    std::string detail = debug;
    // The debug string ends with the element's inner reason; keep it short.
    const auto cut = detail.rfind(':');
    detail = cut == std::string::npos ? detail : detail.substr(cut + 1);
    std::replace(detail.begin(), detail.end(), '\n', ' ');
    detail.erase(0, detail.find_first_not_of(' '));
    text += " (" + detail + ")";
  }
  g_clear_error(&error);
  g_free(debug);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.pop_back();
  return redact_urls_in(text);  // GStreamer's messages may quote the URL, password and all
}

}  // namespace

const char* to_string(CameraState state) {
  switch (state) {
    case CameraState::kConnecting:
      return "connecting";
    case CameraState::kStreaming:
      return "streaming";
    case CameraState::kBackingOff:
      return "backing_off";
    case CameraState::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string CameraStream::pipeline_description(const CameraSourceOptions& options) {
  // The URL is set as a property afterwards, never spliced into this text: a URL can
  // then not add elements to the pipeline.
  const std::string tail =
      " ! videoconvert ! video/x-raw,format=BGR ! appsink name=sink max-buffers=1 drop=true";
  if (is_rtsp(options.url)) {
    std::string source = "rtspsrc name=source latency=" + std::to_string(options.rtsp_latency_ms);
    if (options.rtsp_transport == "tcp") source += " protocols=tcp";
    if (options.rtsp_transport == "udp") source += " protocols=udp";
    return source + " ! decodebin" + tail + " sync=false";
  }
  // Files and HTTP sources play at their own pace (sync=true), as a camera would.
  return "uridecodebin name=source" + tail + " sync=true";
}

struct CameraStream::Shared {
  Shared(const CameraSourceOptions& o, FrameHandler f)
      : options(o),
        log_name(logfmt_value(o.name.empty() ? redact_url(o.url) : o.name)),
        on_frame(std::move(f)) {}

  void run();
  // Plays one connection until it fails or stop is asked; returns the failure.
  std::string stream_once(bool& streamed_long);
  void set_state(CameraState state, const std::string& error = {});
  bool stop_asked() {
    std::lock_guard lock(mutex);
    return stopping;
  }
  // Hands a frame to on_frame unless the stream is stopping (then never again).
  void deliver(VideoFrame frame) {
    std::lock_guard delivering(delivery_mutex);
    if (stop_asked()) return;
    on_frame(std::move(frame));
  }

  const CameraSourceOptions options;
  const std::string log_name;  // logfmt value
  FrameHandler on_frame;
  // Held while on_frame runs; the destructor takes it after setting `stopping`, so that
  // no call to on_frame is in flight or can start once it returns.
  std::mutex delivery_mutex;
  mutable std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  bool finished = false;  // run() returned
  std::condition_variable finished_cv;
  CameraStatus status;
  std::uint64_t frames_delivered = 0;  // handed to on_frame, over all connections
};

namespace {

// A local path that exists but is not a regular file (a FIFO, a device, a socket): opening
// it can block forever or read without end, so it is no camera.
std::string not_a_video_file(const std::string& url) {
  if (is_rtsp(url) || starts_with(url, "http://") || starts_with(url, "https://")) return {};
  std::string path = url;
  if (starts_with(url, "file://")) {
    gchar* name = g_filename_from_uri(url.c_str(), nullptr, nullptr);
    if (name == nullptr) return {};
    path = name;
    g_free(name);
  }
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status) || std::filesystem::is_regular_file(status)) return {};
  return "'" + path +
         "' is not a regular file (a FIFO, device or socket?): give a video file, "
         "rtsp:// or http(s)://";
}

}  // namespace

CameraStream::CameraStream(const CameraSourceOptions& options, FrameHandler on_frame)
    : shared_(std::make_shared<Shared>(options, std::move(on_frame))) {
  const CameraSourceOptions& options_ = shared_->options;
  static std::once_flag gst_ready;
  std::call_once(gst_ready, [] { gst_init(nullptr, nullptr); });
  if (options_.url.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "camera URL is empty: give rtsp://..., http(s)://..., or a video file");
  }
  const auto colon = options_.url.find("://");
  if (colon != std::string::npos && !is_rtsp(options_.url) &&
      !starts_with(options_.url, "http://") && !starts_with(options_.url, "https://") &&
      !starts_with(options_.url, "file://")) {
    throw Error(ErrorCode::kInvalidArgument,
                "camera URL '" + redact_url(options_.url) +
                    "' has a scheme frs does not play: use rtsp://, rtsps://, http(s):// or a "
                    "file");
  }
  if (options_.rtsp_transport != "tcp" && options_.rtsp_transport != "udp" &&
      options_.rtsp_transport != "auto") {
    throw Error(ErrorCode::kInvalidArgument, "rtsp_transport must be tcp, udp or auto, got " +
                                                 quote_for_message(options_.rtsp_transport));
  }
  if (options_.rtsp_latency_ms < 0 || options_.rtsp_latency_ms > 10000) {
    throw Error(ErrorCode::kInvalidArgument, "rtsp_latency_ms must be in 0..10000");
  }
  if (!is_rtsp(options_.url)) uri_of(options_.url);  // throws for an unusable path
  if (const std::string why = not_a_video_file(options_.url); !why.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "camera URL " + why);
  }
  std::thread([shared = shared_] {
    shared->run();
    std::lock_guard lock(shared->mutex);
    shared->finished = true;
    shared->finished_cv.notify_all();
  }).detach();  // joined by waiting for `finished` below, for at most kStopTimeout
}

CameraStream::~CameraStream() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
  }
  shared_->wake.notify_all();
  // From here on the thread never calls on_frame: whatever it captured may go away.
  { std::lock_guard delivering(shared_->delivery_mutex); }
  std::unique_lock lock(shared_->mutex);
  if (!shared_->finished_cv.wait_for(lock, kStopTimeout, [this] { return shared_->finished; })) {
    spdlog::warn(
        "camera={} event=stop_abandoned reason={}", shared_->log_name,
        logfmt_value("the source has not returned for " + std::to_string(kStopTimeout.count()) +
                     " ms: it is left to end by itself"));
  }
}

const CameraSourceOptions& CameraStream::options() const {
  return shared_->options;
}

CameraStatus CameraStream::status() const {
  std::lock_guard lock(shared_->mutex);
  CameraStatus out = shared_->status;
  // The sink keeps only the newest frame: what reached it and was never taken was dropped
  // (at most one frame is still waiting to be taken).
  const std::uint64_t delivered = shared_->frames_delivered;
  out.counters.frames_dropped =
      out.counters.frames_in > delivered ? out.counters.frames_in - delivered : 0;
  return out;
}

void CameraStream::Shared::set_state(CameraState state, const std::string& error) {
  std::lock_guard lock(mutex);
  status.state = state;
  if (!error.empty()) status.last_error = error;
}

void CameraStream::Shared::run() {
  auto backoff = options.initial_backoff;
  for (bool first = true;; first = false) {
    {
      std::lock_guard lock(mutex);
      if (stopping) break;
      if (!first) ++status.counters.reconnects;
      status.state = CameraState::kConnecting;
    }
    bool streamed_long = false;
    const std::string failure = stream_once(streamed_long);
    if (streamed_long) backoff = options.initial_backoff;
    std::unique_lock lock(mutex);
    if (stopping) break;
    status.state = CameraState::kBackingOff;
    status.last_error = failure;
    spdlog::warn("camera={} event=failed error={} reconnects={} retry_in_ms={}", log_name,
                 logfmt_value(failure), status.counters.reconnects, backoff.count());
    wake.wait_for(lock, backoff, [this] { return stopping; });
    backoff = std::min(backoff * 2, options.max_backoff);
  }
  set_state(CameraState::kStopped);
  spdlog::info("camera={} event=stopped", log_name);
}

std::string CameraStream::Shared::stream_once(bool& streamed_long) {
  // The path may have been replaced by a FIFO since the camera was added.
  if (std::string why = not_a_video_file(options.url); !why.empty()) return why;
  GError* parse_error = nullptr;
  GstElement* pipeline = gst_parse_launch(pipeline_description(options).c_str(), &parse_error);
  if (pipeline == nullptr || parse_error != nullptr) {
    std::string why = parse_error ? parse_error->message : "unknown";
    g_clear_error(&parse_error);
    if (pipeline != nullptr) gst_object_unref(pipeline);
    return "cannot build the GStreamer pipeline (missing plugin?): " + why;
  }
  const PipelineGuard guard{pipeline};
  const ElementPtr source(gst_bin_get_by_name(GST_BIN(pipeline), "source"));
  if (is_rtsp(options.url)) {
    g_object_set(source.get(), "location", options.url.c_str(), nullptr);
  } else {
    g_object_set(source.get(), "uri", uri_of(options.url).c_str(), nullptr);
  }
  const ElementPtr sink(gst_bin_get_by_name(GST_BIN(pipeline), "sink"));
  GstAppSink* appsink = GST_APP_SINK(sink.get());

  // Count every frame reaching the sink, including those the sink drops for newer ones.
  GstPad* sink_pad = gst_element_get_static_pad(sink.get(), "sink");
  gst_pad_add_probe(
      sink_pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer self) -> GstPadProbeReturn {
        auto* stream = static_cast<Shared*>(self);
        std::lock_guard lock(stream->mutex);
        ++stream->status.counters.frames_in;
        return GST_PAD_PROBE_OK;
      },
      this, nullptr);
  gst_object_unref(sink_pad);

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    const BusPtr bus(gst_element_get_bus(pipeline));
    GstMessage* m = gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR);
    std::string why = m ? message_text(m) : "the pipeline refused to start";
    if (m) gst_message_unref(m);
    return why;
  }
  const BusPtr bus(gst_element_get_bus(pipeline));
  const auto connected_at = std::chrono::steady_clock::now();
  auto last_frame = connected_at;
  std::uint64_t delivered = 0;
  while (true) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return {};
    }
    GstSample* sample = gst_app_sink_try_pull_sample(appsink, 100 * GST_MSECOND);
    const auto now = std::chrono::steady_clock::now();
    if (sample != nullptr) {
      last_frame = now;
      VideoFrame frame;
      GstBuffer* buffer = gst_sample_get_buffer(sample);
      const GstStructure* caps = gst_caps_get_structure(gst_sample_get_caps(sample), 0);
      int width = 0, height = 0;
      gst_structure_get_int(caps, "width", &width);
      gst_structure_get_int(caps, "height", &height);
      GstMapInfo map;
      if (width > 0 && height > 0 && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
        // Rows of BGR are padded to 4 bytes by GStreamer's default video layout.
        const std::size_t stride = (static_cast<std::size_t>(width) * 3 + 3) & ~std::size_t{3};
        if (map.size >= stride * static_cast<std::size_t>(height)) {
          frame.bgr = cv::Mat(height, width, CV_8UC3, map.data, stride).clone();
        }
        gst_buffer_unmap(buffer, &map);
      }
      // Presentation time -> pipeline clock -> wall clock.
      frame.captured_at_ms = now_unix_ms();
      GstClock* clock = gst_element_get_clock(pipeline);
      if (clock != nullptr && GST_BUFFER_PTS_IS_VALID(buffer)) {
        const GstClockTime running = gst_segment_to_running_time(
            gst_sample_get_segment(sample), GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
        const GstClockTime at = gst_element_get_base_time(pipeline) + running;
        const GstClockTime clock_now = gst_clock_get_time(clock);
        if (running != GST_CLOCK_TIME_NONE && clock_now >= at) {
          frame.captured_at_ms -= static_cast<std::int64_t>((clock_now - at) / GST_MSECOND);
        }
      }
      if (clock != nullptr) gst_object_unref(clock);
      gst_sample_unref(sample);
      if (!frame.bgr.empty()) {
        frame.sequence = ++delivered;
        {
          std::lock_guard lock(mutex);
          status.state = CameraState::kStreaming;
          status.counters.last_frame_at_ms = frame.captured_at_ms;
          ++frames_delivered;
        }
        if (delivered == 1) {
          std::uint64_t reconnects = 0;
          {
            std::lock_guard lock(mutex);
            reconnects = status.counters.reconnects;
          }
          spdlog::info("camera={} event=streaming width={} height={} reconnects={}", log_name,
                       frame.bgr.cols, frame.bgr.rows, reconnects);
        }
        deliver(std::move(frame));
      }
    }
    if (GstMessage* m = gst_bus_pop_filtered(
            bus.get(), static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
      std::string why = message_text(m);
      gst_message_unref(m);
      streamed_long = now - connected_at > std::chrono::seconds(10);
      return why;
    }
    if (now - last_frame > options.stall_timeout) {
      streamed_long = now - connected_at > std::chrono::seconds(10);
      return "no frame for " + std::to_string(options.stall_timeout.count()) + " ms";
    }
  }
}

}  // namespace frs
