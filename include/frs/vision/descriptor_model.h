#pragma once
// The face descriptor models frs knows, each a versioned id. A descriptor made by one model
// is only ever compared with descriptors of the same model: the engine, the galleries and
// the services check the id, and `distance` (include/frs/core/embedding.h) refuses two
// descriptors of different lengths.

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace frs {

// How a model's raw outputs become the descriptor frs stores and compares.
enum class DescriptorMetric {
  // The raw output; `distance` is their Euclidean distance (dlib's descriptor, trained so).
  kEuclidean,
  // The output scaled to unit length: `distance` is then sqrt(2 - 2 cos), a monotone
  // function of the cosine, so FAISS L2 indexes and every threshold work unchanged.
  kCosine,
};

// Which aligned chip a model reads (see include/frs/vision/face.h).
enum class DescriptorChip {
  kDlib,     // Face::chip, 150x150, dlib's get_face_chip_details (padding 0.25)
  kArcFace,  // Face::arcface_chip, 112x112, five points onto the ArcFace template
  kBoth,     // a fusion of models that read one each
};

// A verification threshold and the impostor tail the built-in calibration uses, both
// measured with `frs eval` on the shared lfw10 and crops sets (docs/accuracy.md).
struct DescriptorCalibration {
  float verify_max_distance;  // `frs compare`'s default same-person threshold
  double impostor_tail_mean;  // normal fit of the impostor distances' lower tail
  double impostor_tail_sd;
  std::size_t impostor_comparisons;  // how many impostor distances the fit saw
};

struct DescriptorModel {
  std::string_view id;  // versioned, e.g. "dlib-resnet-v1"; stored with every descriptor
  std::size_t dimension;
  DescriptorMetric metric;
  DescriptorChip chip;
  std::string_view alignment;           // in words, for `frs watchlist show` and the docs
  std::vector<std::string_view> files;  // what it reads from the models directory
  DescriptorCalibration calibration;
};

inline constexpr std::string_view kDlibDescriptorId = "dlib-resnet-v1";
inline constexpr std::string_view kFacepluginDescriptorId = "faceplugin-v1";
inline constexpr std::string_view kFusedDescriptorId = "fused-v1";
// The default for new watchlists and offline commands, chosen by measurement: on the live
// clip fused-v1 and faceplugin-v1 put an audience member within Obama's default threshold
// and dlib's model keeps every stranger out with a margin (docs/accuracy.md, "The default
// model"); fused-v1 misses fewer people in photo sets and is chosen per watchlist.
inline constexpr std::string_view kDefaultDescriptorId = kDlibDescriptorId;

inline constexpr const char* kFacepluginModelFile = "fr_feature.onnx";

// fused-v1 is [sqrt(w) * dlib / |dlib|, sqrt(1 - w) * faceplugin / |faceplugin|] with w
// = 0.7: its squared distance is 0.7 d_dlib^2 + 0.3 d_faceplugin^2 of the two normalised
// descriptors, the weighting measured best in issue 14 (docs/accuracy.md).
inline constexpr double kFusedDlibWeight = 0.7;

// Every model, the default first.
const std::vector<DescriptorModel>& descriptor_models();
// The model with this id; Error(kInvalidArgument) naming the known ids otherwise.
const DescriptorModel& descriptor_model(std::string_view id);
// "dlib-resnet-v1, faceplugin-v1, fused-v1" (for help and error text).
std::string descriptor_model_ids();

// Error unless `descriptor` has `model`'s length: kFailedPrecondition when the length is
// another known model's (a descriptor frs cannot compare with this one), kInvalidArgument
// for any other (no descriptor at all). `what` names it in the message.
void require_descriptor_of(const DescriptorModel& model, std::span<const float> descriptor,
                           const std::string& what);

// SHA-256 (hex) over the model's files in `models_dir`, each file's own digest in order:
// what an accountability report quotes. Reads the files (22 MB for dlib's: ~0.2 s).
std::string descriptor_model_checksum(const DescriptorModel& model,
                                      const std::filesystem::path& models_dir);

}  // namespace frs
