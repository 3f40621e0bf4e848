#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>

#include "frs/core/error.h"
#include "frs/vision/detector.h"

namespace frs {

struct HogFaceDetector::Impl {
  ObjectPool<dlib::frontal_face_detector> detectors;
};

HogFaceDetector::HogFaceDetector(const HogOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  if (options.upsample < 0 || options.upsample > 3) {
    throw Error(ErrorCode::kInvalidArgument,
                "HOG upsample must be in 0..3, got " + std::to_string(options.upsample));
  }
  for (int i = 0; i < std::max(1, options.instances); ++i) {
    impl_->detectors.add(
        std::make_unique<dlib::frontal_face_detector>(dlib::get_frontal_face_detector()));
  }
}

HogFaceDetector::~HogFaceDetector() = default;

std::vector<Detection> HogFaceDetector::detect(const cv::Mat& bgr, const Cancellation& cancel) {
  cancel.check();  // one dlib scan: it cannot stop midway
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw Error(ErrorCode::kInvalidArgument, "detector needs a non-empty 8-bit BGR image");
  }
  // dlib scans a grey image; upsampling by 2 per step is how it finds small faces.
  dlib::array2d<unsigned char> grey;
  dlib::assign_image(grey, dlib::cv_image<dlib::bgr_pixel>(bgr));
  for (int i = 0; i < options_.upsample; ++i) dlib::pyramid_up(grey);
  const dlib::pyramid_down<2> pyramid;

  std::vector<dlib::rect_detection> found;
  {
    auto detector = impl_->detectors.acquire();
    (*detector)(grey, found, options_.adjust_threshold);
  }
  std::vector<Detection> detections;
  for (const auto& f : found) {
    Detection d;
    d.score = static_cast<float>(f.detection_confidence);
    // Map back through the same pyramid so boxes land on the source pixels exactly.
    const dlib::drectangle r =
        pyramid.rect_down(dlib::drectangle(f.rect), static_cast<unsigned int>(options_.upsample));
    d.box = cv::Rect2f(static_cast<float>(r.left()), static_cast<float>(r.top()),
                       static_cast<float>(r.width()), static_cast<float>(r.height()));
    detections.push_back(std::move(d));
  }
  std::sort(detections.begin(), detections.end(),
            [](const Detection& a, const Detection& b) { return a.score > b.score; });
  return detections;
}

}  // namespace frs
