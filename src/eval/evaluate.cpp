#include "frs/eval/evaluate.h"

#include "frs/core/error.h"

namespace frs {

Evaluation evaluate(std::vector<LabelledDistance> pairs,
                    const std::vector<EvalImage>& identity_images,
                    const EvaluationOptions& options) {
  Evaluation out;
  out.pairs = std::move(pairs);
  out.verification = verify(out.pairs, options.max_distance, kReportedFmrs);
  if (!identity_images.empty()) {
    OpenSetOptions open_set = options.open_set;
    open_set.normaliser = options.normaliser;
    out.searches = open_set_searches(identity_images, open_set);
    out.identification = identify(out.searches, options.max_distance, kReportedFpirs);
  }
  std::optional<GroupedComparisons> grouped;
  if (options.groups) {
    if (identity_images.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "per-group figures need photos labelled with identities (a pairs file has "
                  "none)");
    }
    grouped = grouped_comparisons(identity_images, *options.groups, options.normaliser);
    out.groups = group_figures(*grouped, options.max_distance, options.stated_fmr);
  }
  if (options.target_fpir > 0) {
    std::vector<float> impostors;
    for (const LabelledDistance& p : out.pairs) {
      if (!p.same) impostors.push_back(p.distance);
    }
    if (grouped) {
      out.group_calibration =
          calibrate_for_every_group(impostors, *grouped, options.target_fpir, options.gallery_size);
      out.calibration = out.group_calibration->binding;
    } else {
      out.calibration = calibrate(impostors, options.target_fpir, options.gallery_size);
    }
  }
  return out;
}

}  // namespace frs
