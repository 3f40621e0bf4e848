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
// under it is committed in number order, whichever node wrote it.
//
// A store serialises its own use of one Database (one mutex per store).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
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

 protected:
  Database() = default;

 private:
  friend class Statement;
  friend class Transaction;
  virtual std::unique_ptr<StatementImpl> prepare(const std::string& sql) = 0;
  // `write_lock`: "" or a name; a transaction holding a name waits for any other holding
  // it (on any node) to end.
  virtual void begin(std::string_view write_lock) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
};

// Opens the store's database and applies the migrations it lacks. `store` names the store's
// schema ("gallery", "alerts": PostgreSQL keeps one version per store); `what` names it in
// errors ("the gallery store"). Throws kFailedPrecondition when it cannot be opened or has a
// newer schema than this frs knows, kUnavailable when PostgreSQL cannot be reached.
std::unique_ptr<Database> open_database(const StoreLocation& where, const std::string& store,
                                        const std::string& what, const Migrations& migrations);

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

}  // namespace frs
