// The embedded default: a SQLite file opened durable (WAL journal, synchronous=FULL: a
// write acknowledged is on disk), its schema version in PRAGMA user_version. BEGIN
// IMMEDIATE takes the file's one write lock, so a transaction's write lock name adds
// nothing here.

#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "dialects.h"
#include "frs/core/error.h"

namespace frs {
namespace {

class SqliteStatement final : public StatementImpl {
 public:
  SqliteStatement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      throw Error(ErrorCode::kInternal, std::string("SQL error: ") + sqlite3_errmsg(db_));
    }
  }
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  void bind_integer(int i, std::int64_t v) override { sqlite3_bind_int64(stmt_, i, v); }
  void bind_real(int i, double v) override { sqlite3_bind_double(stmt_, i, v); }
  void bind_text(int i, const std::string& v) override {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_null(int i) override { sqlite3_bind_null(stmt_, i); }
  void bind_blob(int i, const void* data, std::size_t size) override {
    if (size == 0) {
      // An empty vector's data() may be null, which SQLite binds as NULL, not as an empty
      // blob: an alert whose face crop came out empty failed its NOT NULL column and was lost.
      sqlite3_bind_zeroblob(stmt_, i, 0);
    } else {
      sqlite3_bind_blob(stmt_, i, data, static_cast<int>(size), SQLITE_TRANSIENT);
    }
  }

  bool step() override {
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

  std::int64_t integer(int c) const override { return sqlite3_column_int64(stmt_, c); }
  double real(int c) const override { return sqlite3_column_double(stmt_, c); }
  bool is_null(int c) const override { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string text(int c) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : "";
  }
  std::vector<std::uint8_t> blob(int c) const override {
    const void* p = sqlite3_column_blob(stmt_, c);
    // memcpy, not the iterator constructor: GCC 12 misreads that as freeing SQLite's buffer.
    std::vector<std::uint8_t> out(p ? static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)) : 0);
    if (!out.empty()) std::memcpy(out.data(), p, out.size());
    return out;
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(const std::filesystem::path& file, const std::string& what,
                 std::span<const char* const> migrations, OpenMode mode)
      : file_(file) {
    const int flags = mode == OpenMode::kReadOnly ? SQLITE_OPEN_READONLY
                                                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Error(ErrorCode::kFailedPrecondition,
                  "cannot open " + what + " '" + file.string() + "': " + message);
    }
    try {
      sqlite3_busy_timeout(db_, 5000);
      if (mode == OpenMode::kReadOnly) {
        exec("SELECT COUNT(*) FROM sqlite_master");  // reads the header: "not a database"
        remember_file();
        return;
      }
      // Switching a new file to WAL takes an exclusive lock that the busy timeout does not
      // wait for: another process (or store object) opening the file at the same moment
      // gets SQLITE_BUSY at once, so it waits here instead (up to 5 s).
      for (int attempt = 0;; ++attempt) {
        const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
        if (rc == SQLITE_OK) break;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt == 100) {
          exec("PRAGMA journal_mode=WAL");  // throws with SQLite's message
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      exec("PRAGMA synchronous=FULL");
      // Off while migrating: a migration that rebuilds a table drops the old one, and with
      // foreign keys on that drop would cascade into the rows that refer to it.
      exec("PRAGMA foreign_keys=OFF");
      // One opener at a time reads the version and migrates (several processes, or several
      // store objects, may open one new file at once).
      Transaction t(*this);
      std::size_t version = 0;
      {  // finalised before migrating: a pending statement would keep a DROP TABLE out
        Statement v(*this, "PRAGMA user_version");
        v.step();
        version = static_cast<std::size_t>(v.integer(0));
      }
      if (version > migrations.size()) {
        throw Error(ErrorCode::kFailedPrecondition,
                    what + " '" + file.string() + "' has schema version " +
                        std::to_string(version) + ", newer than this frs (" +
                        std::to_string(migrations.size()) + "): upgrade frs");
      }
      for (std::size_t i = version; i < migrations.size(); ++i) {
        exec(migrations[i]);
        exec("PRAGMA user_version = " + std::to_string(i + 1));
      }
      t.commit();
      exec("PRAGMA foreign_keys=ON");
      remember_file();
    } catch (const std::exception& e) {
      // The destructor does not run for a constructor that throws.
      sqlite3_close(db_);
      const auto* error = dynamic_cast<const Error*>(&e);
      std::string message = e.what();
      if (message.find(file.string()) != std::string::npos) throw;
      ErrorCode code = error ? error->code() : ErrorCode::kFailedPrecondition;
      if (message.find("file is not a database") != std::string::npos) {
        code = ErrorCode::kFailedPrecondition;
        message =
            "it is not a SQLite database (damaged, truncated or replaced): restore it from a "
            "backup, or move it away to start that store empty";
      }
      throw Error(code, "cannot open " + what + " '" + file.string() + "': " + message);
    }
  }
  ~SqliteDatabase() override { sqlite3_close(db_); }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

  void exec(const std::string& sql) override {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      const std::string text = message ? message : "unknown";
      sqlite3_free(message);
      throw Error(ErrorCode::kInternal, "SQL error in '" + sql + "': " + text);
    }
  }

  int changes() const override { return sqlite3_changes(db_); }

  std::string storage_problem() const override {
    if (!file_id_) return "";
    const std::string name = "the file '" + file_.string() + "'";
    struct stat now {};
    if (::stat(file_.c_str(), &now) != 0) return name + " was deleted or moved";
    if (now.st_dev != file_id_->first || now.st_ino != file_id_->second) {
      return name + " was replaced by another file";
    }
    if (!has_sqlite_header()) return name + " was truncated or overwritten";
    return "";
  }

  std::vector<std::string> tables() override {
    Statement s(*this, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

 private:
  std::unique_ptr<StatementImpl> prepare(const std::string& sql) override {
    return std::make_unique<SqliteStatement>(db_, sql);
  }
  void begin(std::string_view) override { exec("BEGIN IMMEDIATE"); }
  void commit() override {
    // A statement still open (an INSERT ... RETURNING whose row was read) would refuse the
    // COMMIT; its work is done by its first step, so resetting it loses nothing.
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s; s = sqlite3_next_stmt(db_, s)) {
      if (sqlite3_stmt_busy(s)) sqlite3_reset(s);
    }
    exec("COMMIT");
  }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

  // Which file was opened (device, inode), so that storage_problem() notices another in its
  // place. None for a file without a header yet (a read-only look at an empty file).
  void remember_file() {
    struct stat opened {};
    if (::stat(file_.c_str(), &opened) == 0 && has_sqlite_header()) {
      file_id_.emplace(opened.st_dev, opened.st_ino);
    }
  }

  // Through SQLite's own handle of the file: opening and closing another descriptor of it
  // would drop every POSIX lock this process holds on it (SQLite's locking with them).
  bool has_sqlite_header() const {
    static constexpr char kHeader[16] = "SQLite format 3";  // with its NUL: 16 bytes
    sqlite3_file* file = nullptr;
    if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
        file == nullptr || file->pMethods == nullptr) {
      return false;
    }
    char read[16] = {};
    return file->pMethods->xRead(file, read, sizeof read, 0) == SQLITE_OK &&
           std::memcmp(read, kHeader, sizeof read) == 0;
  }

  std::filesystem::path file_;
  std::optional<std::pair<dev_t, ino_t>> file_id_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<Database> open_sqlite_database(const std::filesystem::path& file,
                                               const std::string& what,
                                               std::span<const char* const> migrations,
                                               OpenMode mode) {
  return std::make_unique<SqliteDatabase>(file, what, migrations, mode);
}

}  // namespace frs
