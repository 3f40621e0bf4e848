#include "frs/auth/tokens.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>

#include "frs/core/clock.h"
#include "frs/core/digest.h"
#include "frs/core/error.h"
#include "frs/core/text.h"
#include "frs/storage/database.h"

namespace frs {
namespace {

const char* const kTokenSqliteMigrations[] = {
    R"sql(
CREATE TABLE tokens (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
  name           TEXT NOT NULL,
  role           TEXT NOT NULL,
  secret_sha256  TEXT NOT NULL UNIQUE,   -- the secret itself is never stored
  created_by     TEXT NOT NULL,
  created_at_ms  INTEGER NOT NULL,
  expires_at_ms  INTEGER NOT NULL DEFAULT 0,  -- 0 = never
  revoked_at_ms  INTEGER NOT NULL DEFAULT 0,  -- 0 = not revoked
  revoked_by     TEXT NOT NULL DEFAULT ''
);
-- One token of a name at a time; a revoked name may be given to a new token.
CREATE UNIQUE INDEX tokens_active_name ON tokens(name) WHERE revoked_at_ms = 0;
)sql",
};

const char* const kTokenPostgresMigrations[] = {
    R"sql(
CREATE TABLE tokens (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           TEXT NOT NULL,
  role           TEXT NOT NULL,
  secret_sha256  TEXT NOT NULL UNIQUE,
  created_by     TEXT NOT NULL,
  created_at_ms  BIGINT NOT NULL,
  expires_at_ms  BIGINT NOT NULL DEFAULT 0,
  revoked_at_ms  BIGINT NOT NULL DEFAULT 0,
  revoked_by     TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX tokens_active_name ON tokens(name) WHERE revoked_at_ms = 0;
)sql",
};

// Held while tokens are created: the start-up admin token (nodes starting together) and
// CreateToken (two nodes must not both find a name free).
constexpr const char* kAdminLock = "frs_tokens";

constexpr const char* kTokenColumns =
    "id, name, role, created_by, created_at_ms, expires_at_ms, revoked_at_ms, revoked_by";

TokenRecord read_token(const Statement& s) {
  TokenRecord t;
  t.id = s.integer(0);
  t.name = s.text(1);
  const auto role = parse_role(s.text(2));
  if (!role) {
    throw Error(ErrorCode::kInternal, "token store: token " + std::to_string(t.id) +
                                          " has an unknown role " + quote_for_message(s.text(2)));
  }
  t.role = *role;
  t.created_by = s.text(3);
  t.created_at_ms = s.integer(4);
  t.expires_at_ms = s.integer(5);
  t.revoked_at_ms = s.integer(6);
  t.revoked_by = s.text(7);
  return t;
}

class SqlTokenStore final : public TokenStore {
 public:
  explicit SqlTokenStore(const StoreLocation& where)
      : db_(open_database(where, "tokens", "the token store",
                          {kTokenSqliteMigrations, kTokenPostgresMigrations})) {}

  TokenRecord create(const TokenRecord& token, const std::string& secret_hash) override {
    check_token_name(token.name);
    std::lock_guard lock(mutex_);
    // Under the token write lock: two nodes must not both find a name free.
    Transaction tx(*db_, kAdminLock);
    {
      // Names are people: "ana" and "ANA" would be two reviewers of one alert. Names are
      // ASCII (check_token_name), so lower() folds every letter on both stores.
      Statement taken(*db_,
                      "SELECT name FROM tokens WHERE lower(name) = lower(?) AND revoked_at_ms = 0");
      taken.bind(1, token.name);
      if (taken.step()) {
        const std::string existing = taken.text(0);
        throw Error(ErrorCode::kAlreadyExists,
                    "a token named '" + existing + "' exists" +
                        (existing == token.name ? "" : " (names differ by more than case)") +
                        ": revoke it first (frs token revoke " + existing +
                        ") or choose another name");
      }
    }
    Statement s(*db_,
                "INSERT INTO tokens(name, role, secret_sha256, created_by, created_at_ms, "
                "expires_at_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING id");
    s.bind(1, token.name)
        .bind(2, std::string(to_string(token.role)))
        .bind(3, secret_hash)
        .bind(4, token.created_by)
        .bind(5, token.created_at_ms)
        .bind(6, token.expires_at_ms);
    s.step();
    TokenRecord stored = token;
    stored.id = s.integer(0);
    stored.revoked_at_ms = 0;
    stored.revoked_by.clear();
    tx.commit();
    return stored;
  }

  std::optional<TokenRecord> find_by_secret_hash(const std::string& secret_hash) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_,
                std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE secret_sha256 = ?");
    s.bind(1, secret_hash);
    if (!s.step()) return std::nullopt;
    return read_token(s);
  }

  std::vector<TokenRecord> list(bool include_revoked) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, std::string("SELECT ") + kTokenColumns + " FROM tokens" +
                          (include_revoked ? "" : " WHERE revoked_at_ms = 0") + " ORDER BY id");
    std::vector<TokenRecord> out;
    while (s.step()) out.push_back(read_token(s));
    return out;
  }

  TokenRecord revoke(const std::string& name, const std::string& revoked_by,
                     std::int64_t at_ms) override {
    std::lock_guard lock(mutex_);
    Transaction tx(*db_);
    Statement find(*db_, std::string("SELECT ") + kTokenColumns +
                             " FROM tokens WHERE name = ? AND revoked_at_ms = 0");
    find.bind(1, name);
    if (!find.step()) {
      throw Error(ErrorCode::kNotFound,
                  "no token named " + quote_for_message(name) + " (frs token list shows them)");
    }
    TokenRecord t = read_token(find);
    // Not revoked meanwhile by another node: the first revocation is the one recorded.
    Statement s(*db_,
                "UPDATE tokens SET revoked_at_ms = ?, revoked_by = ? WHERE id = ? AND "
                "revoked_at_ms = 0");
    s.bind(1, at_ms).bind(2, revoked_by).bind(3, t.id);
    s.step();
    if (db_->changes() == 0) {
      throw Error(ErrorCode::kNotFound,
                  "token " + quote_for_message(name) + " was revoked meanwhile");
    }
    tx.commit();
    t.revoked_at_ms = at_ms;
    t.revoked_by = revoked_by;
    return t;
  }

  bool put_admin(const TokenRecord& admin, const std::string& secret_hash,
                 bool only_if_empty) override {
    std::lock_guard lock(mutex_);
    Transaction tx(*db_, kAdminLock);
    if (only_if_empty) {
      Statement any(*db_, "SELECT 1 FROM tokens LIMIT 1");
      if (any.step()) return false;
    } else {
      Statement known(
          *db_, std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE secret_sha256 = ?");
      known.bind(1, secret_hash);
      if (known.step()) {
        const TokenRecord t = read_token(known);
        if (t.active(admin.created_at_ms) && t.role == Role::kAdmin) return false;
        throw Error(ErrorCode::kFailedPrecondition,
                    "that secret is token '" + t.name +
                        "', which is revoked, expired or not an admin: put a new secret in the "
                        "file (e.g. openssl rand -base64 32)");
      }
      Statement revoke(*db_,
                       "UPDATE tokens SET revoked_at_ms = ?, revoked_by = ? WHERE name = ? AND "
                       "revoked_at_ms = 0");
      revoke.bind(1, admin.created_at_ms).bind(2, "frs-server --admin-token-file");
      revoke.bind(3, admin.name).step();
    }
    Statement s(*db_,
                "INSERT INTO tokens(name, role, secret_sha256, created_by, created_at_ms, "
                "expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)");
    s.bind(1, admin.name).bind(2, std::string(to_string(admin.role))).bind(3, secret_hash);
    s.bind(4, admin.created_by).bind(5, admin.created_at_ms).bind(6, admin.expires_at_ms).step();
    tx.commit();
    return true;
  }

  std::int64_t count_all() override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, "SELECT COUNT(*) FROM tokens");
    s.step();
    return s.integer(0);
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<Database> db_;
};

// Writes `text` to `file` with mode 0600, atomically (a reader sees the old or the new).
void write_private_file(const std::filesystem::path& file, const std::string& text) {
  const std::filesystem::path temporary = file.string() + ".new";
  ::unlink(temporary.c_str());
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    throw Error(ErrorCode::kFailedPrecondition,
                "cannot write " + file.string() + ": " + std::strerror(errno));
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), file.c_str()) != 0) {
    ::unlink(temporary.c_str());
    throw Error(ErrorCode::kFailedPrecondition,
                "cannot write " + file.string() + ": " + std::strerror(errno));
  }
}

}  // namespace

void check_token_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxTokenNameChars) {
    throw Error(ErrorCode::kInvalidArgument,
                "a token name needs 1.." + std::to_string(kMaxTokenNameChars) +
                    " characters (a person or a system, e.g. dispatch-console-3)");
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) {
      throw Error(ErrorCode::kInvalidArgument,
                  "token name " + quote_for_message(name) +
                      " may only hold letters, digits and . _ @ - (e.g. jane.doe@agency)");
    }
  }
}

std::string new_token_secret() {
  return "frs_" + base64url(random_bytes(32));
}

std::string token_secret_hash(std::string_view secret) {
  return sha256_hex(secret);
}

void check_token_secret(std::string_view secret, std::string_view where) {
  bool printable = true;
  for (const char c : secret) printable = printable && c > ' ' && c < 127;
  if (secret.size() < 32 || secret.size() > 512 || !printable) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(where) +
                    " does not hold a token: a token is 32..512 printable ASCII characters "
                    "without spaces (frs-server makes them: frs token create)");
  }
}

std::string token_file_exposure(const std::filesystem::path& file) {
  std::error_code error;
  const std::filesystem::perms granted = std::filesystem::status(file, error).permissions();
  if (error) return "";
  using std::filesystem::perms;
  if ((granted & (perms::group_all | perms::others_all)) == perms::none) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(granted) & 0777u);
  return "the token file " + file.string() + " may be read or written by others than its owner " +
         "(mode " + mode + "): whoever reads it is admin; chmod 600 it";
}

std::string read_token_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot read the token file " + file.string() + ": " + std::strerror(errno));
  }
  std::string text;
  text.resize(1024);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  text = first == std::string::npos ? "" : text.substr(first, last - first + 1);
  check_token_secret(text, "the token file " + file.string());
  return text;
}

std::string ensure_admin_token(TokenStore& store, const std::filesystem::path& admin_token_file,
                               const std::filesystem::path& new_token_file) {
  const std::int64_t now = now_unix_ms();
  TokenRecord admin;
  admin.name = "admin";
  admin.role = Role::kAdmin;
  admin.created_by = kServerTokenCreator;
  admin.created_at_ms = now;
  if (!admin_token_file.empty()) {
    const std::string secret = read_token_file(admin_token_file);
    try {
      if (!store.put_admin(admin, token_secret_hash(secret), false)) {
        return "admin token: the one in " + admin_token_file.string() + " (token 'admin')";
      }
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kFailedPrecondition) throw;
      throw Error(ErrorCode::kFailedPrecondition,
                  "the token in " + admin_token_file.string() + ": " + e.what());
    }
    return "admin token: set from " + admin_token_file.string() + " (token 'admin')";
  }
  if (store.count_all() > 0) return "";
  const std::string secret = new_token_secret();
  write_private_file(new_token_file, secret + "\n");
  if (!store.put_admin(admin, token_secret_hash(secret), true)) {
    // Another node of the cluster made the first admin token at the same moment.
    std::filesystem::remove(new_token_file);
    return "";
  }
  return "admin token: created, in " + new_token_file.string() +
         " (mode 0600; give it to the administrator, who makes the other tokens with frs token "
         "create)";
}

std::unique_ptr<TokenStore> open_token_store(const StoreLocation& where) {
  return std::make_unique<SqlTokenStore>(where);
}

}  // namespace frs
