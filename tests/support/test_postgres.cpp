#include "test_postgres.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace frs::testing {
namespace {

// Runs a command; returns its stdout, throws with it when it fails.
std::string run(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run: " + command);
  std::string out;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (status != 0) throw std::runtime_error("'" + command + "' failed: " + out);
  return out;
}

std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct Server {
  std::string state_file;
  bool own = false;  // started by this process: stopped at exit
  std::string url;
};

Server& server() {
  static Server s;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* shared = std::getenv("FRS_TEST_POSTGRES_STATE");
    if (shared && *shared && std::filesystem::exists(shared)) {
      s.state_file = shared;
    } else {
      s.state_file = "/tmp/frs-test-postgres-" + std::to_string(::getpid()) + ".state";
      run("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " start " + shell_quoted(s.state_file));
      s.own = true;
      std::atexit([] {
        std::system(("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " stop " +
                     shell_quoted(server().state_file) + " >/dev/null 2>&1")
                        .c_str());
      });
    }
    std::ifstream in(s.state_file);
    std::string dir;
    in >> dir >> s.url;
    if (s.url.empty()) throw std::runtime_error("no URL in " + s.state_file);
  });
  return s;
}

// The URL of another database on the same server.
std::string with_database(const std::string& url, const std::string& database) {
  return url.substr(0, url.rfind('/') + 1) + database;
}

}  // namespace

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

std::string test_postgres_url() {
  return server().url;
}

PrivatePostgresServer::PrivatePostgresServer() {
  static std::atomic<int> counter{0};
  state_file_ = "/tmp/frs-test-postgres-" + std::to_string(::getpid()) + "-private-" +
                std::to_string(counter++) + ".state";
  run("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " start " + shell_quoted(state_file_));
  std::ifstream in(state_file_);
  std::string dir;
  in >> dir >> url_;
  if (url_.empty()) throw std::runtime_error("no URL in " + state_file_);
}

PrivatePostgresServer::~PrivatePostgresServer() {
  std::system(("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " stop " + shell_quoted(state_file_) +
               " >/dev/null 2>&1")
                  .c_str());
}

void PrivatePostgresServer::restart() {
  run("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " restart " + shell_quoted(state_file_));
}

void PrivatePostgresServer::halt() {
  run("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " halt " + shell_quoted(state_file_));
}

void PrivatePostgresServer::resume() {
  run("bash " + shell_quoted(FRS_POSTGRES_SCRIPT) + " resume " + shell_quoted(state_file_));
}

std::string run_psql(const std::string& database_url, const std::string& sql) {
  return run("psql -X -q -t -A -v ON_ERROR_STOP=1 " + shell_quoted(database_url) + " -c " +
             shell_quoted(sql));
}

ScopedPostgresDatabase::ScopedPostgresDatabase() {
  static std::atomic<int> counter{0};
  name_ = "frs_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  run_psql(test_postgres_url(), "CREATE DATABASE " + name_);
  url_ = with_database(test_postgres_url(), name_);
}

ScopedPostgresDatabase::~ScopedPostgresDatabase() {
  try {
    run_psql(test_postgres_url(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // The server is stopped at the end in any case.
  }
}

TestStores::TestStores(Backend backend) : backend_(backend) {
  if (backend_ == Backend::kPostgres) database_ = std::make_unique<ScopedPostgresDatabase>();
}

StoreLocation TestStores::at(const std::string& file_name) const {
  if (database_) return StoreLocation::postgres(database_->url());
  return StoreLocation(dir_ / file_name);
}

}  // namespace frs::testing
