#pragma once
// Fair score normalisation (Terhörst, Kolf, Damer, Kirchbuchner, Kuijper: "Post-comparison
// mitigation of demographic bias in face recognition using fair score normalization",
// Pattern Recognition Letters 2020), in frs's distance direction.
//
// One threshold for everyone lets the faces whose impostors lie close together (a region
// of descriptor space where the model tells people apart less well) falsely match far more
// often than the rest: measured per group in docs/accuracy.md. The normaliser splits
// descriptor space into clusters (k-means, no labels of any group), finds for each cluster
// the distance at which comparisons involving its members falsely match at a fixed rate,
// and shifts every comparison by how much stricter or looser its two faces' clusters need
// to be than the whole:
//
//   normalised(a, b) = distance(a, b) + (offset[cluster(a)] + offset[cluster(b)]) / 2
//   offset[c] = global threshold - cluster c's threshold (at the same false-match rate)
//
// so a comparison in a dense region (a stricter cluster threshold) moves away, one in a
// sparse region moves closer, and one threshold on the normalised distance meets the same
// rate in every region. Nobody's group is inferred or stored: a cluster is only a region of
// descriptor space.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "frs/core/embedding.h"

namespace frs {

class ScoreNormaliser {
 public:
  struct FitOptions {
    int clusters = 25;  // k of k-means, 2..1000
    // Where each cluster's threshold is read, (0, 0.5]: high enough that a cluster's
    // comparisons hold 10 false matches (25 clusters of 450 faces: 1e-2).
    double false_match_rate = 1e-2;
    unsigned seed = 1;  // k-means++ start
    // At most this many descriptors are fitted on (every pair of them is compared), the
    // first ones given; 2..20000.
    std::size_t max_descriptors = 5000;
  };

  struct Cluster {
    Embedding centroid;
    std::size_t members = 0;         // fitting descriptors nearest to it
    std::size_t impostor_pairs = 0;  // fitting comparisons involving a member
    float threshold = 0;             // where those falsely match at the fit's rate
    float offset = 0;                // global threshold - threshold; 0 without support
    bool supported = false;          // 10 false matches' worth of comparisons
  };

  ScoreNormaliser() = default;

  // Fits on descriptors of one model and their identities (comparisons of different
  // identities are the impostors; a set of one photo per person gives only those). Throws
  // Error(kInvalidArgument) for options out of range, descriptors of different lengths,
  // fewer than 2 descriptors per cluster, or no impostor comparison.
  static ScoreNormaliser fit(std::span<const Embedding> descriptors,
                             std::span<const std::string> identities, const FitOptions& options);

  bool empty() const { return clusters_.empty(); }
  const std::vector<Cluster>& clusters() const { return clusters_; }
  float global_threshold() const { return global_threshold_; }
  double false_match_rate() const { return false_match_rate_; }

  // The nearest centroid's index. Throws Error(kFailedPrecondition) for a descriptor of
  // another length than the fit's.
  std::size_t cluster_of(const Embedding& descriptor) const;
  // The shift `descriptor` contributes to each of its comparisons: half its cluster's offset.
  float half_offset(const Embedding& descriptor) const;
  // `raw` = distance(a, b), shifted by both faces' clusters; `raw` itself when empty().
  float normalised(float raw, const Embedding& a, const Embedding& b) const;

  // The descriptor model it was fitted for (set by whoever fits it), and what on, in words.
  std::string descriptor_model;
  std::string fitted_on;

  // As a JSON document (format "frs-score-normaliser-1"), and back. from_json throws
  // Error(kInvalidArgument) naming what is wrong for anything but a well-formed normaliser:
  // 2..1000 clusters of one length (at most kMaxEmbeddingSize), finite values, offsets
  // within (-4, 4), at most 16 MiB of text.
  std::string to_json() const;
  static ScoreNormaliser from_json(const std::string& text);

 private:
  static ScoreNormaliser parse_normaliser(const std::string& text);
  std::vector<Cluster> clusters_;
  float global_threshold_ = 0;
  double false_match_rate_ = 0;
};

}  // namespace frs
