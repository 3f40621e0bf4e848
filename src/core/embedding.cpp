#include "frs/core/embedding.h"

#include <cmath>
#include <vector>

#include "frs/core/error.h"

namespace frs {

void require_finite(const Embedding& descriptor, const std::string& what) {
  for (std::size_t i = 0; i < kEmbeddingSize; ++i) {
    if (!std::isfinite(descriptor[i])) {
      throw Error(ErrorCode::kInvalidArgument,
                  what + " has a value that is not a finite number (" +
                      std::to_string(descriptor[i]) + " at position " + std::to_string(i) +
                      "); descriptors are 128 finite floats, as frs embed prints them");
    }
  }
}

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
  const std::vector<float> equal(embeddings.size(), 1.0f);
  return weighted_mean_embedding(embeddings, equal);
}

Embedding weighted_mean_embedding(std::span<const Embedding> embeddings,
                                  std::span<const float> weights) {
  std::array<double, kEmbeddingSize> sum{};
  double total = 0;
  for (std::size_t k = 0; k < embeddings.size() && k < weights.size(); ++k) {
    for (std::size_t i = 0; i < kEmbeddingSize; ++i) sum[i] += weights[k] * embeddings[k][i];
    total += weights[k];
  }
  Embedding mean{};
  if (total <= 0) return mean;
  for (std::size_t i = 0; i < kEmbeddingSize; ++i) mean[i] = static_cast<float>(sum[i] / total);
  return mean;
}

}  // namespace frs
