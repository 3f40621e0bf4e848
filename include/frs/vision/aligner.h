#pragma once
// dlib's 68-point landmarks and the aligned 150x150 chip the descriptor network reads.

#include <filesystem>
#include <memory>

#include "frs/vision/detector.h"
#include "frs/vision/face.h"

namespace frs {

class FaceAligner {
 public:
  // `shape_predictor`: shape_predictor_68_face_landmarks.dat (Debian's libdlib-data).
  explicit FaceAligner(const std::filesystem::path& shape_predictor);
  ~FaceAligner();
  FaceAligner(const FaceAligner&) = delete;
  FaceAligner& operator=(const FaceAligner&) = delete;

  // Thread-safe. Fills box, score, landmarks, chip and quality (not the embedding).
  Face align(const cv::Mat& bgr, const Detection& detection) const;

  // Chip side in pixels and the border around the face, as a fraction of its size.
  static constexpr int kChipSize = 150;
  static constexpr double kChipPadding = 0.25;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Quality of an aligned face from its box, landmarks and chip.
FaceQuality measure_quality(const Face& face);

// A cheap stand-in for measure_quality before alignment (about 0.1 ms instead of the
// landmarks' several): size from the box, sharpness from the box's pixels scaled to the
// chip's size, yaw from BlazeFace's nose and ear keypoints (0 without keypoints), pitch 0.
// Comparable between sightings of one face, which is what the live path uses it for:
// choosing which of a track's faces are worth aligning and embedding.
FaceQuality estimate_quality(const cv::Mat& bgr, const Detection& detection);

}  // namespace frs
