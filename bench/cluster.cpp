// Cluster mode on one machine: a PostgreSQL 15 server of its own (tests/scripts/postgres.sh),
// several "nodes" in this process, each with its own connections, as frs-server wires them.
// Prints, in Markdown:
//   - alert throughput into PostgreSQL (1 and 4 writers) against SQLite's in the same run;
//   - enroll-to-searchable delay from one node's gallery to another's (p50 / p99);
//   - fan-out: alerts to 50 subscribers spread over 2 nodes (capture of the append's commit
//     to delivery, p50 / p99) - the nodes' AlertFeeds, without gRPC;
//   - failover: a node stops renewing its leases; how long until another holds its
//     cameras (10 runs: min / median / max).
//
//   bench_cluster [--alerts N] [--enrollments N] [--failovers N]

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bench_alert.h"
#include "bench_util.h"
#include "frs/alerts/alert_feed.h"
#include "frs/alerts/alert_store.h"
#include "frs/gallery/gallery.h"
#include "frs/live/camera_leases.h"
#include "synthetic.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Alerts per second with `writers` threads, each its own store (connection).
double alerts_per_second(const StoreLocation& where, int writers, int each) {
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      AlertStore store(where);
      for (int i = 0; i < each; ++i) store.append(bench::bench_alert(w * each + i));
    });
  }
  for (auto& t : threads) t.join();
  return writers * each / (ms_since(start) / 1000.0);
}

void throughput(const std::string& url, const std::filesystem::path& dir, int alerts) {
  std::printf("## Alert throughput into the store (alerts/s, 6 kB face crop each)\n\n");
  std::printf(
      "| writers | SQLite (one file) | PostgreSQL | PostgreSQL / SQLite |\n|---|---|---|---|\n");
  for (const int writers : {1, 4}) {
    std::vector<double> sqlite, postgres;
    for (int run = 0; run < 3; ++run) {
      std::filesystem::remove_all(dir / "alerts.db");
      sqlite.push_back(alerts_per_second(dir / "alerts.db", writers, alerts / writers));
      postgres.push_back(
          alerts_per_second(StoreLocation::postgres(url), writers, alerts / writers));
    }
    std::printf("| %d | %.0f | %.0f | %.2f |\n", writers, bench::median(sqlite),
                bench::median(postgres), bench::median(postgres) / bench::median(sqlite));
  }
  std::printf("\n(median of 3 runs of %d alerts each)\n\n", alerts);
}

struct Node {
  Node(const StoreLocation& where, const std::filesystem::path& dir)
      : gallery(open_gallery_store(where),
                [&] {
                  GalleryOptions o;
                  o.snapshot_dir = dir / "index";
                  o.index.factory = "Flat";
                  return o;
                }()),
        listener(where, {kGalleryChannel},
                 [this](const std::string&) { gallery.sync_with_store(); }) {}
  bool finds(const Embedding& query) {
    const std::vector<Embedding> queries{query};
    return !gallery.search(queries, kDlibDescriptorId, {}, 1, 0.5f).at(0).empty();
  }
  Gallery gallery;
  ChangeListener listener;
};

void enroll_to_search(const std::string& url, const std::filesystem::path& dir, int enrollments) {
  const StoreLocation where = StoreLocation::postgres(url);
  Node a(where, dir / "a"), b(where, dir / "b");
  while (!a.listener.connected() || !b.listener.connected()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Watchlist w;
  w.name = "enroll-bench";
  w.max_distance = 0.5f;
  const Watchlist created = a.gallery.create_watchlist(w);
  std::vector<double> delays;
  for (int i = 0; i < enrollments; ++i) {
    Identity person;
    person.watchlist_id = created.id;
    person.external_id = "P" + std::to_string(i);
    StoredFace face;
    face.descriptor = testing::axis(static_cast<std::size_t>(i % 128), 1.0f + 0.01f * (i / 128));
    face.image_sha256 = "sha-" + std::to_string(i);
    face.quality = 1;
    const auto start = Clock::now();
    a.gallery.enroll(person, {face});
    const std::int64_t id = a.gallery.store().find_identity(created.id, person.external_id)->id;
    for (;;) {
      const std::vector<Embedding> queries{face.descriptor};
      const auto found = b.gallery.search(queries, kDlibDescriptorId, {}, 3, 0.01f).at(0);
      if (std::any_of(found.begin(), found.end(),
                      [&](const Candidate& c) { return c.identity_id == id; })) {
        break;
      }
      if (ms_since(start) > 5000) break;
      std::this_thread::yield();
    }
    delays.push_back(ms_since(start));
  }
  std::printf("## Enroll through node A, found by a search on node B\n\n");
  std::printf(
      "%d enrollments, from the start of the enroll call on A to B's first search "
      "that names the new identity: p50 %.1f ms, p99 %.1f ms, max %.1f ms.\n\n",
      enrollments, bench::percentile(delays, 0.5), bench::percentile(delays, 0.99),
      bench::percentile(delays, 1.0));
}

void fan_out(const std::string& url, int alerts) {
  const StoreLocation where = StoreLocation::postgres(url);
  AlertStore writer(where), log_a(where), log_b(where);
  AlertFeed feed_a, feed_b;
  feed_a.follow(log_a);
  feed_b.follow(log_b);
  ChangeListener relay_a(where, {kAlertChannel}, [&](const std::string&) { feed_a.relay(); });
  ChangeListener relay_b(where, {kAlertChannel}, [&](const std::string&) { feed_b.relay(); });
  while (!relay_a.connected() || !relay_b.connected()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  constexpr int kSubscribers = 50;
  std::vector<std::unique_ptr<AlertSubscription>> subscriptions;
  for (int s = 0; s < kSubscribers; ++s) {
    subscriptions.push_back((s % 2 ? feed_a : feed_b).subscribe(1024));
  }
  std::vector<Clock::time_point> committed(static_cast<std::size_t>(alerts));
  std::atomic<std::int64_t> first_id{0};
  std::vector<double> latencies;
  std::mutex latencies_mutex;
  std::atomic<int> complete{0};
  std::vector<std::thread> readers;
  for (auto& s : subscriptions) {
    readers.emplace_back([&, sub = s.get()] {
      std::vector<double> mine;
      for (int got = 0; got < alerts;) {
        const auto alert = sub->next(std::chrono::seconds(10));
        if (!alert) break;
        mine.push_back(ms_since(committed[static_cast<std::size_t>(alert->id - first_id)]));
        ++got;
      }
      if (static_cast<int>(mine.size()) == alerts) ++complete;
      std::lock_guard lock(latencies_mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  // 20 alerts a second: a busy city's rate, not a throughput test.
  first_id = writer.last_id() + 1;
  for (int i = 0; i < alerts; ++i) {
    committed[static_cast<std::size_t>(i)] = Clock::now();  // before: the append commits in it
    writer.append(bench::bench_alert(i));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : readers) t.join();
  std::printf("## Fan-out: %d alerts to %d subscribers on 2 nodes\n\n", alerts, kSubscribers);
  std::printf(
      "Every subscriber got every alert, in id order: %d of %d subscribers. From the "
      "start of the append to a subscriber's receipt: p50 %.1f ms, p99 %.1f ms "
      "(in-process AlertFeeds: gRPC's StreamAlerts adds its own delivery).\n\n",
      complete.load(), kSubscribers, bench::percentile(latencies, 0.5),
      bench::percentile(latencies, 0.99));
}

void failover(int runs) {
  using namespace std::chrono_literals;
  const auto lease = 5000ms, round_time = 1000ms;
  std::vector<double> seconds;
  const std::vector<std::string> cameras{"c1", "c2", "c3", "c4", "c5", "c6"};
  for (int run = 0; run < runs; ++run) {
    testing::ScopedPostgresDatabase db;
    CameraLeaseStore a(StoreLocation::postgres(db.url())), b(StoreLocation::postgres(db.url()));
    ClusterNode na{"a", "a", "bench", 8, 0, 0, 0}, nb{"b", "b", "bench", 8, 0, 0, 0};
    // One round as CameraAssigner does it; returns how many cameras the node keeps.
    auto round = [&](CameraLeaseStore& store, const ClusterNode& n) {
      const LeaseRound r = store.round(n, cameras, lease);
      if (!r.give_up.empty()) store.release(n.id, r.give_up);
      return r.held.size() - r.give_up.size();
    };
    for (int i = 0; i < 3; ++i) {
      round(a, na);
      round(b, nb);
    }
    if (round(a, na) != 3 || round(b, nb) != 3) {
      std::fprintf(stderr, "bench_cluster: the cameras were not spread 3/3\n");
      std::exit(1);
    }
    // b dies right after a renewal; a goes on with its rounds, one a second, which fall
    // anywhere in the second after b's last one.
    const auto died = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (run % 10)));
    while (round(a, na) < cameras.size()) std::this_thread::sleep_for(round_time);
    seconds.push_back(ms_since(died) / 1000.0);
  }
  std::sort(seconds.begin(), seconds.end());
  std::printf("## Failover: a node stops renewing; another holds its cameras\n\n");
  std::printf(
      "%d runs, lease 5 s, rounds every 1 s (the node's camera pipelines not "
      "included; they start within a second): min %.2f s, median %.2f s, max %.2f s.\n",
      runs, seconds.front(), bench::median(seconds), seconds.back());
}

}  // namespace
}  // namespace frs

int main(int argc, char** argv) {
  int alerts = 2000, enrollments = 200, failovers = 10;
  CLI::App app("frs cluster-mode benchmarks on a PostgreSQL server of their own");
  app.add_option("--alerts", alerts, "Alerts per throughput run")->check(CLI::Range(10, 1000000));
  app.add_option("--enrollments", enrollments, "Enrollments timed")->check(CLI::Range(1, 100000));
  app.add_option("--failovers", failovers, "Failover runs")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  frs::bench::send_logs_to_stderr();
  // The databases below are on one server this process starts (and stops at exit), durable
  // as a real one is: the tests' server skips fsync.
  ::setenv("FRS_TEST_POSTGRES_FSYNC", "on", 1);
  const frs::testing::ScopedTempDir dir("bench-cluster");
  {
    frs::testing::ScopedPostgresDatabase db;
    frs::throughput(db.url(), dir.path(), alerts);
  }
  {
    frs::testing::ScopedPostgresDatabase db;
    frs::enroll_to_search(db.url(), dir.path(), enrollments);
  }
  {
    frs::testing::ScopedPostgresDatabase db;
    frs::fan_out(db.url(), 200);
  }
  frs::failover(failovers);
  return 0;
}
