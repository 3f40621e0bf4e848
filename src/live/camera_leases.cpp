#include "frs/live/camera_leases.h"

#include <algorithm>
#include <map>
#include <set>

#include "frs/core/clock.h"
#include "frs/core/error.h"

namespace frs {
namespace {

const char* const kLeaseMigrations[] = {
    // the same in both dialects
    R"sql(
CREATE TABLE cluster_nodes (
  id              TEXT PRIMARY KEY,
  address         TEXT NOT NULL,
  version         TEXT NOT NULL,
  camera_capacity BIGINT NOT NULL,
  started_at_ms   BIGINT NOT NULL,
  heartbeat_at_ms BIGINT NOT NULL,
  applied_change  BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE camera_leases (
  camera         TEXT PRIMARY KEY,
  node           TEXT NOT NULL,
  acquired_at_ms BIGINT NOT NULL,
  expires_at_ms  BIGINT NOT NULL,
  epoch          BIGINT NOT NULL
);
)sql",
};

constexpr const char* kLeaseLock = "frs_camera_leases";

// A node's share of `cameras`: the cameras are spread as evenly as the live nodes'
// capacities allow (the smallest level L with sum of min(capacity, L) covering them), and a
// node takes min(its capacity, L). Every node computes the same level from the same table,
// so shares agree and add up to the cameras (or to every capacity, when they fall short).
std::size_t share_of(int capacity, const std::vector<std::int64_t>& capacities,
                     std::size_t cameras) {
  std::int64_t most = 0;
  for (const std::int64_t c : capacities) most = std::max(most, c);
  std::int64_t level = 0;
  for (;; ++level) {
    std::int64_t covered = 0;
    for (const std::int64_t c : capacities) covered += std::min(c, level);
    if (covered >= static_cast<std::int64_t>(cameras) || level >= most) break;
  }
  return static_cast<std::size_t>(std::min<std::int64_t>(std::max(0, capacity), level));
}

}  // namespace

CameraLeaseStore::CameraLeaseStore(const StoreLocation& where)
    : db_(open_database(where, "camera_leases", "the camera lease store",
                        {kLeaseMigrations, kLeaseMigrations})) {}

std::int64_t CameraLeaseStore::now_ms() {
  std::lock_guard lock(mutex_);
  return now_locked();
}

std::int64_t CameraLeaseStore::now_locked() {
  if (db_->dialect() == SqlDialect::kSqlite) return now_unix_ms();  // one machine, one clock
  Statement s(*db_, "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)");
  s.step();
  return s.integer(0);
}

LeaseRound CameraLeaseStore::round(const ClusterNode& node, const std::vector<std::string>& cameras,
                                   std::chrono::milliseconds lease) {
  if (lease < std::chrono::seconds(1) || lease > std::chrono::minutes(10)) {
    throw Error(ErrorCode::kInvalidArgument, "a camera lease lasts 1 s to 10 min");
  }
  if (node.id.empty()) throw Error(ErrorCode::kInvalidArgument, "a node needs an id");
  std::lock_guard lock(mutex_);
  Transaction t(*db_, kLeaseLock);
  LeaseRound out;
  out.now_ms = now_locked();
  const std::int64_t expires = out.now_ms + lease.count();
  {
    Statement s(*db_,
                "INSERT INTO cluster_nodes(id, address, version, camera_capacity, started_at_ms, "
                "heartbeat_at_ms, applied_change) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) "
                "DO UPDATE SET address = excluded.address, version = excluded.version, "
                "camera_capacity = excluded.camera_capacity, started_at_ms = "
                "excluded.started_at_ms, heartbeat_at_ms = excluded.heartbeat_at_ms, "
                "applied_change = excluded.applied_change");
    s.bind(1, node.id).bind(2, node.address).bind(3, node.version);
    s.bind(4, static_cast<std::int64_t>(node.camera_capacity));
    s.bind(5, node.started_at_ms > 0 ? node.started_at_ms : out.now_ms).bind(6, out.now_ms);
    s.bind(7, static_cast<std::int64_t>(node.applied_change)).step();
  }
  std::vector<std::int64_t> capacities;  // of the live nodes, this one included
  {
    Statement live(*db_, "SELECT camera_capacity FROM cluster_nodes WHERE heartbeat_at_ms > ?");
    live.bind(1, out.now_ms - lease.count());
    while (live.step()) capacities.push_back(std::max<std::int64_t>(0, live.integer(0)));
    out.live_nodes = static_cast<int>(capacities.size());
  }
  const std::set<std::string> existing(cameras.begin(), cameras.end());
  std::map<std::string, CameraLease> leases;
  {
    Statement s(*db_,
                "SELECT camera, node, acquired_at_ms, expires_at_ms, epoch FROM camera_leases");
    while (s.step()) {
      leases[s.text(0)] = {s.text(0), s.text(1), s.integer(2), s.integer(3), s.integer(4)};
    }
  }
  for (const auto& [camera, held] : leases) {
    if (!existing.count(camera)) {
      Statement(*db_, "DELETE FROM camera_leases WHERE camera = ?").bind(1, camera).step();
    }
  }
  // Renew ours; a lease of ours that expired is renewed too when nobody took it meanwhile
  // (the camera was stopped when it ran out: see CameraAssigner).
  std::vector<std::string> mine, free;
  for (const std::string& camera : existing) {
    const auto it = leases.find(camera);
    if (it != leases.end() && it->second.node == node.id) {
      mine.push_back(camera);
    } else if (it == leases.end() || it->second.expires_at_ms <= out.now_ms) {
      free.push_back(camera);
    }
  }
  if (!mine.empty()) {
    Statement s(*db_, "UPDATE camera_leases SET expires_at_ms = ? WHERE node = ?");
    s.bind(1, expires).bind(2, node.id).step();
  }
  const std::size_t share = share_of(node.camera_capacity, capacities, existing.size());
  for (const std::string& camera : free) {
    if (mine.size() >= share) break;
    const auto it = leases.find(camera);
    const std::int64_t epoch = it == leases.end() ? 1 : it->second.epoch + 1;
    Statement s(*db_,
                "INSERT INTO camera_leases(camera, node, acquired_at_ms, expires_at_ms, epoch) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (camera) DO UPDATE SET node = excluded.node, "
                "acquired_at_ms = excluded.acquired_at_ms, expires_at_ms = "
                "excluded.expires_at_ms, epoch = excluded.epoch");
    s.bind(1, camera).bind(2, node.id).bind(3, out.now_ms).bind(4, expires).bind(5, epoch).step();
    mine.push_back(camera);
  }
  std::sort(mine.begin(), mine.end());
  // Over its share (a node joined): the last ones by name, so that two rounds agree.
  if (mine.size() > share)
    out.give_up.assign(mine.begin() + static_cast<std::ptrdiff_t>(share), mine.end());
  out.held = std::move(mine);
  t.commit();
  return out;
}

void CameraLeaseStore::release(const std::string& node, const std::vector<std::string>& cameras) {
  std::lock_guard lock(mutex_);
  Transaction t(*db_, kLeaseLock);
  for (const std::string& camera : cameras) {
    Statement(*db_, "DELETE FROM camera_leases WHERE camera = ? AND node = ?")
        .bind(1, camera)
        .bind(2, node)
        .step();
  }
  t.commit();
}

void CameraLeaseStore::leave(const std::string& node) {
  std::lock_guard lock(mutex_);
  Transaction t(*db_, kLeaseLock);
  Statement(*db_, "DELETE FROM camera_leases WHERE node = ?").bind(1, node).step();
  Statement(*db_, "DELETE FROM cluster_nodes WHERE id = ?").bind(1, node).step();
  t.commit();
}

std::vector<ClusterNode> CameraLeaseStore::nodes() {
  std::lock_guard lock(mutex_);
  Statement s(*db_,
              "SELECT id, address, version, camera_capacity, started_at_ms, heartbeat_at_ms, "
              "applied_change FROM cluster_nodes ORDER BY id");
  std::vector<ClusterNode> out;
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.text(2), static_cast<int>(s.integer(3)), s.integer(4),
                   s.integer(5), static_cast<std::uint64_t>(s.integer(6))});
  }
  return out;
}

std::vector<CameraLease> CameraLeaseStore::leases() {
  std::lock_guard lock(mutex_);
  Statement s(*db_,
              "SELECT camera, node, acquired_at_ms, expires_at_ms, epoch FROM camera_leases "
              "ORDER BY camera");
  std::vector<CameraLease> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.integer(2), s.integer(3), s.integer(4)});
  return out;
}

}  // namespace frs
