#include "frs/core/embedding.h"

#include <gtest/gtest.h>

#include <cmath>

#include "frs/core/error.h"

namespace frs {
namespace {

TEST(Distance, IsEuclideanOnRawValues) {
  Embedding a(128), b(128);
  a[0] = 3.0f;
  b[1] = 4.0f;
  EXPECT_FLOAT_EQ(distance(a, b), 5.0f);
  EXPECT_FLOAT_EQ(distance(a, a), 0.0f);
  EXPECT_FLOAT_EQ(distance(a, b), distance(b, a));
}

TEST(Distance, DoesNotNormaliseLength) {
  Embedding a(128), b(128);
  a[0] = 1.0f;
  b[0] = 2.0f;  // same direction, twice the length: cosine would call these identical
  EXPECT_FLOAT_EQ(distance(a, b), 1.0f);
}

TEST(MeanEmbedding, AveragesElementWise) {
  Embedding a(128), b(128);
  a[5] = 1.0f;
  b[5] = 3.0f;
  b[7] = -2.0f;
  const Embedding both[] = {a, b};
  const Embedding m = mean_embedding(both);
  EXPECT_FLOAT_EQ(m[5], 2.0f);
  EXPECT_FLOAT_EQ(m[7], -1.0f);
  EXPECT_FLOAT_EQ(m[0], 0.0f);
}

TEST(Distance, RefusesDescriptorsOfDifferentModels) {
  const Embedding dlib(128, 0.1f), faceplugin(512, 0.02f);
  try {
    (void)distance(dlib, faceplugin);
    FAIL() << "compared a 128-value descriptor with a 512-value one";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("different descriptor models"), std::string::npos);
  }
  const Embedding both[] = {dlib, faceplugin};
  EXPECT_THROW(mean_embedding(both), Error);
}

TEST(Normalize, MakesUnitLengthSoDistanceIsAFunctionOfTheCosine) {
  Embedding a = {3.0f, 4.0f, 0.0f}, b = {0.0f, 2.0f, 0.0f};
  normalize(a);
  normalize(b);
  EXPECT_FLOAT_EQ(a[0], 0.6f);
  EXPECT_FLOAT_EQ(a[1], 0.8f);
  const double cosine = 0.8;  // of the originals
  EXPECT_NEAR(distance(a, b), std::sqrt(2 - 2 * cosine), 1e-6);
  Embedding zero(4, 0.0f);
  normalize(zero);  // stays zero: no division by zero
  EXPECT_EQ(zero, Embedding(4, 0.0f));
}

TEST(EmbeddingBytes, RoundTripAndRefuseTornBlobs) {
  const Embedding e = {1.5f, -2.25f, 0.0f, 3.0e-8f};
  const auto bytes = embedding_bytes(e);
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(embedding_from_bytes(bytes, "test"), e);
  EXPECT_THROW(embedding_from_bytes(std::span(bytes).first(15), "test"), Error);
  EXPECT_THROW(embedding_from_bytes({}, "test"), Error);
  const std::vector<std::uint8_t> huge((kMaxEmbeddingSize + 1) * 4, 0);
  EXPECT_THROW(embedding_from_bytes(huge, "test"), Error);
}

TEST(RequireFinite, RefusesEmptyAndOverlongDescriptors) {
  EXPECT_THROW(require_finite(Embedding{}, "empty"), Error);
  EXPECT_THROW(require_finite(Embedding(kMaxEmbeddingSize + 1, 0.0f), "long"), Error);
  EXPECT_NO_THROW(require_finite(Embedding(512, 0.0f), "faceplugin-sized"));
}

}  // namespace
}  // namespace frs
