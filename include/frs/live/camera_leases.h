#pragma once
// Which node analyses which camera, when several frs-server nodes share one PostgreSQL
// database. Each node holds leases on cameras up to its capacity and renews them every
// round; a lease not renewed in time expires, and another node claims the camera. Every
// round is one transaction under the cluster's lease lock, on the database's clock (nodes'
// clocks may differ; leases must not).
//
// Balance without flapping: a node claims free cameras up to its share (the cameras over
// the live nodes, rounded up, at most its capacity) and gives up those over its share, so
// when a node joins, the others give up just enough for it and a camera moves at most once;
// nothing is ever taken from a node that holds a valid lease on it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "frs/storage/database.h"

namespace frs {

struct ClusterNode {
  std::string id;       // stable per data dir (DATA_DIR/node.id)
  std::string address;  // its gRPC listen address, for `frs cluster status`
  std::string version;  // frs version
  int camera_capacity = 0;
  std::int64_t started_at_ms = 0;    // database clock, Unix ms
  std::int64_t heartbeat_at_ms = 0;  // its last round, database clock
  std::uint64_t applied_change = 0;  // the gallery change number its indexes reflect
};

struct CameraLease {
  std::string camera;
  std::string node;
  std::int64_t acquired_at_ms = 0;  // database clock
  std::int64_t expires_at_ms = 0;   // database clock
  // Grows by one each time the camera changes hands: which holding an alert came from.
  std::int64_t epoch = 0;
};

// What one round gave a node.
struct LeaseRound {
  std::vector<std::string> held;     // cameras it holds a valid lease on now, by name
  std::vector<std::string> give_up;  // of those, over its share: stop them, then release()
  std::int64_t now_ms = 0;           // the database's clock at the round
  int live_nodes = 0;                // nodes with a heartbeat within the lease time
};

class CameraLeaseStore {
 public:
  explicit CameraLeaseStore(const StoreLocation& where);

  // One round for `node`: records its heartbeat, drops leases of cameras not in `cameras`
  // (removed), renews its leases, claims free cameras up to its share and names those over
  // it. `lease`: how long a lease lasts unrenewed (1 s..10 min).
  LeaseRound round(const ClusterNode& node, const std::vector<std::string>& cameras,
                   std::chrono::milliseconds lease);
  // Gives up `node`'s leases of `cameras` (after it stopped them).
  void release(const std::string& node, const std::vector<std::string>& cameras);
  // Removes the node and its leases (a node stopping cleanly: its cameras move at once).
  void leave(const std::string& node);

  std::vector<ClusterNode> nodes();   // by id
  std::vector<CameraLease> leases();  // by camera
  std::int64_t now_ms();              // the database's clock

 private:
  std::int64_t now_locked();  // caller holds mutex_

  std::unique_ptr<Database> db_;
  std::mutex mutex_;  // one connection: one statement at a time
};

}  // namespace frs
