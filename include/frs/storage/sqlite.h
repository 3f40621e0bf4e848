#pragma once
// The SQLite plumbing every frs store shares: a database opened durable (WAL journal,
// synchronous=FULL: a write acknowledged is on disk), migrated forward by a list of schema
// steps, prepared statements that turn SQLite errors into frs::Error, and transactions
// that roll back unless committed. Callers serialise access themselves (one mutex per
// store).

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace frs {

class SqliteDatabase {
 public:
  // Opens (creating if needed) `file` and applies the migrations it lacks: entry i takes
  // the schema from version i to i + 1 (PRAGMA user_version). `what` names the store in
  // errors ("the gallery store"). Throws kFailedPrecondition when the file cannot be opened
  // or has a newer schema than this frs knows.
  SqliteDatabase(const std::filesystem::path& file, const std::string& what,
                 std::span<const char* const> migrations);
  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  void exec(const std::string& sql);
  std::int64_t last_insert_rowid() const;
  int changes() const;  // rows changed by the last statement
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(SqliteDatabase& db, const std::string& sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, double v);
  Statement& bind(int i, const std::string& v);
  Statement& bind_null(int i);
  Statement& bind_blob(int i, const void* data, std::size_t size);
  // True while there is a row. A UNIQUE or PRIMARY KEY violation is kAlreadyExists, any
  // other failure kInternal.
  bool step();
  std::int64_t integer(int c) const;
  double real(int c) const;
  bool is_null(int c) const;
  std::string text(int c) const;
  std::vector<std::uint8_t> blob(int c) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() ran.
class Transaction {
 public:
  explicit Transaction(SqliteDatabase& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  SqliteDatabase& db_;
  bool committed_ = false;
};

}  // namespace frs
