// Fail-closed, for every method that changes state: while the audit log cannot be written,
// the call is refused and nothing it would change changes; once the log can be written
// again, the same request is carried out (so the refusal was the log's, not the request's),
// and its intent row comes before its outcome row.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "frs/alerts/alert_store.h"
#include "frs/auth/access.h"
#include "frs/auth/audit_log.h"
#include "frs/core/clock.h"
#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"
#include "model_fixture.h"
#include "server_process.h"
#include "test_postgres.h"

namespace frs::testing {
namespace {

using namespace std::chrono_literals;

void exec_sql(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// Every row of every table of one SQLite store, as text.
std::string rows_of(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "(cannot open " + file.string() + ")";
  }
  sqlite3_busy_timeout(db, 10000);
  std::vector<std::string> tables;
  sqlite3_stmt* list = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
                     &list, nullptr);
  while (sqlite3_step(list) == SQLITE_ROW) {
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(list, 0)));
  }
  sqlite3_finalize(list);
  std::string out;
  for (const std::string& table : tables) {
    out += "[" + table + "]\n";
    sqlite3_stmt* rows = nullptr;
    sqlite3_prepare_v2(db, ("SELECT * FROM \"" + table + "\" ORDER BY rowid").c_str(), -1, &rows,
                       nullptr);
    while (rows != nullptr && sqlite3_step(rows) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(rows); ++c) {
        const auto* v = static_cast<const char*>(sqlite3_column_blob(rows, c));
        out.append(v == nullptr ? "NULL" : std::string(v, sqlite3_column_bytes(rows, c)));
        out += '|';
      }
      out += '\n';
    }
    sqlite3_finalize(rows);
  }
  sqlite3_close(db);
  return out;
}

// Every row of every table of a PostgreSQL database but those the nodes rewrite on their
// own (leases and heartbeats), as text. One query (query_to_xml runs each table's SELECT):
// a psql process per table took most of this test's minute of CPU.
std::string rows_of(const std::string& database_url) {
  return run_psql(
      database_url,
      "SELECT table_name || E'\\n' || query_to_xml(format('SELECT t::text AS r FROM %I t ORDER "
      "BY 1', table_name), false, false, '')::text FROM information_schema.tables WHERE "
      "table_schema = 'public' AND table_name NOT IN ('audit', 'cluster_nodes', "
      "'camera_leases') ORDER BY table_name");
}

std::string photo_request_bytes(const std::string& face) {
  return bytes_of(testdata_dir() / "faces" / face);
}

class FailClosedTest : public ::testing::TestWithParam<Backend> {
 protected:
  void start() {
    if (GetParam() == Backend::kPostgres) {
      database_ = std::make_unique<ScopedPostgresDatabase>();
      server_ = std::make_unique<Server>(
          root_ / "data",
          std::vector<std::string>{"--store", database_->url(), "--admin-token-file",
                                   write_admin_token_file(root_.path()).string()});
    } else {
      server_ = std::make_unique<Server>(root_ / "data");
    }
  }

  // What frs stores, but its audit log.
  std::string stored_state() {
    if (database_) return rows_of(database_->url());
    std::string out;
    for (const char* store : {"gallery.db", "tokens.db", "alerts.db", "cameras.db"}) {
      const auto file = root_ / "data" / store;
      if (std::filesystem::exists(file)) out += rows_of(file);
    }
    return out;
  }

  void TearDown() override {
    server_.reset();
    if (HasFailure()) {
      std::ifstream log(root_ / "server.log");
      std::cerr << "--- frs-server log ---\n" << log.rdbuf() << "\n";
    }
  }

  // As a full disk or a damaged file would: every insert into the audit log fails at once
  // (a trigger, not a lock, so that no call waits out the store's busy timeout).
  void refuse_audit_writes(bool refuse) {
    if (database_) {
      run_psql(database_->url(),
               refuse ? "CREATE FUNCTION frs_test_refuse() RETURNS trigger AS $$ BEGIN RAISE "
                        "EXCEPTION 'the test refuses audit rows'; END $$ LANGUAGE plpgsql; "
                        "CREATE TRIGGER frs_test_refuse BEFORE INSERT ON audit FOR EACH ROW "
                        "EXECUTE FUNCTION frs_test_refuse()"
                      : "DROP TRIGGER frs_test_refuse ON audit; DROP FUNCTION frs_test_refuse()");
      return;
    }
    exec_sql(root_ / "data" / "audit.db",
             refuse ? "CREATE TRIGGER frs_test_refuse BEFORE INSERT ON audit BEGIN "
                      "SELECT RAISE(ABORT, 'the test refuses audit rows'); END"
                    : "DROP TRIGGER frs_test_refuse");
  }

  ScopedTempDir root_{"fail_closed"};
  std::unique_ptr<ScopedPostgresDatabase> database_;
  std::unique_ptr<Server> server_;
};

TEST_P(FailClosedTest, EveryCallThatChangesStateChangesNothingWithoutItsAuditRow) {
  start();
  const auto channel = server_->channel();
  auto gallery = pb::Gallery::NewStub(channel);

  // What the calls act on: two watchlists, an enrolled identity and one to remove, a
  // camera, a token, and an alert (its rejection then makes the suppression to lift).
  for (const char* name : {"wanted", "spare"}) {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name(name);
    pb::Watchlist w;
    ASSERT_TRUE(gallery->CreateWatchlist(&c, r, &w).ok());
  }
  const auto enroll = [&](const std::string& external_id, const std::string& face) {
    grpc::ClientContext c;
    pb::EnrollRequest r;
    r.set_watchlist("wanted");
    r.set_external_id(external_id);
    r.add_photos()->set_image(photo_request_bytes(face));
    pb::EnrollResponse response;
    const grpc::Status status = gallery->Enroll(&c, r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.identity().id();
  };
  const std::int64_t obama = enroll("B-1", "obama.jpg");
  const std::int64_t biden = enroll("B-2", "biden.jpg");
  {
    grpc::ClientContext c;
    pb::AddCameraRequest r;
    r.mutable_spec()->set_name("door");
    r.mutable_spec()->set_url("rtsp://127.0.0.1:1/none");
    pb::Camera camera;
    const grpc::Status status = pb::Cameras::NewStub(channel)->AddCamera(&c, r, &camera);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  server_->create_token("leaver", "operator");
  std::int64_t alert_id = 0;
  {
    AlertStore alerts(database_ ? StoreLocation::postgres(database_->url())
                                : StoreLocation(root_ / "data" / "alerts.db"));
    Alert a;
    a.camera = "door";
    a.captured_at_ms = a.detected_at_ms = now_unix_ms();
    a.identity_id = obama;
    a.external_id = "B-1";
    a.watchlist = "wanted";
    Embedding descriptor(128, 0.0f);
    descriptor[0] = 1;
    a.face_descriptor = descriptor;
    alert_id = alerts.append(a).id;
  }
  const auto suppression_of_obama = [&]() -> std::int64_t {
    grpc::ClientContext c;
    pb::GetIdentityRequest r;
    r.set_id(obama);
    pb::Identity identity;
    if (!gallery->GetIdentity(&c, r, &identity).ok()) return 0;
    return identity.suppressions_size() > 0 ? identity.suppressions(0).id() : 0;
  };

  // One request per method that changes state, each one the server carries out when its
  // audit log can be written. Taken in this order (the review makes the suppression).
  const std::int64_t far_future = now_unix_ms() + 24 * 3'600'000LL;
  std::vector<std::pair<std::string, std::function<std::string()>>> cases = {
      {"/frs.v1.Gallery/CreateWatchlist",
       [] {
         pb::CreateWatchlistRequest r;
         r.set_name("new-one");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/Enroll",
       [] {
         pb::EnrollRequest r;
         r.set_watchlist("wanted");
         r.set_external_id("B-3");
         r.add_photos()->set_image(photo_request_bytes("lin-manuel-miranda.png"));
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/AddFaces",
       [&] {
         pb::AddFacesRequest r;
         r.set_identity_id(obama);
         r.add_photos()->set_image(photo_request_bytes("obama2.jpg"));
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/AuthorizeWatchlist",
       [&] {
         pb::AuthorizeWatchlistRequest r;
         r.set_watchlist("wanted");
         r.set_basis("policy");
         r.set_reference("fail-closed test");
         r.set_valid_until_ms(far_future);
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/SetWatchlistLiveOnly",
       [] {
         pb::SetWatchlistLiveOnlyRequest r;
         r.set_name("wanted");
         r.set_live_only(true);
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/UpdateWatchlistThreshold",
       [] {
         pb::UpdateWatchlistThresholdRequest r;
         r.set_name("wanted");
         r.set_max_distance(0.45f);
         return r.SerializeAsString();
       }},
      {"/frs.v1.Alerts/ReviewAlert",
       [&] {
         pb::ReviewAlertRequest r;
         r.set_id(alert_id);
         r.set_confirm(false);
         r.set_note("not him");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/LiftSuppression",
       [&] {
         pb::LiftSuppressionRequest r;
         r.set_id(suppression_of_obama());
         r.set_reason("review board");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/RemoveIdentity",
       [&] {
         pb::RemoveIdentityRequest r;
         r.set_id(biden);
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/ReembedWatchlist",
       [] {
         pb::ReembedWatchlistRequest r;
         r.set_name("spare");
         r.set_descriptor_model("fused-v1");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Gallery/DeleteWatchlist",
       [] {
         pb::DeleteWatchlistRequest r;
         r.set_name("spare");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Cameras/AddCamera",
       [] {
         pb::AddCameraRequest r;
         r.mutable_spec()->set_name("gate");
         r.mutable_spec()->set_url("rtsp://127.0.0.1:1/other");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Cameras/RemoveCamera",
       [] {
         pb::RemoveCameraRequest r;
         r.set_name("door");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Tokens/CreateToken",
       [] {
         pb::CreateTokenRequest r;
         r.set_name("shadow-admin");
         r.set_role("admin");
         return r.SerializeAsString();
       }},
      {"/frs.v1.Tokens/RevokeToken",
       [] {
         pb::RevokeTokenRequest r;
         r.set_name("leaver");
         return r.SerializeAsString();
       }},
  };

  // Every method the table says changes state has a case here, and no other: a new
  // method cannot be forgotten.
  std::set<std::string> covered;
  for (const auto& c : cases) covered.insert(c.first);
  std::set<std::string> changing;
  for (const MethodAccess& m : access_table()) {
    if (m.effect == Effect::kChanges) changing.insert(std::string(m.method));
  }
  EXPECT_EQ(covered, changing) << "give every method that changes state a case here";

  for (const auto& [method, request] : cases) {
    SCOPED_TRACE(method);
    const std::string bytes = request();
    const std::string before = stored_state();
    const std::size_t rows_before = server_->audit_rows(method).size();

    refuse_audit_writes(true);
    const grpc::Status refused = call_method(channel, method, 120s, nullptr, bytes);
    refuse_audit_writes(false);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
    EXPECT_NE(refused.error_message().find("audit log cannot be written"), std::string::npos)
        << refused.error_message();
    EXPECT_NE(refused.error_message().find("nothing was changed"), std::string::npos)
        << refused.error_message();
    EXPECT_TRUE(stored_state() == before) << "changed without its audit row";
    EXPECT_EQ(server_->audit_rows(method).size(), rows_before);

    const grpc::Status done = call_method(channel, method, 120s, nullptr, bytes);
    EXPECT_TRUE(done.ok()) << done.error_message();
    EXPECT_FALSE(stored_state() == before) << "the case must change something";
    const auto rows = server_->audit_rows(method);
    ASSERT_GE(rows.size(), 2u);
    const pb::AuditRecord& outcome = rows.back();
    EXPECT_EQ(outcome.outcome(), 0);
    const std::int64_t intent_seq =
        nlohmann::json::parse(outcome.details_json()).value("intent_seq", std::int64_t{0});
    const auto intent = std::find_if(
        rows.begin(), rows.end(), [&](const pb::AuditRecord& r) { return r.seq() == intent_seq; });
    ASSERT_NE(intent, rows.end()) << "the outcome row names its intent row";
    EXPECT_EQ(intent->outcome(), kAuditOutcomeStarted);
    EXPECT_LT(intent->seq(), outcome.seq());
  }
  // A read writes one row, after the call, and none before it.
  const std::size_t listed_before = server_->audit_rows("ListWatchlists").size();
  EXPECT_TRUE(call_method(channel, "/frs.v1.Gallery/ListWatchlists").ok());
  const auto listed = server_->audit_rows("ListWatchlists");
  ASSERT_EQ(listed.size(), listed_before + 1);
  EXPECT_EQ(listed.back().outcome(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, FailClosedTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace frs::testing
