#pragma once
// Helpers of the tests that run frs programs as child processes on loopback.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

inline std::filesystem::path hamilton_clip() {
  return testdata_dir() / "video" / "short_hamilton_clip.mp4";
}

// frs-test-camera serving the shared clip on a loopback port, as a child process.
class TestCamera {
 public:
  explicit TestCamera(int port = free_port()) : port_(port) { start(); }
  ~TestCamera() { stop(); }
  TestCamera(const TestCamera&) = delete;
  TestCamera& operator=(const TestCamera&) = delete;
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen("/dev/null", "w", stdout);
      const std::string port = std::to_string(port_);
      ::execl(FRS_TEST_CAMERA, FRS_TEST_CAMERA, hamilton_clip().c_str(), "--port", port.c_str(),
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  // SIGKILL: the camera vanishes without an RTSP teardown, as a cut cable does.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string url() const { return "rtsp://127.0.0.1:" + std::to_string(port_) + "/camera"; }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace frs::testing
