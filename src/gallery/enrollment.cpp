#include "frs/gallery/enrollment.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "frs/core/digest.h"
#include "frs/core/error.h"
#include "frs/core/text.h"

namespace frs {

namespace {

// Median grey level of `bgr` inside `region` (clipped to the image); -1 when too little
// of it is inside.
double median_grey(const cv::Mat& bgr, cv::Rect2f region) {
  const cv::Rect inside = cv::Rect(region) & cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (inside.area() < 4 || inside.area() < region.area() / 2) return -1;
  cv::Mat grey;
  cv::cvtColor(bgr(inside), grey, cv::COLOR_BGR2GRAY);
  std::vector<std::uint8_t> values(grey.begin<std::uint8_t>(), grey.end<std::uint8_t>());
  std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2),
                   values.end());
  return values[values.size() / 2];
}

cv::Rect2f bounds_of(const Face& face, int first, int last) {
  cv::Point2f low = face.landmarks[static_cast<std::size_t>(first)], high = low;
  for (int i = first + 1; i <= last; ++i) {
    const cv::Point2f& p = face.landmarks[static_cast<std::size_t>(i)];
    low = {std::min(low.x, p.x), std::min(low.y, p.y)};
    high = {std::max(high.x, p.x), std::max(high.y, p.y)};
  }
  return {low, high};
}

std::string fixed(double value, int decimals) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

}  // namespace

float eye_brightness(const cv::Mat& bgr, const Face& face) {
  double eyes = 0;
  for (const auto& [first, last] : {std::pair{36, 41}, std::pair{42, 47}}) {
    const cv::Rect2f eye = bounds_of(face, first, last);
    const cv::Point2f centre = (eye.tl() + eye.br()) * 0.5f;
    const float width = std::max(eye.width, 1.0f);
    // A lens covers more than the eye's opening: from brow to cheekbone.
    const cv::Rect2f lens(centre.x - 0.6f * width, centre.y - 0.35f * width, 1.2f * width,
                          0.7f * width);
    const double grey = median_grey(bgr, lens);
    if (grey < 0) return 1;
    eyes += grey / 2;
  }
  const double nose = median_grey(bgr, bounds_of(face, 29, 35));
  if (nose <= 0) return 1;
  return static_cast<float>(eyes / nose);
}

std::string enrollment_problem(const cv::Mat& bgr, const Face& face, const EnrollmentRules& rules) {
  const FaceQuality& q = face.quality;
  if (q.face_px < rules.min_face_px) {
    return "face too small: " + std::to_string(static_cast<int>(q.face_px)) + " pixels, need " +
           std::to_string(static_cast<int>(rules.min_face_px)) + ": use a closer or larger photo";
  }
  if (q.sharpness < rules.min_sharpness) {
    return "blurred: sharpness " + fixed(q.sharpness, 1) + ", need " +
           fixed(rules.min_sharpness, 1) + ": use a sharper photo";
  }
  if (std::abs(q.yaw) > rules.max_yaw) {
    return "strongly turned: yaw " + fixed(q.yaw, 2) + " (0 frontal, 1 profile), limit " +
           fixed(rules.max_yaw, 2) + ": use a photo facing the camera";
  }
  if (rules.min_eye_brightness > 0) {
    const float eyes = eye_brightness(bgr, face);
    if (eyes < rules.min_eye_brightness) {
      return "eyes covered: the eye regions are " + fixed(eyes, 2) +
             " as bright as the nose, need " + fixed(rules.min_eye_brightness, 2) +
             " (dark glasses?): use a photo with the eyes visible";
    }
  }
  return "";
}

SourceRegion cut_source_region(const cv::Mat& bgr, const Face& face) {
  const float margin = kSourceMargin * std::max(face.box.width, face.box.height);
  const cv::Rect wanted(cv::Point(static_cast<int>(std::floor(face.box.x - margin)),
                                  static_cast<int>(std::floor(face.box.y - margin))),
                        cv::Point(static_cast<int>(std::ceil(face.box.br().x + margin)),
                                  static_cast<int>(std::ceil(face.box.br().y + margin))));
  const cv::Rect inside = wanted & cv::Rect(0, 0, bgr.cols, bgr.rows);
  SourceRegion out;
  if (inside.area() <= 0) return out;
  cv::Mat region = bgr(inside);
  const int longer = std::max(inside.width, inside.height);
  const double scale = longer > kMaxSourceRegionPx ? double(kMaxSourceRegionPx) / longer : 1.0;
  if (scale < 1.0) {
    cv::Mat smaller;
    cv::resize(region, smaller, {}, scale, scale, cv::INTER_AREA);
    region = smaller;
  }
  cv::imencode(".jpg", region, out.jpeg, {cv::IMWRITE_JPEG_QUALITY, kSourceJpegQuality});
  out.landmarks.reserve(2 * face.landmarks.size());
  for (const cv::Point2f& p : face.landmarks) {
    out.landmarks.push_back(static_cast<float>((p.x - inside.x) * scale));
    out.landmarks.push_back(static_cast<float>((p.y - inside.y) * scale));
  }
  return out;
}

PreparedPhoto prepare_photo(const FaceEngine& engine, std::span<const std::uint8_t> image,
                            std::optional<int> face_index, const EnrollmentRules& rules,
                            const std::string& override_reason, const Cancellation& cancel,
                            const DescriptorModel* model) {
  if (model == nullptr) model = &engine.descriptor_model();
  const auto written =
      static_cast<std::size_t>(std::count_if(override_reason.begin(), override_reason.end(),
                                             [](unsigned char c) { return !std::isspace(c); }));
  if (!override_reason.empty() && written < kMinOverrideReasonLength) {
    throw Error(ErrorCode::kInvalidArgument, "an override needs a justification of at least " +
                                                 std::to_string(kMinOverrideReasonLength) +
                                                 " characters, got " +
                                                 quote_for_message(override_reason));
  }
  PreparedPhoto out;
  cv::Mat bgr;
  try {
    bgr = decode_image(image, engine.options().limits);
  } catch (const Error& e) {
    out.reason = e.what();
    return out;
  }
  // Largest first. An enrollment photo shows its subject near the camera: the cheaper
  // portrait detector, unless the caller picks a face by its index in what `frs detect`
  // (the full detector) lists.
  std::vector<Face> faces =
      face_index ? engine.analyze(bgr, false, cancel) : engine.analyze_portrait(bgr, false, cancel);
  if (faces.empty()) {
    out.reason = "no face found: use a photo where the face is frontal and at least " +
                 std::to_string(static_cast<int>(rules.min_face_px)) + " pixels wide";
    return out;
  }
  std::size_t chosen = 0;
  if (face_index) {
    if (*face_index < 0 || static_cast<std::size_t>(*face_index) >= faces.size()) {
      out.reason = "face_index " + std::to_string(*face_index) +
                   " is out of range: the photo has " + std::to_string(faces.size()) +
                   " faces (0 = largest)";
      return out;
    }
    chosen = static_cast<std::size_t>(*face_index);
  } else {
    // The subject is the largest confidently detected face; weak detections (a hand, a
    // pattern) neither become the subject nor make the photo ambiguous.
    std::vector<std::size_t> contenders;
    for (std::size_t i = 0; i < faces.size(); ++i) {
      if (faces[i].score >= rules.confident_score) contenders.push_back(i);
    }
    if (contenders.empty()) {
      for (std::size_t i = 0; i < faces.size(); ++i) contenders.push_back(i);
    }
    chosen = contenders[0];  // faces come largest first
    if (contenders.size() > 1 && faces[contenders[1]].quality.face_px >=
                                     rules.ambiguous_size_ratio * faces[chosen].quality.face_px) {
      out.reason = "the photo has " + std::to_string(contenders.size()) +
                   " faces of similar size: say which with a face index (0 = largest)";
      return out;
    }
  }
  Face& face = faces[chosen];
  out.box = face.box;
  if (std::string problem = enrollment_problem(bgr, face, rules); !problem.empty()) {
    if (override_reason.empty()) {
      out.reason = std::move(problem);
      out.overridable = true;
      return out;
    }
    out.face.gate_override = problem + "; overridden: " + override_reason;
    out.overridden = std::move(problem);
  }
  std::vector<Face> one = {face};
  engine.embed(one, *model, cancel);
  out.face.descriptor = *one[0].embedding;
  out.face.descriptor_model = std::string(model->id);
  SourceRegion source = cut_source_region(bgr, face);
  out.face.source_region = std::move(source.jpeg);
  out.face.source_landmarks = std::move(source.landmarks);
  out.face.quality = face.quality.score;
  out.face.image_sha256 = sha256_hex(image);
  cv::Mat thumbnail;
  cv::resize(face.chip, thumbnail, {rules.thumbnail_px, rules.thumbnail_px}, 0, 0, cv::INTER_AREA);
  cv::imencode(".jpg", thumbnail, out.face.thumbnail, {cv::IMWRITE_JPEG_QUALITY, 85});
  out.accepted = true;
  return out;
}

}  // namespace frs
