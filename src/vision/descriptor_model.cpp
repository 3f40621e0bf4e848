#include "frs/vision/descriptor_model.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "frs/core/digest.h"
#include "frs/core/error.h"
#include "frs/vision/face_engine.h"

namespace frs {

const std::vector<DescriptorModel>& descriptor_models() {
  // The calibrations are `frs eval --compare-descriptors` on the shared sets (2026-12-01;
  // docs/accuracy.md, "Descriptor models"): verify_max_distance is the equal-error
  // threshold on lfw10 rounded to 0.01 (dlib's own published 0.6 for dlib, whose lfw10
  // EER threshold is 0.611); the tails are those --calibrate fits to the 18,113 impostor
  // comparisons of lfw10 and crops pooled.
  static const std::vector<DescriptorModel> models = {
      {kDlibDescriptorId,
       128,
       DescriptorMetric::kEuclidean,
       DescriptorChip::kDlib,
       "dlib's 68 landmarks, get_face_chip_details, 150x150 with padding 0.25",
       {kDescriptorModelFile},
       {0.6f, 0.7842, 0.0676, 18113}},
      {kFacepluginDescriptorId,
       512,
       DescriptorMetric::kCosine,
       DescriptorChip::kArcFace,
       "five points from dlib's 68 landmarks onto the 112x112 ArcFace template "
       "(least-squares similarity)",
       {kFacepluginModelFile},
       {1.16f, 1.4106, 0.0719, 18113}},
      {kFusedDescriptorId,
       640,
       DescriptorMetric::kCosine,
       DescriptorChip::kBoth,
       "both of the above: dlib-resnet-v1 (weight 0.7) and faceplugin-v1 (0.3), each "
       "normalised",
       {kDescriptorModelFile, kFacepluginModelFile},
       {0.73f, 0.9067, 0.0525, 18113}},
  };
  return models;
}

std::string descriptor_model_ids() {
  std::string ids;
  for (const DescriptorModel& m : descriptor_models()) {
    if (!ids.empty()) ids += ", ";
    ids += m.id;
  }
  return ids;
}

const DescriptorModel& descriptor_model(std::string_view id) {
  for (const DescriptorModel& m : descriptor_models()) {
    if (m.id == id) return m;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown descriptor model '" + std::string(id) +
                                               "': choose one of " + descriptor_model_ids());
}

void require_descriptor_of(const DescriptorModel& model, std::span<const float> descriptor,
                           const std::string& what) {
  if (descriptor.size() == model.dimension) return;
  const bool another_model =
      std::any_of(descriptor_models().begin(), descriptor_models().end(),
                  [&](const DescriptorModel& m) { return descriptor.size() == m.dimension; });
  throw Error(another_model ? ErrorCode::kFailedPrecondition : ErrorCode::kInvalidArgument,
              what + " has " + std::to_string(descriptor.size()) + " values; " +
                  std::string(model.id) + " descriptors have " + std::to_string(model.dimension) +
                  " (embed with frs embed --descriptor " + std::string(model.id) + ")");
}

std::string descriptor_model_checksum(const DescriptorModel& model,
                                      const std::filesystem::path& models_dir) {
  std::string digests;
  for (std::string_view file : model.files) {
    const auto path = models_dir / file;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "cannot read " + path.string() + ": run scripts/setup.sh (or models/fetch.sh)");
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    digests += sha256_hex(bytes);
  }
  return model.files.size() == 1 ? digests : sha256_hex(digests);
}

}  // namespace frs
