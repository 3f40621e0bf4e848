// Cluster mode end to end: real frs-server nodes on one PostgreSQL (the tests' server, or one
// of the test's own when it restarts it), real RTSP cameras (frs-test-camera), real faces.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "child_processes.h"
#include "frs/auth/tokens.h"
#include "frs/live/camera_assigner.h"
#include "model_fixture.h"
#include "server_process.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

pb::ClusterStatusResponse status_of(Server& node) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 10s);
  pb::ClusterStatusResponse r;
  const grpc::Status s = node.cameras().ClusterStatus(&c, pb::ClusterStatusRequest(), &r);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return r;
}

// Cameras held under a valid lease, per node id.
std::map<std::string, int> held_by(const pb::ClusterStatusResponse& status) {
  std::map<std::string, int> out;
  for (const auto& c : status.cameras()) {
    if (!c.node().empty()) ++out[c.node()];
  }
  return out;
}

std::string id_of(Server& node, const pb::ClusterStatusResponse& status) {
  for (const auto& n : status.nodes()) {
    if (n.address() == node.address()) return n.id();
  }
  return "";
}

std::string top_match(Server& node, const std::filesystem::path& photo) {
  grpc::ClientContext c;
  pb::SearchRequest r;
  r.set_image(bytes_of(photo));
  r.set_top_k(1);
  pb::SearchResponse response;
  if (!node.search().Search(&c, r, &response).ok()) return "";
  if (response.faces_size() == 0 || response.faces(0).candidates_size() == 0) return "";
  return response.faces(0).candidates(0).external_id();
}

// Every alert id in the log, oldest first (through any node: they share it).
std::vector<std::int64_t> logged_alerts(Server& node) {
  std::vector<std::int64_t> ids;
  for (std::int64_t after = 0;;) {
    grpc::ClientContext c;
    pb::ListAlertsRequest r;
    r.set_after_id(after);
    r.set_page_size(1000);
    pb::ListAlertsResponse response;
    EXPECT_TRUE(node.alerts().ListAlerts(&c, r, &response).ok());
    for (const auto& a : response.alerts()) ids.push_back(a.id());
    if (response.next_after_id() == 0) return ids;
    after = response.next_after_id();
  }
}

std::vector<std::string> node_arguments(const std::string& store,
                                        const std::filesystem::path& token_file) {
  return {"--store",           store, "--admin-token-file",  token_file.string(),
          "--camera-capacity", "4",   "--alert-cooldown-ms", "0"};
}

TEST(Cluster, ThreeNodesShareSixCamerasSurviveAKilledNodeAndDeliverEveryAlertOnce) {
  ScopedTempDir root("cluster");
  ScopedPostgresDatabase database;
  const auto token_file = write_admin_token_file(root.path());
  std::vector<std::unique_ptr<Server>> nodes;
  for (int i = 0; i < 3; ++i) {
    const auto dir = root / ("node" + std::to_string(i));
    std::filesystem::create_directories(dir);
    nodes.push_back(
        std::make_unique<Server>(dir / "data", node_arguments(database.url(), token_file)));
  }
  // Enrolled through one node, found through another (within a second on a quiet machine:
  // bench_cluster times it; the wait here allows for a loaded one).
  enroll_him(*nodes[0]);
  EXPECT_TRUE(eventually(
      [&] { return top_match(*nodes[1], face_path("lin-manuel-miranda.png")) == "LMM-1"; }, 30s));

  std::vector<std::unique_ptr<TestCamera>> cameras;
  for (int i = 0; i < 6; ++i) {
    cameras.push_back(std::make_unique<TestCamera>());
    grpc::ClientContext c;
    pb::AddCameraRequest r;
    r.mutable_spec()->set_name("cam" + std::to_string(i));
    r.mutable_spec()->set_url(cameras.back()->url());
    r.mutable_spec()->add_watchlists("wanted");
    r.mutable_spec()->set_analyse_fps(2);
    pb::Camera added;
    const grpc::Status s =
        nodes[static_cast<std::size_t>(i % 3)]->cameras().AddCamera(&c, r, &added);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Spread 2/2/2.
  ASSERT_TRUE(eventually(
      [&] {
        const auto held = held_by(status_of(*nodes[1]));
        return held.size() == 3 &&
               std::all_of(held.begin(), held.end(), [](const auto& h) { return h.second == 2; });
      },
      90s))
      << "the cameras did not spread over the three nodes";
  const std::string killed_id = id_of(*nodes[0], status_of(*nodes[1]));
  ASSERT_FALSE(killed_id.empty());

  AlertSubscriber subscriber(nodes[1]->channel());
  ASSERT_TRUE(eventually([&] { return subscriber.ids().size() >= 2; }, 120s))
      << "no alerts from the cameras";

  // kill -9: no goodbye; its leases must run out and the others take its cameras.
  const auto killed = Clock::now();
  nodes[0]->stop(SIGKILL);
  ASSERT_TRUE(eventually(
      [&] {
        const auto held = held_by(status_of(*nodes[1]));
        int total = 0;
        for (const auto& [node, n] : held) total += node == killed_id ? 0 : n;
        return total == 6;
      },
      60s))
      << "the cameras of the killed node were not taken over within 60 s";
  // Within 10 s (two leases) on a quiet machine: bench_cluster_nodes measures it (median
  // 4.8 s); a loaded machine may take longer, the wait above fails only when nobody does.
  const double takeover_s = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("takeover after kill -9: %.1f s\n", takeover_s);
  std::fflush(stdout);  // before a fork (Server::start) copies the buffer
  const std::size_t before = subscriber.ids().size();
  EXPECT_TRUE(eventually([&] { return subscriber.ids().size() >= before + 2; }, 120s))
      << "alerts did not resume after the failover";

  // Back: it rejoins under its id and takes a share again.
  nodes[0]->start();
  EXPECT_TRUE(eventually(
      [&] {
        const auto held = held_by(status_of(*nodes[2]));
        return held.count(killed_id) && held.at(killed_id) >= 1;
      },
      90s))
      << "the restarted node took no camera back";

  subscriber.stop();
  const std::vector<std::int64_t> got = subscriber.ids();
  const std::vector<std::int64_t> logged = logged_alerts(*nodes[2]);
  ASSERT_GE(logged.size(), got.size());
  // Exactly the log's alerts, each once, in id order, up to the last one received.
  EXPECT_EQ(got, std::vector<std::int64_t>(
                     logged.begin(), logged.begin() + static_cast<std::ptrdiff_t>(got.size())));

  // A token revoked through one node ends its stream on another.
  const auto console = nodes[1]->channel_with(nodes[2]->create_token("console-9", "dispatcher"));
  auto stream = std::async(std::launch::async, [console] {
    pb::StreamAlertsRequest live_only;
    live_only.set_live_only(true);
    return call_method(console, "/frs.v1.Alerts/StreamAlerts", 120s, nullptr,
                       live_only.SerializeAsString());
  });
  // Open (its opening row written) before the revocation, so that this is what is tested.
  ASSERT_TRUE(eventually(
      [&] {
        const auto rows = nodes[2]->audit_rows("/frs.v1.Alerts/StreamAlerts");
        return std::any_of(rows.begin(), rows.end(),
                           [](const pb::AuditRecord& r) { return r.token() == "console-9"; });
      },
      60s));
  {
    grpc::ClientContext c;
    pb::RevokeTokenRequest r;
    r.set_name("console-9");
    pb::Token t;
    ASSERT_TRUE(pb::Tokens::NewStub(nodes[2]->channel())->RevokeToken(&c, r, &t).ok());
  }
  const grpc::Status ended = stream.get();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAUTHENTICATED) << ended.error_message();
  EXPECT_NE(ended.error_message().find("was revoked while this call was open"), std::string::npos)
      << ended.error_message();
}

// The external ids of a watchlist's identities, through a node.
std::set<std::string> enrolled_ids(Server& node) {
  std::set<std::string> out;
  for (std::string page;;) {
    grpc::ClientContext c;
    pb::ListIdentitiesRequest r;
    r.set_watchlist("wanted");
    r.set_page_size(1000);
    r.set_page_token(page);
    pb::ListIdentitiesResponse response;
    EXPECT_TRUE(node.gallery().ListIdentities(&c, r, &response).ok());
    for (const auto& i : response.identities()) out.insert(i.external_id());
    if (response.next_page_token().empty()) return out;
    page = response.next_page_token();
  }
}

TEST(Cluster, NodesRideOutAPostgresRestartUnderLoadAndLoseNothing) {
  PrivatePostgresServer postgres;  // restarted: not the server other tests share
  ScopedTempDir root("cluster-restart");
  const auto token_file = write_admin_token_file(root.path());
  std::vector<std::unique_ptr<Server>> nodes;
  for (int i = 0; i < 2; ++i) {
    const auto dir = root / ("node" + std::to_string(i));
    std::filesystem::create_directories(dir);
    nodes.push_back(
        std::make_unique<Server>(dir / "data", node_arguments(postgres.url(), token_file)));
  }
  enroll_him(*nodes[0]);
  TestCamera camera;
  {
    grpc::ClientContext c;
    pb::AddCameraRequest r;
    r.mutable_spec()->set_name("stage");
    r.mutable_spec()->set_url(camera.url());
    r.mutable_spec()->set_analyse_fps(2);
    pb::Camera added;
    ASSERT_TRUE(nodes[0]->cameras().AddCamera(&c, r, &added).ok());
  }
  AlertSubscriber subscriber(nodes[1]->channel());
  ASSERT_TRUE(eventually([&] { return !subscriber.ids().empty(); }, 120s)) << "no alerts";

  // Enrollments through node 0 the whole time; those acknowledged must all be there.
  std::atomic<bool> stop{false};
  std::mutex acknowledged_mutex;
  std::set<std::string> acknowledged;
  std::atomic<int> refused{0};
  std::thread enrolling([&] {
    const std::string photo = bytes_of(face_path("alex-lacamoire.png"));
    for (int i = 0; !stop; ++i) {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + 20s);
      pb::EnrollRequest r;
      r.set_watchlist("wanted");
      r.set_external_id("E-" + std::to_string(i));
      r.add_photos()->set_image(photo);
      pb::EnrollResponse response;
      const grpc::Status status = nodes[0]->gallery().Enroll(&c, r, &response);
      if (status.ok()) {
        std::lock_guard lock(acknowledged_mutex);
        acknowledged.insert(r.external_id());
      } else {
        // Only while PostgreSQL is away, and saying so.
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
        if (refused++ == 0) std::printf("first refusal: %s\n", status.error_message().c_str());
      }
    }
  });
  // Restarted while enrollments flow.
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard lock(acknowledged_mutex);
        return acknowledged.size() >= 3;
      },
      60s))
      << "no enrollment was acknowledged before the restart";
  postgres.restart();
  const std::size_t alerts_at_restart = subscriber.ids().size();
  std::size_t acknowledged_at_restart = 0;
  {
    std::lock_guard lock(acknowledged_mutex);
    acknowledged_at_restart = acknowledged.size();
  }
  // The nodes reconnect by themselves: enrollments are acknowledged again, alerts flow.
  EXPECT_TRUE(eventually(
      [&] {
        std::lock_guard lock(acknowledged_mutex);
        return acknowledged.size() >= acknowledged_at_restart + 3;
      },
      30s))
      << "enrollments did not resume after PostgreSQL restarted";
  EXPECT_TRUE(eventually([&] { return subscriber.ids().size() > alerts_at_restart; }, 120s))
      << "the subscriber got no alert after PostgreSQL restarted";
  stop = true;
  enrolling.join();
  std::printf("enrollments acknowledged %zu, refused during the restart %d\n", acknowledged.size(),
              refused.load());

  // Nothing acknowledged is lost, and node 1 sees all of it.
  const std::set<std::string> stored = enrolled_ids(*nodes[1]);
  for (const std::string& id : acknowledged) EXPECT_TRUE(stored.count(id)) << id << " was lost";
  subscriber.stop();
  const std::vector<std::int64_t> got = subscriber.ids();
  const std::vector<std::int64_t> logged = logged_alerts(*nodes[1]);
  ASSERT_GE(logged.size(), got.size());
  EXPECT_EQ(got, std::vector<std::int64_t>(
                     logged.begin(), logged.begin() + static_cast<std::ptrdiff_t>(got.size())));
  // One audit chain, intact, written by both nodes across the restart.
  auto audit = pb::Audit::NewStub(nodes[1]->channel());
  grpc::ClientContext c;
  pb::VerifyAuditLogResponse verified;
  ASSERT_TRUE(audit->VerifyAuditLog(&c, pb::VerifyAuditLogRequest(), &verified).ok());
  EXPECT_TRUE(verified.intact()) << verified.problem();
}

// Fencing: a node that cannot renew its leases (PostgreSQL gone) stops analysing its cameras
// itself before the leases run out, so that no other node runs them at the same time; and
// takes them up again once it can renew.
TEST(Cluster, ANodeThatCannotRenewItsLeasesStopsItsCamerasBeforeTheyRunOut) {
  PrivatePostgresServer postgres;  // halted: not the server other tests share
  const StoreLocation where = StoreLocation::postgres(postgres.url());
  ScopedTempDir dir("cluster-fencing");
  GalleryOptions options;
  options.snapshot_dir = dir / "index";
  Gallery gallery(open_gallery_store(where), options);
  AlertStore alerts(where);
  AlertFeed feed;
  LiveRecognizer live(shared_dlib_engine(), gallery, alerts, feed, DecisionOptions{}, 1);
  CameraStore cameras(where);
  CameraLeaseStore leases(where);
  TestCamera camera;
  CameraConfig config;
  config.name = "stage";
  config.source.url = camera.url();
  config.analyse_fps = 2;
  cameras.put(config);
  ClusterNode self;
  self.id = "fenced-node";
  self.camera_capacity = 4;
  // The watchdog stops the cameras one round before the lease can run out: a round of 1.5 s
  // leaves that much for a loaded machine to stop them in.
  CameraAssignerOptions lease;
  lease.lease = 4s;
  lease.round = 1500ms;
  CameraAssigner assigner(leases, cameras, live, self, nullptr, lease);
  ASSERT_TRUE(eventually([&] { return assigner.running().size() == 1; }, 60s));

  postgres.halt();
  const auto halted = Clock::now();
  ASSERT_TRUE(
      eventually([&] { return assigner.running().empty() && live.cameras().empty(); }, 30s, 10ms))
      << "the node kept its camera without a lease";
  const double stopped_s = std::chrono::duration<double>(Clock::now() - halted).count();
  // Its lease runs out 4 s after its last renewal began, which was before the halt: stopped
  // later than 4 s after the halt would be after the lease had run out.
  EXPECT_LT(stopped_s, std::chrono::duration<double>(lease.lease).count())
      << "stopped after its lease may have run out";
  std::printf("camera stopped %.2f s after PostgreSQL went away (lease 4 s)\n", stopped_s);
  std::fflush(stdout);

  postgres.resume();
  EXPECT_TRUE(eventually([&] { return assigner.running().size() == 1; }, 60s))
      << "the node did not take its camera up again";
}

}  // namespace
}  // namespace frs::testing
