#pragma once
// The descriptor networks: dlib's ResNet over aligned 150x150 chips, and ONNX networks over
// 112x112 ArcFace chips (faceplugin-v1). FaceEngine picks and combines them by the
// descriptor model (include/frs/vision/descriptor_model.h).

#include <filesystem>
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <vector>

#include "frs/core/cancel.h"
#include "frs/core/embedding.h"

namespace frs {

struct EmbedderOptions {
  std::filesystem::path model;  // dlib_face_recognition_resnet_model_v1.dat (converted)
  // Networks that run at once; a batch is split across them. Default 1; range 1..64.
  // Each holds its own 22 MB copy of the weights.
  int threads = 1;
  // Chips per forward pass of one network. Default 8; range 1..256.
  int batch_size = 8;
  // Also embed each chip mirrored left-right and average the two descriptors (twice the
  // cost). Default off until docs/accuracy.md shows it pays.
  bool flip_average = false;
  // Instead, the mean descriptor of this many randomly jittered copies of each chip
  // (dlib::jitter_image: slightly rotated, zoomed, shifted, mirrored half the time), as
  // dlib's own face recognition example does with 100; N times the cost. Default 0 = off;
  // range 0..100. The jitter is seeded per chip: the same chip gives the same descriptor.
  int jitter = 0;
};

class FaceEmbedder {
 public:
  explicit FaceEmbedder(const EmbedderOptions& options);
  ~FaceEmbedder();
  FaceEmbedder(const FaceEmbedder&) = delete;
  FaceEmbedder& operator=(const FaceEmbedder&) = delete;

  // Thread-safe. One descriptor per chip, in order. Chips must be 150x150 8-bit BGR.
  // Stops with Error(kCancelled) when `cancel` fires (checked between batches).
  std::vector<Embedding> embed(const std::vector<cv::Mat>& chips,
                               const Cancellation& cancel = {}) const;

  const EmbedderOptions& options() const { return options_; }

 private:
  struct Impl;
  EmbedderOptions options_;
  std::unique_ptr<Impl> impl_;
};

struct OnnxEmbedderOptions {
  std::filesystem::path model;  // fr_feature.onnx: input [N,3,112,112], output [N,D]
  int threads = 1;              // networks that run at once; range 1..64
  bool flip_average = false;    // as EmbedderOptions::flip_average
};

// An ArcFace-style network through OpenCV's DNN module: BGR chips as OpenCV decodes them
// (measured better than RGB for faceplugin-v1), (v - 127) / 128, NCHW. Outputs are scaled
// to unit length (DescriptorMetric::kCosine).
class OnnxFaceEmbedder {
 public:
  explicit OnnxFaceEmbedder(const OnnxEmbedderOptions& options);
  ~OnnxFaceEmbedder();
  OnnxFaceEmbedder(const OnnxFaceEmbedder&) = delete;
  OnnxFaceEmbedder& operator=(const OnnxFaceEmbedder&) = delete;

  // Thread-safe. One unit-length descriptor per chip, in order. Chips must be 112x112 8-bit
  // BGR. Stops with Error(kCancelled) when `cancel` fires (checked between chips).
  std::vector<Embedding> embed(const std::vector<cv::Mat>& chips,
                               const Cancellation& cancel = {}) const;

  std::size_t dimension() const { return dimension_; }

 private:
  struct Impl;
  OnnxEmbedderOptions options_;
  std::size_t dimension_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Runs `work(begin, end)` over [0, count) in at most `shares` contiguous parts at once.
void run_in_shares(std::size_t count, std::size_t shares,
                   const std::function<void(std::size_t, std::size_t)>& work);

}  // namespace frs
