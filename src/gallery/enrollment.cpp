#include "frs/gallery/enrollment.h"

#include <openssl/evp.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "frs/core/error.h"

namespace frs {

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

PreparedPhoto prepare_photo(const FaceEngine& engine, std::span<const std::uint8_t> image,
                            std::optional<int> face_index, const EnrollmentRules& rules) {
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
      face_index ? engine.analyze(bgr, false) : engine.analyze_portrait(bgr, false);
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
  if (face.quality.face_px < rules.min_face_px) {
    out.reason = "face too small: " + std::to_string(static_cast<int>(face.quality.face_px)) +
                 " pixels, need " + std::to_string(static_cast<int>(rules.min_face_px));
    return out;
  }
  std::vector<Face> one = {face};
  engine.embed(one);
  out.face.descriptor = *one[0].embedding;
  out.face.quality = face.quality.score;
  out.face.image_sha256 = sha256_hex(image);
  cv::Mat thumbnail;
  cv::resize(face.chip, thumbnail, {rules.thumbnail_px, rules.thumbnail_px}, 0, 0, cv::INTER_AREA);
  cv::imencode(".jpg", thumbnail, out.face.thumbnail, {cv::IMWRITE_JPEG_QUALITY, 85});
  out.accepted = true;
  return out;
}

}  // namespace frs
