#pragma once
// What the face engine produces for one face.

#include <array>
#include <opencv2/core.hpp>
#include <optional>

#include "frs/core/embedding.h"

namespace frs {

inline constexpr int kLandmarkCount = 68;

// Per-face quality, used to reject poor enrollment photos and to pick a track's best chips.
struct FaceQuality {
  float face_px = 0;    // side of the face box in source pixels (larger = more detail)
  float sharpness = 0;  // variance of the Laplacian of the grey 150x150 chip (higher = sharper)
  float yaw = 0;        // -1 (turned fully to the image's left) .. 0 (frontal) .. 1 (right)
  float pitch = 0;      // nose position between eye line and chin, 0 = typical frontal;
                        // negative = looking up, positive = looking down
  // Overall score in [0,1], the product of a size, a sharpness and a pose factor (higher =
  // better); see docs/accuracy.md for the factors.
  float score = 0;
};

struct Face {
  cv::Rect2f box;   // source pixels; may reach past the image edge for a cut-off face
  float score = 0;  // detector confidence (see Detection::score)
  std::array<cv::Point2f, kLandmarkCount> landmarks{};  // dlib's 68 points, source pixels
  cv::Mat chip;  // 150x150 BGR, aligned as dlib does (padding 0.25)
  // 112x112 BGR, five points on the ArcFace template (aligner.h); made only by engines
  // whose descriptor model reads it (faceplugin-v1, fused-v1), else empty.
  cv::Mat arcface_chip;
  FaceQuality quality;
  std::optional<Embedding> embedding;  // set when the engine was asked to embed
};

}  // namespace frs
