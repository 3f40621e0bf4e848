// How many live camera streams this machine analyses in real time, and how fast an alert
// reaches a subscriber, against the naive loop most tutorials write.
//
// frs: N cameras play the same clip (the shared short_hamilton_clip.mp4, 640x360 at 30 fps,
// transcoded once for the larger sizes), each through its own GStreamer decoder, into one
// LiveRecognizer (workers = cores) analysing 10 frames a second per camera, with
// Lin-Manuel Miranda enrolled. A stream is analysed in real time when its workers keep up:
// at most 5% of the frames due for analysis were replaced by a newer one while waiting.
// Alert latency: capture time of the deciding frame to delivery to a subscriber. CPU: the
// whole process (decoding included), per stream, in % of one core.
//
// Naive: OpenCV decodes every frame, the engine detects, aligns and embeds every face of
// every frame and searches each one (no tracking, no sampling), one loop per core; its
// capacity is the frames it gets through per second over the stream's 30 fps.
//
//   bench_live_streams [--seconds 30] [--streams "1,2,4,6,8,12"]
//       [--sizes "640x360,1280x720,1920x1080"] [--fps 10] [--naive-seconds 20]
//       [--detector blazeface|rfb|hog] [--descriptor MODEL[,MODEL2...]]
// --descriptor: the watchlist's model (default: frs's default model); with several, one
// watchlist per model, him enrolled in each, so every chosen chip is described by each
// model (the cost of cameras checking watchlists of several models). The naive loop
// describes with the first.
// Stream counts are tried in order; a size stops at its first count that is not real time.

#include <gst/gst.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <opencv2/videoio.hpp>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/gallery/enrollment.h"
#include "frs/live/live_recognizer.h"
#include "frs/service/services.h"
#include "test_authorizations.h"
#include "testdata.h"

using namespace frs;
using namespace std::chrono_literals;

namespace {

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The clip at `size`: the shared file itself at its own size, else an H.264 copy made once
// with GStreamer's openh264 encoder (the one Debian ships in gstreamer1.0-plugins-bad).
std::filesystem::path clip_at(const std::filesystem::path& source, cv::Size size,
                              const std::filesystem::path& dir) {
  if (size == cv::Size(640, 360)) return source;
  const auto out =
      dir / ("clip_" + std::to_string(size.width) + "x" + std::to_string(size.height) + ".mp4");
  if (std::filesystem::exists(out)) return out;
  gst_init(nullptr, nullptr);
  const std::string description =
      "filesrc name=in ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=I420,width=" +
      std::to_string(size.width) + ",height=" + std::to_string(size.height) +
      " ! openh264enc bitrate=" + std::to_string(size.area() * 4) +
      " ! h264parse ! mp4mux ! filesink name=out";
  GError* error = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
  if (!pipeline) {
    const std::string why = error ? error->message : "unknown";
    if (error) g_error_free(error);
    throw Error(ErrorCode::kFailedPrecondition, "cannot transcode the clip: " + why +
                                                    " (needs gstreamer1.0-plugins-bad's openh264)");
  }
  GstElement* in = gst_bin_get_by_name(GST_BIN(pipeline), "in");
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  g_object_set(in, "location", source.c_str(), nullptr);
  g_object_set(sink, "location", out.c_str(), nullptr);
  gst_object_unref(in);
  gst_object_unref(sink);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* message = gst_bus_timed_pop_filtered(
      bus, GST_CLOCK_TIME_NONE, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  std::string failure;
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(message, &e, nullptr);
    failure = e ? e->message : "unknown";
    if (e) g_error_free(e);
  }
  gst_message_unref(message);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  if (!failure.empty()) {
    std::filesystem::remove(out);
    throw Error(ErrorCode::kInternal, "transcoding the clip failed: " + failure);
  }
  return out;
}

struct LivePoint {
  int streams = 0;
  double min_analysed_fps = 1e9;
  double max_skipped_share = 0;
  double cpu_per_stream = 0;  // % of one core
  std::vector<double> alert_ms;
  bool real_time() const { return max_skipped_share <= 0.05; }
};

LivePoint run_live(const FaceEngine& engine, Gallery& gallery, const std::filesystem::path& video,
                   int streams, double fps, int seconds, const std::filesystem::path& dir) {
  const auto log = dir / ("alerts_" + std::to_string(streams) + ".db");
  std::filesystem::remove(log);
  AlertStore alerts(log);
  AlertFeed feed;
  auto subscription = feed.subscribe();
  DecisionOptions decisions;
  decisions.cooldown_ms = 0;  // each new track of him alerts: more latency samples
  LiveRecognizer live(engine, gallery, alerts, feed, decisions);
  for (int i = 0; i < streams; ++i) {
    CameraConfig camera;
    camera.name = "camera-" + std::to_string(i);
    camera.source.url = video.string();
    camera.analyse_fps = fps;
    live.add_camera(camera);
  }
  std::this_thread::sleep_for(4s);  // decoders start, trackers fill
  while (subscription->next(0ms)) {
  }
  const auto before = live.cameras();
  const double cpu_before = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  LivePoint point;
  point.streams = streams;
  while (std::chrono::steady_clock::now() < start + std::chrono::seconds(seconds)) {
    if (auto alert = subscription->next(100ms)) {
      point.alert_ms.push_back(static_cast<double>(now_unix_ms() - alert->captured_at_ms));
    }
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_before;
  const auto after = live.cameras();
  for (std::size_t i = 0; i < after.size(); ++i) {
    const double analysed =
        static_cast<double>(after[i].frames_analysed - before[i].frames_analysed);
    const double skipped = static_cast<double>(after[i].frames_skipped - before[i].frames_skipped);
    point.min_analysed_fps = std::min(point.min_analysed_fps, analysed / wall);
    point.max_skipped_share =
        std::max(point.max_skipped_share, skipped / std::max(1.0, analysed + skipped));
  }
  point.cpu_per_stream = 100.0 * cpu / wall / streams;
  return point;
}

// The naive loop on `loops` threads for `seconds`, describing faces with `model` (the
// watchlist's): frames per second over all of them.
double run_naive(const FaceEngine& engine, const DescriptorModel& model, Gallery& gallery,
                 const std::filesystem::path& video, int loops, int seconds) {
  std::atomic<long> frames{0};
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < loops; ++t) {
    threads.emplace_back([&] {
      cv::VideoCapture capture(video.string());
      cv::Mat frame;
      while (std::chrono::steady_clock::now() < end) {
        if (!capture.read(frame)) {
          capture.open(video.string());  // the clip loops, like a camera that never stops
          continue;
        }
        std::vector<Face> faces = engine.analyze(frame, false);
        engine.embed(faces, model);
        std::vector<Embedding> descriptors;
        for (const Face& face : faces) {
          if (face.embedding) descriptors.push_back(*face.embedding);
        }
        if (!descriptors.empty()) gallery.search(descriptors, model.id, {}, 1, std::nullopt);
        ++frames;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(frames.load()) / wall;
}

}  // namespace

int main(int argc, char** argv) {
  frs::bench::send_logs_to_stderr();
  int seconds = 30, naive_seconds = 20;
  double fps = 10;
  std::vector<int> stream_counts = {1, 2, 4, 6, 8, 12};
  std::vector<cv::Size> sizes = {{640, 360}, {1280, 720}, {1920, 1080}};
  FaceEngineOptions engine_options;
  std::vector<std::string> descriptors = {engine_options.descriptor};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") seconds = std::stoi(value);
    if (flag == "--naive-seconds") naive_seconds = std::stoi(value);
    if (flag == "--fps") fps = std::stod(value);
    if (flag == "--detector") engine_options.detector = detector_kind(value);
    if (flag == "--descriptor") descriptors = bench::split(value);
    if (flag == "--streams") {
      stream_counts.clear();
      for (const auto& s : bench::split(value)) stream_counts.push_back(std::stoi(s));
    }
    if (flag == "--sizes") {
      sizes.clear();
      for (const auto& s : bench::split(value)) {
        const auto x = s.find('x');
        sizes.emplace_back(std::stoi(s.substr(0, x)), std::stoi(s.substr(x + 1)));
      }
    }
  }
  try {
    const auto dir = std::filesystem::temp_directory_path() / "frs_bench_live";
    std::filesystem::create_directories(dir);
    const auto clip = testing::testdata_dir() / "video" / "short_hamilton_clip.mp4";
    engine_options.descriptor = descriptors.at(0);
    engine_options.more_descriptors.assign(descriptors.begin() + 1, descriptors.end());
    const FaceEngine engine(engine_options);
    std::filesystem::remove(dir / "gallery.db");
    Gallery gallery(open_gallery_store(dir / "gallery.db"), GalleryOptions{});
    std::ifstream in(testing::testdata_dir() / "faces" / "lin-manuel-miranda.png",
                     std::ios::binary);
    const std::string his_photo((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
    for (const std::string& descriptor : descriptors) {
      const DescriptorModel& model = descriptor_model(descriptor);
      Watchlist w;
      w.name = "wanted-" + descriptor;
      w.descriptor_model = descriptor;
      // The loosest threshold the server allows for the model: every model alerts as readily.
      w.max_distance = service::default_max_distance_ceiling(model);
      const Watchlist watchlist = gallery.create_watchlist(w);
      gallery.authorize(testing::test_authorization(watchlist.id));  // live matching needs one
      const PreparedPhoto photo = prepare_photo(
          engine, {reinterpret_cast<const std::uint8_t*>(his_photo.data()), his_photo.size()},
          std::nullopt, {}, "", {}, &model);
      if (!photo.accepted) throw Error(ErrorCode::kInternal, "his photo: " + photo.reason);
      Identity him;
      him.watchlist_id = watchlist.id;
      him.external_id = him.display_name = "Lin-Manuel Miranda";
      gallery.enroll(him, {photo.face});
    }
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    std::printf(
        "# Live streams on %d cores: the clip at 30 fps per stream, %.0f analysed frames/s per "
        "stream, %d s per point; detector %s, watchlists of %s\n\n",
        cores, fps, seconds, std::string(detector_name(engine_options.detector)).c_str(),
        engine_options.descriptor.c_str());
    for (const std::string& more : engine_options.more_descriptors)
      std::printf("(and of %s)\n\n", more.c_str());
    for (const cv::Size size : sizes) {
      const auto video = clip_at(clip, size, dir);
      std::printf("## %dx%d\n\n", size.width, size.height);
      std::printf(
          "| streams | analysed fps per stream (lowest) | frames skipped (worst stream) | CPU per "
          "stream, %% of a core | alerts | alert latency p50 / p95 ms | real time |\n");
      std::printf("|---|---|---|---|---|---|---|\n");
      std::fflush(stdout);
      int capacity = 0;
      for (int streams : stream_counts) {
        const LivePoint p = run_live(engine, gallery, video, streams, fps, seconds, dir);
        std::printf("| %d | %.1f | %.1f%% | %.0f | %zu | %.0f / %.0f | %s |\n", streams,
                    p.min_analysed_fps, 100 * p.max_skipped_share, p.cpu_per_stream,
                    p.alert_ms.size(), bench::percentile(p.alert_ms, 0.5),
                    bench::percentile(p.alert_ms, 0.95), p.real_time() ? "yes" : "no");
        std::fflush(stdout);
        if (!p.real_time()) break;
        capacity = streams;
      }
      const double naive_fps =
          run_naive(engine, engine.descriptor_model(), gallery, video, cores, naive_seconds);
      const double naive_streams = naive_fps / 30.0;
      std::printf(
          "\nfrs: %d streams in real time. Naive loop (every frame, every face embedded, %d "
          "loops): %.1f frames/s = %.2f streams at 30 fps. Ratio %.1fx.\n\n",
          capacity, cores, naive_fps, naive_streams,
          naive_streams > 0 ? capacity / naive_streams : 0.0);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_live_streams: %s\n", e.what());
    return 1;
  }
  return 0;
}
