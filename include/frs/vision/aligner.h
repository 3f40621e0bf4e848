#pragma once
// dlib's 68-point landmarks and the aligned 150x150 chip the descriptor network reads.

#include <array>
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

  // Thread-safe. Fills box, score, landmarks, dlib's chip and quality (not the ArcFace chip,
  // which FaceEngine adds when its model reads it, nor the embedding).
  Face align(const cv::Mat& bgr, const Detection& detection) const;
  // The same from landmarks found before (a stored face's, in `bgr`'s pixels): no landmark
  // search, so the chip is the one those landmarks give. Box and score are left empty.
  Face align_to(const cv::Mat& bgr, const std::array<cv::Point2f, kLandmarkCount>& landmarks) const;

  // Chip side in pixels and the border around the face, as a fraction of its size.
  static constexpr int kChipSize = 150;
  static constexpr double kChipPadding = 0.25;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The five points ArcFace-style networks are aligned by, from dlib's 68 (0-based): the
// eye centres (means of 36..41's upper and lower lids: 37,38,40,41 and 43,44,46,47), the
// nose tip (30) and the mouth corners (means of 48,60 and of 54,64).
std::array<cv::Point2f, 5> five_points(const std::array<cv::Point2f, kLandmarkCount>& landmarks);

// The standard 112x112 ArcFace template those five points are mapped onto.
inline constexpr int kArcFaceChipSize = 112;
extern const std::array<cv::Point2f, 5> kArcFaceTemplate;

// The 112x112 BGR chip: the least-squares similarity transform of the five points onto the
// template (every point counts; RANSAC, OpenCV's default, cost 3 points of rank-1),
// bilinear, black outside the image.
cv::Mat arcface_chip(const cv::Mat& bgr, const std::array<cv::Point2f, kLandmarkCount>& landmarks);

// Quality of an aligned face from its box, landmarks and chip.
FaceQuality measure_quality(const Face& face);

// A cheap stand-in for measure_quality before alignment (about 0.1 ms instead of the
// landmarks' several): size from the box, sharpness from the box's pixels scaled to the
// chip's size, yaw from BlazeFace's nose and ear keypoints (0 without keypoints), pitch 0.
// Comparable between sightings of one face, which is what the live path uses it for:
// choosing which of a track's faces are worth aligning and embedding.
FaceQuality estimate_quality(const cv::Mat& bgr, const Detection& detection);

}  // namespace frs
