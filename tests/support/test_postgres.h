#pragma once
// The PostgreSQL server the tests run against, and store locations on either backend.
//
// Under ctest the fixture PostgresServer.Start has started one (tests/scripts/postgres.sh) and
// FRS_TEST_POSTGRES_STATE names its state file; a test binary run by hand starts its own the
// first time a test asks, and stops it when the process exits. Each test gets a database of
// its own, dropped when the test ends.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "frs/storage/database.h"
#include "testdata.h"

namespace frs::testing {

enum class Backend { kSqlite, kPostgres };

// "Sqlite" / "Postgres", for INSTANTIATE_TEST_SUITE_P's names.
std::string backend_name(const ::testing::TestParamInfo<Backend>& info);

// The server's URL of its maintenance database ("postgresql://frs@127.0.0.1:PORT/postgres").
std::string test_postgres_url();

// A PostgreSQL server of the test's own, for tests that restart or stop it (the shared one
// serves other tests at the same time). Its maintenance database is the test's to use.
class PrivatePostgresServer {
 public:
  PrivatePostgresServer();
  ~PrivatePostgresServer();
  PrivatePostgresServer(const PrivatePostgresServer&) = delete;
  PrivatePostgresServer& operator=(const PrivatePostgresServer&) = delete;
  const std::string& url() const { return url_; }
  void restart();  // stops it (fast) and starts it again on the same port
  void halt();     // stops it at once, as a crash or a cut cable would
  void resume();   // starts it again on the same port

 private:
  std::string state_file_;
  std::string url_;
};

// Runs SQL on the server with psql (as the superuser); returns psql's output. Throws
// std::runtime_error when psql fails.
std::string run_psql(const std::string& database_url, const std::string& sql);

// A new empty database on the test server, dropped (with its connections) at destruction.
class ScopedPostgresDatabase {
 public:
  ScopedPostgresDatabase();
  ~ScopedPostgresDatabase();
  ScopedPostgresDatabase(const ScopedPostgresDatabase&) = delete;
  ScopedPostgresDatabase& operator=(const ScopedPostgresDatabase&) = delete;
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string url_;
};

// Where a test's stores live: files in a temporary folder, or one fresh PostgreSQL database
// for all of them.
class TestStores {
 public:
  explicit TestStores(Backend backend);
  // The location of the store whose SQLite file would be `file_name`.
  StoreLocation at(const std::string& file_name) const;
  Backend backend() const { return backend_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  Backend backend_;
  ScopedTempDir dir_{"stores"};
  std::unique_ptr<ScopedPostgresDatabase> database_;
};

}  // namespace frs::testing
