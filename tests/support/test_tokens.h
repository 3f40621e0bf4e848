#pragma once
// A token made straight in a store, for tests of the services without a server process.

#include <string>

#include "frs/auth/tokens.h"
#include "frs/core/clock.h"

namespace frs::testing {

// Returns the new token's secret.
inline std::string make_token(TokenStore& store, const std::string& name, Role role,
                              std::int64_t expires_at_ms = 0) {
  TokenRecord t;
  t.name = name;
  t.role = role;
  t.created_by = "test";
  t.created_at_ms = now_unix_ms();
  t.expires_at_ms = expires_at_ms;
  const std::string secret = new_token_secret();
  store.create(t, token_secret_hash(secret));
  return secret;
}

}  // namespace frs::testing
