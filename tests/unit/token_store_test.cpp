#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "frs/auth/tokens.h"
#include "frs/core/error.h"
#include "test_postgres.h"
#include "test_tokens.h"

namespace frs {
namespace {

using testing::Backend;

class TokenStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  testing::TestStores stores_{GetParam()};
};

// A name is a person: two active tokens whose names differ only in case would count as two
// reviewers of one alert.
TEST_P(TokenStoreTest, NamesThatDifferOnlyInCaseAreOneName) {
  auto tokens = open_token_store(stores_.at("tokens.db"));
  testing::make_token(*tokens, "t-dispatcher", Role::kDispatcher);
  for (const char* other : {"T-DISPATCHER", "t-Dispatcher", "t-dispatcher"}) {
    try {
      testing::make_token(*tokens, other, Role::kDispatcher);
      ADD_FAILURE() << other << " was accepted beside t-dispatcher";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists) << other;
      EXPECT_NE(std::string(e.what()).find("'t-dispatcher' exists"), std::string::npos) << e.what();
    }
  }
  // Once it is revoked, the name in any case is free again.
  tokens->revoke("t-dispatcher", "test", now_unix_ms());
  EXPECT_NO_THROW(testing::make_token(*tokens, "T-DISPATCHER", Role::kDispatcher));
  EXPECT_NO_THROW(testing::make_token(*tokens, "t-dispatcher-2", Role::kDispatcher));
}

// An admin token file others can read is a way to become admin: frs-server warns of it.
TEST(TokenFile, ExposureToOthersIsNamedWithTheFix) {
  testing::ScopedTempDir dir("token_file");
  const auto file = dir / "admin.token";
  std::ofstream(file) << new_token_secret() << "\n";
  using std::filesystem::perms;
  std::filesystem::permissions(file, perms::owner_read | perms::owner_write);
  EXPECT_EQ(token_file_exposure(file), "");
  std::filesystem::permissions(file, perms::others_read, std::filesystem::perm_options::add);
  const std::string warning = token_file_exposure(file);
  EXPECT_NE(warning.find("mode 0604"), std::string::npos) << warning;
  EXPECT_NE(warning.find("chmod 600"), std::string::npos) << warning;
  EXPECT_EQ(token_file_exposure(dir / "missing"), "");  // reading it fails later, and says so
}

INSTANTIATE_TEST_SUITE_P(Backends, TokenStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

}  // namespace
}  // namespace frs
