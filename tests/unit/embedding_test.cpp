#include "frs/core/embedding.h"

#include <gtest/gtest.h>

namespace frs {
namespace {

TEST(Distance, IsEuclideanOnRawValues) {
  Embedding a{}, b{};
  a[0] = 3.0f;
  b[1] = 4.0f;
  EXPECT_FLOAT_EQ(distance(a, b), 5.0f);
  EXPECT_FLOAT_EQ(distance(a, a), 0.0f);
  EXPECT_FLOAT_EQ(distance(a, b), distance(b, a));
}

TEST(Distance, DoesNotNormaliseLength) {
  Embedding a{}, b{};
  a[0] = 1.0f;
  b[0] = 2.0f;  // same direction, twice the length: cosine would call these identical
  EXPECT_FLOAT_EQ(distance(a, b), 1.0f);
}

TEST(MeanEmbedding, AveragesElementWise) {
  Embedding a{}, b{};
  a[5] = 1.0f;
  b[5] = 3.0f;
  b[7] = -2.0f;
  const Embedding both[] = {a, b};
  const Embedding m = mean_embedding(both);
  EXPECT_FLOAT_EQ(m[5], 2.0f);
  EXPECT_FLOAT_EQ(m[7], -1.0f);
  EXPECT_FLOAT_EQ(m[0], 0.0f);
}

}  // namespace
}  // namespace frs
