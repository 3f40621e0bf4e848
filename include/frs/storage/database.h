#pragma once
// The SQL plumbing every frs store shares, over two databases: SQLite (the embedded
// default, one file per store in the data dir) and PostgreSQL (one database that several
// frs-server nodes share). Each store is written once against this interface, so its rules
// (review outcomes, the audit chain, id order) cannot differ between the two; only its
// schema is written per dialect.
//
// Statements use '?' parameters in both dialects. Writes that must be ordered across
// writers (alert ids, the audit chain, the gallery's change log) take a named write lock in
// their transaction (Transaction's `write_lock`): held until commit, so what is numbered
// under it is committed in number order, whichever node wrote it. On PostgreSQL such a
// transaction also announces its commit on the channel of the lock's name (NOTIFY), which
// every node's ChangeListener hears.
//
// A store serialises its own use of one Database (one mutex per store).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace frs {

enum class SqlDialect { kSqlite, kPostgres };

// Where a store keeps its data: a SQLite file of its own, or the PostgreSQL database every
// store of a cluster shares. A path converts to a SQLite location.
struct StoreLocation {
  StoreLocation() = default;
  StoreLocation(const std::filesystem::path& file) : sqlite_file(file) {}  // NOLINT: implicit
  static StoreLocation postgres(std::string url) {
    StoreLocation out;
    out.postgres_url = std::move(url);
    return out;
  }
  // A PostgreSQL URL, or else a SQLite file's path.
  static StoreLocation parse(const std::string& url_or_file);
  bool is_postgres() const { return !postgres_url.empty(); }
  std::filesystem::path sqlite_file;  // used when postgres_url is empty
  std::string postgres_url;           // "postgresql://user@host:port/database"; "" = SQLite
};

// Whether `text` names a PostgreSQL database ("postgres://..." or "postgresql://...").
bool is_postgres_url(std::string_view text);

// A store's schema steps for each dialect: entry i takes the schema from version i to
// i + 1. Each dialect counts its own versions (PostgreSQL's history starts later).
struct Migrations {
  std::span<const char* const> sqlite;
  std::span<const char* const> postgres;
};

// How a store's database is opened: for use (created and migrated as needed), or only to
// read what is there (a copy being checked: nothing is created, migrated or written).
enum class OpenMode { kReadWrite, kReadOnly };

class StatementImpl;

class Database {
 public:
  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual SqlDialect dialect() const = 0;
  // Runs SQL without parameters (several statements allowed).
  virtual void exec(const std::string& sql) = 0;
  virtual int changes() const = 0;  // rows changed by the last statement
  // "" while the store's storage is the one opened; else what happened to it, in a
  // sentence ("the file '...' was deleted or moved"). SQLite: the file is still at its path,
  // the same file, and still starts with a SQLite header (a truncation under an open
  // connection is otherwise unseen until its pages are next read from disk). PostgreSQL: "".
  virtual std::string storage_problem() const = 0;
  // The names of the tables the database holds, sorted.
  virtual std::vector<std::string> tables() = 0;

 protected:
  Database() = default;

 private:
  friend class Statement;
  friend class Transaction;
  virtual std::unique_ptr<StatementImpl> prepare(const std::string& sql) = 0;
  // `write_lock`: "" or a name of letters, digits and '_'; a transaction holding a name
  // waits for any other holding it (on any node) to end, and announces its commit on the
  // channel of that name.
  virtual void begin(std::string_view write_lock) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
};

// Opens the store's database and applies the migrations it lacks (kReadOnly: none, and
// its version is not checked: the caller checks that what it reads is there). `store` names the
// store's schema ("gallery", "alerts": PostgreSQL keeps one version per store); `what` names it in
// errors ("the gallery store"). Throws kFailedPrecondition when it cannot be opened or has a
// newer schema than this frs knows, kUnavailable when PostgreSQL cannot be reached.
std::unique_ptr<Database> open_database(const StoreLocation& where, const std::string& store,
                                        const std::string& what, const Migrations& migrations,
                                        OpenMode mode = OpenMode::kReadWrite);

class Statement {
 public:
  Statement(Database& db, const std::string& sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, double v);
  Statement& bind(int i, const std::string& v);
  Statement& bind_null(int i);
  Statement& bind_blob(int i, const void* data, std::size_t size);
  // True while there is a row. A UNIQUE or PRIMARY KEY violation is kAlreadyExists, a lost
  // database connection kUnavailable, any other failure kInternal.
  bool step();
  std::int64_t integer(int c) const;
  double real(int c) const;
  bool is_null(int c) const;
  std::string text(int c) const;
  std::vector<std::uint8_t> blob(int c) const;

 private:
  std::unique_ptr<StatementImpl> impl_;
};

// BEGIN on construction (SQLite: BEGIN IMMEDIATE); ROLLBACK on destruction unless commit()
// ran. `write_lock`: see Database::begin.
class Transaction {
 public:
  explicit Transaction(Database& db, std::string_view write_lock = "");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool committed_ = false;
};

// What a dialect implements behind Statement.
class StatementImpl {
 public:
  virtual ~StatementImpl() = default;
  virtual void bind_integer(int i, std::int64_t v) = 0;
  virtual void bind_real(int i, double v) = 0;
  virtual void bind_text(int i, const std::string& v) = 0;
  virtual void bind_null(int i) = 0;
  virtual void bind_blob(int i, const void* data, std::size_t size) = 0;
  virtual bool step() = 0;
  virtual std::int64_t integer(int c) const = 0;
  virtual double real(int c) const = 0;
  virtual bool is_null(int c) const = 0;
  virtual std::string text(int c) const = 0;
  virtual std::vector<std::uint8_t> blob(int c) const = 0;
};

// Hears the commits other nodes (and this one) announce on `channels` (PostgreSQL
// LISTEN/NOTIFY) and calls `on_change(channel)` for each, on a thread of its own. It also
// calls it for every channel when it (re)connects and every `resync` in any case, so that
// a notification missed (PostgreSQL restarted, a network cut) costs at most that long; the
// callback reads what changed from the store, after the last change it applied. For a
// SQLite location it does nothing: one node, nothing to hear. Exceptions from the callback
// are its own to report; they do not stop the listener.
class ChangeListener {
 public:
  ChangeListener(const StoreLocation& where, std::vector<std::string> channels,
                 std::function<void(const std::string& channel)> on_change,
                 std::chrono::milliseconds resync = std::chrono::seconds(5));
  ~ChangeListener();  // stops and joins the thread
  ChangeListener(const ChangeListener&) = delete;
  ChangeListener& operator=(const ChangeListener&) = delete;
  bool connected() const { return connected_; }

 private:
  void run();

  std::string url_;
  std::vector<std::string> channels_;
  std::function<void(const std::string&)> on_change_;
  std::chrono::milliseconds resync_;
  int wake_fd_ = -1;  // eventfd: stop
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace frs
