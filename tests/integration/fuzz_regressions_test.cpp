// The fuzz regression corpus (fuzz/regressions/), replayed through the fuzzed entry points
// in the normal build: every input that once broke one, or was made to attack one, must
// end in a refusal, never a crash or an exception frs does not own.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../../fuzz/harnesses.h"

namespace frs::testing {
namespace {

using Harness = int (*)(const std::uint8_t*, std::size_t);

// `made`: inputs built in code (images are not kept as files in the repository).
void replay(const std::string& target, Harness harness, const std::vector<std::string>& made = {}) {
  const auto dir = std::filesystem::path(FRS_SOURCE_DIR) / "fuzz" / "regressions" / target;
  int replayed = 0;
  for (const std::string& bytes : made) {
    EXPECT_EQ(harness(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
    ++replayed;
  }
  std::error_code missing;
  for (const auto& entry : std::filesystem::directory_iterator(dir, missing)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(harness(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
    ++replayed;
  }
  EXPECT_GT(replayed, 0) << "no inputs in " << dir;
}

TEST(FuzzRegressions, Config) {
  replay("config", fuzz::config);
}
TEST(FuzzRegressions, EvalCsv) {
  replay("eval_csv", fuzz::eval_csv);
}
TEST(FuzzRegressions, Image) {
  replay("image", fuzz::image, fuzz::hostile_images());
}
TEST(FuzzRegressions, Requests) {
  replay("requests", fuzz::requests);
}

}  // namespace
}  // namespace frs::testing
