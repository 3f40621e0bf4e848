#include "frs/live/camera_leases.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <thread>

#include "error_code.h"
#include "frs/core/clock.h"
#include "test_postgres.h"

namespace frs {
namespace {

using namespace std::chrono_literals;
using testing::Backend;

class CameraLeasesTest : public ::testing::TestWithParam<Backend> {
 protected:
  StoreLocation where() const { return stores_.at("leases.db"); }
  static ClusterNode node(const std::string& id, int capacity = 8) {
    ClusterNode n;
    n.id = id;
    n.address = "127.0.0.1:" + id;
    n.version = "test";
    n.camera_capacity = capacity;
    return n;
  }
  // One round of each node in turn, giving up what it must, as CameraAssigner does.
  // Returns each camera's holder after the rounds.
  std::map<std::string, std::string> rounds(CameraLeaseStore& store,
                                            const std::vector<ClusterNode>& nodes, int times,
                                            std::chrono::milliseconds lease = 5s) {
    for (int i = 0; i < times; ++i) {
      for (const ClusterNode& n : nodes) {
        const LeaseRound r = store.round(n, cameras_, lease);
        if (!r.give_up.empty()) store.release(n.id, r.give_up);
        for (const auto& l : store.leases()) {
          if (holders_[l.camera] != l.node) {
            if (!holders_[l.camera].empty()) ++moves_[l.camera];
            holders_[l.camera] = l.node;
          }
        }
      }
    }
    return holders_;
  }
  static std::map<std::string, int> count(const std::map<std::string, std::string>& holders) {
    std::map<std::string, int> out;
    for (const auto& [camera, node] : holders) ++out[node];
    return out;
  }

  testing::TestStores stores_{GetParam()};
  std::vector<std::string> cameras_{"c1", "c2", "c3", "c4", "c5", "c6"};
  std::map<std::string, std::string> holders_;
  std::map<std::string, int> moves_;
};
INSTANTIATE_TEST_SUITE_P(Backends, CameraLeasesTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

TEST_P(CameraLeasesTest, CamerasSpreadAndAJoiningNodeTakesItsShareEachCameraMovingOnce) {
  CameraLeaseStore store(where());
  auto holders = rounds(store, {node("a"), node("b")}, 2);
  EXPECT_EQ(count(holders), (std::map<std::string, int>{{"a", 3}, {"b", 3}}));
  moves_.clear();
  holders = rounds(store, {node("a"), node("b"), node("c")}, 4);
  EXPECT_EQ(count(holders), (std::map<std::string, int>{{"a", 2}, {"b", 2}, {"c", 2}}));
  int moved = 0;
  for (const auto& [camera, n] : moves_) {
    EXPECT_LE(n, 1) << camera << " moved back and forth";
    moved += n;
  }
  EXPECT_EQ(moved, 2);  // one from a, one from b, and nothing else
  // Stable: more rounds move nothing.
  moves_.clear();
  rounds(store, {node("a"), node("b"), node("c")}, 3);
  EXPECT_TRUE(moves_.empty());
}

TEST_P(CameraLeasesTest, ANodeTakesNoMoreThanItsCapacityAndNeverAValidLease) {
  CameraLeaseStore store(where());
  auto holders = rounds(store, {node("small", 1)}, 2);
  EXPECT_EQ(count(holders), (std::map<std::string, int>{{"small", 1}}));
  holders = rounds(store, {node("small", 1), node("big", 10)}, 2);
  EXPECT_EQ(count(holders), (std::map<std::string, int>{{"small", 1}, {"big", 5}}));
  EXPECT_TRUE(moves_.empty()) << "a camera held under a valid lease changed hands";
}

TEST_P(CameraLeasesTest, ADeadNodesCamerasAreTakenOnceItsLeasesRunOut) {
  CameraLeaseStore store(where());
  const auto lease = 1500ms;
  rounds(store, {node("a"), node("b")}, 2, lease);
  // b does no more rounds. Its leases end when the store says (the database's clock, which
  // is this machine's): judged against that, not against a time the test guesses, so that
  // slow rounds on a loaded machine neither pass nor fail the test by themselves.
  std::int64_t first_expiry = INT64_MAX, last_expiry = 0;
  for (const CameraLease& l : store.leases()) {
    if (l.node != "b") continue;
    first_expiry = std::min(first_expiry, l.expires_at_ms);
    last_expiry = std::max(last_expiry, l.expires_at_ms);
  }
  ASSERT_EQ(count(holders_)["b"], 3);
  bool taken = false;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!taken && std::chrono::steady_clock::now() < give_up) {
    const std::int64_t began = now_unix_ms();
    rounds(store, {node("a")}, 1, lease);
    const std::int64_t ended = now_unix_ms();
    taken = count(holders_)["a"] == 6;
    // Until they run out, b's leases hold: nobody takes them early.
    if (ended < first_expiry) {
      EXPECT_EQ(count(holders_)["b"], 3) << "taken early";
    }
    // The first round that begins after they ran out takes them.
    if (began > last_expiry + 50) {
      EXPECT_TRUE(taken) << "not taken once b's leases ran out";
    }
    if (!taken) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(taken);
}

TEST_P(CameraLeasesTest, ARemovedCameraLosesItsLeaseAndALeavingNodeFreesItsCameras) {
  CameraLeaseStore store(where());
  rounds(store, {node("a"), node("b")}, 2);
  cameras_.pop_back();  // c6 removed
  rounds(store, {node("a")}, 1);
  for (const CameraLease& l : store.leases()) EXPECT_NE(l.camera, "c6");
  store.leave("b");
  EXPECT_EQ(store.nodes().size(), 1u);
  holders_.clear();
  EXPECT_EQ(count(rounds(store, {node("a")}, 1)), (std::map<std::string, int>{{"a", 5}}));
  EXPECT_EQ(testing::code_of([&] { store.round(node(""), cameras_, 5s); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(testing::code_of([&] { store.round(node("a"), cameras_, 10ms); }),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace frs
