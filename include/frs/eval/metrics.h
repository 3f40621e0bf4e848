#pragma once
// Accuracy measures of a face matcher from its distances (lower = more alike; a match is a
// distance at or under the threshold), as NIST's face recognition evaluations define them:
//   verification (1:1): false match rate (FMR) over impostor comparisons, false non-match
//     rate (FNMR) over genuine ones;
//   open-set identification (1:N): a mated search (the person is enrolled) fails when the
//     nearest identity is someone else or farther than the threshold (FNIR); a non-mated
//     search (the person is not enrolled) is a false alert when its nearest identity is
//     within the threshold (FPIR).
// Pure functions over numbers: the data set and the face engine are elsewhere (dataset.h).

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "frs/vision/descriptor_model.h"

namespace frs {

// errors of trials.
struct Rate {
  std::size_t errors = 0;
  std::size_t trials = 0;
  double value() const {
    return trials ? static_cast<double>(errors) / static_cast<double>(trials) : 0;
  }
};

// Whether the data can support an error rate of `target`: enough trials that 10 errors
// define it (kEnough), at least one error's worth (kFew: a rough figure), or fewer (kTooFew:
// the threshold is only "no error seen").
enum class Support { kEnough, kFew, kTooFew };
const char* to_string(Support support);
Support support_for(double target, std::size_t trials);

// The largest threshold at which the error rate over `negatives` (distances that must not
// match) stays at or under `target`.
struct ThresholdAt {
  double target = 0;
  float threshold = 0;
  Rate achieved;  // over `negatives`, at `threshold`
  Support support = Support::kTooFew;
};
ThresholdAt threshold_at(std::span<const float> negatives, double target);

// One comparison of two images.
struct LabelledDistance {
  float distance = 0;
  bool same = false;  // the same person
};

struct Verification {
  std::size_t genuine = 0, impostor = 0;
  float threshold = 0;  // the configured one
  Rate fmr, fnmr;       // at `threshold`
  double accuracy = 0;  // share of comparisons decided right at `threshold`
  // Where FMR and FNMR are (nearest to) equal: their mean there, and that threshold. 0
  // without both kinds of comparison.
  double equal_error_rate = 0;
  float equal_error_threshold = 0;
  struct AtFmr {
    ThresholdAt point;  // threshold for the target FMR
    Rate fnmr;          // at that threshold
  };
  std::vector<AtFmr> at_fmr;
};
Verification verify(std::span<const LabelledDistance> pairs, float threshold,
                    std::span<const double> fmr_targets);

// The outcome of one 1:N search.
struct SearchOutcome {
  bool mated = false;          // the searched person is enrolled
  bool nearest_right = false;  // mated: the nearest identity is that person
  // Distance to the nearest identity; none when the gallery was empty.
  std::optional<float> nearest_distance;
};

struct Identification {
  std::size_t mated = 0, non_mated = 0;
  double rank1 = 0;     // share of mated searches whose nearest identity is right
  float threshold = 0;  // the configured one
  Rate fnir, fpir;      // at `threshold`
  struct AtFpir {
    ThresholdAt point;  // threshold for the target FPIR (over non-mated searches)
    Rate fnir;          // at that threshold
  };
  std::vector<AtFpir> at_fpir;
};
Identification identify(std::span<const SearchOutcome> searches, float threshold,
                        std::span<const double> fpir_targets);

// An error trade-off (DET) curve: at each threshold, the share of negatives falsely accepted
// (FMR for comparisons, FPIR for searches) and of positives falsely rejected (FNMR, FNIR).
// Thresholds are the distances seen, thinned to at most `max_points`, ascending.
struct TradeOffPoint {
  float threshold = 0;
  double false_accept = 0;  // FMR or FPIR
  double false_reject = 0;  // FNMR or FNIR
};
std::vector<TradeOffPoint> verification_curve(std::span<const LabelledDistance> pairs,
                                              std::size_t max_points = 400);
std::vector<TradeOffPoint> identification_curve(std::span<const SearchOutcome> searches,
                                                std::size_t max_points = 400);

// The comparisons of an evaluation by group (any attribute the user labels identities
// with: the demographics of NIST's FRVT part 3, a camera, an age band). A pair counts in a
// group when both its images belong to it; impostor pairs whose images share no group are
// counted across groups. Distances only: 4 bytes a pair.
struct GroupedComparisons {
  std::vector<std::string> names;            // sorted
  std::vector<std::vector<float>> impostor;  // per name: within-group, different people
  std::vector<std::vector<float>> genuine;   // per name: within-group, same person
  std::vector<float> across_impostor;        // different people of no common group
};

// FMR and FNMR at the threshold per group, and each group's FMR against the best group's
// and against the rate the threshold states.
struct GroupRates {
  std::string group;
  Rate fmr, fnmr;
  // Ratio to the best (lowest) group's rate; none when the best rate is 0.
  std::optional<double> fmr_ratio, fnmr_ratio;
  // fmr / the stated per-comparison FMR at the threshold (GroupFigures::stated_fmr).
  std::optional<double> fmr_to_stated;
};
struct GroupFigures {
  float threshold = 0;
  std::vector<GroupRates> groups;  // by name
  Rate across_groups_fmr;
  // Within-group FMR, worst (highest) and best (lowest) group, and their ratio (NIST's
  // "false positive differential"); no ratio when the best group had no false match.
  std::string worst_group, best_group;
  std::optional<double> fmr_differential;
  // What the model's built-in calibration states a comparison falsely matches with at
  // `threshold` (built_in_fmr_at); none when not given.
  std::optional<double> stated_fmr;
};
GroupFigures group_figures(const GroupedComparisons& comparisons, float threshold,
                           std::optional<double> stated_fmr = std::nullopt);

// The max_distance that keeps the expected false-alert rate (FPIR) of a watchlist of
// `gallery_size` identities at `target_fpir`. A non-mated search alerts when any of the N
// identities is within the threshold; with comparisons independent, FPIR = 1 - (1 - FMR)^N,
// so each comparison may falsely match with probability 1 - (1 - target)^(1/N). That FMR
// is read off the impostor distances when they are enough (10 false matches' worth);
// otherwise the impostor distribution's lower tail is fitted with a normal distribution
// through its 1% and 10% quantiles and extrapolated.
struct Calibration {
  double target_fpir = 0;
  std::size_t gallery_size = 0;
  double per_comparison_fmr = 0;
  float max_distance = 0;
  std::size_t impostor_comparisons = 0;
  bool extrapolated = false;          // true: from the fitted tail
  double tail_mean = 0, tail_sd = 0;  // the fitted normal, when extrapolated
};
// Throws frs::Error(kInvalidArgument) for a target outside (0,1), a gallery size of 0, or
// fewer than 100 impostor distances.
Calibration calibrate(std::span<const float> impostor_distances, double target_fpir,
                      std::size_t gallery_size);

// A calibration that holds for every group: calibrate() on the pooled impostor distances
// and on each group's own (a group with fewer than 100 is listed with its reason, not
// calibrated); the threshold that keeps the rate for all of them is the smallest. With
// one threshold for everyone, the group whose impostors lie nearest sets it.
struct GroupCalibration {
  std::string group;
  std::optional<Calibration> calibration;
  std::string problem;  // why there is none
};
struct CalibrationForEveryGroup {
  Calibration pooled;                    // every impostor comparison together
  std::vector<GroupCalibration> groups;  // by name
  Calibration binding;                   // the smallest max_distance of the above
  std::string bound_by;                  // its group; "" when the pooled one binds
};
// Throws like calibrate for the pooled distances.
CalibrationForEveryGroup calibrate_for_every_group(std::span<const float> impostor_distances,
                                                   const GroupedComparisons& comparisons,
                                                   double target_fpir, std::size_t gallery_size);

// The same from an impostor tail fitted before (a normal of `tail_mean` and `tail_sd`, from
// `impostor_comparisons` comparisons). Throws like calibrate for the target and the size.
Calibration calibrate_from_tail(double tail_mean, double tail_sd, std::size_t impostor_comparisons,
                                double target_fpir, std::size_t gallery_size);

// frs's own impostor model of a descriptor model, for watchlists created without a
// threshold: calibrate_from_tail with the model's DescriptorCalibration, the normal tail
// `frs eval --calibrate` fitted to the 18,113 comparisons of different people of the shared
// lfw10 and crops sets pooled (docs/accuracy.md, "A calibrated default" and "Descriptor
// models side by side").
Calibration calibrate_built_in(const DescriptorModel& model, double target_fpir,
                               std::size_t gallery_size);
// What a watchlist is calibrated for when nothing else is said: its expected false-alert
// rate and size (frs-server --default-target-fpir and --default-expected-identities).
inline constexpr double kDefaultTargetFpir = 0.01;
inline constexpr std::size_t kDefaultExpectedIdentities = 1000;
// The threshold a new watchlist of `model` gets by default: calibrate_built_in at the two
// defaults above (dlib-resnet-v1 0.496, faceplugin-v1 1.104, fused-v1 0.683). `frs eval`
// reports at it unless told another, and bench_track_fusion judges each model at it.
float default_watchlist_threshold(const DescriptorModel& model);
// The per-comparison false-match rate the built-in impostor model of `model` states at
// `max_distance` (the inverse of calibrate_built_in): what a watchlist at that threshold
// promises each comparison.
double built_in_fmr_at(const DescriptorModel& model, float max_distance);
// What a threshold basis says such a calibration rests on, in words.
std::string built_in_calibration_data(const DescriptorModel& model);

}  // namespace frs
