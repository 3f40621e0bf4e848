// The enrollment gate on real photos: each refusal names what is wrong with the photo, and
// every rule can be turned off.

#include "frs/gallery/enrollment.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "model_fixture.h"

namespace frs::testing {
namespace {

PreparedPhoto prepare(const cv::Mat& bgr, const EnrollmentRules& rules = {}) {
  std::vector<std::uint8_t> png;
  cv::imencode(".png", bgr, png);
  return prepare_photo(shared_dlib_engine(), png, std::nullopt, rules);
}

std::string reason_of(const cv::Mat& bgr, const EnrollmentRules& rules = {}) {
  const PreparedPhoto p = prepare(bgr, rules);
  return p.accepted ? "accepted" : p.reason;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// Two near-black lenses and a bridge over the eyes of the photo's largest face.
cv::Mat with_dark_glasses(const cv::Mat& bgr) {
  const Face face = shared_dlib_engine().analyze(bgr, false).at(0);
  cv::Mat covered = bgr.clone();
  const auto& l = face.landmarks;
  const cv::Point2f right = (l[36] + l[39]) * 0.5f, left = (l[42] + l[45]) * 0.5f;
  const float width = static_cast<float>(cv::norm(l[39] - l[36]));
  for (const cv::Point2f& c : {right, left}) {
    cv::ellipse(covered, cv::Point(c), cv::Size(cv::Size2f(0.8f * width, 0.55f * width)), 0, 0, 360,
                cv::Scalar(22, 20, 18), cv::FILLED, cv::LINE_AA);
  }
  cv::line(covered, cv::Point(right), cv::Point(left), cv::Scalar(30, 30, 30),
           std::max(1, static_cast<int>(width / 8)), cv::LINE_AA);
  return covered;
}

TEST(EnrollmentGate, RefusesBlurredTurnedAndCoveredPhotosSayingWhy) {
  const cv::Mat obama = load_image(face_path("obama.jpg"));
  EXPECT_EQ(reason_of(obama), "accepted");

  // Blur scaled to the face: sigma 4 px on lfw10's 100-px faces.
  const float face_px = shared_dlib_engine().analyze(obama, false).at(0).quality.face_px;
  cv::Mat blurred;
  cv::GaussianBlur(obama, blurred, {0, 0}, 0.04 * face_px);
  EXPECT_TRUE(starts_with(reason_of(blurred), "blurred: sharpness")) << reason_of(blurred);

  // A head turned past 55 degrees (|yaw| 1.06 here).
  const cv::Mat profile = load_image(testdata_dir() / "crops" / "howard_5.png");
  EXPECT_TRUE(starts_with(reason_of(profile), "strongly turned: yaw")) << reason_of(profile);

  const cv::Mat sunglasses = load_image(testdata_dir() / "lfw10" / "Arnold_Schwarzenegger" /
                                        "Arnold_Schwarzenegger_0008.jpg");
  EXPECT_TRUE(starts_with(reason_of(sunglasses), "eyes covered:")) << reason_of(sunglasses);
  const cv::Mat drawn_on = with_dark_glasses(obama);
  EXPECT_TRUE(starts_with(reason_of(drawn_on), "eyes covered:")) << reason_of(drawn_on);

  // Clear glasses with dark frames are not covered eyes (eye brightness 0.34 here).
  const cv::Mat frames = load_image(testdata_dir() / "crops" / "lennard_4.png");
  EXPECT_EQ(reason_of(frames), "accepted");

  EnrollmentRules lenient;
  lenient.min_sharpness = 0;
  lenient.max_yaw = 2;
  lenient.min_eye_brightness = 0;
  EXPECT_EQ(reason_of(blurred, lenient), "accepted");
  EXPECT_EQ(reason_of(profile, lenient), "accepted");
  EXPECT_EQ(reason_of(sunglasses, lenient), "accepted");
}

}  // namespace
}  // namespace frs::testing
