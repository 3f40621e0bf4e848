// The audit log noticing its own loss: rows removed under a running server, a log begun
// again over stores with history, and `frs audit verify --db` reading without writing.

#include "frs/auth/audit_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "frs/core/error.h"
#include "frs/gallery/store.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs {
namespace {

using testing::Backend;

AuditEntry call_row(const std::string& method = "/frs.v1.Search/Search") {
  AuditEntry e;
  e.time_ms = 1'800'000'000'000;
  e.token = "ana";
  e.method = method;
  return e;
}

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

// The message of the Error(kUnavailable) that `append` throws; "" when it does not.
std::string refusal_of(AuditLog& log) {
  try {
    log.append(call_row());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    return e.what();
  }
  return "";
}

class AuditLossTest : public ::testing::TestWithParam<Backend> {
 protected:
  testing::TestStores stores_{GetParam()};
  StoreLocation where_ = stores_.at("audit.db");
};
INSTANTIATE_TEST_SUITE_P(Backends, AuditLossTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

// Emptied under a writer (PostgreSQL's TRUNCATE, SQLite's DELETE): the next append, and
// every one after it, is refused rather than begin a new chain at row 1.
TEST_P(AuditLossTest, RowsRemovedUnderAWriterAreNoticedAndEveryLaterAppendRefused) {
  auto log = open_audit_log(where_);
  for (int i = 0; i < 3; ++i) log->append(call_row());
  edit_outside_frs(where_,
                   GetParam() == Backend::kPostgres ? "TRUNCATE audit" : "DELETE FROM audit");
  const std::string refused = refusal_of(*log);
  EXPECT_NE(refused.find("it ends at row 0, but this server has seen row 3"), std::string::npos)
      << refused;
  EXPECT_NE(refused.find("restore the audit log from a backup"), std::string::npos) << refused;
  EXPECT_EQ(log->head().seq, 0) << "nothing was appended";
  EXPECT_FALSE(refusal_of(*log).empty()) << "the loss is remembered";
}

// Another writer's rows after ours are how a cluster works; our row changed is not.
TEST_P(AuditLossTest, AnotherWriterGrowingTheLogIsFineAReplacedRowIsNot) {
  auto ours = open_audit_log(where_);
  auto other = open_audit_log(where_);  // another node
  ours->append(call_row());
  other->append(call_row());
  other->append(call_row());
  EXPECT_EQ(ours->append(call_row()).seq, 4);
  edit_outside_frs(where_, "UPDATE audit SET hash = 'x' WHERE seq = 4");
  const std::string refused = refusal_of(*ours);
  EXPECT_NE(refused.find("row 4 is no longer the row this server wrote"), std::string::npos)
      << refused;
}

// Another node's retention purging the row this one last wrote is not a loss.
TEST_P(AuditLossTest, ARowAnotherWriterPurgedIsNotALoss) {
  auto ours = open_audit_log(where_);
  auto other = open_audit_log(where_);
  AuditEntry old_row = call_row();
  old_row.time_ms = 1'000'000'000'000;
  ours->append(old_row);
  other->append(call_row());
  other->append(call_row());
  AuditEntry purge_record;
  purge_record.time_ms = 1'800'000'000'001;
  purge_record.token = "frs-server";
  ASSERT_TRUE(other->purge(1'500'000'000'000, purge_record).has_value());
  EXPECT_EQ(refusal_of(*ours), "");
  EXPECT_TRUE(ours->verify(std::nullopt).intact);
}

TEST(AuditLoss, ASqliteFileTruncatedOrDeletedUnderAWriterIsNoticed) {
  testing::ScopedTempDir dir("audit_file");
  const auto file = dir.path() / "audit.db";
  {
    auto log = open_audit_log(StoreLocation(file));
    log->append(call_row());
    std::filesystem::resize_file(file, 0);  // : > audit.db
    const std::string refused = refusal_of(*log);
    EXPECT_NE(refused.find("'" + file.string() + "' was truncated or overwritten"),
              std::string::npos)
        << refused;
  }
  {
    std::filesystem::remove(file);
    std::filesystem::remove(file.string() + "-wal");
    auto log = open_audit_log(StoreLocation(file));
    log->append(call_row());
    std::filesystem::remove(file);
    const std::string refused = refusal_of(*log);
    EXPECT_NE(refused.find("was deleted or moved"), std::string::npos) << refused;
  }
  {
    auto log = open_audit_log(StoreLocation(file));
    log->append(call_row());
    std::filesystem::rename(file, dir.path() / "old.db");
    { std::ofstream(file) << "not the log"; }
    const std::string refused = refusal_of(*log);
    EXPECT_NE(refused.find("was replaced by another file"), std::string::npos) << refused;
  }
}

// At start: an empty log begins with a row saying so; over stores with history it is a
// lost log, and only --new-audit-log begins a new one, which row 1 then records.
TEST_P(AuditLossTest, AnEmptyLogOverStoresWithHistoryIsRefusedUnlessANewLogIsAskedFor) {
  auto log = open_audit_log(where_);
  try {
    begin_audit_log(*log, "", {{"tokens", 3}, {"watchlists", 0}});
    ADD_FAILURE() << "an empty log over 3 tokens was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("the other stores hold history (3 tokens)"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--new-audit-log"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log->head().seq, 0);
  EXPECT_THROW(begin_audit_log(*log, "  ", {{"tokens", 3}}), Error) << "a blank reason";
  begin_audit_log(*log, "INC-7: disk lost, no backup", {{"tokens", 3}});
  const auto rows = log->list(AuditQuery{});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].method, kAuditNewLogEvent);
  EXPECT_NE(rows[0].details_json.find("INC-7: disk lost, no backup"), std::string::npos);
  // Once: the flag left on for a later start is refused; without it, nothing is added.
  EXPECT_THROW(begin_audit_log(*log, "again", {{"tokens", 3}}), Error);
  begin_audit_log(*log, "", {{"tokens", 3}});
  EXPECT_EQ(log->head().seq, 1);

  const AuditVerification v = log->verify(std::nullopt);
  ASSERT_TRUE(v.new_log_reason.has_value());
  bool recorded = false;
  const std::string gap = audit_history_gap(v, v.begins_ms - 86'400'000, recorded);
  EXPECT_TRUE(recorded);
  EXPECT_NE(gap.find("INC-7"), std::string::npos) << gap;
}

TEST(AuditLoss, AFirstStartBeginsTheLogAndAGapNothingRecordsIsTold) {
  testing::ScopedTempDir dir("audit_first");
  auto log = open_audit_log(StoreLocation(dir.path() / "audit.db"));
  begin_audit_log(*log, "", {{"tokens", 0}, {"watchlists", 0}});
  ASSERT_EQ(log->head().seq, 1);
  AuditVerification v = log->verify(std::nullopt);
  bool recorded = true;
  // History after the log began: covered.
  EXPECT_EQ(audit_history_gap(v, v.begins_ms + 5'000, recorded), "");
  EXPECT_EQ(audit_history_gap(v, 0, recorded), "") << "no history";
  // History a day before the first row, and row 1 says "first start": not explained.
  std::string gap = audit_history_gap(v, v.begins_ms - 86'400'000, recorded);
  EXPECT_FALSE(recorded);
  EXPECT_NE(gap.find("nothing in it says why"), std::string::npos) << gap;
  EXPECT_EQ(audit_history_gap(v, -1, recorded), "") << "the stores not looked at";
  // Retention explains a later start.
  v.purged_through = 10;
  EXPECT_EQ(audit_history_gap(v, v.begins_ms - 86'400'000, recorded), "");
  // An empty log over history.
  AuditVerification empty;
  gap = audit_history_gap(empty, 1'800'000'000'000, recorded);
  EXPECT_NE(gap.find("the log is empty"), std::string::npos) << gap;
}

// frs audit verify --db: a check never writes to what it checks, and says what a file that
// is not an audit log is.
TEST(AuditVerifyOffline, OpensReadOnlyAndNamesWhatIsNotAnAuditLog) {
  testing::ScopedTempDir dir("audit_offline");
  const auto not_a_log = [&](const std::filesystem::path& file) -> std::string {
    try {
      open_audit_log(StoreLocation(file), OpenMode::kReadOnly);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
      return e.what();
    }
    return "";
  };
  const auto empty = dir.path() / "empty.db";
  { std::ofstream touch(empty); }
  EXPECT_NE(not_a_log(empty).find("is not an audit log: it is empty"), std::string::npos)
      << not_a_log(empty);
  EXPECT_EQ(std::filesystem::file_size(empty), 0u) << "nothing was written to it";

  const auto gallery = dir.path() / "gallery.db";
  open_gallery_store(StoreLocation(gallery));
  EXPECT_NE(not_a_log(gallery).find("it is frs's gallery store (gallery.db)"), std::string::npos)
      << not_a_log(gallery);

  const auto text = dir.path() / "notes.txt";
  { std::ofstream(text) << std::string(4096, 'x'); }
  EXPECT_NE(not_a_log(text).find("'" + text.string() + "': it is not a SQLite database"),
            std::string::npos)
      << not_a_log(text);

  const auto missing = dir.path() / "missing.db";
  EXPECT_NE(not_a_log(missing).find("cannot open the audit log"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(missing)) << "a check never creates a log";

  // A real log reads, and verifying it changes not one byte.
  const auto file = dir.path() / "audit.db";
  {
    auto log = open_audit_log(StoreLocation(file));
    log->append(call_row());
    log->append(call_row());
  }
  const auto size = std::filesystem::file_size(file);
  const auto time = std::filesystem::last_write_time(file);
  const AuditVerification v =
      open_audit_log(StoreLocation(file), OpenMode::kReadOnly)->verify(std::nullopt);
  EXPECT_TRUE(v.intact);
  EXPECT_EQ(v.rows_checked, 2);
  EXPECT_EQ(std::filesystem::file_size(file), size);
  EXPECT_EQ(std::filesystem::last_write_time(file), time);
}

}  // namespace
}  // namespace frs
