#pragma once
// API tokens: who a caller is. A token is 256 random bits from the OS's CSPRNG, shown once
// when it is made and stored only as its SHA-256 (a stolen store gives no usable token; the
// secret has too much entropy for a slow hash to add anything). Each has a name (a person
// or a system: `dispatch-console-3`), one role, its creator, creation time, an optional
// expiry, and can be revoked. The store is an interface so that the cluster work can give
// it a PostgreSQL implementation.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frs/auth/access.h"
#include "frs/storage/database.h"

namespace frs {

struct TokenRecord {
  std::int64_t id = 0;
  std::string name;  // 1..64 of [A-Za-z0-9._@-]; unique among tokens not revoked
  Role role = Role::kAuditor;
  std::string created_by;          // the name of the token that made it ("frs-server" at setup)
  std::int64_t created_at_ms = 0;  // Unix ms
  std::int64_t expires_at_ms = 0;  // Unix ms; 0 = never
  std::int64_t revoked_at_ms = 0;  // Unix ms; 0 = not revoked
  std::string revoked_by;

  bool active(std::int64_t now_ms) const {
    return revoked_at_ms == 0 && (expires_at_ms == 0 || now_ms < expires_at_ms);
  }
};

// created_by of the tokens frs-server makes itself at start-up (the admin token).
inline constexpr const char* kServerTokenCreator = "frs-server";

// Longest token name; names are letters, digits and . _ @ -, so that they are safe in every
// log line, metric and audit row without escaping.
inline constexpr std::size_t kMaxTokenNameChars = 64;
// Throws Error(kInvalidArgument) saying what is wrong with `name`.
void check_token_name(std::string_view name);

// A new token secret: "frs_" + 43 base64url characters (256 bits).
std::string new_token_secret();
// What the store keeps of a secret: its SHA-256, hex.
std::string token_secret_hash(std::string_view secret);
// Whether `secret` could be a token at all (an admin token file's content, a header):
// 32..512 printable ASCII characters without spaces. Throws Error(kInvalidArgument) naming
// `where` otherwise; the message never echoes the secret.
void check_token_secret(std::string_view secret, std::string_view where);

class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // Stores a token with this secret hash. kAlreadyExists when a token of that name is not
  // revoked, or the hash is taken.
  virtual TokenRecord create(const TokenRecord& token, const std::string& secret_hash) = 0;
  virtual std::optional<TokenRecord> find_by_secret_hash(const std::string& secret_hash) = 0;
  // Tokens not revoked (and, with include_revoked, the revoked ones too), oldest first.
  virtual std::vector<TokenRecord> list(bool include_revoked) = 0;
  // Revokes the token named `name` that is not revoked; kNotFound when there is none.
  virtual TokenRecord revoke(const std::string& name, const std::string& revoked_by,
                             std::int64_t at_ms) = 0;
  // Tokens ever stored, revoked ones included.
  virtual std::int64_t count_all() = 0;
  // The start-up admin token, in one step that nodes starting together cannot interleave.
  // `only_if_empty`: store it only when the store has never held a token (first start);
  // else: nothing when an active admin token has this secret already, otherwise any active
  // token named admin.name is revoked and this one stored. Returns whether it stored it.
  // kFailedPrecondition when the secret is a token's that is revoked, expired or no admin.
  virtual bool put_admin(const TokenRecord& admin, const std::string& secret_hash,
                         bool only_if_empty) = 0;
};

// DATA_DIR/tokens.db (SQLite, durable writes), or the cluster's PostgreSQL database.
std::unique_ptr<TokenStore> open_token_store(const StoreLocation& where);

// The admin token at start-up. `admin_token_file` set: the secret in that file is made the
// token named "admin" (a previous "admin" with another secret is revoked), so automation
// always knows a working admin token. Else, when the store has never held a token (first
// start on this data dir): a new admin token is made and written to `new_token_file`
// (mode 0600, replaced atomically). Else nothing: revoking every admin token is respected.
// Returns what was done, for the log (never the secret).
std::string ensure_admin_token(TokenStore& store, const std::filesystem::path& admin_token_file,
                               const std::filesystem::path& new_token_file);

// A secret as a token file holds it: the file's content without surrounding white space.
// Throws Error(kInvalidArgument) when it cannot be read or is not a token.
std::string read_token_file(const std::filesystem::path& file);
// "" when only its owner may read and write `file`; else a warning that says who else may
// and how to fix it (chmod 600), for the log.
std::string token_file_exposure(const std::filesystem::path& file);

}  // namespace frs
