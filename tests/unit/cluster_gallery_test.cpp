// Two nodes' galleries on one PostgreSQL database, each with its own FAISS indexes in
// memory, kept in step by the change log and LISTEN/NOTIFY (ChangeListener), as frs-server
// wires them in cluster mode.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "frs/alerts/alert_feed.h"
#include "frs/alerts/alert_store.h"
#include "frs/gallery/gallery.h"
#include "synthetic.h"
#include "test_postgres.h"

namespace frs {
namespace {

using Clock = std::chrono::steady_clock;
using testing::axis;

StoredFace face_on(std::size_t dim) {
  StoredFace f;
  f.descriptor = axis(dim);
  f.image_sha256 = "sha-" + std::to_string(dim);
  f.quality = 1.0f;
  return f;
}

struct Node {
  explicit Node(const StoreLocation& where, const std::filesystem::path& dir)
      : gallery(open_gallery_store(where),
                [&] {
                  GalleryOptions o;
                  o.snapshot_dir = dir / "index";
                  o.index.factory = "Flat";
                  return o;
                }()),
        listener(
            where, {kGalleryChannel}, [this](const std::string&) { gallery.sync_with_store(); },
            kResync) {}
  // Far longer than any wait below: what a node sees within them came by notification (or
  // by the catch-up on reconnecting), not by the periodic resync.
  static constexpr std::chrono::milliseconds kResync = std::chrono::minutes(5);
  // The external ids a search of `query` finds within 0.5.
  std::vector<std::string> found(const Embedding& query) {
    std::vector<std::string> out;
    const std::vector<Embedding> queries{query};
    const auto results = gallery.search(queries, kDlibDescriptorId, {}, 5, 0.5f);
    for (const Candidate& c : results.at(0)) out.push_back(c.external_id);
    return out;
  }
  Gallery gallery;
  ChangeListener listener;
};

class ClusterGalleryTest : public ::testing::Test {
 protected:
  testing::ScopedPostgresDatabase database_;
  StoreLocation where_ = StoreLocation::postgres(database_.url());
  testing::ScopedTempDir dir_{"cluster-gallery"};
};

// How long until a search on B sees what was written through A. The limit is generous (a
// loaded machine); how fast it is on a quiet one is bench_cluster's business.
constexpr double kSeenWithin = 30;
template <typename Predicate>
double seconds_until(Predicate seen, double limit_s = kSeenWithin) {
  const auto start = Clock::now();
  while (!seen()) {
    if (std::chrono::duration<double>(Clock::now() - start).count() > limit_s) return limit_s;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST_F(ClusterGalleryTest, WhatOneNodeEnrollsAnotherFindsByNotificationAndRemovalsFollow) {
  Node a(where_, dir_ / "a");
  Node b(where_, dir_ / "b");
  ASSERT_GT(seconds_until([&] { return a.listener.connected() && b.listener.connected(); }), -1);
  Watchlist w;
  w.name = "wanted";
  w.max_distance = 0.5f;
  const Watchlist created = a.gallery.create_watchlist(w);
  std::vector<double> delays;
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < 20; ++i) {
    Identity person;
    person.watchlist_id = created.id;
    person.external_id = "P" + std::to_string(i);
    ids.push_back(a.gallery.enroll(person, {face_on(i)}).id);
    delays.push_back(seconds_until([&] {
      const auto found = b.found(axis(i, 0.95f));
      return std::find(found.begin(), found.end(), person.external_id) != found.end();
    }));
  }
  std::sort(delays.begin(), delays.end());
  EXPECT_LT(delays.back(), kSeenWithin) << "slowest of 20 enrollments to be searchable on node B";
  std::printf("enroll on A -> found on B: median %.1f ms, max %.1f ms (20 enrollments)\n",
              1000 * delays[delays.size() / 2], 1000 * delays.back());

  b.gallery.remove_identity(ids[3]);  // through B, seen by A
  EXPECT_LT(seconds_until([&] { return a.found(axis(3, 0.95f)).empty(); }), kSeenWithin);
  a.gallery.delete_watchlist("wanted");
  EXPECT_LT(seconds_until([&] {
              return b.gallery.store().list_watchlists().empty() && b.found(axis(5, 0.95f)).empty();
            }),
            kSeenWithin);
}

TEST(ClusterGallery, ANodeThatMissedNotificationsCatchesUpWhenPostgresComesBack) {
  testing::PrivatePostgresServer server;  // restarted: not the one other tests share
  const StoreLocation where_ = StoreLocation::postgres(server.url());
  testing::ScopedTempDir dir_("cluster-restart");
  Node a(where_, dir_ / "a");
  Watchlist w;
  w.name = "wanted";
  w.max_distance = 0.5f;
  const Watchlist created = a.gallery.create_watchlist(w);
  {
    Node b(where_, dir_ / "b");
    server.restart();  // both nodes lose their connections
    Identity person;
    person.watchlist_id = created.id;
    person.external_id = "after-restart";
    a.gallery.enroll(person, {face_on(7)});  // reconnects by itself
    EXPECT_LT(seconds_until([&] { return !b.found(axis(7, 0.95f)).empty(); }), kSeenWithin)
        << "node B never caught up after PostgreSQL restarted";
    EXPECT_TRUE(b.listener.connected());
  }
}

TEST_F(ClusterGalleryTest, SubscribersOfEveryNodeGetEveryNodesAlertsInIdOrder) {
  AlertStore log_a(where_), log_b(where_);
  AlertFeed feed_a, feed_b;
  feed_a.follow(log_a);
  feed_b.follow(log_b);
  ChangeListener relay_a(where_, {kAlertChannel}, [&](const std::string&) { feed_a.relay(); });
  ChangeListener relay_b(where_, {kAlertChannel}, [&](const std::string&) { feed_b.relay(); });
  ASSERT_LT(seconds_until([&] { return relay_a.connected() && relay_b.connected(); }), 5.0);
  auto on_a = feed_a.subscribe();
  auto on_b = feed_b.subscribe();
  std::vector<std::int64_t> written;
  for (int i = 0; i < 30; ++i) {
    Alert alert;
    alert.camera = i % 2 ? "door" : "hall";
    alert.watchlist = "wanted";
    alert.face_jpeg = {0xff, 0xd8};
    AlertStore& log = i % 2 ? log_a : log_b;  // written on both nodes
    written.push_back(log.append(alert).id);
    (i % 2 ? feed_a : feed_b).publish(alert);  // ignored: the log is the one source
  }
  for (AlertSubscription* s : {on_a.get(), on_b.get()}) {
    std::vector<std::int64_t> got;
    while (got.size() < written.size()) {
      const auto alert = s->next(std::chrono::seconds(2));
      if (!alert) break;
      got.push_back(alert->id);
    }
    EXPECT_EQ(got, written);
    EXPECT_FALSE(s->next(std::chrono::milliseconds(200))) << "an alert was delivered twice";
  }
}

}  // namespace
}  // namespace frs
