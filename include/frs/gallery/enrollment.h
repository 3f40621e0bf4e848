#pragma once
// Turning an enrollment photo into a stored face: decode, find the face meant, check it is
// usable, embed it, and keep a thumbnail and the photo's hash. Shared by the Enroll RPC and
// anything else that enrolls.

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "frs/gallery/store.h"
#include "frs/vision/face_engine.h"

namespace frs {

struct EnrollmentRules {
  // Smallest face accepted, in pixels of the photo (the box's longer side). Default 40;
  // the descriptor reads 150-pixel chips, so smaller faces are upsampled guesses.
  float min_face_px = 40;
  // With no face chosen, a photo is refused when its second-largest face is at least this
  // share of the largest's side: which person is meant is ambiguous. Default 0.8.
  float ambiguous_size_ratio = 0.8f;
  // Detections scoring under this take no part in choosing the subject. Default 0.7
  // (BlazeFace's false detections on the shared photos score 0.50-0.61, real faces of
  // enrollment quality 0.85+).
  float confident_score = 0.7f;
  int thumbnail_px = 112;  // side of the stored JPEG thumbnail
};

struct PreparedPhoto {
  bool accepted = false;
  std::string reason;  // why not, in words an operator can act on
  StoredFace face;     // descriptor, hash, thumbnail, quality (no ids yet)
  cv::Rect2f box;
};

PreparedPhoto prepare_photo(const FaceEngine& engine, std::span<const std::uint8_t> image,
                            std::optional<int> face_index, const EnrollmentRules& rules = {});

// Lower-case hex SHA-256 of the bytes.
std::string sha256_hex(std::span<const std::uint8_t> bytes);

}  // namespace frs
