#pragma once
// Face descriptors and the one score direction used everywhere in frs: `distance`, the
// Euclidean distance between two raw dlib descriptors; lower = more alike.

#include <array>
#include <cstddef>
#include <span>
#include <string>

namespace frs {

inline constexpr std::size_t kEmbeddingSize = 128;

// A 128-D dlib ResNet face descriptor, as the network outputs it. Not unit length (norms
// of about 1.4-1.6 are typical); do not normalise it, distances are on the raw values.
using Embedding = std::array<float, kEmbeddingSize>;

// dlib's own 1:1 verification threshold: two descriptors under this distance are the same
// person with 99.38% accuracy on LFW. A 1:N watchlist search needs a stricter value.
inline constexpr float kDefaultMaxDistance = 0.6f;

// Throws Error(kInvalidArgument) naming `what` and the first value that is NaN or infinite.
// Every way a descriptor enters frs (a search by descriptor, the store, the index) checks
// it: a NaN makes every distance NaN, and NaN passes comparisons such as `d > threshold`
// as if it matched (an HNSW search returned every identity for one).
void require_finite(const Embedding& descriptor, const std::string& what);

// Euclidean distance between two descriptors (not squared).
float distance(const Embedding& a, const Embedding& b);

// Element-wise mean of several descriptors of one face (e.g. of a flipped copy); the
// caller guarantees at least one.
Embedding mean_embedding(std::span<const Embedding> embeddings);

// The mean of `embeddings` weighted by `weights` (same length, each >= 0, not all 0).
Embedding weighted_mean_embedding(std::span<const Embedding> embeddings,
                                  std::span<const float> weights);

}  // namespace frs
