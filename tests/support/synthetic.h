#pragma once
// Hand-made descriptors whose distances are known exactly.

#include <cstddef>

#include "frs/core/embedding.h"

namespace frs::testing {

// `value` in dimension `dim`, zeros elsewhere: two of them are sqrt(a^2 + b^2) apart on
// different dimensions and |a - b| apart on the same one.
inline constexpr std::size_t kSyntheticDimension = 128;  // dlib-resnet-v1's length

inline Embedding axis(std::size_t dim, float value = 1.0f,
                      std::size_t dimension = kSyntheticDimension) {
  Embedding e(dimension, 0.0f);
  e[dim] = value;
  return e;
}

}  // namespace frs::testing
