// frs-test-camera: an RTSP camera made from a video file, for trying and testing frs
// without a camera. Serves the file in a loop at its own frame rate, as a live camera
// does: frames keep coming whether anyone watches, timestamps only grow, and every client
// sees the same stream.
//
//   frs-test-camera VIDEO [--listen 127.0.0.1] [--port 8554] [--path /camera] [--fps N]
//   -> rtsp://127.0.0.1:8554/camera
//
// Frames are decoded with OpenCV and sent as Motion JPEG over RTP (rtpjpegpay, in
// gstreamer1.0-plugins-good), so no H.264 encoder is needed.

#include <glib-unix.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <opencv2/videoio.hpp>
#include <thread>

namespace {

// The appsrc of the shared media while a client is connected; null otherwise.
struct Feed {
  std::mutex mutex;
  GstElement* appsrc = nullptr;
};

void on_media_unprepared(GstRTSPMedia*, gpointer data) {
  auto* feed = static_cast<Feed*>(data);
  std::lock_guard lock(feed->mutex);
  if (feed->appsrc != nullptr) gst_object_unref(feed->appsrc);
  feed->appsrc = nullptr;
}

void on_media_configure(GstRTSPMediaFactory*, GstRTSPMedia* media, gpointer data) {
  auto* feed = static_cast<Feed*>(data);
  GstElement* bin = gst_rtsp_media_get_element(media);
  GstElement* appsrc = gst_bin_get_by_name_recurse_up(GST_BIN(bin), "frames");
  gst_object_unref(bin);
  g_signal_connect(media, "unprepared", G_CALLBACK(on_media_unprepared), feed);
  std::lock_guard lock(feed->mutex);
  if (feed->appsrc != nullptr) gst_object_unref(feed->appsrc);
  feed->appsrc = appsrc;
}

gboolean quit(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_REMOVE;
}

}  // namespace

int main(int argc, char** argv) {
  std::string video, listen = "127.0.0.1", path = "/camera";
  int port = 8554;
  double fps = 0;
  CLI::App flags{"frs-test-camera: serve a video file as a looping live RTSP camera"};
  flags.add_option("video", video, "Video file (any format OpenCV/FFmpeg reads)")
      ->required()
      ->check(CLI::ExistingFile);
  flags.add_option("--listen", listen, "Address to serve on")->capture_default_str();
  flags.add_option("--port", port, "RTSP port")->check(CLI::Range(1, 65535))->capture_default_str();
  flags.add_option("--path", path, "Mount path")->capture_default_str();
  flags.add_option("--fps", fps, "Frames per second (default: the file's)")
      ->check(CLI::Range(0.1, 240.0));
  CLI11_PARSE(flags, argc, argv);
  if (path.empty() || path[0] != '/') path = "/" + path;

  cv::VideoCapture capture(video);
  cv::Mat frame;
  if (!capture.isOpened() || !capture.read(frame) || frame.empty()) {
    std::cerr << "frs-test-camera: cannot decode '" << video
              << "': is it a video file OpenCV can read (mp4, mkv, avi...)?\n";
    return 1;
  }
  if (fps <= 0) fps = capture.get(cv::CAP_PROP_FPS);
  if (!(fps > 0 && fps <= 240)) fps = 25;

  gst_init(&argc, &argv);
  GstRTSPServer* server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, listen.c_str());
  gst_rtsp_server_set_service(server, std::to_string(port).c_str());
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  const int fps_milli = static_cast<int>(std::lround(fps * 1000));
  const std::string launch =
      "( appsrc name=frames is-live=true do-timestamp=true format=time caps=video/x-raw,format=BGR,"
      "width=" +
      std::to_string(frame.cols) + ",height=" + std::to_string(frame.rows) +
      ",framerate=" + std::to_string(fps_milli) +
      "/1000 ! queue max-size-buffers=2 leaky=downstream ! videoconvert ! video/x-raw,format=I420 "
      "! jpegenc quality=85 "
      "! rtpjpegpay name=pay0 pt=26 )";
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  gst_rtsp_media_factory_set_shared(factory, TRUE);
  Feed feed;
  g_signal_connect(factory, "media-configure", G_CALLBACK(on_media_configure), &feed);
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  gst_rtsp_mount_points_add_factory(mounts, path.c_str(), factory);
  g_object_unref(mounts);
  if (gst_rtsp_server_attach(server, nullptr) == 0) {
    std::cerr << "frs-test-camera: cannot listen on " << listen << ":" << port
              << ": is the port free?\n";
    return 1;
  }
  std::cout << "frs-test-camera: serving " << video << " (" << frame.cols << "x" << frame.rows
            << ", " << fps << " fps, looping) at rtsp://" << listen << ":" << port << path
            << std::endl;

  // Frames are produced at the file's pace from start to stop, like a camera's sensor.
  std::atomic<bool> running{true};
  std::thread producer([&] {
    const auto period = std::chrono::duration<double>(1.0 / fps);
    auto due = std::chrono::steady_clock::now();
    while (running) {
      if (!capture.read(frame) || frame.empty()) {
        capture.set(cv::CAP_PROP_POS_FRAMES, 0);  // loop
        if (!capture.read(frame) || frame.empty()) break;
      }
      {
        std::lock_guard lock(feed.mutex);
        if (feed.appsrc != nullptr) {
          const std::size_t bytes = frame.total() * frame.elemSize();
          GstBuffer* buffer = gst_buffer_new_allocate(nullptr, bytes, nullptr);
          gst_buffer_fill(buffer, 0, frame.data, bytes);
          GST_BUFFER_DURATION(buffer) = static_cast<GstClockTime>(GST_SECOND / std::max(1.0, fps));
          gst_app_src_push_buffer(GST_APP_SRC(feed.appsrc), buffer);  // takes the buffer
        }
      }
      due += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
      std::this_thread::sleep_until(due);
    }
  });

  GMainLoop* main_loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGINT, quit, main_loop);
  g_unix_signal_add(SIGTERM, quit, main_loop);
  g_main_loop_run(main_loop);
  running = false;
  producer.join();
  on_media_unprepared(nullptr, &feed);
  g_main_loop_unref(main_loop);
  g_object_unref(server);
  return 0;
}
