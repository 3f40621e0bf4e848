// Several writers on one store, as several frs-server nodes on one PostgreSQL database (or
// several processes on one SQLite file): each writer here has a store object, and so a
// connection, of its own. What must hold is what a reader relies on: ids in commit order,
// one unbroken audit chain, a change log that a follower replays without missing a change.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "error_code.h"
#include "frs/alerts/alert_store.h"
#include "frs/auth/audit_log.h"
#include "frs/auth/tokens.h"
#include "frs/core/error.h"
#include "frs/gallery/store.h"
#include "frs/live/camera_store.h"
#include "test_postgres.h"

namespace frs {
namespace {

using testing::Backend;

class ConcurrentWritersTest : public ::testing::TestWithParam<Backend> {
 protected:
  StoreLocation at(const std::string& file) const { return stores_.at(file); }
  testing::TestStores stores_{GetParam()};
};
INSTANTIATE_TEST_SUITE_P(Backends, ConcurrentWritersTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

Alert alert_from(int writer, int i) {
  Alert a;
  a.camera = "camera-" + std::to_string(writer);
  a.watchlist = "wanted";
  a.distance = 0.4f;
  a.detected_at_ms = 1000 + i;
  a.track_id = static_cast<std::uint64_t>(i);
  a.external_id = "B-" + std::to_string(i);
  a.face_jpeg = {0xff, 0xd8, 0xff};
  return a;
}

// With ids taken from a sequence and no lock to commit, writer A takes id 10, B takes 11
// and commits first; a subscriber sees 11, resumes after 11 and never sees 10.
TEST_P(ConcurrentWritersTest, ASubscriberResumingAfterTheLastIdItSawMissesNoAlert) {
  constexpr int kWriters = 4;
  constexpr int kEach = 150;
  std::mutex written_mutex;
  std::set<std::int64_t> written;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      AlertStore store(at("alerts.db"));
      for (int i = 0; i < kEach; ++i) {
        const std::int64_t id = store.append(alert_from(w, i)).id;
        std::lock_guard lock(written_mutex);
        written.insert(id);
      }
      ++writers_done;
    });
  }
  std::vector<std::int64_t> seen;
  {
    AlertStore subscriber(at("alerts.db"));
    AlertFilter page;
    page.limit = 1000;
    for (bool last_round = false;;) {
      last_round = writers_done == kWriters;  // read before the page: a last full sweep
      const auto alerts = subscriber.list(page);
      for (const Alert& a : alerts) seen.push_back(a.id);
      if (!alerts.empty()) page.after_id = alerts.back().id;
      if (last_round && alerts.empty()) break;
    }
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(written.size(), static_cast<std::size_t>(kWriters * kEach));
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()), written)
      << "the subscriber missed alerts that committed after a larger id";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.size(), written.size()) << "an alert was delivered twice";
}

TEST_P(ConcurrentWritersTest, WritersOfTheAuditLogKeepOneUnbrokenChain) {
  constexpr int kWriters = 4;
  constexpr int kEach = 60;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto log = open_audit_log(at("audit.db"));
      for (int i = 0; i < kEach; ++i) {
        AuditEntry e;
        e.time_ms = 1000 + i;
        e.token = "node-" + std::to_string(w);
        e.method = "/frs.v1.Search/Search";
        try {
          log->append(e);
        } catch (const Error&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures, 0);
  auto log = open_audit_log(at("audit.db"));
  const AuditVerification v = log->verify(std::nullopt);
  EXPECT_TRUE(v.intact) << v.problem;
  EXPECT_EQ(v.rows_checked, kWriters * kEach);
  EXPECT_EQ(log->head().seq, kWriters * kEach);
  AuditQuery one_node;
  one_node.token = "node-2";
  EXPECT_EQ(log->list(one_node).size(), static_cast<std::size_t>(kEach));
}

StoredFace face_of(float value) {
  StoredFace f;
  f.descriptor.assign(128, 0.0f);
  f.descriptor[0] = value;
  f.image_sha256 = "sha-" + std::to_string(value);
  f.quality = 0.5f;
  return f;
}

// A node keeps its index in step by replaying the change log after the last sequence it
// applied. Enrollments and removals on other nodes must all reach it: a change committed
// after a larger sequence was read would be skipped for good.
TEST_P(ConcurrentWritersTest, AFollowerOfTheChangeLogEndsWithExactlyTheStoredFaces) {
  std::int64_t watchlist_id = 0;
  {
    auto store = open_gallery_store(at("gallery.db"));
    Watchlist w;
    w.name = "wanted";
    w.max_distance = 0.5f;
    watchlist_id = store->create_watchlist(w).id;
  }
  constexpr int kWriters = 3;
  constexpr int kEach = 40;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto store = open_gallery_store(at("gallery.db"));
      for (int i = 0; i < kEach; ++i) {
        Identity person;
        person.watchlist_id = watchlist_id;
        person.external_id = "W" + std::to_string(w) + "-" + std::to_string(i);
        const Identity stored = store->enroll(
            person, {face_of(static_cast<float>(i)), face_of(static_cast<float>(i) + 0.5f)});
        // A failed enrollment (an id taken) must leave no trace in the log either.
        EXPECT_EQ(testing::code_of([&] { store->enroll(person, {face_of(1)}); }),
                  ErrorCode::kAlreadyExists);
        if (i % 3 == 0) store->remove_identity(stored.id);  // every third leaves again
      }
      ++writers_done;
    });
  }
  std::set<std::int64_t> followed;
  std::uint64_t applied = 0;
  auto follower = open_gallery_store(at("gallery.db"));
  for (bool last_round = false;;) {
    last_round = writers_done == kWriters;
    const auto changes = follower->changes_after(applied);
    for (const FaceChange& c : changes) {
      EXPECT_GT(c.sequence, applied);
      applied = c.sequence;
      if (c.added) {
        followed.insert(c.face_id);
      } else {
        followed.erase(c.face_id);
      }
    }
    if (last_round && changes.empty()) break;
  }
  for (auto& t : writers) t.join();
  std::set<std::int64_t> stored;
  for (const StoredFace& f : follower->faces_of_watchlist(watchlist_id)) stored.insert(f.id);
  EXPECT_EQ(stored.size(), static_cast<std::size_t>(2 * kWriters * (kEach - (kEach + 2) / 3)));
  EXPECT_EQ(followed, stored) << "the follower missed a change";
}

TEST_P(ConcurrentWritersTest, OfTwoNodesCreatingOneTokenNameExactlyOneSucceeds) {
  constexpr int kNodes = 4;
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> nodes;
  for (int n = 0; n < kNodes; ++n) {
    nodes.emplace_back([&, n] {
      auto tokens = open_token_store(at("tokens.db"));
      TokenRecord t;
      t.name = "dispatch-console-3";
      t.role = Role::kDispatcher;
      t.created_by = "admin";
      t.created_at_ms = 1;
      try {
        tokens->create(t, token_secret_hash("secret-" + std::to_string(n)));
        ++created;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << e.what();
        ++refused;
      }
    });
  }
  for (auto& t : nodes) t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(refused, kNodes - 1);
  auto tokens = open_token_store(at("tokens.db"));
  EXPECT_EQ(tokens->list(false).size(), 1u);
  tokens->revoke("dispatch-console-3", "admin", 2);
  EXPECT_EQ(testing::code_of([&] { tokens->revoke("dispatch-console-3", "admin", 3); }),
            ErrorCode::kNotFound);
}

// Nodes of a cluster start together with the same --admin-token-file (or none): each must
// start, and the cluster must end with one admin token, the file's (or one node's new one).
TEST_P(ConcurrentWritersTest, NodesStartingTogetherAgreeOnOneAdminToken) {
  const std::filesystem::path file = stores_.dir() / "admin-secret";
  std::ofstream(file) << new_token_secret() << "\n";
  for (const bool given : {false, true}) {
    std::vector<std::thread> nodes;
    std::atomic<int> failed{0}, created{0};
    for (int n = 0; n < 4; ++n) {
      nodes.emplace_back([&, n] {
        try {
          auto tokens = open_token_store(at("tokens.db"));
          const std::string note =
              ensure_admin_token(*tokens, given ? file : std::filesystem::path(),
                                 stores_.dir() / ("new-" + std::to_string(n) + ".token"));
          if (note.find("created") != std::string::npos) ++created;
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
          ++failed;
        }
      });
    }
    for (auto& t : nodes) t.join();
    EXPECT_EQ(failed, 0);
    auto tokens = open_token_store(at("tokens.db"));
    const auto active = tokens->list(false);
    ASSERT_EQ(active.size(), 1u);
    EXPECT_EQ(active[0].name, "admin");
    if (!given) {
      EXPECT_EQ(created, 1);  // one node made it and keeps its file; the others removed theirs
      int files = 0;
      for (int n = 0; n < 4; ++n) {
        const auto made = stores_.dir() / ("new-" + std::to_string(n) + ".token");
        if (!std::filesystem::exists(made)) continue;
        ++files;
        EXPECT_TRUE(tokens->find_by_secret_hash(token_secret_hash(read_token_file(made))));
      }
      EXPECT_EQ(files, 1);
    } else {
      EXPECT_TRUE(tokens->find_by_secret_hash(token_secret_hash(read_token_file(file))))
          << "the file's token is not the active admin";
    }
  }
}

TEST_P(ConcurrentWritersTest, CamerasAreKeptReplacedAndRemoved) {
  CameraStore cameras(at("cameras.db"));
  CameraConfig door;
  door.name = "door";
  door.source.url = "rtsp://127.0.0.1:8554/door";
  door.watchlists = {"wanted"};
  door.region = cv::Rect(1, 2, 30, 40);
  cameras.put(door);
  door.analyse_fps = 2.5;
  cameras.put(door);  // replaced, not doubled
  CameraStore other_node(at("cameras.db"));
  const auto listed = other_node.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].analyse_fps, 2.5);
  EXPECT_EQ(listed[0].region, door.region);
  EXPECT_TRUE(other_node.remove("door"));
  EXPECT_FALSE(cameras.remove("door"));
  EXPECT_TRUE(cameras.list().empty());
}

// Through two store objects, as two nodes: a token made through one is found, listed and
// revoked through the other, and names and secrets stay unique.
TEST_P(ConcurrentWritersTest, TokensAreFoundListedAndRevokedThroughAnyNode) {
  auto node_a = open_token_store(at("tokens.db"));
  auto node_b = open_token_store(at("tokens.db"));
  TokenRecord ana;
  ana.name = "ana";
  ana.role = Role::kOperator;
  ana.created_by = "admin";
  ana.created_at_ms = 1000;
  ana.expires_at_ms = 5000;
  const std::string ana_hash = token_secret_hash(new_token_secret());
  const TokenRecord made = node_a->create(ana, ana_hash);
  EXPECT_GT(made.id, 0);
  const auto found = node_b->find_by_secret_hash(ana_hash);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, "ana");
  EXPECT_EQ(found->role, Role::kOperator);
  EXPECT_EQ(found->expires_at_ms, 5000);
  EXPECT_TRUE(found->active(4999));
  EXPECT_FALSE(found->active(5000));
  EXPECT_FALSE(node_b->find_by_secret_hash(token_secret_hash(new_token_secret())));

  // A second "ana" while the first is not revoked, or a second token with her secret: no.
  EXPECT_EQ(testing::code_of([&] { node_b->create(ana, token_secret_hash(new_token_secret())); }),
            ErrorCode::kAlreadyExists);
  TokenRecord bo = ana;
  bo.name = "bo";
  EXPECT_EQ(testing::code_of([&] { node_b->create(bo, ana_hash); }), ErrorCode::kAlreadyExists);

  const TokenRecord revoked = node_b->revoke("ana", "admin", 2000);
  EXPECT_EQ(revoked.revoked_at_ms, 2000);
  EXPECT_EQ(revoked.revoked_by, "admin");
  EXPECT_FALSE(node_a->find_by_secret_hash(ana_hash)->active(2001));
  EXPECT_EQ(testing::code_of([&] { node_a->revoke("ana", "admin", 3000); }), ErrorCode::kNotFound);
  EXPECT_TRUE(node_a->list(false).empty());
  ASSERT_EQ(node_a->list(true).size(), 1u);
  // The name is free again once revoked.
  node_a->create(ana, token_secret_hash(new_token_secret()));
  EXPECT_EQ(node_b->list(false).size(), 1u);
  EXPECT_EQ(node_b->count_all(), 2);
}

}  // namespace
}  // namespace frs
