#include "frs/core/embedding.h"

#include <cmath>

namespace frs {

float distance(const Embedding& a, const Embedding& b) {
  // Accumulate in double: the descriptors are compared against thresholds to 3 decimals
  // and float accumulation over 128 terms drifts in the 4th.
  double sum = 0.0;
  for (std::size_t i = 0; i < kEmbeddingSize; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  return static_cast<float>(std::sqrt(sum));
}

Embedding mean_embedding(std::span<const Embedding> embeddings) {
  std::array<double, kEmbeddingSize> sum{};
  for (const Embedding& e : embeddings) {
    for (std::size_t i = 0; i < kEmbeddingSize; ++i) sum[i] += e[i];
  }
  Embedding mean{};
  const double n = embeddings.empty() ? 1.0 : static_cast<double>(embeddings.size());
  for (std::size_t i = 0; i < kEmbeddingSize; ++i) mean[i] = static_cast<float>(sum[i] / n);
  return mean;
}

}  // namespace frs
