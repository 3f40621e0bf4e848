#pragma once
// Face detectors: BlazeFace (MediaPipe's back-camera model, OpenCV DNN) and dlib's HOG
// frontal detector. Both take an 8-bit BGR image and return boxes in its pixels.

#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <vector>

#include "frs/core/cancel.h"
#include "frs/core/object_pool.h"

namespace frs {

struct Detection {
  cv::Rect2f box;   // pixels in the source image; may reach past its edges for cut-off faces
  float score = 0;  // BlazeFace: probability in [0,1]; HOG: SVM margin (>= 0, higher = surer)
  // BlazeFace only, in source pixels: right eye, left eye, nose tip, mouth centre, right
  // ear tragion, left ear tragion (the subject's right/left). Empty for HOG.
  std::vector<cv::Point2f> keypoints;
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // Thread-safe. Returns faces sorted by score, highest first. Stops with Error(kCancelled)
  // when `cancel` fires (checked between the detector's views).
  virtual std::vector<Detection> detect(const cv::Mat& bgr, const Cancellation& cancel = {}) = 0;
};

struct BlazeFaceOptions {
  // face_detection_back_256x256_barracuda.onnx (faces near and far), or
  // face_detection_front_128x128_barracuda.onnx (faces near the camera, a quarter of the
  // pixels: for portraits), with input_size 128.
  std::filesystem::path model;
  // Side of the model's square input, pixels: 256 (back model, default) or 128 (front).
  int input_size = 256;
  // Minimum detection probability, [0,1]. Default 0.5: 25 of 25 faces of
  // detection/dlib/testing.xml are found at 0.5.
  float min_score = 0.5f;
  // Boxes overlapping more than this IoU are one face, [0,1]. Default 0.3 (MediaPipe's).
  float merge_iou = 0.3f;
  // Smallest face side, in source pixels, that the detector must find. The model sees faces
  // down to about 1/16 of its 256-pixel input, so frames are also scanned as overlapping
  // tiles until a face of this size fills enough of a tile. Default 40 (a 40-pixel face in a
  // 1080p frame); 0 scans the whole frame once (fastest; faces under ~1/16 of the longer
  // side are missed). Range 0 .. any.
  int min_face_px = 40;
  // Concurrent inferences allowed (one OpenCV net each). Default 1.
  int instances = 1;
  // Most views (whole image + tiles) scanned per image: the work per image is bounded
  // whatever its size or shape. An image whose tiling for min_face_px would need more is
  // scanned for faces from the smallest size this many views reach (measured: 1080p needs
  // 9 views at 40 px, 4K 73, 12 Mpx 84; 24 Mpx is scanned from 50 px, 50 Mpx from 77 px).
  // Default 128, range 1..4096.
  int max_views = 128;
};

// A square region of the source image that is scaled to the model input. Regions may
// extend past the image; the excess is padded with black.
struct DetectionView {
  cv::Rect region;
  // Detections larger than this (source pixels) are dropped: the level above finds them.
  // 0 = no limit: the whole-image view.
  float max_face = 0;
  bool is_tile() const { return max_face > 0; }
  bool interior_left = false, interior_top = false, interior_right = false,
       interior_bottom = false;  // edges that lie inside the image (a face there may be cut)
};

// The views that BlazeFaceDetector scans for an image of `size`: the whole image, then as
// few levels of overlapping tiles as cover faces down to `min_face_px`, at most
// `max_views` (0 = no limit): when that is not enough, the smallest face looked for grows
// until it is. Exposed for tests/bench.
std::vector<DetectionView> plan_detection_views(cv::Size size, int min_face_px, int max_views = 0);

class BlazeFaceDetector : public FaceDetector {
 public:
  explicit BlazeFaceDetector(const BlazeFaceOptions& options);
  ~BlazeFaceDetector() override;
  std::vector<Detection> detect(const cv::Mat& bgr, const Cancellation& cancel = {}) override;

  // Side of the back model's square input, in pixels (what tiling is planned for).
  static constexpr int kInputSize = 256;

 private:
  std::vector<Detection> detect_view(cv::dnn::Net& net, const cv::Mat& bgr,
                                     const DetectionView& view) const;
  BlazeFaceOptions options_;
  ObjectPool<cv::dnn::Net> nets_;
  std::vector<cv::String> output_names_;  // the same for every net; read once
};

struct HogOptions {
  // Times the image is doubled before scanning. dlib's HOG finds faces down to about 80
  // pixels; each upsampling halves that and quadruples the time. Default 1 (25 of 25 faces
  // of detection/dlib/testing.xml need it); range 0..3.
  int upsample = 1;
  // SVM margin a window must exceed. Default 0 (dlib's); negative finds more, less surely.
  double adjust_threshold = 0.0;
  int instances = 1;  // concurrent scans allowed (one detector copy each)
};

class HogFaceDetector : public FaceDetector {
 public:
  explicit HogFaceDetector(const HogOptions& options);
  ~HogFaceDetector() override;
  std::vector<Detection> detect(const cv::Mat& bgr, const Cancellation& cancel = {}) override;

 private:
  struct Impl;
  HogOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Merges overlapping detections (IoU > iou) into one whose box and keypoints are the
// score-weighted mean of the group and whose score is the group's best, as MediaPipe does;
// then drops any weaker box that lies half or more inside a stronger one.
std::vector<Detection> merge_detections(std::vector<Detection> detections, float iou);

float iou(const cv::Rect2f& a, const cv::Rect2f& b);

}  // namespace frs
