#pragma once
// Face descriptors and the one score direction used everywhere in frs: `distance`, the
// Euclidean distance between two descriptors of one model; lower = more alike.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace frs {

// A face descriptor as frs stores and compares it: the values of one descriptor model
// (include/frs/vision/descriptor_model.h). dlib-resnet-v1's are 128 raw network outputs
// (norms of about 1.4-1.6; never normalised, its distances are on the raw values); the
// cosine models' are scaled to unit length. Length tells the models apart: descriptors of
// different lengths are never compared.
using Embedding = std::vector<float>;

// Longest descriptor frs accepts from a model, a request or a store.
inline constexpr std::size_t kMaxEmbeddingSize = 4096;

// dlib's own 1:1 verification threshold: two descriptors under this distance are the same
// person with 99.38% accuracy on LFW. A 1:N watchlist search needs a stricter value.
inline constexpr float kDefaultMaxDistance = 0.6f;

// Throws Error(kInvalidArgument) naming `what` when the descriptor is empty, longer than
// kMaxEmbeddingSize, or has a value that is NaN or infinite. Every way a descriptor enters
// frs (a search by descriptor, the store, the index) checks it: a NaN makes every distance
// NaN, and NaN passes comparisons such as `d > threshold` as if it matched (an HNSW search
// returned every identity for one).
void require_finite(const Embedding& descriptor, const std::string& what);

// Euclidean distance between two descriptors (not squared). Throws
// Error(kFailedPrecondition) when their lengths differ: they are of different models.
float distance(const Embedding& a, const Embedding& b);

// Element-wise mean of several descriptors of one face (e.g. of a flipped copy); the
// caller guarantees at least one, all of one length.
Embedding mean_embedding(std::span<const Embedding> embeddings);

// The mean of `embeddings` weighted by `weights` (same length, each >= 0, not all 0).
Embedding weighted_mean_embedding(std::span<const Embedding> embeddings,
                                  std::span<const float> weights);

// Scales to unit length (a zero descriptor stays zero).
void normalize(Embedding& descriptor);

// The stored form: the floats' bytes in host order (little-endian on every platform frs
// builds for), 4 per value.
std::vector<std::uint8_t> embedding_bytes(const Embedding& descriptor);
// Back from the stored form; Error(kInternal) naming `what` when the length is not a
// whole number of 1..kMaxEmbeddingSize floats.
Embedding embedding_from_bytes(std::span<const std::uint8_t> bytes, const std::string& what);

}  // namespace frs
