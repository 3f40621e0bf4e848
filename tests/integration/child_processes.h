#pragma once
// Helpers of the tests that run frs programs as child processes on loopback.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/videoio.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "testdata.h"

namespace frs::testing {

// Polls `done` every `poll` until it holds or `limit` passes; returns whether it held.
template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit,
                std::chrono::milliseconds poll = std::chrono::milliseconds(200)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

// A loopback TCP port that was free a moment ago.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Whether something accepts TCP connections on the loopback port now.
inline bool tcp_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return connected;
}

inline std::filesystem::path hamilton_clip() {
  return testdata_dir() / "video" / "short_hamilton_clip.mp4";
}

// Frames in one loop of the shared clip (frs-test-camera plays it in a loop, in real time).
inline std::uint64_t clip_loop_frames() {
  static const std::uint64_t frames = [] {
    cv::VideoCapture clip(hamilton_clip().string());
    const double n = clip.get(cv::CAP_PROP_FRAME_COUNT);
    if (!(n > 0))
      throw std::runtime_error("cannot count the frames of " + hamilton_clip().string());
    return static_cast<std::uint64_t>(n);
  }();
  return frames;
}

// Waits (up to `limit`) until `frames_in()`, a camera's count of frames that reached frs,
// has grown by `loops` loops of the shared clip: a window measured in video played, which a
// loaded machine or a reconnection stretches in seconds but not in content.
template <typename FramesIn>
bool clip_played(FramesIn frames_in, double loops,
                 std::chrono::milliseconds limit = std::chrono::seconds(180)) {
  const std::uint64_t until =
      frames_in() + static_cast<std::uint64_t>(loops * static_cast<double>(clip_loop_frames()));
  return eventually([&] { return frames_in() >= until; }, limit, std::chrono::milliseconds(100));
}

// frs-test-camera serving the shared clip on a loopback port, as a child process. Once
// constructed, it listens: a port taken since free_port() chose it is replaced by another.
class TestCamera {
 public:
  TestCamera() : port_(free_port()) {
    for (int attempt = 1; !start_once(); ++attempt) {
      if (attempt == 5) throw std::runtime_error("frs-test-camera found no free port in 5 tries");
      port_ = free_port();
    }
  }
  ~TestCamera() { stop(); }
  TestCamera(const TestCamera&) = delete;
  TestCamera& operator=(const TestCamera&) = delete;
  // Again on the same port (the camera coming back).
  void start() {
    if (!start_once()) {
      throw std::runtime_error("frs-test-camera cannot listen on its port " +
                               std::to_string(port_) + " again");
    }
  }
  // SIGKILL: the camera vanishes without an RTSP teardown, as a cut cable does.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::error_code ignored;
    std::filesystem::remove(said_, ignored);
  }
  std::string url() const { return "rtsp://127.0.0.1:" + std::to_string(port_) + "/camera"; }

 private:
  // Starts it and waits until it says it serves (true), or exits: it could not listen (false).
  bool start_once() {
    said_ = std::filesystem::temp_directory_path() /
            ("frs-test-camera-" + std::to_string(::getpid()) + "-" + std::to_string(port_));
    std::filesystem::remove(said_);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(said_.c_str(), "w", stdout);
      const std::string port = std::to_string(port_);
      ::execl(FRS_TEST_CAMERA, FRS_TEST_CAMERA, hamilton_clip().c_str(), "--port", port.c_str(),
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    const bool serving = eventually(
        [&] {
          std::ifstream out(said_);
          const std::string text((std::istreambuf_iterator<char>(out)),
                                 std::istreambuf_iterator<char>());
          if (text.find(" at rtsp://") != std::string::npos) return true;
          if (::waitpid(pid_, nullptr, WNOHANG) != pid_) return false;
          pid_ = -1;  // exited: it could not listen
          return true;
        },
        std::chrono::seconds(60), std::chrono::milliseconds(20));
    if (!serving) throw std::runtime_error("frs-test-camera did not start within 60 s");
    return pid_ > 0;
  }

  int port_;
  pid_t pid_ = -1;
  std::filesystem::path said_;  // what it printed on stdout
};

}  // namespace frs::testing
