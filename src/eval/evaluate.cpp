#include "frs/eval/evaluate.h"

namespace frs {

Evaluation evaluate(std::vector<LabelledDistance> pairs,
                    const std::vector<EvalImage>& identity_images,
                    const EvaluationOptions& options) {
  Evaluation out;
  out.pairs = std::move(pairs);
  out.verification = verify(out.pairs, options.max_distance, kReportedFmrs);
  if (!identity_images.empty()) {
    out.searches = open_set_searches(identity_images, options.open_set);
    out.identification = identify(out.searches, options.max_distance, kReportedFpirs);
  }
  if (options.target_fpir > 0) {
    std::vector<float> impostors;
    for (const LabelledDistance& p : out.pairs) {
      if (!p.same) impostors.push_back(p.distance);
    }
    out.calibration = calibrate(impostors, options.target_fpir, options.gallery_size);
  }
  return out;
}

}  // namespace frs
