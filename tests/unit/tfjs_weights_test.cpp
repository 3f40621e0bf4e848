#include "frs/convert/tfjs_weights.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "frs/core/error.h"
#include "testdata.h"

namespace frs::convert {
namespace {

class TfjsWeights : public ::testing::Test {
 protected:
  std::filesystem::path write(const nlohmann::json& manifest, const std::string& bin) {
    std::ofstream(dir_ / "w.bin", std::ios::binary) << bin;
    std::ofstream(dir_ / "m.json") << manifest.dump();
    return dir_ / "m.json";
  }

  testing::ScopedTempDir dir_{"tfjs"};
};

nlohmann::json manifest_with(nlohmann::json weights) {
  return nlohmann::json::array({{{"paths", {"w.bin"}}, {"weights", std::move(weights)}}});
}

TEST_F(TfjsWeights, DequantisesUint8AndCopiesFloat32) {
  const float raw[2] = {1.5f, -2.25f};
  std::string bin = {'\x00', '\x02', '\xff'};
  bin.append(reinterpret_cast<const char*>(raw), sizeof raw);
  const auto path =
      write(manifest_with({{{"name", "q"},
                            {"shape", {3}},
                            {"dtype", "float32"},
                            {"quantization", {{"dtype", "uint8"}, {"scale", 0.5}, {"min", -1.0}}}},
                           {{"name", "f"}, {"shape", {1, 2}}, {"dtype", "float32"}}}),
            bin);
  const auto tensors = read_tfjs_weights(path);
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].name, "q");
  EXPECT_EQ(tensors[0].values, (std::vector<float>{-1.0f, 0.0f, 126.5f}));
  EXPECT_EQ(tensors[1].shape, (std::vector<int>{1, 2}));
  EXPECT_EQ(tensors[1].values, (std::vector<float>{1.5f, -2.25f}));
}

TEST_F(TfjsWeights, DequantisesUint16LittleEndian) {
  const auto path = write(
      manifest_with({{{"name", "q"},
                      {"shape", {1}},
                      {"dtype", "float32"},
                      {"quantization", {{"dtype", "uint16"}, {"scale", 1.0}, {"min", 0.0}}}}}),
      std::string{'\x01', '\x02'});
  EXPECT_EQ(read_tfjs_weights(path)[0].values[0], 513.0f);
}

TEST_F(TfjsWeights, RejectsShardShorterThanManifest) {
  const auto path =
      write(manifest_with({{{"name", "f"}, {"shape", {4}}, {"dtype", "float32"}}}), "abc");
  try {
    read_tfjs_weights(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST_F(TfjsWeights, RejectsExtraBytesUnknownDtypeAndBadJson) {
  EXPECT_THROW(
      read_tfjs_weights(write(
          manifest_with({{{"name", "f"}, {"shape", {1}}, {"dtype", "float32"}}}), "abcdefgh")),
      Error);
  EXPECT_THROW(read_tfjs_weights(write(
                   manifest_with({{{"name", "s"}, {"shape", {1}}, {"dtype", "string"}}}), "abcd")),
               Error);
  std::ofstream(dir_ / "bad.json") << "{not json";
  EXPECT_THROW(read_tfjs_weights(dir_ / "bad.json"), Error);
  EXPECT_THROW(read_tfjs_weights(dir_ / "missing.json"), Error);
}

TEST_F(TfjsWeights, RejectsMissingShard) {
  std::ofstream(dir_ / "m.json") << manifest_with({}).dump();
  std::filesystem::remove(dir_ / "w.bin");
  EXPECT_THROW(read_tfjs_weights(dir_ / "m.json"), Error);
}

}  // namespace
}  // namespace frs::convert
