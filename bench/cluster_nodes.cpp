// Cluster mode with real frs-server processes on one PostgreSQL 15 server of the bench's own
// (tests/scripts/postgres.sh, fsync on), measured over gRPC as clients see it. Prints, in
// Markdown:
//   - StreamAlerts fan-out: subscribers (50; each a console with a dispatcher token) spread
//     over 3 nodes; the bench appends alerts to the shared log at 20 a second, as a fourth
//     node's cameras would; from the start of the append to a subscriber's receipt (p50 /
//     p99), and whether every subscriber got every alert once, in id order;
//   - failover: 2 nodes sharing 4 RTSP cameras (frs-test-camera, the shared clip); the node
//     holding a share is killed (kill -9); the time until the survivor holds all four
//     leases, and until it streams all four (10 runs: min / median / max). The killed node
//     is started again between runs and takes its share back.
//
//   bench_cluster_nodes [--alerts N] [--subscribers N] [--failovers N]
//
// Exit code 1 when a subscriber missed, repeated or reordered an alert, or a failover did not
// complete within 60 s.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "bench_alert.h"
#include "bench_util.h"
#include "child_processes.h"
#include "frs/alerts/alert_store.h"
#include "server_process.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using testing::Server;
namespace pb = ::frs::v1;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::vector<std::string> node_arguments(const std::string& url,
                                        const std::filesystem::path& token_file) {
  return {"--store", url, "--admin-token-file", token_file.string(), "--camera-capacity", "4"};
}

std::unique_ptr<Server> start_node(const std::filesystem::path& root, int index,
                                   const std::string& url,
                                   const std::filesystem::path& token_file) {
  const auto dir = root / ("node" + std::to_string(index));
  std::filesystem::create_directories(dir);
  return std::make_unique<Server>(dir / "data", node_arguments(url, token_file));
}

bool fan_out(const std::filesystem::path& root, int alerts, int subscribers) {
  testing::ScopedPostgresDatabase db;
  const auto token_file = testing::write_admin_token_file(root);
  std::vector<std::unique_ptr<Server>> nodes;
  for (int i = 0; i < 3; ++i)
    nodes.push_back(start_node(root / "fan-out", i, db.url(), token_file));
  AlertStore writer(StoreLocation::postgres(db.url()));
  const std::int64_t first_id = writer.last_id() + 1;
  std::vector<std::unique_ptr<testing::AlertSubscriber>> consoles;
  for (int s = 0; s < subscribers; ++s) {
    Server& node = *nodes[static_cast<std::size_t>(s % 3)];
    const std::string token = nodes[0]->create_token("console-" + std::to_string(s), "dispatcher");
    pb::StreamAlertsRequest request;
    request.set_after_id(first_id - 1);
    request.set_with_images(true);
    consoles.push_back(
        std::make_unique<testing::AlertSubscriber>(node.channel_with(token), request));
  }
  std::this_thread::sleep_for(2s);  // the calls open; an alert before that comes as backlog

  std::vector<Clock::time_point> started(static_cast<std::size_t>(alerts));
  for (int i = 0; i < alerts; ++i) {
    started[static_cast<std::size_t>(i)] = Clock::now();  // the append commits within it
    writer.append(bench::bench_alert(i));
    std::this_thread::sleep_for(50ms);  // 20 alerts a second: a busy city's rate
  }
  testing::eventually(
      [&] {
        return std::all_of(consoles.begin(), consoles.end(), [&](const auto& c) {
          return c->received().size() >= static_cast<std::size_t>(alerts);
        });
      },
      30s, 100ms);
  for (auto& c : consoles) {
    c->stop();
    if (const grpc::Status s = c->status();
        !s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
      std::fprintf(stderr, "bench_cluster_nodes: StreamAlerts ended: %s\n",
                   s.error_message().c_str());
    }
  }

  std::vector<double> latencies;
  int complete = 0;
  for (const auto& c : consoles) {
    const auto got = c->received();
    bool exact = got.size() == static_cast<std::size_t>(alerts);
    for (std::size_t i = 0; i < got.size(); ++i) {
      const std::int64_t expected = first_id + static_cast<std::int64_t>(i);
      if (got[i].first != expected) {
        exact = false;
        break;
      }
      latencies.push_back(std::chrono::duration<double, std::milli>(
                              got[i].second - started[static_cast<std::size_t>(i)])
                              .count());
    }
    complete += exact ? 1 : 0;
  }
  std::printf("## StreamAlerts fan-out: %d alerts to %d subscribers on 3 nodes (gRPC)\n\n", alerts,
              subscribers);
  std::printf(
      "Every alert once, in id order: %d of %d subscribers. From the start of the append "
      "(by a writer outside the nodes, into the shared log) to a subscriber's receipt of the "
      "alert with its 6 kB image: p50 %.1f ms, p99 %.1f ms, max %.1f ms.\n\n",
      complete, subscribers, bench::percentile(latencies, 0.5), bench::percentile(latencies, 0.99),
      bench::percentile(latencies, 1.0));
  std::fflush(stdout);
  return complete == subscribers;
}

// Cameras a node streams (state "streaming"), by its own report.
int streaming_on(Server& node) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  pb::ListCamerasResponse r;
  if (!node.cameras().ListCameras(&c, pb::ListCamerasRequest(), &r).ok()) return -1;
  return static_cast<int>(
      std::count_if(r.cameras().begin(), r.cameras().end(),
                    [](const pb::Camera& k) { return k.state() == "streaming"; }));
}

// Cameras held under a valid lease by the node at `address`, as `asked` sees the cluster.
int held_by(Server& asked, const std::string& address) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  pb::ClusterStatusResponse r;
  if (!asked.cameras().ClusterStatus(&c, pb::ClusterStatusRequest(), &r).ok()) return -1;
  for (const auto& n : r.nodes()) {
    if (n.address() == address && n.alive()) return n.cameras_held();
  }
  return 0;
}

bool failover(const std::filesystem::path& root, int runs) {
  constexpr int kCameras = 4;
  testing::ScopedPostgresDatabase db;
  const auto token_file = testing::write_admin_token_file(root);
  auto survivor = start_node(root / "failover", 0, db.url(), token_file);
  auto victim = start_node(root / "failover", 1, db.url(), token_file);
  // An authorised watchlist, so that the cameras match (a camera with nothing to match
  // against reports not_matching, not streaming).
  grpc::ClientContext create;
  pb::CreateWatchlistRequest wanted;
  wanted.set_name("wanted");
  pb::Watchlist created;
  const grpc::Status made = survivor->gallery().CreateWatchlist(&create, wanted, &created);
  const grpc::Status authorised = survivor->authorize("wanted");
  if (!made.ok() || !authorised.ok()) {
    std::fprintf(stderr, "bench_cluster_nodes: watchlist: %s%s\n", made.error_message().c_str(),
                 authorised.error_message().c_str());
    return false;
  }
  std::vector<std::unique_ptr<testing::TestCamera>> cameras;
  for (int i = 0; i < kCameras; ++i) {
    cameras.push_back(std::make_unique<testing::TestCamera>());
    grpc::ClientContext c;
    pb::AddCameraRequest r;
    r.mutable_spec()->set_name("cam" + std::to_string(i));
    r.mutable_spec()->set_url(cameras.back()->url());
    r.mutable_spec()->set_analyse_fps(2);
    pb::Camera added;
    const grpc::Status s = survivor->cameras().AddCamera(&c, r, &added);
    if (!s.ok()) {
      std::fprintf(stderr, "bench_cluster_nodes: AddCamera: %s\n", s.error_message().c_str());
      return false;
    }
  }
  std::vector<double> held_s, streaming_s;
  for (int run = 0; run < runs; ++run) {
    // Both hold a share and stream it.
    const bool shared = testing::eventually(
        [&] {
          return held_by(*survivor, victim->address()) == kCameras / 2 &&
                 streaming_on(*victim) == kCameras / 2 && streaming_on(*survivor) == kCameras / 2;
        },
        60s, 50ms);
    if (!shared) {
      std::fprintf(stderr,
                   "bench_cluster_nodes: run %d: the cameras did not spread 2/2 (held by the "
                   "second node %d, streaming %d and %d)\n",
                   run, held_by(*survivor, victim->address()), streaming_on(*survivor),
                   streaming_on(*victim));
      return false;
    }
    // Anywhere within a lease round of the victim's last renewal.
    std::this_thread::sleep_for(std::chrono::milliseconds(97 * (run % 10)));
    const auto killed = Clock::now();
    victim->stop(SIGKILL);
    const std::string survivor_address = survivor->address();
    if (!testing::eventually([&] { return held_by(*survivor, survivor_address) == kCameras; }, 60s,
                             50ms)) {
      std::fprintf(stderr, "bench_cluster_nodes: run %d: no takeover within 60 s\n", run);
      return false;
    }
    held_s.push_back(seconds_since(killed));
    if (!testing::eventually([&] { return streaming_on(*survivor) == kCameras; }, 60s, 50ms)) {
      std::fprintf(stderr, "bench_cluster_nodes: run %d: not streaming within 60 s\n", run);
      return false;
    }
    streaming_s.push_back(seconds_since(killed));
    std::fprintf(stderr, "failover run %d: held after %.2f s, streaming after %.2f s\n", run,
                 held_s.back(), streaming_s.back());
    victim->start();  // rejoins under its id (DATA_DIR/node.id) and takes a share back
  }
  std::sort(held_s.begin(), held_s.end());
  std::sort(streaming_s.begin(), streaming_s.end());
  std::printf("## Failover with real nodes: kill -9 of one of 2 nodes sharing %d cameras\n\n",
              kCameras);
  std::printf(
      "%d runs, lease 5 s (default). From the kill to the survivor holding all %d leases: min "
      "%.2f s, median %.2f s, max %.2f s; to it streaming all %d: min %.2f s, median %.2f s, "
      "max %.2f s.\n",
      runs, kCameras, held_s.front(), bench::median(held_s), held_s.back(), kCameras,
      streaming_s.front(), bench::median(streaming_s), streaming_s.back());
  return true;
}

}  // namespace
}  // namespace frs

int main(int argc, char** argv) {
  int alerts = 200, subscribers = 50, failovers = 10;
  CLI::App app("frs cluster mode with real frs-server nodes on a PostgreSQL server of its own");
  app.add_option("--alerts", alerts, "Alerts fanned out")->check(CLI::Range(1, 100000));
  app.add_option("--subscribers", subscribers, "StreamAlerts subscribers")
      ->check(CLI::Range(1, 300));
  app.add_option("--failovers", failovers, "Failover runs")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  ::setenv("FRS_TEST_POSTGRES_FSYNC", "on", 1);  // durable, as a real server is
  const frs::testing::ScopedTempDir dir("bench-cluster-nodes");
  bool ok = frs::fan_out(dir.path(), alerts, subscribers);
  ok = frs::failover(dir.path(), failovers) && ok;
  return ok ? 0 : 1;
}
