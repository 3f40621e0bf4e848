#include "frs/core/score_normaliser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "frs/core/error.h"

namespace frs {
namespace {

float squared_distance(const Embedding& a, const Embedding& b) {
  float sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

std::size_t nearest(const std::vector<ScoreNormaliser::Cluster>& clusters, const Embedding& x) {
  std::size_t best = 0;
  float best_distance = std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < clusters.size(); ++c) {
    const float d = squared_distance(clusters[c].centroid, x);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

// The largest threshold at which at most a `rate` share of `distances` lies at or under it.
float threshold_for_rate(std::vector<float>& distances, double rate) {
  const auto allowed = static_cast<std::size_t>(rate * static_cast<double>(distances.size()));
  if (allowed >= distances.size()) return *std::max_element(distances.begin(), distances.end());
  std::nth_element(distances.begin(), distances.begin() + static_cast<std::ptrdiff_t>(allowed),
                   distances.end());
  return std::nextafter(distances[allowed], -std::numeric_limits<float>::infinity());
}

// k-means++ seeding, then Lloyd's iterations until no descriptor changes cluster (at most
// 100). Deterministic for a seed.
std::vector<ScoreNormaliser::Cluster> k_means(std::span<const Embedding> x, int k, unsigned seed,
                                              std::vector<std::size_t>& member_of) {
  std::mt19937 rng(seed);
  std::vector<ScoreNormaliser::Cluster> clusters(static_cast<std::size_t>(k));
  clusters[0].centroid = x[std::uniform_int_distribution<std::size_t>(0, x.size() - 1)(rng)];
  std::vector<float> nearest_squared(x.size(), std::numeric_limits<float>::infinity());
  for (std::size_t c = 1; c < clusters.size(); ++c) {
    double total = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      nearest_squared[i] =
          std::min(nearest_squared[i], squared_distance(x[i], clusters[c - 1].centroid));
      total += nearest_squared[i];
    }
    double pick = std::uniform_real_distribution<double>(0, total)(rng);
    std::size_t chosen = x.size() - 1;
    for (std::size_t i = 0; i < x.size(); ++i) {
      pick -= nearest_squared[i];
      if (pick <= 0) {
        chosen = i;
        break;
      }
    }
    clusters[c].centroid = x[chosen];
  }
  member_of.assign(x.size(), clusters.size());
  for (int iteration = 0; iteration < 100; ++iteration) {
    bool changed = false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t c = nearest(clusters, x[i]);
      changed = changed || c != member_of[i];
      member_of[i] = c;
    }
    if (!changed) break;
    for (std::size_t c = 0; c < clusters.size(); ++c) {
      Embedding sum(x[0].size(), 0.0f);
      std::size_t count = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (member_of[i] != c) continue;
        for (std::size_t v = 0; v < sum.size(); ++v) sum[v] += x[i][v];
        ++count;
      }
      // An emptied cluster keeps its centroid: it may win members back.
      if (count == 0) continue;
      for (float& v : sum) v /= static_cast<float>(count);
      clusters[c].centroid = std::move(sum);
    }
  }
  for (const std::size_t c : member_of) ++clusters[c].members;
  return clusters;
}

}  // namespace

ScoreNormaliser ScoreNormaliser::fit(std::span<const Embedding> descriptors,
                                     std::span<const std::string> identities,
                                     const FitOptions& options) {
  if (options.clusters < 2 || options.clusters > 1000) {
    throw Error(ErrorCode::kInvalidArgument, "score normalisation needs 2..1000 clusters, got " +
                                                 std::to_string(options.clusters));
  }
  if (!(options.false_match_rate > 0 && options.false_match_rate <= 0.5)) {
    throw Error(ErrorCode::kInvalidArgument,
                "score normalisation: the false-match rate must be in (0, 0.5]");
  }
  if (options.max_descriptors < 2 || options.max_descriptors > 20000) {
    throw Error(ErrorCode::kInvalidArgument, "score normalisation: fit on 2..20000 descriptors");
  }
  if (descriptors.size() != identities.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                "score normalisation: one identity per descriptor is needed");
  }
  const std::size_t n = std::min(descriptors.size(), options.max_descriptors);
  const auto clusters = static_cast<std::size_t>(options.clusters);
  if (n < 2 * clusters) {
    throw Error(ErrorCode::kInvalidArgument,
                "score normalisation into " + std::to_string(clusters) +
                    " clusters needs at least " + std::to_string(2 * clusters) +
                    " described photos, got " + std::to_string(n) +
                    ": use fewer clusters or more photos");
  }
  const auto x = descriptors.first(n);
  for (const Embedding& d : x) {
    if (d.empty() || d.size() != x[0].size()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "score normalisation: the descriptors are not all of one model");
    }
  }

  ScoreNormaliser out;
  out.false_match_rate_ = options.false_match_rate;
  std::vector<std::size_t> member_of;
  out.clusters_ = k_means(x, options.clusters, options.seed, member_of);

  std::vector<float> all;
  std::vector<std::vector<float>> of_cluster(clusters);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (identities[i] == identities[j]) continue;
      const float d = distance(x[i], x[j]);
      all.push_back(d);
      of_cluster[member_of[i]].push_back(d);
      if (member_of[j] != member_of[i]) of_cluster[member_of[j]].push_back(d);
    }
  }
  if (all.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "score normalisation needs photos of at least two people");
  }
  out.global_threshold_ = threshold_for_rate(all, options.false_match_rate);
  for (std::size_t c = 0; c < clusters; ++c) {
    Cluster& cluster = out.clusters_[c];
    cluster.impostor_pairs = of_cluster[c].size();
    // 10 false matches' worth, as frs eval's own support rule.
    cluster.supported =
        static_cast<double>(cluster.impostor_pairs) * options.false_match_rate >= 10;
    if (of_cluster[c].empty()) continue;
    cluster.threshold = threshold_for_rate(of_cluster[c], options.false_match_rate);
    if (cluster.supported) cluster.offset = out.global_threshold_ - cluster.threshold;
  }
  return out;
}

std::size_t ScoreNormaliser::cluster_of(const Embedding& descriptor) const {
  if (clusters_.empty() || descriptor.size() != clusters_[0].centroid.size()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "a descriptor of " + std::to_string(descriptor.size()) +
                    " values cannot be placed by a score normaliser of another model");
  }
  return nearest(clusters_, descriptor);
}

float ScoreNormaliser::half_offset(const Embedding& descriptor) const {
  return clusters_[cluster_of(descriptor)].offset / 2;
}

float ScoreNormaliser::normalised(float raw, const Embedding& a, const Embedding& b) const {
  if (clusters_.empty()) return raw;
  return raw + half_offset(a) + half_offset(b);
}

}  // namespace frs
