#include "frs/live/camera_leases.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "error_code.h"
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
  const auto killed = std::chrono::steady_clock::now();  // b does no more rounds
  std::chrono::milliseconds taken{0};
  while (std::chrono::steady_clock::now() - killed < 10s) {
    rounds(store, {node("a")}, 1, lease);
    if (count(holders_)["a"] == 6) {
      taken = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - killed);
      break;
    }
    // Until then b's leases hold: nobody takes them early.
    EXPECT_EQ(count(holders_)["b"], 3);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(taken, lease - 100ms);
  EXPECT_LT(taken, lease + 500ms);
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
