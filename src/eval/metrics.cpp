#include "frs/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "frs/core/error.h"

namespace frs {

const char* to_string(Support support) {
  switch (support) {
    case Support::kEnough:
      return "enough";
    case Support::kFew:
      return "few";
    case Support::kTooFew:
      return "too_few";
  }
  return "?";
}

Support support_for(double target, std::size_t trials) {
  const double expected_errors = target * static_cast<double>(trials);
  if (expected_errors >= 10) return Support::kEnough;
  if (expected_errors >= 1) return Support::kFew;
  return Support::kTooFew;
}

namespace {

std::size_t count_at_or_under(std::span<const float> sorted, float threshold) {
  return static_cast<std::size_t>(std::upper_bound(sorted.begin(), sorted.end(), threshold) -
                                  sorted.begin());
}

std::vector<float> sorted_copy(std::span<const float> values) {
  std::vector<float> out(values.begin(), values.end());
  std::sort(out.begin(), out.end());
  return out;
}

// The threshold on sorted negatives, and the matches at or under it.
ThresholdAt threshold_on_sorted(std::span<const float> sorted, double target) {
  ThresholdAt out;
  out.target = target;
  out.support = support_for(target, sorted.size());
  out.achieved.trials = sorted.size();
  if (sorted.empty()) return out;
  const auto allowed =
      static_cast<std::size_t>(std::floor(target * static_cast<double>(sorted.size()) + 1e-9));
  if (allowed >= sorted.size()) {
    out.threshold = sorted.back();
  } else {
    // Just under the first negative that may not match: ties with it stay out too.
    out.threshold = std::nextafter(sorted[allowed], -std::numeric_limits<float>::infinity());
  }
  out.achieved.errors = count_at_or_under(sorted, out.threshold);
  return out;
}

}  // namespace

ThresholdAt threshold_at(std::span<const float> negatives, double target) {
  const std::vector<float> sorted = sorted_copy(negatives);
  return threshold_on_sorted(sorted, target);
}

Verification verify(std::span<const LabelledDistance> pairs, float threshold,
                    std::span<const double> fmr_targets) {
  std::vector<float> genuine, impostor;
  for (const LabelledDistance& p : pairs) (p.same ? genuine : impostor).push_back(p.distance);
  std::sort(genuine.begin(), genuine.end());
  std::sort(impostor.begin(), impostor.end());
  auto fnmr_at = [&](float t) {
    return Rate{genuine.size() - count_at_or_under(genuine, t), genuine.size()};
  };
  Verification v;
  v.genuine = genuine.size();
  v.impostor = impostor.size();
  v.threshold = threshold;
  v.fmr = {count_at_or_under(impostor, threshold), impostor.size()};
  v.fnmr = fnmr_at(threshold);
  const std::size_t total = genuine.size() + impostor.size();
  v.accuracy =
      total ? 1.0 - static_cast<double>(v.fmr.errors + v.fnmr.errors) / static_cast<double>(total)
            : 0;
  for (const double target : fmr_targets) {
    Verification::AtFmr at;
    at.point = threshold_on_sorted(impostor, target);
    at.fnmr = fnmr_at(at.point.threshold);
    v.at_fmr.push_back(at);
  }
  // The equal error rate: over every threshold at which a comparison changes side, the one
  // where FMR and FNMR are closest; the rate is their mean there.
  if (!genuine.empty() && !impostor.empty()) {
    std::vector<float> candidates(genuine);
    candidates.insert(candidates.end(), impostor.begin(), impostor.end());
    std::sort(candidates.begin(), candidates.end());
    double best_gap = 2;
    for (const float t : candidates) {
      const double fmr = static_cast<double>(count_at_or_under(impostor, t)) /
                         static_cast<double>(impostor.size());
      const double fnmr = fnmr_at(t).value();
      if (std::abs(fmr - fnmr) < best_gap) {
        best_gap = std::abs(fmr - fnmr);
        v.equal_error_rate = (fmr + fnmr) / 2;
        v.equal_error_threshold = t;
      }
    }
  }
  return v;
}

namespace {

// Searches as every identification figure reads them, each list sorted: the nearest
// distance of each non-mated search (+inf when the gallery was empty), and of each mated
// search whose nearest identity is the right one (one that finds someone else nearest
// misses at every threshold).
struct SplitSearches {
  std::vector<float> non_mated;
  std::vector<float> found;
  std::size_t mated = 0;
};

SplitSearches split_searches(std::span<const SearchOutcome> searches) {
  SplitSearches out;
  for (const SearchOutcome& s : searches) {
    if (!s.mated) {
      out.non_mated.push_back(s.nearest_distance.value_or(std::numeric_limits<float>::infinity()));
      continue;
    }
    ++out.mated;
    if (s.nearest_right && s.nearest_distance) out.found.push_back(*s.nearest_distance);
  }
  std::sort(out.non_mated.begin(), out.non_mated.end());
  std::sort(out.found.begin(), out.found.end());
  return out;
}

}  // namespace

Identification identify(std::span<const SearchOutcome> searches, float threshold,
                        std::span<const double> fpir_targets) {
  const SplitSearches split = split_searches(searches);
  Identification id;
  id.mated = split.mated;
  id.non_mated = split.non_mated.size();
  id.rank1 = id.mated ? static_cast<double>(split.found.size()) / static_cast<double>(id.mated) : 0;
  auto fnir_at = [&](float t) {
    return Rate{id.mated - count_at_or_under(split.found, t), id.mated};
  };
  id.threshold = threshold;
  id.fnir = fnir_at(threshold);
  id.fpir = {count_at_or_under(split.non_mated, threshold), id.non_mated};
  for (const double target : fpir_targets) {
    Identification::AtFpir at;
    at.point = threshold_on_sorted(split.non_mated, target);
    at.fnir = fnir_at(at.point.threshold);
    id.at_fpir.push_back(at);
  }
  return id;
}

namespace {

// The curve through `negatives` (accepted at or under a threshold: false accepts) and
// `accepted_positives` (positives accepted at or under their distance; the other positives
// of `positive_count` are rejected at every threshold), both sorted.
std::vector<TradeOffPoint> trade_off_curve(const std::vector<float>& negatives,
                                           const std::vector<float>& accepted_positives,
                                           std::size_t positive_count, std::size_t max_points) {
  std::vector<float> thresholds;
  for (float d : negatives) {
    if (std::isfinite(d)) thresholds.push_back(d);
  }
  for (float d : accepted_positives) thresholds.push_back(d);
  std::sort(thresholds.begin(), thresholds.end());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  std::vector<TradeOffPoint> curve;
  if (thresholds.empty() || max_points == 0) return curve;
  const std::size_t step = (thresholds.size() + max_points - 1) / max_points;
  for (std::size_t i = 0; i < thresholds.size(); i += step) {
    const float t = (i + step >= thresholds.size()) ? thresholds.back() : thresholds[i];
    TradeOffPoint p;
    p.threshold = t;
    p.false_accept = negatives.empty() ? 0
                                       : static_cast<double>(count_at_or_under(negatives, t)) /
                                             static_cast<double>(negatives.size());
    p.false_reject = positive_count == 0
                         ? 0
                         : 1.0 - static_cast<double>(count_at_or_under(accepted_positives, t)) /
                                     static_cast<double>(positive_count);
    curve.push_back(p);
  }
  return curve;
}

}  // namespace

std::vector<TradeOffPoint> verification_curve(std::span<const LabelledDistance> pairs,
                                              std::size_t max_points) {
  std::vector<float> negatives, positives;
  for (const LabelledDistance& p : pairs) (p.same ? positives : negatives).push_back(p.distance);
  std::sort(negatives.begin(), negatives.end());
  std::sort(positives.begin(), positives.end());
  return trade_off_curve(negatives, positives, positives.size(), max_points);
}

std::vector<TradeOffPoint> identification_curve(std::span<const SearchOutcome> searches,
                                                std::size_t max_points) {
  const SplitSearches split = split_searches(searches);
  return trade_off_curve(split.non_mated, split.found, split.mated, max_points);
}

GroupFigures group_figures(const GroupedComparisons& comparisons, float threshold,
                           std::optional<double> stated_fmr) {
  GroupFigures out;
  out.threshold = threshold;
  out.stated_fmr = stated_fmr;
  const auto count = [threshold](std::span<const float> distances, bool same) {
    Rate rate;
    rate.trials = distances.size();
    // A genuine pair errs when it does not match; an impostor pair when it does.
    for (const float d : distances) rate.errors += same ? d > threshold : d <= threshold;
    return rate;
  };
  for (std::size_t i = 0; i < comparisons.names.size(); ++i) {
    GroupRates g;
    g.group = comparisons.names[i];
    g.fmr = count(comparisons.impostor[i], false);
    g.fnmr = count(comparisons.genuine[i], true);
    out.groups.push_back(std::move(g));
  }
  out.across_groups_fmr = count(comparisons.across_impostor, false);
  const GroupRates* worst = nullptr;
  const GroupRates* best = nullptr;
  std::optional<double> best_fnmr;
  for (const GroupRates& g : out.groups) {
    if (g.fmr.trials > 0) {
      if (!worst || g.fmr.value() > worst->fmr.value()) worst = &g;
      if (!best || g.fmr.value() < best->fmr.value()) best = &g;
    }
    if (g.fnmr.trials > 0 && (!best_fnmr || g.fnmr.value() < *best_fnmr)) {
      best_fnmr = g.fnmr.value();
    }
  }
  if (worst) {
    out.worst_group = worst->group;
    out.best_group = best->group;
    if (best->fmr.errors > 0) out.fmr_differential = worst->fmr.value() / best->fmr.value();
  }
  for (GroupRates& g : out.groups) {
    if (best && best->fmr.errors > 0 && g.fmr.trials)
      g.fmr_ratio = g.fmr.value() / best->fmr.value();
    if (best_fnmr && *best_fnmr > 0 && g.fnmr.trials) g.fnmr_ratio = g.fnmr.value() / *best_fnmr;
    if (stated_fmr && *stated_fmr > 0 && g.fmr.trials)
      g.fmr_to_stated = g.fmr.value() / *stated_fmr;
  }
  return out;
}

namespace {

double standard_normal_cdf(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}

// x with standard_normal_cdf(x) = p, by bisection (the CDF is monotonic; 200 halvings of
// [-40, 40] reach double precision).
double standard_normal_quantile(double p) {
  double low = -40, high = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = (low + high) / 2;
    (standard_normal_cdf(mid) < p ? low : high) = mid;
  }
  return (low + high) / 2;
}

}  // namespace

namespace {

void check_calibration_request(double target_fpir, std::size_t gallery_size) {
  if (!(target_fpir > 0 && target_fpir < 1)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "target FPIR must be between 0 and 1 (e.g. 0.01), got " + std::to_string(target_fpir));
  }
  if (gallery_size == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "gallery size must be at least 1 identity (the watchlist's expected size)");
  }
}

double per_comparison_fmr_for(double target_fpir, std::size_t gallery_size) {
  return -std::expm1(std::log1p(-target_fpir) / static_cast<double>(gallery_size));
}

}  // namespace

Calibration calibrate_from_tail(double tail_mean, double tail_sd, std::size_t impostor_comparisons,
                                double target_fpir, std::size_t gallery_size) {
  check_calibration_request(target_fpir, gallery_size);
  Calibration c;
  c.target_fpir = target_fpir;
  c.gallery_size = gallery_size;
  c.impostor_comparisons = impostor_comparisons;
  c.per_comparison_fmr = per_comparison_fmr_for(target_fpir, gallery_size);
  c.tail_mean = tail_mean;
  c.tail_sd = tail_sd;
  c.extrapolated = true;
  c.max_distance =
      static_cast<float>(tail_mean + tail_sd * standard_normal_quantile(c.per_comparison_fmr));
  return c;
}

Calibration calibrate_built_in(const DescriptorModel& model, double target_fpir,
                               std::size_t gallery_size) {
  const DescriptorCalibration& c = model.calibration;
  return calibrate_from_tail(c.impostor_tail_mean, c.impostor_tail_sd, c.impostor_comparisons,
                             target_fpir, gallery_size);
}

float default_watchlist_threshold(const DescriptorModel& model) {
  return calibrate_built_in(model, kDefaultTargetFpir, kDefaultExpectedIdentities).max_distance;
}

double built_in_fmr_at(const DescriptorModel& model, float max_distance) {
  const DescriptorCalibration& c = model.calibration;
  return standard_normal_cdf((max_distance - c.impostor_tail_mean) / c.impostor_tail_sd);
}

std::string built_in_calibration_data(const DescriptorModel& model) {
  return "frs's built-in impostor model of " + std::string(model.id) +
         " (lfw10 and crops pooled; docs/accuracy.md)";
}

Calibration calibrate(std::span<const float> impostor_distances, double target_fpir,
                      std::size_t gallery_size) {
  check_calibration_request(target_fpir, gallery_size);
  constexpr std::size_t kMinImpostors = 100;
  if (impostor_distances.size() < kMinImpostors) {
    throw Error(ErrorCode::kInvalidArgument,
                "calibration needs at least 100 comparisons of different people, got " +
                    std::to_string(impostor_distances.size()) +
                    ": evaluate more identities (or more photos each)");
  }
  const std::vector<float> sorted = sorted_copy(impostor_distances);
  const double per_comparison = per_comparison_fmr_for(target_fpir, gallery_size);
  if (support_for(per_comparison, sorted.size()) == Support::kEnough) {
    Calibration c;
    c.target_fpir = target_fpir;
    c.gallery_size = gallery_size;
    c.impostor_comparisons = sorted.size();
    c.per_comparison_fmr = per_comparison;
    c.max_distance = threshold_on_sorted(sorted, per_comparison).threshold;
    return c;
  }
  auto quantile = [&](double q) {
    return static_cast<double>(
        sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))]);
  };
  const double q01 = quantile(0.01), q10 = quantile(0.10);
  const double z01 = standard_normal_quantile(0.01), z10 = standard_normal_quantile(0.10);
  const double tail_sd = (q10 - q01) / (z10 - z01);
  if (!(tail_sd > 0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "the impostor distances have no spread in their lower tail (are the photos "
                "duplicates?): cannot extrapolate");
  }
  return calibrate_from_tail(q10 - tail_sd * z10, tail_sd, sorted.size(), target_fpir,
                             gallery_size);
}

CalibrationForEveryGroup calibrate_for_every_group(std::span<const float> impostor_distances,
                                                   const GroupedComparisons& comparisons,
                                                   double target_fpir, std::size_t gallery_size) {
  CalibrationForEveryGroup out;
  out.pooled = calibrate(impostor_distances, target_fpir, gallery_size);
  out.binding = out.pooled;
  for (std::size_t i = 0; i < comparisons.names.size(); ++i) {
    GroupCalibration g;
    g.group = comparisons.names[i];
    try {
      g.calibration = calibrate(comparisons.impostor[i], target_fpir, gallery_size);
      if (g.calibration->max_distance < out.binding.max_distance) {
        out.binding = *g.calibration;
        out.bound_by = g.group;
      }
    } catch (const Error& e) {
      g.problem = e.what();
    }
    out.groups.push_back(std::move(g));
  }
  return out;
}

}  // namespace frs
