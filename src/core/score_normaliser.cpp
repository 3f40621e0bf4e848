#include "frs/core/score_normaliser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
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

namespace {
constexpr const char* kFormat = "frs-score-normaliser-1";
constexpr std::size_t kMaxJsonBytes = 16u << 20;
}  // namespace

std::string ScoreNormaliser::to_json() const {
  nlohmann::json clusters = nlohmann::json::array();
  for (const Cluster& c : clusters_) {
    clusters.push_back({{"centroid", c.centroid},
                        {"members", c.members},
                        {"impostor_pairs", c.impostor_pairs},
                        {"threshold", c.threshold},
                        {"offset", c.offset},
                        {"supported", c.supported}});
  }
  return nlohmann::json{{"format", kFormat},
                        {"descriptor_model", descriptor_model},
                        {"fitted_on", fitted_on},
                        {"false_match_rate", false_match_rate_},
                        {"global_threshold", global_threshold_},
                        {"clusters", clusters}}
      .dump();
}

ScoreNormaliser ScoreNormaliser::from_json(const std::string& text) {
  try {
    return parse_normaliser(text);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type (a negative count, a string for a number).
    throw Error(ErrorCode::kInvalidArgument, std::string("not a score normaliser: ") + e.what());
  }
}

ScoreNormaliser ScoreNormaliser::parse_normaliser(const std::string& text) {
  const auto refuse = [](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "not a score normaliser: " + why);
  };
  if (text.size() > kMaxJsonBytes) throw refuse("larger than 16 MiB");
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("format", "") != kFormat) {
    throw refuse(std::string("want a JSON object with \"format\": \"") + kFormat + "\"");
  }
  const auto number = [&](const nlohmann::json& from, const char* key, double low, double high) {
    const auto it = from.find(key);
    if (it == from.end() || !it->is_number() || !std::isfinite(it->get<double>()) ||
        !(it->get<double>() > low && it->get<double>() < high)) {
      throw refuse(std::string("'") + key + "' must be a number in (" + std::to_string(low) + ", " +
                   std::to_string(high) + ")");
    }
    return it->get<double>();
  };
  ScoreNormaliser out;
  out.false_match_rate_ = number(j, "false_match_rate", 0, 0.5000001);
  out.global_threshold_ = static_cast<float>(number(j, "global_threshold", -4, 4));
  if (!j.contains("descriptor_model") || !j["descriptor_model"].is_string() ||
      j["descriptor_model"].get<std::string>().empty()) {
    throw refuse("'descriptor_model' must name the model it was fitted for");
  }
  out.descriptor_model = j["descriptor_model"].get<std::string>();
  if (j.contains("fitted_on") && j["fitted_on"].is_string()) out.fitted_on = j["fitted_on"];
  const auto clusters = j.find("clusters");
  if (clusters == j.end() || !clusters->is_array() || clusters->size() < 2 ||
      clusters->size() > 1000) {
    throw refuse("'clusters' must be a list of 2..1000");
  }
  for (const nlohmann::json& c : *clusters) {
    if (!c.is_object() || !c.contains("centroid") || !c["centroid"].is_array()) {
      throw refuse("every cluster needs a 'centroid' list");
    }
    const auto& values = c["centroid"];
    if (values.empty() || values.size() > kMaxEmbeddingSize ||
        (!out.clusters_.empty() && values.size() != out.clusters_[0].centroid.size())) {
      throw refuse("the centroids must all have one length of 1.." +
                   std::to_string(kMaxEmbeddingSize) + " values");
    }
    Cluster cluster;
    for (const auto& v : values) {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        throw refuse("a centroid value is not a finite number");
      }
      cluster.centroid.push_back(v.get<float>());
    }
    cluster.offset = static_cast<float>(number(c, "offset", -4, 4));
    cluster.threshold = static_cast<float>(number(c, "threshold", -4, 4));
    cluster.supported = c.value("supported", false);
    cluster.members = static_cast<std::size_t>(number(c, "members", -1, 1e12));
    cluster.impostor_pairs = static_cast<std::size_t>(number(c, "impostor_pairs", -1, 1e18));
    out.clusters_.push_back(std::move(cluster));
  }
  return out;
}

}  // namespace frs
