#include "frs/core/embedding.h"

#include <cmath>
#include <cstring>

#include "frs/core/error.h"

namespace frs {

void require_finite(const Embedding& descriptor, const std::string& what) {
  if (descriptor.empty() || descriptor.size() > kMaxEmbeddingSize) {
    throw Error(ErrorCode::kInvalidArgument,
                what + " has " + std::to_string(descriptor.size()) +
                    " values; a descriptor has 1.." + std::to_string(kMaxEmbeddingSize) +
                    " (as frs embed prints it: 128 for dlib-resnet-v1)");
  }
  for (std::size_t i = 0; i < descriptor.size(); ++i) {
    if (!std::isfinite(descriptor[i])) {
      throw Error(ErrorCode::kInvalidArgument,
                  what + " has a value that is not a finite number (" +
                      std::to_string(descriptor[i]) + " at position " + std::to_string(i) +
                      "); descriptors are finite floats, as frs embed prints them");
    }
  }
}

float distance(const Embedding& a, const Embedding& b) {
  if (a.size() != b.size()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "cannot compare a descriptor of " + std::to_string(a.size()) +
                    " values with one of " + std::to_string(b.size()) +
                    ": they are of different descriptor models");
  }
  // Accumulate in double: the descriptors are compared against thresholds to 3 decimals
  // and float accumulation over hundreds of terms drifts in the 4th.
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
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
  const std::size_t size = embeddings.empty() ? 0 : embeddings.front().size();
  std::vector<double> sum(size, 0.0);
  double total = 0;
  for (std::size_t k = 0; k < embeddings.size() && k < weights.size(); ++k) {
    if (embeddings[k].size() != size) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "cannot average descriptors of different lengths (different models)");
    }
    for (std::size_t i = 0; i < size; ++i) sum[i] += weights[k] * embeddings[k][i];
    total += weights[k];
  }
  Embedding mean(size, 0.0f);
  if (total <= 0) return mean;
  for (std::size_t i = 0; i < size; ++i) mean[i] = static_cast<float>(sum[i] / total);
  return mean;
}

void normalize(Embedding& descriptor) {
  double sum = 0;
  for (float v : descriptor) sum += static_cast<double>(v) * v;
  if (sum <= 0) return;
  const double scale = 1.0 / std::sqrt(sum);
  for (float& v : descriptor) v = static_cast<float>(v * scale);
}

std::vector<std::uint8_t> embedding_bytes(const Embedding& descriptor) {
  std::vector<std::uint8_t> bytes(descriptor.size() * sizeof(float));
  if (!bytes.empty()) std::memcpy(bytes.data(), descriptor.data(), bytes.size());
  return bytes;
}

Embedding embedding_from_bytes(std::span<const std::uint8_t> bytes, const std::string& what) {
  if (bytes.empty() || bytes.size() % sizeof(float) != 0 ||
      bytes.size() > kMaxEmbeddingSize * sizeof(float)) {
    throw Error(ErrorCode::kInternal, what + " is " + std::to_string(bytes.size()) +
                                          " bytes, not a whole descriptor of 1.." +
                                          std::to_string(kMaxEmbeddingSize) + " floats");
  }
  Embedding e(bytes.size() / sizeof(float));
  std::memcpy(e.data(), bytes.data(), bytes.size());
  return e;
}

}  // namespace frs
