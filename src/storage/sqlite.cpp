#include "frs/storage/sqlite.h"

#include <sqlite3.h>

#include <cstring>

#include "frs/core/error.h"

namespace frs {

SqliteDatabase::SqliteDatabase(const std::filesystem::path& file, const std::string& what,
                               std::span<const char* const> migrations) {
  if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error(ErrorCode::kFailedPrecondition,
                "cannot open " + what + " '" + file.string() + "': " + message);
  }
  try {
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    // Off while migrating: a migration that rebuilds a table drops the old one, and with
    // foreign keys on that drop would cascade into the rows that refer to it.
    exec("PRAGMA foreign_keys=OFF");
    std::size_t version = 0;
    {  // finalised before migrating: a pending statement would keep a DROP TABLE out
      Statement v(*this, "PRAGMA user_version");
      v.step();
      version = static_cast<std::size_t>(v.integer(0));
    }
    if (version > migrations.size()) {
      throw Error(ErrorCode::kFailedPrecondition,
                  what + " '" + file.string() + "' has schema version " + std::to_string(version) +
                      ", newer than this frs (" + std::to_string(migrations.size()) +
                      "): upgrade frs");
    }
    for (std::size_t i = version; i < migrations.size(); ++i) {
      Transaction t(*this);
      exec(migrations[i]);
      exec("PRAGMA user_version = " + std::to_string(i + 1));
      t.commit();
    }
    exec("PRAGMA foreign_keys=ON");
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    sqlite3_close(db_);
    throw;
  }
}

SqliteDatabase::~SqliteDatabase() {
  sqlite3_close(db_);
}

void SqliteDatabase::exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : "unknown";
    sqlite3_free(message);
    throw Error(ErrorCode::kInternal, "SQL error in '" + sql + "': " + text);
  }
}

std::int64_t SqliteDatabase::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

int SqliteDatabase::changes() const {
  return sqlite3_changes(db_);
}

Statement::Statement(SqliteDatabase& db, const std::string& sql) : db_(db.handle()) {
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
    throw Error(ErrorCode::kInternal, std::string("SQL error: ") + sqlite3_errmsg(db_));
  }
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Statement& Statement::bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}

Statement& Statement::bind(int i, const std::string& v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Statement& Statement::bind_blob(int i, const void* data, std::size_t size) {
  if (size == 0) {
    // An empty vector's data() may be null, which SQLite binds as NULL, not as an empty
    // blob: an alert whose face crop came out empty failed its NOT NULL column and was lost.
    sqlite3_bind_zeroblob(stmt_, i, 0);
  } else {
    sqlite3_bind_blob(stmt_, i, data, static_cast<int>(size), SQLITE_TRANSIENT);
  }
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const int extended = sqlite3_extended_errcode(db_);
  const std::string message = sqlite3_errmsg(db_);
  if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
    throw Error(ErrorCode::kAlreadyExists, message);
  }
  throw Error(ErrorCode::kInternal, "SQL error: " + message);
}

std::int64_t Statement::integer(int c) const {
  return sqlite3_column_int64(stmt_, c);
}

double Statement::real(int c) const {
  return sqlite3_column_double(stmt_, c);
}

bool Statement::is_null(int c) const {
  return sqlite3_column_type(stmt_, c) == SQLITE_NULL;
}

std::string Statement::text(int c) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : "";
}

std::vector<std::uint8_t> Statement::blob(int c) const {
  const void* p = sqlite3_column_blob(stmt_, c);
  // memcpy, not the iterator constructor: GCC 12 misreads that as freeing SQLite's buffer.
  std::vector<std::uint8_t> out(p ? static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)) : 0);
  if (!out.empty()) std::memcpy(out.data(), p, out.size());
  return out;
}

Transaction::Transaction(SqliteDatabase& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!committed_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  committed_ = true;
}

}  // namespace frs
