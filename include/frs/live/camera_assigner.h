#pragma once
// A node's part in sharing the cluster's cameras (CameraLeaseStore): every round it renews
// its leases, claims its share, starts the cameras it holds and stops those it gave up or
// that were removed. Fencing: when it has not renewed its leases for the lease time less
// one round (PostgreSQL unreachable, the node stalled), it stops every camera itself, a
// round before the leases run out and another node may start them: a camera is analysed by
// one node at a time.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "frs/live/camera_leases.h"
#include "frs/live/camera_store.h"
#include "frs/live/live_recognizer.h"

namespace frs {

struct CameraAssignerOptions {
  // How long a lease lasts unrenewed: a dead node's cameras move after at most this plus
  // one round. Default 5 s, range 2 s..10 min.
  std::chrono::milliseconds lease = std::chrono::seconds(5);
  // How often a node renews, claims and rebalances. Default 1 s; at most lease / 2.
  std::chrono::milliseconds round = std::chrono::seconds(1);
};

class CameraAssigner {
 public:
  // `applied_change`: the gallery change number this node's indexes reflect (reported in
  // its heartbeat). Starts the rounds on a thread of its own.
  CameraAssigner(CameraLeaseStore& leases, CameraStore& cameras, LiveRecognizer& live,
                 ClusterNode self, std::function<std::uint64_t()> applied_change,
                 CameraAssignerOptions options = {});
  // Stops the rounds and the cameras, and leaves the cluster so that the others take the
  // cameras at once (a node killed instead leaves them to expire).
  ~CameraAssigner();
  CameraAssigner(const CameraAssigner&) = delete;
  CameraAssigner& operator=(const CameraAssigner&) = delete;

  std::vector<std::string> running() const;  // cameras this node analyses now, by name
  const ClusterNode& self() const { return self_; }

 private:
  void run();
  void one_round();
  void fence();  // the watchdog: stops every camera once the leases may be about to run out
  void stop_camera(const std::string& name, const char* why);

  CameraLeaseStore& leases_;
  CameraStore& cameras_;
  LiveRecognizer& live_;
  ClusterNode self_;
  std::function<std::uint64_t()> applied_change_;
  CameraAssignerOptions options_;
  // Start of the last round that renewed (steady clock, ns): read by the watchdog, which
  // checks it every 100 ms whatever a round is waiting for (a dead server's connect).
  std::atomic<std::int64_t> renewed_ns_{0};
  std::string last_error_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, bool> running_;  // name -> started (guarded by mutex_)
  std::thread thread_;
  std::thread watchdog_;
};

}  // namespace frs
