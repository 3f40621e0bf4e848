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
  // Blurred: the chip's sharpness (FaceQuality::sharpness, variance of the Laplacian)
  // under this. Default 6, range [0, 1000]; 0 turns the check off.
  // Measured (bench_enrollment_gate): lfw10 blurred with sigma 2 / 3 / 4 px falls to 6.9 /
  // 4.1 / 3.2 and moves 0.04 / 0.08 / 0.13 further from the person's other photos; the
  // blurriest real photo of lfw10 and crops has 10.8.
  float min_sharpness = 6;
  // Strongly turned: |FaceQuality::yaw| over this (0 frontal, 1 profile). Default
  // 0.8 (about 55 degrees), range (0, 2]; 2 turns the check off. Measured: past 0.6 the
  // photos of lfw10 and crops are 0.03-0.06 further from the person's other photos, and past
  // 0.8 the 68 landmarks themselves are unreliable.
  float max_yaw = 0.8f;
  // Eyes covered (dark glasses): the eye regions' brightness relative to the nose's
  // (eye_brightness) under this. Default 0.26, range [0, 1]; 0 turns it off.
  // Detects dark lenses only: clear glasses, hair or a hand over the eyes pass. Measured:
  // the one real pair of sunglasses in lfw10 0.13, dark glasses drawn on all 100 lfw10
  // photos 0.10-0.25, the lowest uncovered eyes of lfw10 and crops 0.28 (dark frames).
  float min_eye_brightness = 0.26f;
  int thumbnail_px = 112;  // side of the stored JPEG thumbnail
};

// The face region kept with each enrolled face for describing it again with a later model
// (StoredFace::source_region): the box plus kSourceMargin of its side on each side, clipped
// to the photo, at the photo's resolution unless its longer side exceeds kMaxSourceRegionPx
// (then scaled down to it: still 7x the 150-pixel chip), JPEG quality kSourceJpegQuality.
inline constexpr float kSourceMargin = 0.5f;
inline constexpr int kMaxSourceRegionPx = 1024;
inline constexpr int kSourceJpegQuality = 95;

struct SourceRegion {
  std::vector<std::uint8_t> jpeg;
  std::vector<float> landmarks;  // 68 (x, y) pairs in the region's pixels
};
SourceRegion cut_source_region(const cv::Mat& bgr, const Face& face);

// Median grey level of the two eye regions (where dark glasses sit: around dlib's eye
// landmarks 36-47, 1.2 eye widths by 0.7) over the median of the nose below them
// (landmarks 29-35). About 0.6-1.0 for open eyes; lower means something dark covers them.
// 1 when a region falls outside the image (nothing measured).
float eye_brightness(const cv::Mat& bgr, const Face& face);

// The first enrollment rule `face` (aligned, of photo `bgr`) breaks, in words an operator
// can act on ("face too small: ...", "blurred: ...", "strongly turned: ...", "eyes covered:
// ..."), or "" when it passes them all.
std::string enrollment_problem(const cv::Mat& bgr, const Face& face, const EnrollmentRules& rules);

struct PreparedPhoto {
  bool accepted = false;
  std::string reason;  // why not, in words an operator can act on
  // The gate's refusal that an override let through (also in face.gate_override with the
  // justification); empty when the photo passed the gate.
  std::string overridden;
  bool overridable = false;  // refused by the quality gate, which an override_reason passes
  StoredFace face;           // descriptor, hash, thumbnail, quality (no ids yet)
  cv::Rect2f box;
};

// Minimum length of an override's justification, in characters other than spaces: a
// reason, not "ok".
inline constexpr std::size_t kMinOverrideReasonLength = 10;

// `override_reason`: when not empty, a photo the gate refuses (enrollment_problem: too
// small, blurred, strongly turned, eyes covered) is enrolled all the same, and the refusal
// and this justification are stored with the face. It never lets through a photo with no
// face, an ambiguous subject or unreadable bytes. Throws Error(kInvalidArgument) when the
// justification is shorter than kMinOverrideReasonLength.
// `cancel` stops the analysis with Error(kCancelled). `model`: the descriptor model to
// describe the face with (the watchlist's); null = the engine's.
PreparedPhoto prepare_photo(const FaceEngine& engine, std::span<const std::uint8_t> image,
                            std::optional<int> face_index, const EnrollmentRules& rules = {},
                            const std::string& override_reason = "",
                            const Cancellation& cancel = {},
                            const DescriptorModel* model = nullptr);

}  // namespace frs
