#pragma once
// How much fair score normalisation (include/frs/core/score_normaliser.h) evens out the
// false-match rates of groups, measured as `frs eval --fair-clusters K` reports it: the
// normaliser is fitted on half of the identities and judged on the other half (then the
// halves swap), so no face is judged by a normaliser that has seen it. Before and after,
// the threshold is the one at which all judged comparisons of different people falsely
// match at one pooled rate, so the two differ only in how the errors are spread.

#include <cstddef>
#include <vector>

#include "frs/core/score_normaliser.h"
#include "frs/eval/dataset.h"
#include "frs/eval/metrics.h"

namespace frs {

struct FairNormalisationTrial {
  int clusters = 0;
  double pooled_fmr = 0;  // the rate both thresholds are set for (and the fit's)
  // At the threshold giving `pooled_fmr` over every judged impostor comparison; each
  // group's `fmr_to_stated` is its rate over `pooled_fmr`.
  GroupFigures before, after;
  Rate fnmr_before, fnmr_after;          // same-person comparisons judged, at those thresholds
  std::size_t unsupported_clusters = 0;  // over both fits: too few comparisons, not shifted
};

// Throws Error(kInvalidArgument) for options out of range, no groups, or too few described
// photos in a half for the clusters asked for.
FairNormalisationTrial fair_normalisation_trial(const std::vector<EvalImage>& images,
                                                const GroupsFile& groups,
                                                const ScoreNormaliser::FitOptions& options);

}  // namespace frs
