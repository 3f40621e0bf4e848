#include "frs/service/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/time_text.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs::service {
namespace {

using testing::Backend;

// A scripted period whose every count is known, written straight into the stores, on each
// database.
class ReportTest : public ::testing::TestWithParam<Backend> {
 protected:
  ReportTest() {
    GalleryOptions o;
    o.index.factory = "Flat";
    o.max_distance_ceilings = {{std::string(kDlibDescriptorId), 0.55f}};
    gallery_ = std::make_unique<Gallery>(open_gallery_store(stores_.at("gallery.db")), o);
    Watchlist w;
    w.name = "wanted";
    w.max_distance = 0.5f;
    w.threshold_basis = R"({"method":"calibrated","data":"our bookings"})";
    wanted_ = gallery_->create_watchlist(w).id;
  }

  void row(std::int64_t at, const std::string& method, const std::string& token,
           const std::string& purpose, int outcome, const nlohmann::json& targets,
           const nlohmann::json& details) {
    AuditEntry e;
    e.time_ms = at;
    e.token = token;
    e.method = method;
    e.purpose = purpose;
    e.outcome = outcome;
    e.targets_json = targets.dump();
    e.details_json = details.dump();
    audit_->append(e);
  }
  void matching(std::int64_t at, bool started) {
    nlohmann::json watchlist = {{"name", "wanted"}, {"id", wanted_}};
    if (started) watchlist["authorization"] = {{"basis", "warrant"}, {"reference", "W-1"}};
    row(at, started ? "camera.matching_started" : "camera.matching_stopped", "frs-server", "", 0,
        {{"cameras", {"door"}}}, {{"watchlists", {watchlist}}});
  }
  void authorize(const std::string& basis, std::int64_t from, std::int64_t until) {
    Authorization a;
    a.watchlist_id = wanted_;
    a.basis = basis;
    a.reference = basis + "-1";
    a.valid_from_ms = from;
    a.valid_until_ms = until;
    a.recorded_by = "ana";
    gallery_->authorize(a);
  }
  Alert alert_at(std::int64_t detected_at) {
    Alert a;
    a.camera = "door";
    a.watchlist = "wanted";
    a.captured_at_ms = detected_at;
    a.detected_at_ms = detected_at;
    return a;
  }

  const std::int64_t t0_ = now_unix_ms() - 5 * kMsPerDay;  // the period: t0 .. t0 + 10 days
  const std::int64_t to_ = t0_ + 10 * kMsPerDay;
  testing::TestStores stores_{GetParam()};
  std::unique_ptr<Gallery> gallery_;
  std::int64_t wanted_ = 0;
  AlertStore alerts_{stores_.at("alerts.db")};
  std::unique_ptr<AuditLog> audit_ = open_audit_log(stores_.at("audit.db"));
};
INSTANTIATE_TEST_SUITE_P(Backends, ReportTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

TEST_P(ReportTest, CountsAreThoseOfTheScriptedPeriod) {
  const char* search = "/frs.v1.Search/Search";
  row(t0_ - kMsPerHour, search, "ana", "before", 0, nlohmann::json::object(), {});  // not counted
  row(t0_ + kMsPerHour, search, "ana", "case 1", 0, {{"watchlist_names", {"wanted"}}}, {});
  row(t0_ + 2 * kMsPerHour, search, "ana", "case 1", 0, {{"watchlist_names", {"wanted"}}}, {});
  row(t0_ + 3 * kMsPerHour, search, "ben", "case 2", 0, nlohmann::json::object(), {});
  row(t0_ + 4 * kMsPerHour, search, "ben", "case 2", 7, {{"watchlist_names", {"wanted"}}}, {});
  // Sessions: 2 h inside the period (began before it), 2 h ended by a crash and restart
  // (a new start with no stop), 1 h.
  matching(t0_ - kMsPerHour, true);
  matching(t0_ + 2 * kMsPerHour, false);
  matching(t0_ + 5 * kMsPerHour, true);
  matching(t0_ + 7 * kMsPerHour, true);
  matching(t0_ + 8 * kMsPerHour, false);
  const char* review = "/frs.v1.Alerts/ReviewAlert";
  row(t0_ + kMsPerDay, review, "ana", "", 0, {}, {{"suppressions", 2}});
  row(t0_ + kMsPerDay, review, "ben", "", 0, {}, {{"outcome", "pending"}});
  row(t0_ + kMsPerDay, review, "ben", "", 9, {}, {{"suppressions", 2}});  // refused: none made
  row(t0_ + kMsPerDay, "/frs.v1.Gallery/LiftSuppression", "ana", "", 0, {}, {});
  row(t0_ + kMsPerDay, "/frs.v1.Gallery/LiftSuppression", "ana", "", 5, {}, {});
  const nlohmann::json photos = {
      {{"face_id", 1}},
      {{"face_id", 2}, {"gate_override", "too small: 38 px; overridden: the only photo"}}};
  row(t0_ + 2 * kMsPerDay, "/frs.v1.Gallery/Enroll", "ana", "p", 0, {{"watchlists", {wanted_}}},
      {{"photos", photos}});
  row(t0_ + 2 * kMsPerDay, "/frs.v1.Gallery/Enroll", "ana", "p", 0, {{"watchlists", {wanted_}}},
      {{"photos", {{{"skipped", true}}}}});  // nothing new stored
  row(t0_ + 2 * kMsPerDay, "/frs.v1.Gallery/AddFaces", "ana", "p", 0, {},
      {{"photos", {{{"face_id", 3}}}}});
  row(t0_ - kMsPerDay, "/frs.v1.Evaluation/Evaluate", "ana", "", 0, {},
      {{"results", {{"rank1", 0.5}}}});
  row(t0_ + 3 * kMsPerDay, "/frs.v1.Evaluation/Evaluate", "ana", "", 0, {},
      {{"results", {{"rank1", 0.9}}}});
  row(to_ + kMsPerDay, "/frs.v1.Evaluation/Evaluate", "ana", "", 0, {},
      {{"results", {{"rank1", 0.1}}}});
  row(t0_ + 3 * kMsPerDay, "retention.purged", "frs-server", "", 0, {}, {{"alerts", 4}});
  authorize("warrant", t0_ - kMsPerDay, t0_ + 20 * kMsPerDay);
  authorize("exigent", t0_ + kMsPerDay, t0_ + kMsPerDay + 24 * kMsPerHour);
  authorize("policy", t0_ - 10 * kMsPerDay, t0_ - 5 * kMsPerDay);  // over before the period
  alerts_.append(alert_at(t0_ - kMsPerDay));                       // before the period
  const auto confirmed = alerts_.append(alert_at(t0_ + kMsPerDay)).id;
  alerts_.review(confirmed, ReviewState::kConfirmed, "", "ana", 1);
  const auto rejected = alerts_.append(alert_at(t0_ + 2 * kMsPerDay)).id;
  alerts_.review(rejected, ReviewState::kRejected, "", "ben", 1);
  alerts_.append(alert_at(t0_ + 2 * kMsPerDay));

  ReportSources sources{&alerts_, gallery_.get(), 2,
                        [](const std::string& model) { return "named " + model; }};
  sources.default_model = std::string(kDlibDescriptorId);  // a server run with dlib's model
  const auto r = build_report(*audit_, sources, t0_, to_, now_unix_ms());
  EXPECT_EQ(r.searches(), 4);
  EXPECT_EQ(r.searches_refused(), 1);
  ASSERT_EQ(r.searches_by_purpose_size(), 2);
  EXPECT_EQ(r.searches_by_purpose(0).key(), "case 1");
  EXPECT_EQ(r.searches_by_purpose(0).count(), 2);
  EXPECT_EQ(r.searches_by_purpose(1).count(), 2);
  ASSERT_EQ(r.searches_by_watchlist_size(), 2);
  EXPECT_EQ(r.searches_by_watchlist(0).key(), "(all)");
  EXPECT_EQ(r.searches_by_watchlist(0).count(), 1);
  EXPECT_EQ(r.searches_by_watchlist(1).count(), 3);
  ASSERT_EQ(r.searches_by_token_size(), 2);
  EXPECT_EQ(r.searches_by_token(0).count(), 2);

  ASSERT_EQ(r.live_matching_size(), 1);
  EXPECT_EQ(r.live_matching(0).camera(), "door");
  EXPECT_EQ(r.live_matching(0).watchlist(), "wanted");
  EXPECT_DOUBLE_EQ(r.live_matching(0).hours(), 5.0);
  EXPECT_EQ(r.live_matching(0).sessions(), 3);
  ASSERT_EQ(r.live_matching(0).authorizations_size(), 1);
  EXPECT_EQ(r.live_matching(0).authorizations(0), "warrant W-1");

  ASSERT_EQ(r.authorizations_size(), 2);
  ASSERT_EQ(r.authorizations_by_basis_size(), 2);
  EXPECT_EQ(r.authorizations_by_basis(0).key(), "exigent");
  EXPECT_DOUBLE_EQ(r.authorizations(1).hours(), 24.0);

  EXPECT_EQ(r.alerts_raised(), 3);
  EXPECT_EQ(r.alerts_confirmed(), 1);
  EXPECT_EQ(r.alerts_rejected(), 1);
  EXPECT_EQ(r.alerts_pending(), 1);
  ASSERT_EQ(r.review_delays_s_size(), 2);
  const auto decided = alerts_.get(confirmed, false);  // the longer wait: detected first
  EXPECT_NEAR(r.review_delay_p95_s(),
              static_cast<double>(decided->reviewed_at_ms - decided->detected_at_ms) / 1000, 1.0);
  ASSERT_EQ(r.alerts_per_day_size(), 2);
  EXPECT_EQ(r.alerts_per_day(1).raised(), 2);
  EXPECT_EQ(r.alerts_per_day(1).pending(), 1);
  EXPECT_EQ(r.alerts_purged(), 4);

  EXPECT_EQ(r.suppressions_made(), 2);
  EXPECT_EQ(r.suppressions_lifted(), 1);
  EXPECT_EQ(r.enrollments(), 2);
  EXPECT_EQ(r.faces_enrolled(), 3);
  ASSERT_EQ(r.gate_overrides_size(), 1);
  EXPECT_EQ(r.gate_overrides(0).watchlist_id(), wanted_);
  EXPECT_NE(r.gate_overrides(0).gate_override().find("the only photo"), std::string::npos);

  EXPECT_EQ(r.descriptor_model(), "named dlib-resnet-v1");
  ASSERT_EQ(r.thresholds_size(), 1);
  EXPECT_EQ(r.thresholds(0).descriptor_model(), "dlib-resnet-v1");
  EXPECT_FLOAT_EQ(r.thresholds(0).max_distance_ceiling(), 0.55f);
  EXPECT_EQ(r.thresholds(0).method(), "calibrated");
  EXPECT_EQ(r.thresholds(0).data(), "our bookings");
  EXPECT_FLOAT_EQ(r.max_distance_ceiling(), 0.55f);
  EXPECT_EQ(nlohmann::json::parse(r.last_evaluation_json())["rank1"], 0.9);

  EXPECT_THROW(build_report(*audit_, sources, to_, t0_, now_unix_ms()), Error);
}

}  // namespace
}  // namespace frs::service
