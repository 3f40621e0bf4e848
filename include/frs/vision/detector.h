#pragma once
// Face detectors: BlazeFace (MediaPipe's back-camera model, OpenCV DNN), an RFB-320-style
// detector (faceplugin's fr_detect.onnx, OpenCV DNN) and dlib's HOG frontal detector. All
// take an 8-bit BGR image and return boxes in its pixels.

#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frs/core/cancel.h"
#include "frs/core/object_pool.h"

namespace frs {

struct Detection {
  cv::Rect2f box;  // pixels in the source image; may reach past its edges for cut-off faces
  // BlazeFace and RFB: probability in [0,1]; HOG: SVM margin (>= 0, higher = surer).
  float score = 0;
  // BlazeFace only, in source pixels: right eye, left eye, nose tip, mouth centre, right
  // ear tragion, left ear tragion (the subject's right/left). Empty for HOG and RFB.
  std::vector<cv::Point2f> keypoints;
  // Where dlib's landmark model should start, in source pixels, when the detector's box is
  // not shaped like the HOG box that model was trained on and no keypoints tell it (RFB's
  // boxes include the forehead). Empty: the aligner derives it from keypoints or the box.
  cv::Rect2f landmark_box;
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

struct RfbOptions {
  // fr_detect.onnx of npm faceplugin-face-recognition-js 0.0.1. Its graph is cut at the
  // raw regression heads when loaded (the shipped graph decodes boxes for a 320x240 input
  // only), and the priors are made here for whatever size the image is scanned at.
  std::filesystem::path model;
  // Minimum face probability, [0,1]. Default 0.85: at it the detector finds more of the
  // voc street faces than BlazeFace at 0.5 with the same precision; at 0.7 it finds more
  // still, with nearly twice the share of false boxes (docs/accuracy.md, "Two detectors").
  float min_score = 0.85f;
  // Boxes overlapping more than this IoU are one face (score-sorted NMS), [0,1]. Default 0.3.
  float nms_iou = 0.3f;
  // Smallest face side, in source pixels, that must be found. The image is scanned at the
  // scale that makes such a face kMinFace input pixels, at most 2x its own size; 0 scans
  // only the coarsest level (fastest). Default 40 (scale 0.6). Range 0 .. any.
  int min_face_px = 40;
  // Longest side of the finest scan, input pixels: bounds the work of any image. Default
  // 1920, range 64..8192. A larger image is scanned shrunk to it (its smallest faces are
  // then missed).
  int max_input_side = 1920;
  int instances = 1;  // concurrent inferences allowed (one OpenCV net each)
};

// The RFB detector's scan of an image of `size`: the scale factors (input px per source px)
// of its levels, finest first. Each level is half the one before, until a face as large as
// the image's shorter side is at most kMaxFace input pixels. Exposed for tests.
std::vector<double> plan_rfb_scales(cv::Size size, const RfbOptions& options);

class RfbFaceDetector : public FaceDetector {
 public:
  explicit RfbFaceDetector(const RfbOptions& options);
  ~RfbFaceDetector() override;
  std::vector<Detection> detect(const cv::Mat& bgr, const Cancellation& cancel = {}) override;

  // Input pixels of the smallest face scanned for (the 20-40 px recall the detector was
  // measured at) and of the largest it finds whole (larger faces come apart).
  static constexpr int kMinFace = 24;
  static constexpr int kMaxFace = 300;

  // The raw heads at one scale, decoded: every prior whose face probability is at least
  // min_score, box in input pixels. Exposed so a test can compare it with the graph's own
  // decoding at 320x240.
  std::vector<Detection> detect_input(const cv::Mat& bgr_input);

 private:
  struct Impl;
  RfbOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The model `onnx` (serialised ONNX) with its graph cut just before every node of
// `op_type`: the tensors those nodes read become the graph's outputs, and nodes only later
// outputs need are dropped. Returns the cut model and those tensors' names in graph order.
// Throws kFailedPrecondition when `onnx` does not parse or has no such node.
std::pair<std::string, std::vector<std::string>> cut_onnx_before(const std::string& onnx,
                                                                 std::string_view op_type);

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

// Ordinary non-maximum suppression: the strongest box of each group overlapping more than
// `iou` survives, unchanged; then drop_parts_of_stronger. Sorted by score, highest first.
std::vector<Detection> suppress_overlaps(std::vector<Detection> detections, float iou);

// Drops every box that lies half or more inside a stronger one (a part of that face).
// Sorted by score, highest first.
std::vector<Detection> drop_parts_of_stronger(std::vector<Detection> detections);

// Merges overlapping detections (IoU > iou) into one whose box and keypoints are the
// score-weighted mean of the group and whose score is the group's best, as MediaPipe does;
// then drop_parts_of_stronger.
std::vector<Detection> merge_detections(std::vector<Detection> detections, float iou);

float iou(const cv::Rect2f& a, const cv::Rect2f& b);

}  // namespace frs
