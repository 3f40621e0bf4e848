#include "frs/vision/aligner.h"

#include <dlib/image_processing.h>
#include <dlib/image_transforms.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/opencv/to_open_cv.h>

#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>

#include "frs/core/error.h"

namespace frs {

struct FaceAligner::Impl {
  dlib::shape_predictor predictor;
};

FaceAligner::FaceAligner(const std::filesystem::path& shape_predictor)
    : impl_(std::make_unique<Impl>()) {
  if (!std::filesystem::exists(shape_predictor)) {
    throw Error(ErrorCode::kFailedPrecondition,
                "landmark model '" + shape_predictor.string() +
                    "' is missing: install Debian's libdlib-data and run scripts/setup.sh");
  }
  try {
    dlib::deserialize(shape_predictor.string()) >> impl_->predictor;
  } catch (const dlib::serialization_error& e) {
    throw Error(ErrorCode::kFailedPrecondition,
                "landmark model '" + shape_predictor.string() +
                    "' is corrupt (reinstall libdlib-data): " + e.what());
  }
  if (impl_->predictor.num_parts() != kLandmarkCount) {
    throw Error(ErrorCode::kFailedPrecondition,
                "landmark model '" + shape_predictor.string() + "' has " +
                    std::to_string(impl_->predictor.num_parts()) + " points, expected 68");
  }
}

FaceAligner::~FaceAligner() = default;

namespace {

dlib::rectangle square_around(double cx, double cy, double side) {
  return dlib::rectangle(std::lround(cx - side / 2), std::lround(cy - side / 2),
                         std::lround(cx + side / 2 - 1), std::lround(cy + side / 2 - 1));
}

}  // namespace

// dlib's 68-point model was trained on boxes from dlib's HOG detector, and its landmarks
// drift when the box differs (a plain BlazeFace box cost 1.5 points of pair accuracy on
// lfw10). So the box handed to it is the HOG box predicted from what we have.
dlib::rectangle landmark_box(const Detection& detection) {
  if (!detection.landmark_box.empty()) {
    const cv::Rect2f& b = detection.landmark_box;
    return square_around(b.x + b.width / 2.0, b.y + b.height / 2.0, b.width);
  }
  if (detection.keypoints.size() == 6) {
    // From BlazeFace's eyes (0, 1) and mouth (3), in the face's own frame: the box centre
    // lies 0.45 eye-to-mouth distances below the eye midpoint, its side is 2.46 of them.
    // Medians over faces both detectors found (bench_alignment_calibration; lfw10 excluded).
    const cv::Point2d eyes =
        (cv::Point2d(detection.keypoints[0]) + cv::Point2d(detection.keypoints[1])) * 0.5;
    const cv::Point2d down = cv::Point2d(detection.keypoints[3]) - eyes;
    const double length = std::sqrt(down.dot(down));
    if (length > 1.0) {
      const cv::Point2d centre = eyes + down * 0.45;
      return square_around(centre.x, centre.y, 2.46 * length);
    }
  }
  const cv::Rect2f& b = detection.box;
  return dlib::rectangle(std::lround(b.x), std::lround(b.y), std::lround(b.x + b.width - 1),
                         std::lround(b.y + b.height - 1));
}

// The HOG box implied by a set of landmarks: relative to their mean and RMS spread, the
// centre sits 0.004 spreads left of and 0.112 above the mean, the side is 2.763 spreads
// (bench_alignment_calibration on HOG detections; lfw10 excluded).
dlib::rectangle box_from_landmarks(const dlib::full_object_detection& shape) {
  const auto n = static_cast<double>(shape.num_parts());
  double mx = 0, my = 0;
  for (unsigned long i = 0; i < shape.num_parts(); ++i) {
    mx += static_cast<double>(shape.part(i).x());
    my += static_cast<double>(shape.part(i).y());
  }
  mx /= n;
  my /= n;
  double spread = 0;
  for (unsigned long i = 0; i < shape.num_parts(); ++i) {
    const double dx = static_cast<double>(shape.part(i).x()) - mx;
    const double dy = static_cast<double>(shape.part(i).y()) - my;
    spread += dx * dx + dy * dy;
  }
  spread = std::sqrt(spread / n);
  return square_around(mx - 0.0040 * spread, my - 0.1122 * spread, 2.7629 * spread);
}

namespace {

Face face_of_shape(const dlib::cv_image<dlib::bgr_pixel>& image,
                   const dlib::full_object_detection& shape) {
  Face face;
  for (int i = 0; i < kLandmarkCount; ++i) {
    const dlib::point p = shape.part(static_cast<unsigned long>(i));
    face.landmarks[static_cast<std::size_t>(i)] =
        cv::Point2f(static_cast<float>(p.x()), static_cast<float>(p.y()));
  }
  dlib::matrix<dlib::bgr_pixel> chip;
  dlib::extract_image_chip(
      image, dlib::get_face_chip_details(shape, FaceAligner::kChipSize, FaceAligner::kChipPadding),
      chip);
  face.chip = dlib::toMat(chip).clone();  // bgr_pixel is laid out as OpenCV's BGR
  return face;
}

}  // namespace

Face FaceAligner::align(const cv::Mat& bgr, const Detection& detection) const {
  const dlib::cv_image<dlib::bgr_pixel> image(bgr);
  // A second pass from the box the first landmarks imply brings the box closer to what
  // the model was trained on (lfw10 pair accuracy 0.9949 -> 0.9964).
  dlib::full_object_detection shape = impl_->predictor(image, landmark_box(detection));
  shape = impl_->predictor(image, box_from_landmarks(shape));
  Face face = face_of_shape(image, shape);
  face.box = detection.box;
  face.score = detection.score;
  face.quality = measure_quality(face);
  return face;
}

Face FaceAligner::align_to(const cv::Mat& bgr,
                           const std::array<cv::Point2f, kLandmarkCount>& landmarks) const {
  const dlib::cv_image<dlib::bgr_pixel> image(bgr);
  std::vector<dlib::point> parts;
  parts.reserve(landmarks.size());
  for (const cv::Point2f& p : landmarks) parts.emplace_back(std::lround(p.x), std::lround(p.y));
  const dlib::full_object_detection shape(
      box_from_landmarks(dlib::full_object_detection({}, parts)), parts);
  Face face = face_of_shape(image, shape);
  const dlib::rectangle r = shape.get_rect();
  face.box = cv::Rect2f(static_cast<float>(r.left()), static_cast<float>(r.top()),
                        static_cast<float>(r.width()), static_cast<float>(r.height()));
  face.quality = measure_quality(face);
  return face;
}

const std::array<cv::Point2f, 5> kArcFaceTemplate = {
    cv::Point2f(38.2946f, 51.6963f), cv::Point2f(73.5318f, 51.5014f),
    cv::Point2f(56.0252f, 71.7366f), cv::Point2f(41.5493f, 92.3655f),
    cv::Point2f(70.7299f, 92.2041f)};

std::array<cv::Point2f, 5> five_points(const std::array<cv::Point2f, kLandmarkCount>& l) {
  const auto mean = [&l](std::initializer_list<int> indices) {
    cv::Point2f sum(0, 0);
    for (int i : indices) sum += l[static_cast<std::size_t>(i)];
    return sum * (1.0f / static_cast<float>(indices.size()));
  };
  return {mean({37, 38, 40, 41}), mean({43, 44, 46, 47}), l[30], mean({48, 60}), mean({54, 64})};
}

cv::Mat arcface_chip(const cv::Mat& bgr, const std::array<cv::Point2f, kLandmarkCount>& landmarks) {
  const auto points = five_points(landmarks);
  const std::vector<cv::Point2f> from(points.begin(), points.end());
  const std::vector<cv::Point2f> to(kArcFaceTemplate.begin(), kArcFaceTemplate.end());
  // RANSAC with a threshold no residual reaches keeps every point as an inlier, and the
  // Levenberg-Marquardt refinement then minimises the squared error over all five.
  cv::Mat transform = cv::estimateAffinePartial2D(from, to, cv::noArray(), cv::RANSAC, 1e9);
  cv::Mat chip(kArcFaceChipSize, kArcFaceChipSize, CV_8UC3, cv::Scalar::all(0));
  if (transform.empty()) return chip;  // degenerate landmarks (all in one point)
  cv::warpAffine(bgr, chip, transform, chip.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar::all(0));
  return chip;
}

namespace {

cv::Point2f mean_point(const Face& face, int first, int last) {
  cv::Point2f sum(0, 0);
  for (int i = first; i <= last; ++i) sum += face.landmarks[static_cast<std::size_t>(i)];
  return sum * (1.0f / static_cast<float>(last - first + 1));
}

float clamp01(double v) {
  return static_cast<float>(std::clamp(v, 0.0, 1.0));
}

}  // namespace

// Thresholds of the quality factors. A face reaches full size credit at 80 pixels (dlib's
// HOG detector's own window); the chip is scaled to 150 so smaller faces are upsampled
// blur. Sharpness saturates at a Laplacian variance of 100 on the chip, above which blur no
// longer moved the descriptor in our measurements. Pose credit falls linearly to zero at a
// yaw of 0.8 (about 55 degrees), beyond which the 68-point model itself is unreliable.
namespace {

float laplacian_variance(const cv::Mat& bgr) {
  cv::Mat grey, laplacian;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::Laplacian(grey, laplacian, CV_64F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(laplacian, mean, stddev);
  return static_cast<float>(stddev[0] * stddev[0]);
}

// Where `nose` falls between a face's right and left edge points, along the line joining
// them: -1 at the right one, 0 midway (frontal), 1 at the left one.
float yaw_between(cv::Point2f right, cv::Point2f left, cv::Point2f nose) {
  const cv::Point2f across = left - right;
  const double width2 = across.dot(across);
  return width2 > 0 ? static_cast<float>(2.0 * (nose - right).dot(across) / width2 - 1.0) : 0.0f;
}

void score_quality(FaceQuality& q) {
  const float size_factor = clamp01(q.face_px / 80.0);
  const float sharp_factor = clamp01(q.sharpness / 100.0);
  const float pose_factor =
      clamp01(1.0 - std::abs(q.yaw) / 0.8) * clamp01(1.0 - std::abs(q.pitch) / 0.3);
  q.score = size_factor * sharp_factor * pose_factor;
}

}  // namespace

FaceQuality measure_quality(const Face& face) {
  FaceQuality q;
  q.face_px = std::max(face.box.width, face.box.height);
  q.sharpness = laplacian_variance(face.chip);
  // Yaw: where the nose tip (30) falls between the jaw ends (0 and 16), along the jaw line.
  const cv::Point2f nose = face.landmarks[30];
  q.yaw = yaw_between(face.landmarks[0], face.landmarks[16], nose);

  // Pitch: where the nose tip falls between the eye line and the chin (8). 0.40 is the
  // median of frontal photos (lfw10); looking down moves the nose towards the chin.
  const cv::Point2f eyes = (mean_point(face, 36, 41) + mean_point(face, 42, 47)) * 0.5f;
  const cv::Point2f down = face.landmarks[8] - eyes;
  const double height2 = down.dot(down);
  if (height2 > 0) q.pitch = static_cast<float>((nose - eyes).dot(down) / height2 - 0.40);
  score_quality(q);
  return q;
}

FaceQuality estimate_quality(const cv::Mat& bgr, const Detection& detection) {
  FaceQuality q;
  q.face_px = std::max(detection.box.width, detection.box.height);
  const cv::Rect inside = cv::Rect(detection.box) & cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (inside.width >= 2 && inside.height >= 2) {
    // The face fills about two thirds of the chip (padding 0.25 each side): scale the box
    // to that size so the Laplacian sees the same level of detail.
    const int side =
        static_cast<int>(std::lround(FaceAligner::kChipSize / (1 + 2 * FaceAligner::kChipPadding)));
    cv::Mat scaled;
    cv::resize(bgr(inside), scaled, {side, side}, 0, 0,
               inside.width > side ? cv::INTER_AREA : cv::INTER_LINEAR);
    q.sharpness = laplacian_variance(scaled);
  }
  // BlazeFace keypoints: 2 nose tip, 4 right ear tragion, 5 left ear tragion.
  if (detection.keypoints.size() == 6) {
    q.yaw = yaw_between(detection.keypoints[4], detection.keypoints[5], detection.keypoints[2]);
  }
  score_quality(q);
  return q;
}

}  // namespace frs
