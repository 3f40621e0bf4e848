#include "frs/eval/fairness.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "frs/core/error.h"

namespace frs {
namespace {

// Appends `more` to `into`, group by group. Both come from grouped_comparisons with one
// GroupsFile, whose names are every group of the file, sorted: the same in both.
void append(GroupedComparisons& into, GroupedComparisons&& more) {
  if (into.names.empty()) {
    into = std::move(more);
    return;
  }
  for (std::size_t g = 0; g < more.names.size(); ++g) {
    into.impostor[g].insert(into.impostor[g].end(), more.impostor[g].begin(),
                            more.impostor[g].end());
    into.genuine[g].insert(into.genuine[g].end(), more.genuine[g].begin(), more.genuine[g].end());
  }
  into.across_impostor.insert(into.across_impostor.end(), more.across_impostor.begin(),
                              more.across_impostor.end());
}

struct Judged {
  GroupFigures figures;
  Rate fnmr;
};

Judged judge(const GroupedComparisons& c, double pooled_fmr) {
  std::vector<float> impostors = c.across_impostor;
  std::vector<float> genuine;
  for (std::size_t g = 0; g < c.names.size(); ++g) {
    impostors.insert(impostors.end(), c.impostor[g].begin(), c.impostor[g].end());
    genuine.insert(genuine.end(), c.genuine[g].begin(), c.genuine[g].end());
  }
  if (impostors.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no comparison of two different people with groups to judge the normalisation "
                "on");
  }
  // A pair in two shared groups counts twice here, as in the groups' own rates.
  const float threshold = threshold_at(impostors, pooled_fmr).threshold;
  Judged out;
  out.figures = group_figures(c, threshold, pooled_fmr);
  out.fnmr.trials = genuine.size();
  for (const float d : genuine) out.fnmr.errors += d > threshold;
  return out;
}

}  // namespace

FairNormalisationTrial fair_normalisation_trial(const std::vector<EvalImage>& images,
                                                const GroupsFile& groups,
                                                const ScoreNormaliser::FitOptions& options) {
  if (groups.groups_of.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the normalisation is judged per group: give the photos' groups");
  }
  std::set<std::string> identity_set;
  for (const EvalImage& image : images) {
    if (image.descriptor) identity_set.insert(image.identity);
  }
  std::vector<std::string> identities(identity_set.begin(), identity_set.end());
  std::shuffle(identities.begin(), identities.end(), std::mt19937(options.seed));
  std::map<std::string, int> half_of;
  for (std::size_t i = 0; i < identities.size(); ++i)
    half_of[identities[i]] = static_cast<int>(i % 2);

  FairNormalisationTrial out;
  out.clusters = options.clusters;
  out.pooled_fmr = options.false_match_rate;
  GroupedComparisons raw, normalised;
  for (int fitted = 0; fitted < 2; ++fitted) {
    std::vector<Embedding> fit_descriptors;
    std::vector<std::string> fit_identities;
    std::vector<EvalImage> judged;
    for (const EvalImage& image : images) {
      if (!image.descriptor) continue;
      if (half_of.at(image.identity) == fitted) {
        fit_descriptors.push_back(*image.descriptor);
        fit_identities.push_back(image.identity);
      } else {
        judged.push_back(image);
      }
    }
    const ScoreNormaliser normaliser =
        ScoreNormaliser::fit(fit_descriptors, fit_identities, options);
    for (const auto& cluster : normaliser.clusters())
      out.unsupported_clusters += !cluster.supported;
    append(raw, grouped_comparisons(judged, groups));
    append(normalised, grouped_comparisons(judged, groups, &normaliser));
  }
  const Judged before = judge(raw, out.pooled_fmr);
  const Judged after = judge(normalised, out.pooled_fmr);
  out.before = before.figures;
  out.fnmr_before = before.fnmr;
  out.after = after.figures;
  out.fnmr_after = after.fnmr;
  return out;
}

}  // namespace frs
