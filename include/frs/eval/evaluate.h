#pragma once
// One evaluation from described images to every figure, shared by `frs eval` and the
// Evaluate RPC so that both report the same thing.

#include <optional>
#include <vector>

#include "frs/eval/dataset.h"
#include "frs/eval/metrics.h"

namespace frs {

// The operating points reported: verification at these FMRs, identification at these FPIRs.
inline constexpr double kReportedFmrs[] = {1e-2, 1e-3, 1e-4};
inline constexpr double kReportedFpirs[] = {0.1, 0.01};

struct EvaluationOptions {
  // The operating threshold reported at (frs eval and the Evaluate RPC give the model's
  // default_watchlist_threshold unless told another).
  float max_distance = 0.5f;
  OpenSetOptions open_set;  // identification (identity sets only)
  // Calibration, when target_fpir > 0: the max_distance keeping the expected false-alert
  // rate at target_fpir for a watchlist of gallery_size identities.
  double target_fpir = 0;
  std::size_t gallery_size = 0;
  // The identities' groups, when per-group figures are wanted (identity sets only): FMR and
  // FNMR per group at max_distance, and a calibration that holds for every group.
  std::optional<GroupsFile> groups;
  // The per-comparison FMR max_distance states (built_in_fmr_at), each group's rate is
  // set against; none: not compared.
  std::optional<double> stated_fmr;
  // Every comparison scored by this normaliser's distances (the pairs given to evaluate()
  // too: all_pairs with it); not owned. None: raw distances.
  const ScoreNormaliser* normaliser = nullptr;
};

struct Evaluation {
  std::vector<LabelledDistance> pairs;  // every comparison
  Verification verification;
  std::vector<SearchOutcome> searches;  // open-set searches (identity sets only)
  std::optional<Identification> identification;
  // With groups, the binding calibration of group_calibration: the one that holds for
  // every group.
  std::optional<Calibration> calibration;
  std::optional<GroupFigures> groups;
  std::optional<CalibrationForEveryGroup> group_calibration;
};

// `pairs`: the comparisons (all_pairs or listed_pairs). `identity_images`: the described
// images of an identity set, for open-set identification; empty for a pairs file. Throws
// frs::Error(kInvalidArgument) for options out of range or too little data.
Evaluation evaluate(std::vector<LabelledDistance> pairs,
                    const std::vector<EvalImage>& identity_images,
                    const EvaluationOptions& options);

}  // namespace frs
