#include "frs/service/retention.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "frs/auth/tokens.h"
#include "frs/core/error.h"
#include "frs/core/time_text.h"
#include "synthetic.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs::service {
namespace {

constexpr std::int64_t kNow = 2'000'000'000'000;  // 2033-05-18

using testing::Backend;

// Someone with write access to the database, going around frs.
void edit_outside_frs(const StoreLocation& where, const char* sql) {
  if (where.is_postgres()) {
    testing::run_psql(where.postgres_url, sql);
    return;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(where.sqlite_file.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

Alert alert_at(std::int64_t detected_at_ms) {
  Alert a;
  a.camera = "door";
  a.watchlist = "wanted";
  a.distance = 0.4f;
  a.captured_at_ms = detected_at_ms - 100;
  a.detected_at_ms = detected_at_ms;
  a.identity_id = 1;
  a.face_jpeg = {0xff, 0xd8, 0xff, 0xe0};
  return a;
}

// Every retention test runs on both databases.
class RetentionTest : public ::testing::TestWithParam<Backend> {
 protected:
  RetentionTest() {
    GalleryOptions o;
    o.index.factory = "Flat";
    gallery_ = std::make_unique<Gallery>(open_gallery_store(stores_.at("gallery.db")), o);
    Watchlist w;
    w.name = "wanted";
    const Watchlist created = gallery_->create_watchlist(w);
    StoredFace f;
    f.descriptor = testing::axis(0);
    Identity i;
    i.watchlist_id = created.id;
    i.external_id = "A";
    identity_ = gallery_->enroll(i, {f}).id;
  }

  AuditRecord audit_at(std::int64_t time_ms) {
    AuditEntry e;
    e.time_ms = time_ms;
    e.token = "ana";
    e.method = "/frs.v1.Search/Search";
    return audit_->append(e);
  }

  void suppress(std::int64_t alert_id, std::int64_t detected_at_ms) {
    Suppression x;
    x.identity_id = identity_;
    x.descriptor = testing::axis(1);
    x.alert_id = alert_id;
    x.alert_detected_at_ms = detected_at_ms;
    x.created_by = "ana";
    gallery_->add_suppressions({x});
  }

  testing::TestStores stores_{GetParam()};
  std::unique_ptr<Gallery> gallery_;
  std::int64_t identity_ = 0;
  AlertStore alerts_{stores_.at("alerts.db")};
  std::unique_ptr<TokenStore> tokens_ = open_token_store(stores_.at("tokens.db"));
  std::unique_ptr<AuditLog> audit_ = open_audit_log(stores_.at("audit.db"));
  AccessControl access_{*tokens_, *audit_};
};
INSTANTIATE_TEST_SUITE_P(Backends, RetentionTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

TEST_P(RetentionTest, PurgesExactlyWhatIsOlderAndTheChainStillVerifies) {
  // Alerts: 31 days old (pending, rejected, confirmed), 400 days old (confirmed), 29 days.
  const auto pending_old = alerts_.append(alert_at(kNow - 31 * kMsPerDay)).id;
  const auto rejected_old = alerts_.append(alert_at(kNow - 31 * kMsPerDay)).id;
  alerts_.review(rejected_old, ReviewState::kRejected, "not him", "ana", 1);
  const auto confirmed_old = alerts_.append(alert_at(kNow - 31 * kMsPerDay)).id;
  alerts_.review(confirmed_old, ReviewState::kConfirmed, "", "ana", 1);
  const auto confirmed_ancient = alerts_.append(alert_at(kNow - 400 * kMsPerDay)).id;
  alerts_.review(confirmed_ancient, ReviewState::kConfirmed, "", "ana", 1);
  const auto recent = alerts_.append(alert_at(kNow - 29 * kMsPerDay)).id;
  suppress(rejected_old, kNow - 31 * kMsPerDay);
  suppress(recent, kNow - 29 * kMsPerDay);
  // Audit rows: three older than 7 years, two newer.
  audit_at(kNow - 2600 * kMsPerDay);
  const AuditRecord second = audit_at(kNow - 2590 * kMsPerDay);
  const AuditRecord third = audit_at(kNow - 2558 * kMsPerDay);
  audit_at(kNow - 2556 * kMsPerDay);
  audit_at(kNow - kMsPerDay);

  const RetentionRun run = purge_expired(alerts_, *gallery_, access_, RetentionPolicy{}, kNow);
  EXPECT_EQ(run.alerts.alerts, 3);
  EXPECT_EQ(run.alerts.confirmed, 1);
  EXPECT_EQ(run.suppressions, 1);
  EXPECT_EQ(run.audit_rows, 3);
  for (const auto id : {pending_old, rejected_old, confirmed_ancient}) {
    EXPECT_FALSE(alerts_.get(id).has_value()) << id;
  }
  EXPECT_TRUE(alerts_.get(confirmed_old).has_value()) << "confirmed alerts are kept a year";
  EXPECT_TRUE(alerts_.get(recent).has_value());
  const auto left = gallery_->suppressions_of(identity_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].alert_id, recent);

  // The chain: rows 1-3 purged, anchored by the purge record; the purges are audited.
  const AuditVerification v = audit_->verify(std::nullopt);
  EXPECT_TRUE(v.intact) << v.problem;
  EXPECT_EQ(v.purged_through, 3);
  AuditQuery q;
  const auto rows = audit_->list(q);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].seq, 4);
  EXPECT_EQ(rows[2].method, "retention.purged");
  EXPECT_EQ(rows[3].method, kAuditPurgedEvent);
  const auto details = nlohmann::json::parse(rows[3].details_json);
  EXPECT_EQ(details["purged_through_seq"], 3);
  EXPECT_EQ(details["purged_through_hash"], third.hash);
  EXPECT_EQ(details["rows"], 3);
  // A head kept before the purge still checks: the purged row it names, by its hash.
  EXPECT_TRUE(audit_->verify(AuditHead{3, third.hash}).intact);
  EXPECT_TRUE(audit_->verify(AuditHead{2, second.hash}).intact);
  EXPECT_FALSE(audit_->verify(AuditHead{3, second.hash}).intact);

  // Again: nothing more is old enough, nothing changes.
  const RetentionRun again = purge_expired(alerts_, *gallery_, access_, RetentionPolicy{}, kNow);
  EXPECT_EQ(again.alerts.alerts + again.suppressions + again.audit_rows, 0);
  EXPECT_EQ(audit_->list(q).size(), 4u);

  // Rows deleted after a purge (not purged) are caught: the purge record names row 3.
  edit_outside_frs(stores_.at("audit.db"), "DELETE FROM audit WHERE seq = 4");
  const AuditVerification tampered = open_audit_log(stores_.at("audit.db"))->verify(std::nullopt);
  EXPECT_FALSE(tampered.intact);
  EXPECT_NE(tampered.problem.find("no purge record names them"), std::string::npos)
      << tampered.problem;
}

TEST_P(RetentionTest, ALogWithItsFirstRowsDeletedIsNotAPurge) {
  audit_at(kNow - 3 * kMsPerDay);
  audit_at(kNow - 2 * kMsPerDay);
  audit_at(kNow - kMsPerDay);
  edit_outside_frs(stores_.at("audit.db"), "DELETE FROM audit WHERE seq = 1");
  const AuditVerification v = open_audit_log(stores_.at("audit.db"))->verify(std::nullopt);
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.first_broken_seq, 1);
}

TEST_P(RetentionTest, RefusesPeriodsThatMakeNoSense) {
  RetentionPolicy p;
  p.confirmed_alerts = p.alerts / 2;
  EXPECT_THROW(purge_expired(alerts_, *gallery_, access_, p, kNow), Error);
  p = RetentionPolicy{};
  p.audit = std::chrono::milliseconds(0);
  EXPECT_THROW(purge_expired(alerts_, *gallery_, access_, p, kNow), Error);
}

}  // namespace
}  // namespace frs::service
