// Human oversight through the server (issue 13): authorisations gate live matching and
// expire, alerts need two people, rejections teach frs, thresholds have a ceiling, and
// nothing of a person who matches nobody is kept.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "child_processes.h"
#include "frs/alerts/alert_store.h"
#include "frs/core/clock.h"
#include "frs/core/time_text.h"
#include "frs/v1/audit.grpc.pb.h"
#include "model_fixture.h"
#include "server_process.h"

namespace frs::testing {
namespace {

using namespace std::chrono_literals;

class OversightTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    server_ = std::make_unique<Server>(root_ / "data", std::move(extra));
  }
  void TearDown() override {
    server_.reset();
    if (HasFailure()) {
      std::ifstream log(root_ / "server.log");
      std::cerr << "--- frs-server log ---\n" << log.rdbuf() << "\n";
    }
  }

  grpc::Status create_watchlist(const std::string& name, float max_distance = 0,
                                bool live_only = false, std::int64_t expected = 0,
                                pb::Watchlist* out = nullptr) {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name(name);
    r.set_max_distance(max_distance);
    r.set_live_only(live_only);
    r.set_expected_identities(expected);
    pb::Watchlist ignored;
    return server_->gallery().CreateWatchlist(&c, r, out ? out : &ignored);
  }
  std::int64_t enroll(const std::string& external_id, const std::string& name,
                      const std::string& photo) {
    grpc::ClientContext c;
    pb::EnrollRequest r;
    r.set_watchlist("wanted");
    r.set_external_id(external_id);
    r.set_display_name(name);
    r.add_photos()->set_image(bytes_of(face_path(photo)));
    pb::EnrollResponse response;
    const auto status = server_->gallery().Enroll(&c, r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.identity().id();
  }
  void add_camera(const TestCamera& camera) {
    grpc::ClientContext c;
    pb::AddCameraRequest r;
    r.mutable_spec()->set_name("stage");
    r.mutable_spec()->set_url(camera.url());
    r.mutable_spec()->add_watchlists("wanted");
    pb::Camera added;
    const auto status = server_->cameras().AddCamera(&c, r, &added);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  void remove_camera() {
    grpc::ClientContext c;
    pb::RemoveCameraRequest r;
    r.set_name("stage");
    pb::RemoveCameraResponse response;
    ASSERT_TRUE(server_->cameras().RemoveCamera(&c, r, &response).ok());
  }
  pb::Camera stage_camera() {
    grpc::ClientContext c;
    pb::ListCamerasResponse r;
    EXPECT_TRUE(server_->cameras().ListCameras(&c, pb::ListCamerasRequest(), &r).ok());
    return r.cameras_size() > 0 ? r.cameras(0) : pb::Camera();
  }
  std::vector<pb::Alert> alerts_after(std::int64_t after_id) {
    grpc::ClientContext c;
    pb::ListAlertsRequest r;
    r.set_after_id(after_id);
    r.set_page_size(1000);
    pb::ListAlertsResponse response;
    EXPECT_TRUE(server_->alerts().ListAlerts(&c, r, &response).ok());
    return {response.alerts().begin(), response.alerts().end()};
  }
  // The first alert after `after_id` within `timeout`; an unset alert (id 0) when none.
  pb::Alert wait_for_alert(std::int64_t after_id, std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      const auto got = alerts_after(after_id);
      if (!got.empty()) return got.front();
      std::this_thread::sleep_for(200ms);
    }
    return {};
  }
  std::string frs() const { return std::string(FRS_CLI) + " --server " + server_->address() + " "; }
  // Waits until the stage camera has received `loops` more loops of the clip.
  void wait_for_clip(double loops) {
    ASSERT_TRUE(clip_played([&] { return stage_camera().frames_in(); }, loops))
        << "the camera did not play " << loops
        << " loops of the clip within 3 minutes: " << stage_camera().last_error();
  }

  ScopedTempDir root_{"oversight"};
  std::unique_ptr<Server> server_;
};

// A short authorisation: the camera alerts while it is in force, stops matching when it
// ends (status, watchlist and audit log say so, and his next appearance raises nothing),
// and matches again once a new one is recorded.
TEST_F(OversightTest, LiveMatchingStopsWhenTheAuthorisationExpiresAndResumesWhenRenewed) {
  start({"--alert-cooldown-ms", "0"});  // every new track of him alerts
  ASSERT_TRUE(create_watchlist("wanted").ok());
  enroll("LMM-1", "Lin-Manuel Miranda", "lin-manuel-miranda.png");
  TestCamera camera;
  add_camera(camera);
  // Authorised once the camera streams (its first connection may take a retry on a loaded
  // machine), for 15 s: more than a loop of the clip, in which he is on stage for 7 s.
  ASSERT_TRUE(eventually([&] { return stage_camera().frames_in() > 0; }, 60s))
      << stage_camera().last_error();
  pb::Authorization short_one;
  ASSERT_TRUE(server_->authorize("wanted", 15s, &short_one).ok());
  const pb::Alert first = wait_for_alert(0, 15s);
  ASSERT_NE(first.id(), 0) << "no alert while the authorisation was in force";
  EXPECT_LE(first.detected_at_ms(), short_one.valid_until_ms());

  // It expires: the camera says so (within a second or two on a quiet machine).
  std::this_thread::sleep_until(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(short_one.valid_until_ms())));
  pb::Camera stopped;
  EXPECT_TRUE(eventually(
      [&] {
        stopped = stage_camera();
        return stopped.state() == "not_matching";
      },
      30s))
      << stopped.state() << ": " << stopped.last_error();
  ASSERT_EQ(stopped.unauthorized_watchlists_size(), 1);
  EXPECT_EQ(stopped.unauthorized_watchlists(0), "wanted");
  EXPECT_NE(stopped.last_error().find("no authorisation in force"), std::string::npos)
      << stopped.last_error();
  auto [code, out] = run_command(frs() + "watchlist show wanted");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("live matching stopped"), std::string::npos) << out;
  // The audit row follows the state by a moment.
  std::vector<pb::AuditRecord> rows;
  EXPECT_TRUE(eventually(
      [&] {
        rows = server_->audit_rows("camera.matching_stopped");
        return !rows.empty();
      },
      30s));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(rows[0].details_json())["reason"], "authorisation expired");
  EXPECT_GE(rows[0].time_ms(), short_one.valid_until_ms());
  // No alert after the end (below) is the promise; this bound only catches a stop that
  // waited for something else (the monitor looks every second; the margin is for load).
  EXPECT_LE(rows[0].time_ms(), short_one.valid_until_ms() + 10'000) << "stopped late";

  // A whole loop of the clip (he comes back on stage in a new track): no alert.
  ASSERT_NO_FATAL_FAILURE(wait_for_clip(1.1));
  for (const pb::Alert& a : alerts_after(0)) {
    EXPECT_LE(a.detected_at_ms(), short_one.valid_until_ms())
        << "alert " << a.id() << " raised without an authorisation in force";
  }

  // Renewed through the CLI (a date-time with its zone): matching starts again.
  const std::int64_t renewed_at = now_unix_ms();
  std::tie(code, out) =
      run_command(frs() +
                  "watchlist authorize wanted --basis warrant --reference W-2026-113 --issued-by "
                  "'Court 3' --until " +
                  format_utc_time(renewed_at + 3600 * 1000));
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("W-2026-113"), std::string::npos) << out;
  EXPECT_TRUE(eventually([&] { return stage_camera().matching_watchlists_size() == 1; }, 30s));
  std::vector<pb::AuditRecord> started;
  EXPECT_TRUE(eventually(
      [&] {
        started = server_->audit_rows("camera.matching_started");
        return started.size() >= 2;
      },
      30s));
  ASSERT_EQ(started.size(), 2u);
  const auto again = nlohmann::json::parse(started[1].details_json());
  EXPECT_EQ(again["reason"], "authorised");
  EXPECT_EQ(again["watchlists"][0]["authorization"]["reference"], "W-2026-113");
  std::int64_t last = 0;
  for (const pb::Alert& a : alerts_after(0)) last = a.id();
  const pb::Alert after_renewal = wait_for_alert(last, 60s);
  EXPECT_NE(after_renewal.id(), 0) << "no alert after the renewal";
  std::tie(code, out) = run_command(frs() + "watchlist show wanted --json");
  const auto shown = nlohmann::json::parse(out);
  EXPECT_TRUE(shown["authorized"].get<bool>());
  EXPECT_EQ(shown["authorizations"].size(), 2u);
  EXPECT_EQ(shown["authorizations"][1]["issued_by"], "Court 3");
}

// The clip with nobody enrolled in an authorised watchlist: faces are seen, and nothing
// of them is kept anywhere in the data dir (no crop, no alert, no descriptor).
TEST_F(OversightTest, NothingOfAPersonWhoMatchesNobodyIsKept) {
  start();
  ASSERT_TRUE(create_watchlist("wanted").ok());
  ASSERT_TRUE(server_->authorize("wanted").ok());
  TestCamera camera;
  add_camera(camera);
  ASSERT_NO_FATAL_FAILURE(wait_for_clip(1.2));  // a whole loop: him, then the audience
  const pb::Camera seen = stage_camera();
  EXPECT_GT(seen.faces(), 10u) << "the camera saw no faces: the test proves nothing";
  EXPECT_TRUE(alerts_after(0).empty());
  server_.reset();  // everything written and closed
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root_ / "data")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string bytes = bytes_of(entry.path());
    // Every JPEG starts so; frs stores face crops and thumbnails as JPEG.
    EXPECT_EQ(bytes.find("\xFF\xD8\xFF"), std::string::npos) << entry.path() << " holds an image";
    EXPECT_EQ(bytes.find("\x89PNG"), std::string::npos) << entry.path();
  }
  EXPECT_GT(files, 3u);
  AlertStore alerts(root_ / "data" / "alerts.db");
  EXPECT_EQ(alerts.last_id(), 0);
  const std::string log = bytes_of(root_ / "server.log");
  EXPECT_EQ(log.find("event=alert "), std::string::npos);
}

// The man on stage enrolled under a wrong name: his alert is rejected, the rejection
// becomes a suppression, and replaying the clip raises nothing for that name, while the
// right identity (enrolled afterwards) alerts and needs two people to confirm it.
TEST_F(OversightTest, ARejectedMatchDoesNotComeBackAndConfirmationNeedsTwoPeople) {
  start();
  ASSERT_TRUE(create_watchlist("wanted").ok());
  ASSERT_TRUE(server_->authorize("wanted").ok());
  const std::int64_t wrong = enroll("X-1", "Wrong Name", "lin-manuel-miranda.png");
  enroll("BO-1", "Barack Obama", "obama.jpg");
  enroll("JB-1", "Joe Biden", "biden.jpg");
  const std::string ana = server_->create_token("ana", "dispatcher");
  const std::string ben = server_->create_token("ben", "dispatcher");
  auto camera = std::make_unique<TestCamera>();
  // Each live-matching session, as the test saw it: from adding the camera to removing it.
  using Clock = std::chrono::steady_clock;
  auto session_started = Clock::now();
  add_camera(*camera);
  const pb::Alert false_match = wait_for_alert(0, 60s);
  ASSERT_NE(false_match.id(), 0);
  EXPECT_EQ(false_match.display_name(), "Wrong Name");
  EXPECT_EQ(false_match.confirmations_needed(), 2);
  remove_camera();
  Clock::duration sessions = Clock::now() - session_started;

  // One rejection rejects, with two confirmations needed.
  auto [code, out] =
      run_command(frs() + "--token " + ana + " alerts review " + std::to_string(false_match.id()) +
                  " --reject --note 'not him: the booking photo is of another "
                  "man' --json");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["review"], "rejected");
  std::tie(code, out) = run_command(frs() + "identity show " + std::to_string(wrong) + " --json");
  ASSERT_EQ(code, 0) << out;
  const auto shown = nlohmann::json::parse(out);
  ASSERT_EQ(shown["suppressions"].size(), 2u) << out;  // the face and the track's fusion
  EXPECT_EQ(shown["suppressions"][0]["alert_id"], false_match.id());
  EXPECT_EQ(shown["suppressions"][0]["created_by"], "ana");
  const auto made = server_->outcome_rows("ReviewAlert");
  ASSERT_FALSE(made.empty());
  EXPECT_EQ(nlohmann::json::parse(made.back().details_json())["suppressions"], 2);

  // The right identity, from the same photo: after the rejection it is the only one left
  // near his face.
  enroll("LMM-1", "Lin-Manuel Miranda", "lin-manuel-miranda.png");
  camera = std::make_unique<TestCamera>();  // the clip from its start
  session_started = Clock::now();
  add_camera(*camera);
  ASSERT_NO_FATAL_FAILURE(wait_for_clip(2));
  remove_camera();
  sessions += Clock::now() - session_started;
  const auto replayed = alerts_after(false_match.id());
  ASSERT_FALSE(replayed.empty()) << "the right identity did not alert";
  for (const pb::Alert& a : replayed) {
    EXPECT_EQ(a.display_name(), "Lin-Manuel Miranda")
        << "alert " << a.id() << " came back at " << a.distance() << " track " << a.track_id()
        << " detected " << a.detected_at_ms() - false_match.detected_at_ms()
        << " ms after the rejected one (" << false_match.track_id() << ")";
  }

  // What the suppression rests on, measured: his later faces lie within the suppression
  // distance of the rejected ones, other people's photos far outside it.
  {
    AlertStore log(root_ / "data" / "alerts.db");
    const auto rejected = log.get(false_match.id(), false);
    const auto later = log.get(replayed.front().id(), false);
    ASSERT_TRUE(rejected && rejected->track_descriptor && later && later->track_descriptor);
    const float his = std::min(distance(*later->track_descriptor, *rejected->track_descriptor),
                               distance(*later->track_descriptor, *rejected->face_descriptor));
    float nearest_other = 4;
    std::string who;
    std::vector<std::filesystem::path> others = {face_path("obama.jpg"), face_path("biden.jpg"),
                                                 face_path("alex-lacamoire.png")};
    for (const auto& p : read_identity_tree(testdata_dir() / "lfw10")) others.push_back(p.file);
    for (const auto& path : others) {
      const Face f = largest_face(path);  // dlib-resnet-v1's, the server's default
      for (const auto& d : {*rejected->face_descriptor, *rejected->track_descriptor}) {
        const float x = distance(*f.embedding, d);
        if (x < nearest_other) {
          nearest_other = x;
          who = path.filename().string();
        }
      }
    }
    std::printf(
        "suppression: his later track %.3f from the rejected face (suppressed under 0.3); "
        "nearest of %zu other people's photos %.3f (%s)\n",
        his, others.size(), nearest_other, who.c_str());
    EXPECT_LT(his, 0.3f);
    EXPECT_GT(nearest_other, 0.3f) << "a suppression would hide " << who;
  }

  // Moving the watchlist to another descriptor model carries the rejection over: the
  // rejected face (its alert's crop, searched as a still) is not "Wrong Name" before, nor
  // after, though both names were enrolled from one photo of him.
  {
    const std::vector<std::uint8_t> crop =
        AlertStore(root_ / "data" / "alerts.db").get(false_match.id(), true)->face_jpeg;
    ASSERT_FALSE(crop.empty());
    const auto names_for_crop = [&] {
      grpc::ClientContext c;
      pb::SearchRequest r;
      r.set_image(std::string(crop.begin(), crop.end()));
      r.set_top_k(5);
      pb::SearchResponse response;
      const auto status = server_->search().Search(&c, r, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      std::set<std::string> names;
      for (const auto& f : response.faces()) {
        for (const auto& candidate : f.candidates()) names.insert(candidate.external_id());
      }
      return names;
    };
    EXPECT_EQ(names_for_crop().count("X-1"), 0u);
    std::tie(code, out) =
        run_command(frs() + "watchlist reembed wanted --descriptor fused-v1 --json");
    ASSERT_EQ(code, 0) << out;
    const auto moved = nlohmann::json::parse(out);
    EXPECT_EQ(moved["switched"], true);
    EXPECT_EQ(moved["suppressions_carried"], 1);  // one per rejected alert, from its crop
    EXPECT_EQ(moved["suppressions_lost"], 0);
    EXPECT_EQ(names_for_crop().count("X-1"), 0u) << "the rejection did not survive the move";
    std::tie(code, out) = run_command(frs() + "identity show " + std::to_string(wrong) + " --json");
    const auto carried = nlohmann::json::parse(out)["suppressions"];
    ASSERT_EQ(carried.size(), 3u) << out;
    EXPECT_EQ(carried[2]["descriptor_model"], "fused-v1");
    EXPECT_EQ(carried[2]["alert_id"], false_match.id());
    EXPECT_EQ(carried[2]["created_by"], "ana");  // still the rejecter's
  }

  // Two people: the first confirmation leaves it pending and listed; the same person
  // again is refused; a second person confirms it.
  const std::string id = std::to_string(replayed.front().id());
  std::tie(code, out) = run_command(frs() + "--token " + ana + " alerts review " + id +
                                    " --confirm --note 'his face and tattoo'");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("pending (1 of 2 confirmations"), std::string::npos) << out;
  EXPECT_NE(out.find("confirmed by ana"), std::string::npos) << out;
  std::tie(code, out) = run_command(frs() + "alerts --pending");
  EXPECT_NE(out.find("#" + id + " "), std::string::npos) << out;
  EXPECT_NE(out.find("waiting"), std::string::npos) << out;
  std::tie(code, out) =
      run_command(frs() + "--token " + ana + " alerts review " + id + " --confirm");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("already reviewed"), std::string::npos) << out;
  std::tie(code, out) =
      run_command(frs() + "--token " + ben + " alerts review " + id + " --confirm --json");
  ASSERT_EQ(code, 0) << out;
  const auto confirmed = nlohmann::json::parse(out);
  EXPECT_EQ(confirmed["review"], "confirmed");
  ASSERT_EQ(confirmed["reviews"].size(), 2u);
  EXPECT_EQ(confirmed["reviews"][0]["reviewer"], "ana");
  EXPECT_EQ(confirmed["reviews"][1]["reviewer"], "ben");
  std::tie(code, out) = run_command(frs() + "alerts --pending");
  EXPECT_EQ(out.find("#" + id + " "), std::string::npos) << out;

  // Lifted by an operator, with a reason, audited.
  const auto suppression_id = shown["suppressions"][0]["id"].get<std::int64_t>();
  std::tie(code, out) = run_command(frs() + "identity lift-suppression " +
                                    std::to_string(suppression_id) + " --reason 'x'");
  EXPECT_EQ(code, 1) << "a reason of one character";
  std::tie(code, out) = run_command(frs() + "identity lift-suppression " +
                                    std::to_string(suppression_id) + " --reason 'review board'");
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = run_command(frs() + "identity show " + std::to_string(wrong) + " --json");
  EXPECT_EQ(nlohmann::json::parse(out)["suppressions"].size(), 2u);  // 3 after the move, less 1
  EXPECT_EQ(server_->outcome_rows("LiftSuppression").size(), 2u);    // the refused one and the lift

  // The accountability report counts exactly this scenario, for an auditor.
  const std::string auditor = server_->create_token("audra", "auditor");
  const auto day = [](std::int64_t ms) { return format_utc_time(ms).substr(0, 10); };
  const std::string period = " audit report --from " + day(now_unix_ms() - 86'400'000) + " --to " +
                             day(now_unix_ms() + 86'400'000);
  std::tie(code, out) = run_command(frs() + "--token " + auditor + period + " --json");
  ASSERT_EQ(code, 0) << out;
  const auto report = nlohmann::json::parse(out);
  // Protobuf's JSON writes 64-bit integers as strings.
  const auto count = [&](const char* key) { return std::stoll(report[key].get<std::string>()); };
  const auto raised = static_cast<std::int64_t>(1 + replayed.size());
  EXPECT_EQ(count("alerts_raised"), raised);
  EXPECT_EQ(count("alerts_rejected"), 1);
  EXPECT_EQ(count("alerts_confirmed"), 1);
  EXPECT_EQ(count("alerts_pending"), raised - 2);
  EXPECT_EQ(report["review_delays_s"].size(), 2u);
  EXPECT_EQ(count("suppressions_made"), 2);
  EXPECT_EQ(count("suppressions_lifted"), 1);
  EXPECT_EQ(count("enrollments"), 4);
  EXPECT_EQ(count("searches"), 2);  // the rejected face's crop, before and after the move
  EXPECT_EQ(report["confirmations_needed"], 2);
  ASSERT_EQ(report["live_matching"].size(), 1u) << out;
  EXPECT_EQ(report["live_matching"][0]["camera"], "stage");
  EXPECT_EQ(report["live_matching"][0]["sessions"], 2);
  // Two sessions: until the first alert, then two loops of the clip (18.4 s at least). The
  // server's sessions lie within the test's add..remove windows, less camera start-up.
  const double session_s = std::chrono::duration<double>(sessions).count();
  const double reported_s = 3600 * report["live_matching"][0]["hours"].get<double>();
  EXPECT_GT(reported_s, 18.0) << "the test saw " << session_s << " s";
  EXPECT_GT(reported_s, 0.5 * session_s);
  EXPECT_LT(reported_s, session_s + 1.0);
  EXPECT_EQ(report["live_matching"][0]["authorizations"][0], "policy test");
  ASSERT_EQ(report["authorizations_by_basis"].size(), 1u);
  EXPECT_EQ(report["authorizations_by_basis"][0]["key"], "policy");
  EXPECT_NE(report["descriptor_model"].get<std::string>().find("sha256"), std::string::npos);
  const auto plots = root_ / "plots";
  std::tie(code, out) =
      run_command(frs() + "--token " + auditor + period + " --plot " + plots.string());
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("Alerts raised: " + std::to_string(raised)), std::string::npos) << out;
  EXPECT_NE(out.find("stage x wanted"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(plots / "alerts_per_day.png")) << out;
  EXPECT_TRUE(std::filesystem::exists(plots / "review_delay.png")) << out;
  // Not for a dispatcher.
  std::tie(code, out) = run_command(frs() + "--token " + ana + " audit report --from " +
                                    day(now_unix_ms()) + " --to " + day(now_unix_ms()));
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("auditor"), std::string::npos) << out;
}

// No watchlist or search may be set looser than the ceiling, however it is asked for.
TEST_F(OversightTest, TheCeilingRefusesLooserThresholdsEverywhere) {
  start({"--max-distance-ceiling", "0.52"});
  const auto refused = [](const grpc::Status& status, const char* what) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what;
    EXPECT_NE(status.error_message().find("ceiling 0.52"), std::string::npos)
        << what << ": " << status.error_message();
  };
  refused(create_watchlist("loose", 0.6f), "CreateWatchlist");
  pb::Watchlist small;
  // A small watchlist calibrates looser (about 0.57 for 10): capped, and the basis says so.
  ASSERT_TRUE(create_watchlist("small", 0, false, 10, &small).ok());
  EXPECT_FLOAT_EQ(small.max_distance(), 0.52f);
  EXPECT_NE(small.threshold_basis().data().find("capped"), std::string::npos);
  ASSERT_TRUE(create_watchlist("wanted", 0.5f).ok());
  {
    grpc::ClientContext c;
    pb::UpdateWatchlistThresholdRequest r;
    r.set_name("wanted");
    r.set_max_distance(0.7f);
    pb::Watchlist w;
    refused(server_->gallery().UpdateWatchlistThreshold(&c, r, &w), "UpdateWatchlistThreshold");
  }
  {
    grpc::ClientContext c;
    pb::SearchRequest r;
    pb::Descriptor* d = r.mutable_descriptors()->add_descriptors();
    for (int i = 0; i < 128; ++i) d->add_values(i == 0 ? 1.0f : 0.0f);
    r.set_max_distance(0.9f);
    pb::SearchResponse response;
    refused(server_->search().Search(&c, r, &response), "Search");
  }
  auto [code, out] = run_command(frs() + "watchlist update wanted --max-distance 0.6");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("ceiling"), std::string::npos) << out;
  server_.reset();
  // A server whose own default is looser does not start.
  std::tie(code, out) =
      run_command(std::string(FRS_SERVER) + " --data-dir " + (root_ / "data").string() +
                  " --max-distance-ceiling 0.5 --default-max-distance 0.6" +
                  " --listen 127.0.0.1:" + std::to_string(free_port()) + " --metrics-listen ''");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("looser than --max-distance-ceiling"), std::string::npos) << out;
}

// Still-image searches of a live-only watchlist need an authorisation in force (the
// default); --search-authorization always asks it of every watchlist.
TEST_F(OversightTest, SearchesOfLiveOnlyWatchlistsNeedAnAuthorisation) {
  start();
  ASSERT_TRUE(create_watchlist("warrant-113", 0.5f, true).ok());
  ASSERT_TRUE(create_watchlist("open", 0.5f).ok());
  const auto search = [&](std::vector<std::string> watchlists, pb::SearchResponse* response) {
    grpc::ClientContext c;
    pb::SearchRequest r;
    pb::Descriptor* d = r.mutable_descriptors()->add_descriptors();
    for (int i = 0; i < 128; ++i) d->add_values(i == 0 ? 1.0f : 0.0f);
    for (const auto& w : watchlists) r.add_watchlists(w);
    return server_->search().Search(&c, r, response);
  };
  pb::SearchResponse response;
  grpc::Status status = search({"warrant-113"}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("live-only"), std::string::npos) << status.error_message();
  ASSERT_TRUE(search({}, &response).ok());
  ASSERT_EQ(response.skipped_watchlists_size(), 1);
  EXPECT_EQ(response.skipped_watchlists(0), "warrant-113");
  // frs search says so, so that "no match" does not read as "on no watchlist".
  {
    const auto [code, out] = run_command(frs() + "search " + face_path("obama.jpg").string());
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("not searched (live-only, no authorisation in force): warrant-113"),
              std::string::npos)
        << out;
    const auto [json_code, json_out] =
        run_command(frs() + "search --json " + face_path("obama.jpg").string());
    EXPECT_EQ(nlohmann::json::parse(json_out)["skipped_watchlists"],
              nlohmann::json::array({"warrant-113"}))
        << json_out;
  }
  EXPECT_TRUE(search({"open"}, &response).ok());
  ASSERT_TRUE(server_->authorize("warrant-113").ok());
  EXPECT_TRUE(search({"warrant-113"}, &response).ok());

  // Exigent authorisations are short by rule; an end in the past or before the start is
  // refused; the CLI takes a date as the end of that day.
  auto [code, out] = run_command(frs() +
                                 "watchlist authorize open --basis exigent --reference E-1 "
                                 "--until " +
                                 format_utc_time(now_unix_ms() + 72 * 3600 * 1000LL));
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("at most 48 hours"), std::string::npos) << out;
  std::tie(code, out) =
      run_command(frs() + "watchlist authorize open --basis exigent --reference E-2 --until " +
                  format_utc_time(now_unix_ms() + 24 * 3600 * 1000LL) + " --json");
  EXPECT_EQ(code, 0) << out;
  // An exigent authorisation starts when it is recorded: six back-to-back ones with later
  // starts cannot stand in for a warrant.
  std::tie(code, out) =
      run_command(frs() + "watchlist authorize open --basis exigent --reference E-3 --from " +
                  format_utc_time(now_unix_ms() + 47 * 3600 * 1000LL) + " --until " +
                  format_utc_time(now_unix_ms() + 94 * 3600 * 1000LL));
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("starts when it is recorded"), std::string::npos) << out;
  // Nor one after another: together at most 48 h in any 7 days. E-2 as if recorded 40 h
  // ago (as an operator could have): 64 h now, and even 1 h more is refused...
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((root_ / "data" / "gallery.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    EXPECT_EQ(sqlite3_exec(db,
                           "UPDATE authorizations SET valid_from_ms = valid_from_ms - 144000000, "
                           "recorded_at_ms = recorded_at_ms - 144000000 WHERE reference = 'E-2'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  const std::string one_hour = format_utc_time(now_unix_ms() + 3600 * 1000LL);
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis exigent --reference E-5 --until " + one_hour);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("already cover 64.0 hours of the last 7 days"), std::string::npos) << out;
  // ... until a warrant is recorded.
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis warrant --reference W-7 --until 2099-12-31");
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis exigent --reference E-6 --until " + one_hour);
  EXPECT_EQ(code, 0) << out;
  // Times at the edges are refused where they enter, without overflow.
  for (const auto& [from, until] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()},
           {0, std::numeric_limits<std::int64_t>::max()},
           {0, kLatestTimeMs}}) {
    grpc::ClientContext c;
    pb::AuthorizeWatchlistRequest r;
    r.set_watchlist("open");
    r.set_basis("exigent");
    r.set_reference("E-4");
    r.set_valid_from_ms(from);
    r.set_valid_until_ms(until);
    pb::Authorization a;
    const grpc::Status edge =
        pb::Gallery::NewStub(server_->channel())->AuthorizeWatchlist(&c, r, &a);
    EXPECT_EQ(edge.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << from << " " << until;
    EXPECT_NE(edge.error_message().find("outside the years 2000..2099"), std::string::npos)
        << edge.error_message();
  }
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis warrant --reference W-2 --until 2150-01-01");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("2000..2099"), std::string::npos) << out;
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis warrant --reference W-1 --until 2020-01-01");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("future"), std::string::npos) << out;
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis hunch --reference W-1 --until 2099-12-31");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--basis"), std::string::npos) << out;
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis warrant --reference W-9 --until 2099-12-31 --json");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["valid_until"], "2099-12-31T23:59:59.999Z");
  std::tie(code, out) = run_command(
      frs() + "watchlist authorize open --basis warrant --reference W-1 --until 12/31/2099");
  EXPECT_EQ(code, 1) << out;

  // Marked live-only later, through the CLI: its searches need one from then on.
  std::tie(code, out) = run_command(frs() + "watchlist update open --live-only on");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("live-only yes"), std::string::npos) << out;
  status = search({"open"}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OK) << "open has an authorisation (W-9)";
  ASSERT_TRUE(create_watchlist("plain", 0.5f).ok());
  std::tie(code, out) = run_command(frs() + "watchlist update plain --live-only on --json");
  ASSERT_EQ(code, 0) << out;
  EXPECT_TRUE(nlohmann::json::parse(out)["live_only"].get<bool>());
  EXPECT_EQ(search({"plain"}, &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  std::tie(code, out) = run_command(frs() + "watchlist update plain --live-only off");
  ASSERT_EQ(code, 0) << out;
  EXPECT_TRUE(search({"plain"}, &response).ok());
  std::tie(code, out) = run_command(frs() + "watchlist update plain");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("say what to change"), std::string::npos) << out;

  server_.reset();
  start({"--search-authorization", "always", "--rate-limit", "0"});
  ASSERT_TRUE(create_watchlist("fresh", 0.5f).ok());
  status = search({"fresh"}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  // More watchlists than a search may name (100), two of them unauthorised ("plain" from
  // before, and "fresh"): a search of all searches the others (in chunks) and skips those.
  for (int i = 0; i < 101; ++i) {
    const std::string name = "w" + std::to_string(i);
    ASSERT_TRUE(create_watchlist(name, 0.5f).ok());
    ASSERT_TRUE(server_->authorize(name).ok());
  }
  response.Clear();
  status = search({}, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.skipped_watchlists_size(), 2);
  EXPECT_EQ(response.skipped_watchlists(0), "fresh");
  EXPECT_EQ(response.skipped_watchlists(1), "plain");
}

}  // namespace
}  // namespace frs::testing
