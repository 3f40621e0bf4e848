// PostgreSQL, the system of record of several frs-server nodes (libpq). Every store of a
// node opens its own connection to the one database; each store's schema version is a row
// of frs_schema, and nodes starting together migrate one at a time (an advisory lock).
//
// A lost connection (PostgreSQL restarted, a network cut) is kUnavailable for the statement
// that met it, and the connection is reopened by the next one: a statement outside a
// transaction that changes nothing twice (anything but an INSERT) is retried once at once,
// and so is a transaction's BEGIN, where nothing has happened yet. A write whose commit was
// cut is never retried here: its outcome is unknown, and the caller says so.

#include <libpq-fe.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "dialects.h"
#include "frs/core/error.h"
#include "frs/core/url.h"

namespace frs {
namespace {

// Type OIDs of the parameters we send (pg_type.h), so that PostgreSQL never guesses.
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kByteaOid = 17;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// '?' parameters as PostgreSQL's $1, $2, ...; string literals, quoted names and comments
// are left as they are.
std::string numbered_parameters(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      const std::size_t end = sql.find(c, i + 1);
      const std::size_t stop = end == std::string::npos ? sql.size() : end + 1;
      out.append(sql, i, stop - i);
      i = stop - 1;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const std::size_t end = sql.find('\n', i);
      const std::size_t stop = end == std::string::npos ? sql.size() : end;
      out.append(sql, i, stop - i);
      i = stop - 1;
    } else if (c == '?') {
      out += '$' + std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

// A write lock's advisory lock key: FNV-1a of its name.
std::int64_t lock_key(std::string_view name) {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h);
}

bool starts_with_word(const std::string& sql, std::string_view word) {
  std::size_t i = sql.find_first_not_of(" \t\r\n");
  if (i == std::string::npos || sql.size() - i < word.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (std::toupper(static_cast<unsigned char>(sql[i + k])) != word[k]) return false;
  }
  return true;
}

class PostgresDatabase;

class PostgresStatement final : public StatementImpl {
 public:
  PostgresStatement(PostgresDatabase& db, const std::string& sql)
      : db_(db), sql_(numbered_parameters(sql)) {}

  void bind_integer(int i, std::int64_t v) override { set(i, std::to_string(v), kInt8Oid, 0); }
  void bind_real(int i, double v) override {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", v);
    set(i, text, kFloat8Oid, 0);
  }
  void bind_text(int i, const std::string& v) override {
    // Text parameters travel NUL-terminated: a NUL inside would cut the value short.
    if (v.find('\0') != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument, "text holds a NUL character");
    }
    set(i, v, kTextOid, 0);
  }
  void bind_null(int i) override {
    set(i, "", 0, 0);
    null_[static_cast<std::size_t>(i - 1)] = true;
  }
  void bind_blob(int i, const void* data, std::size_t size) override {
    set(i, std::string(static_cast<const char*>(data), size), kByteaOid, 1);
  }

  bool step() override;

  std::int64_t integer(int c) const override {
    return std::strtoll(PQgetvalue(result_.get(), row_, c), nullptr, 10);
  }
  double real(int c) const override {
    return std::strtod(PQgetvalue(result_.get(), row_, c), nullptr);
  }
  bool is_null(int c) const override { return PQgetisnull(result_.get(), row_, c) != 0; }
  std::string text(int c) const override {
    return std::string(PQgetvalue(result_.get(), row_, c),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, c)));
  }
  std::vector<std::uint8_t> blob(int c) const override {
    if (is_null(c)) return {};
    std::size_t size = 0;
    unsigned char* bytes = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row_, c)), &size);
    if (!bytes) throw Error(ErrorCode::kInternal, "PostgreSQL: out of memory reading a bytea");
    std::vector<std::uint8_t> out(size);
    if (size) std::memcpy(out.data(), bytes, size);
    PQfreemem(bytes);
    return out;
  }

 private:
  void set(int i, std::string value, Oid type, int format) {
    if (i < 1 || i > 65535) throw Error(ErrorCode::kInternal, "SQL parameter out of range");
    const auto at = static_cast<std::size_t>(i - 1);
    if (values_.size() <= at) {
      values_.resize(at + 1);
      types_.resize(at + 1, 0);
      formats_.resize(at + 1, 0);
      null_.resize(at + 1, true);
    }
    values_[at] = std::move(value);
    types_[at] = type;
    formats_[at] = format;
    null_[at] = false;
  }

  PostgresDatabase& db_;
  std::string sql_;
  std::vector<std::string> values_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  std::vector<bool> null_;
  Result result_;
  bool executed_ = false;
  int row_ = -1;
};

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(const std::string& url, const std::string& store, const std::string& what,
                   std::span<const char* const> migrations, OpenMode mode)
      : url_(url), what_(what), read_only_(mode == OpenMode::kReadOnly) {
    connect();
    try {
      if (!read_only_) migrate(store, migrations);
    } catch (...) {
      // The destructor does not run for a constructor that throws.
      PQfinish(conn_);
      throw;
    }
  }
  ~PostgresDatabase() override { PQfinish(conn_); }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }

  void exec(const std::string& sql) override {
    run(sql, 0, nullptr, nullptr, nullptr, nullptr,
        !in_transaction_ && !starts_with_word(sql, "INSERT"));
  }

  int changes() const override { return changes_; }
  std::string storage_problem() const override { return ""; }
  std::vector<std::string> tables() override {
    Statement s(*this,
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "current_schema() ORDER BY table_name");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  // Runs a statement; throws on failure. `retry`: it may be run again on a new connection
  // when the old one turns out dead.
  Result run(const std::string& sql, int n, const Oid* types, const char* const* values,
             const int* lengths, const int* formats, bool retry) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      if (in_transaction_) {
        throw unavailable("the connection was lost during a transaction");
      }
      reconnect();
    }
    for (int attempt = 0;; ++attempt) {
      // PQexec runs a script of several statements (a migration); PQexecParams only one.
      Result r(n == 0 ? PQexec(conn_, sql.c_str())
                      : PQexecParams(conn_, sql.c_str(), n, types, values, lengths, formats, 0));
      const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        const char* rows = PQcmdTuples(r.get());
        changes_ = rows && *rows ? std::atoi(rows) : 0;
        return r;
      }
      if (PQstatus(conn_) != CONNECTION_OK) {
        if (retry && attempt == 0) {
          reconnect();
          continue;
        }
        throw unavailable(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_));
      }
      throw failure(r.get(), sql);
    }
  }

  bool in_transaction() const { return in_transaction_; }

 private:
  std::unique_ptr<StatementImpl> prepare(const std::string& sql) override {
    return std::make_unique<PostgresStatement>(*this, sql);
  }

  void begin(std::string_view write_lock) override {
    run("BEGIN", 0, nullptr, nullptr, nullptr, nullptr, true);
    in_transaction_ = true;
    write_lock_ = write_lock;
    if (!write_lock.empty()) {
      const std::string key = std::to_string(lock_key(write_lock));
      const char* values[] = {key.c_str()};
      const Oid types[] = {kInt8Oid};
      try {
        run("SELECT pg_advisory_xact_lock($1)", 1, types, values, nullptr, nullptr, false);
      } catch (...) {
        rollback();
        throw;
      }
    }
  }

  void commit() override {
    try {
      // Delivered by PostgreSQL at the commit, and only if it commits.
      if (!write_lock_.empty())
        run("NOTIFY " + write_lock_, 0, nullptr, nullptr, nullptr, nullptr, false);
      run("COMMIT", 0, nullptr, nullptr, nullptr, nullptr, false);
    } catch (...) {
      in_transaction_ = false;
      throw;
    }
    in_transaction_ = false;
  }

  void rollback() noexcept override {
    in_transaction_ = false;
    if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
  }

  void connect() {
    // The URL's own settings come after ours, so that it can override them. Without a
    // connect timeout an unreachable server would hold a call for the OS's TCP timeout.
    conn_ = connect_to_postgres(url_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn_);
      PQfinish(conn_);
      conn_ = nullptr;
      throw Error(ErrorCode::kUnavailable, "cannot connect " + what_ + " to PostgreSQL at " +
                                               redact_url(url_) + ": " + trimmed(message));
    }
    configure();
  }

  void configure() {
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    // A node that stops mid-transaction (a hang, a network cut) would otherwise hold the
    // write locks every other node waits for; one stalled mid-statement holding them makes
    // the others fail their call (UNAVAILABLE) after 30 s instead of hanging.
    PQclear(PQexec(conn_,
                   "SET idle_in_transaction_session_timeout = '30s'; SET lock_timeout = '30s'; "
                   "SET TIME ZONE 'UTC'"));
    if (read_only_) PQclear(PQexec(conn_, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"));
  }

  void reconnect() {
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw unavailable(PQerrorMessage(conn_));
    }
    configure();
  }

  void migrate(const std::string& store, std::span<const char* const> migrations) {
    Transaction t(*this, "frs_schema");
    exec("CREATE TABLE IF NOT EXISTS frs_schema (store TEXT PRIMARY KEY, version BIGINT NOT NULL)");
    std::size_t version = 0;
    {
      Statement v(*this, "SELECT version FROM frs_schema WHERE store = ?");
      v.bind(1, store);
      if (v.step()) version = static_cast<std::size_t>(v.integer(0));
    }
    if (version > migrations.size()) {
      throw Error(ErrorCode::kFailedPrecondition,
                  what_ + " in PostgreSQL at " + redact_url(url_) + " has schema version " +
                      std::to_string(version) + ", newer than this frs (" +
                      std::to_string(migrations.size()) + "): upgrade frs on this node");
    }
    for (std::size_t i = version; i < migrations.size(); ++i) exec(migrations[i]);
    if (version < migrations.size()) {
      Statement s(*this,
                  "INSERT INTO frs_schema(store, version) VALUES (?, ?) ON CONFLICT (store) DO "
                  "UPDATE SET version = excluded.version");
      s.bind(1, store).bind(2, static_cast<std::int64_t>(migrations.size())).step();
    }
    t.commit();
  }

  static std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  Error unavailable(const std::string& message) const {
    return Error(ErrorCode::kUnavailable, what_ + ": PostgreSQL at " + redact_url(url_) +
                                              " cannot be reached: " + trimmed(message));
  }

  Error failure(const PGresult* r, const std::string& sql) const {
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const std::string code = state ? state : "";
    const std::string message = trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
    if (code == "23505") return Error(ErrorCode::kAlreadyExists, message);
    // Class 08: connection exceptions; 57P: the server is shutting down or restarting.
    // 55P03: a lock not granted within lock_timeout.
    if (code.starts_with("08") || code.starts_with("57P") || code == "55P03") {
      return unavailable(message);
    }
    // Class 22: data exceptions (text that is not UTF-8, a number out of range).
    if (code.starts_with("22")) return Error(ErrorCode::kInvalidArgument, message);
    return Error(ErrorCode::kInternal, "SQL error in '" + sql + "': " + message);
  }

  std::string url_;
  std::string what_;
  bool read_only_ = false;
  PGconn* conn_ = nullptr;
  bool in_transaction_ = false;
  std::string write_lock_;  // of the transaction in progress
  int changes_ = 0;
};

bool PostgresStatement::step() {
  if (!executed_) {
    std::vector<const char*> values(values_.size());
    std::vector<int> lengths(values_.size());
    for (std::size_t i = 0; i < values_.size(); ++i) {
      values[i] = null_[i] ? nullptr : values_[i].data();
      lengths[i] = static_cast<int>(values_[i].size());
    }
    const bool retry = !db_.in_transaction() && !starts_with_word(sql_, "INSERT");
    result_ = db_.run(sql_, static_cast<int>(values_.size()), types_.data(), values.data(),
                      lengths.data(), formats_.data(), retry);
    executed_ = true;
  }
  ++row_;
  return row_ < PQntuples(result_.get());
}

}  // namespace

PGconn* connect_to_postgres(const std::string& url) {
  // Ours first: parameters after the URL's expansion would override the URL's own.
  const char* keywords[] = {
      "connect_timeout",     "application_name", "keepalives", "keepalives_idle",
      "keepalives_interval", "keepalives_count", "dbname",     nullptr};
  const char* values[] = {"5", "frs-server", "1", "5", "2", "5", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, 1);
  if (!conn) throw Error(ErrorCode::kUnavailable, "PostgreSQL: out of memory connecting");
  // Notices and a server's goodbye ("terminating connection") would go to stderr; what
  // matters reaches the caller as the failed statement's error.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return conn;
}

std::unique_ptr<Database> open_postgres_database(const std::string& url, const std::string& store,
                                                 const std::string& what,
                                                 std::span<const char* const> migrations,
                                                 OpenMode mode) {
  return std::make_unique<PostgresDatabase>(url, store, what, migrations, mode);
}

}  // namespace frs
