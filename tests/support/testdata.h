#pragma once
// Access to ../shared/testdata (or $FRS_TESTDATA) and its face box annotations, shared by
// the tests and the bench programs.

#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "frs/vision/detector.h"

namespace frs::testing {

// A new empty directory under the system's temporary directory, removed with the object.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& tag = "test");
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The whole content of a file ("" when it cannot be read).
std::string bytes_of(const std::filesystem::path& path);

// $FRS_TESTDATA, else ../shared/testdata beside the source tree. Throws std::runtime_error
// with a message saying how to provide it when the folder is missing.
std::filesystem::path testdata_dir();

struct AnnotatedBox {
  cv::Rect2f box;     // pixels
  std::string label;  // VOC class name; "face" for dlib's imglab files
};

struct AnnotatedImage {
  std::filesystem::path file;
  std::vector<AnnotatedBox> boxes;
};

// dlib imglab XML (<image file=...><box top left width height/>); files resolved beside it.
std::vector<AnnotatedImage> read_imglab(const std::filesystem::path& xml);
// Every Pascal VOC XML in `annotations_dir`, images resolved in `images_dir`.
std::vector<AnnotatedImage> read_voc(const std::filesystem::path& annotations_dir,
                                     const std::filesystem::path& images_dir);

struct DetectionScore {
  int expected = 0;         // boxes with a wanted label
  int found = 0;            // of those, matched by a detection at IoU >= min_iou
  int detections = 0;       // all detections
  int false_positives = 0;  // detections that match no box of any label
  double recall() const { return expected ? static_cast<double>(found) / expected : 0; }
  double precision() const {
    return detections ? 1.0 - static_cast<double>(false_positives) / detections : 1;
  }
};

// Greedy one-to-one matching by IoU. Boxes whose label is not in `wanted` (e.g. masked
// faces) or whose shorter side is under `min_face_px` are neither expected nor counted
// against the detector when matched.
void score_detections(const std::vector<AnnotatedBox>& truth, const std::vector<Detection>& found,
                      const std::vector<std::string>& wanted, float min_iou, DetectionScore& score,
                      float min_face_px = 0);

// Images of a folder-per-identity tree (lfw10, knn/train): identity -> files, sorted.
struct LabelledImage {
  std::string identity;
  std::filesystem::path file;
};
std::vector<LabelledImage> read_identity_tree(const std::filesystem::path& root);

}  // namespace frs::testing
