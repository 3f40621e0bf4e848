#include <google/protobuf/unknown_field_set.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "frs/core/error.h"
#include "frs/vision/detector.h"

namespace frs {
namespace {

// The priors the detector was trained with (Ultra-Light-Fast-Generic-Face-Detector's
// RFB-320): per feature map, from the finest (stride 8) to the coarsest (stride 64), the
// square prior sides in input pixels; box regression variances for centre and size.
constexpr std::array<int, 4> kSteps = {8, 16, 32, 64};
const std::array<std::vector<float>, 4> kMinSizes = {
    std::vector<float>{10, 16, 24}, {32, 48}, {64, 96}, {128, 192, 256}};
constexpr float kCentreVariance = 0.1f;
constexpr float kSizeVariance = 0.2f;

// RFB's box -> the HOG box dlib's landmark model starts from: relative to the RFB box, the
// centre moves kLandmarkDx widths right and kLandmarkDy heights down, the side is
// kLandmarkSide widths (medians over faces both detectors find, bench_alignment_calibration;
// lfw10 excluded).
constexpr float kLandmarkDx = -0.0193f;
constexpr float kLandmarkDy = -0.0069f;
constexpr float kLandmarkSide = 1.1187f;

// ONNX's field numbers (onnx.proto): ModelProto.graph, GraphProto.node and .output,
// NodeProto.input, .output and .op_type, ValueInfoProto.name.
constexpr int kModelGraph = 7;
constexpr int kGraphNode = 1;
constexpr int kGraphOutput = 12;
constexpr int kNodeInput = 1;
constexpr int kNodeOutput = 2;
constexpr int kNodeOpType = 4;
constexpr int kValueInfoName = 1;
constexpr int kValueInfoType = 2;
constexpr int kTypeTensor = 1;
constexpr int kTensorElemType = 1;
constexpr int kTensorShape = 2;
constexpr int kShapeDim = 1;
constexpr int kDimValue = 1;
constexpr int kDimParam = 2;
constexpr int kFloat = 1;  // TensorProto.DataType.FLOAT

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

struct GraphNode {
  std::vector<std::string> inputs, outputs;
  std::string op_type;
};

GraphNode read_node(const std::string& bytes) {
  UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes)) {
    throw Error(ErrorCode::kFailedPrecondition, "ONNX node does not parse");
  }
  GraphNode node;
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& f = fields.field(i);
    if (f.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    if (f.number() == kNodeInput) node.inputs.push_back(f.length_delimited());
    if (f.number() == kNodeOutput) node.outputs.push_back(f.length_delimited());
    if (f.number() == kNodeOpType) node.op_type = f.length_delimited();
  }
  return node;
}

}  // namespace

std::pair<std::string, std::vector<std::string>> cut_onnx_before(const std::string& onnx,
                                                                 std::string_view op_type) {
  UnknownFieldSet model;
  if (onnx.size() > static_cast<std::size_t>(INT32_MAX) || !model.ParseFromString(onnx)) {
    throw Error(ErrorCode::kFailedPrecondition, "not an ONNX model (it does not parse)");
  }
  int graph_index = -1;
  for (int i = 0; i < model.field_count(); ++i) {
    if (model.field(i).number() == kModelGraph &&
        model.field(i).type() == UnknownField::TYPE_LENGTH_DELIMITED) {
      graph_index = i;
    }
  }
  UnknownFieldSet graph;
  if (graph_index < 0 || !graph.ParseFromString(model.field(graph_index).length_delimited())) {
    throw Error(ErrorCode::kFailedPrecondition, "ONNX model has no graph");
  }
  std::vector<int> node_fields;  // indices into `graph` of its nodes, in graph order
  std::vector<GraphNode> nodes;
  for (int i = 0; i < graph.field_count(); ++i) {
    const UnknownField& f = graph.field(i);
    if (f.number() != kGraphNode || f.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    node_fields.push_back(i);
    nodes.push_back(read_node(f.length_delimited()));
  }
  std::vector<std::string> heads;
  for (const GraphNode& node : nodes) {
    if (node.op_type == op_type && !node.inputs.empty()) heads.push_back(node.inputs[0]);
  }
  if (heads.empty()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "ONNX graph has no " + std::string(op_type) + " node to cut before");
  }
  // ONNX nodes are in topological order: walking back from the heads keeps exactly the
  // nodes they depend on.
  std::set<std::string> needed(heads.begin(), heads.end());
  std::vector<bool> keep(nodes.size(), false);
  for (std::size_t n = nodes.size(); n-- > 0;) {
    const GraphNode& node = nodes[n];
    if (std::none_of(node.outputs.begin(), node.outputs.end(),
                     [&](const std::string& o) { return needed.count(o) > 0; })) {
      continue;
    }
    keep[n] = true;
    needed.insert(node.inputs.begin(), node.inputs.end());
  }
  UnknownFieldSet cut_graph;
  std::size_t node = 0;
  for (int i = 0; i < graph.field_count(); ++i) {
    const UnknownField& f = graph.field(i);
    if (node < node_fields.size() && node_fields[node] == i) {
      if (keep[node++]) cut_graph.AddField(f);
      continue;
    }
    if (f.number() == kGraphOutput) continue;
    cut_graph.AddField(f);
  }
  for (const std::string& head : heads) {
    // OpenCV wants each output's type: float NCHW tensors, batch 1, the rest left open.
    UnknownFieldSet shape, tensor_type, type, value_info;
    for (const char* dim : {"", "channels", "height", "width"}) {
      UnknownFieldSet d;
      if (*dim == '\0') {
        d.AddVarint(kDimValue, 1);
      } else {
        d.AddLengthDelimited(kDimParam, dim);
      }
      d.SerializeToString(shape.AddLengthDelimited(kShapeDim));
    }
    tensor_type.AddVarint(kTensorElemType, kFloat);
    shape.SerializeToString(tensor_type.AddLengthDelimited(kTensorShape));
    tensor_type.SerializeToString(type.AddLengthDelimited(kTypeTensor));
    value_info.AddLengthDelimited(kValueInfoName, head);
    type.SerializeToString(value_info.AddLengthDelimited(kValueInfoType));
    value_info.SerializeToString(cut_graph.AddLengthDelimited(kGraphOutput));
  }
  UnknownFieldSet cut_model;
  for (int i = 0; i < model.field_count(); ++i) {
    if (i != graph_index) {
      cut_model.AddField(model.field(i));
    } else {
      cut_graph.SerializeToString(cut_model.AddLengthDelimited(kModelGraph));
    }
  }
  std::string out;
  cut_model.SerializeToString(&out);
  return {std::move(out), std::move(heads)};
}

std::vector<Detection> suppress_overlaps(std::vector<Detection> detections, float iou_threshold) {
  std::stable_sort(detections.begin(), detections.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (Detection& d : detections) {
    if (std::none_of(kept.begin(), kept.end(),
                     [&](const Detection& k) { return iou(k.box, d.box) > iou_threshold; })) {
      kept.push_back(std::move(d));
    }
  }
  return drop_parts_of_stronger(std::move(kept));
}

std::vector<double> plan_rfb_scales(cv::Size size, const RfbOptions& options) {
  const int shorter = std::min(size.width, size.height);
  const int longer = std::max(size.width, size.height);
  if (shorter <= 0) return {};
  constexpr double kMaxFace = RfbFaceDetector::kMaxFace;
  double scale =
      options.min_face_px > 0
          ? std::min(2.0, static_cast<double>(RfbFaceDetector::kMinFace) / options.min_face_px)
          : std::min(1.0, kMaxFace / shorter);
  scale = std::min(scale, static_cast<double>(options.max_input_side) / longer);
  std::vector<double> scales{scale};
  // A face is at most as large as the shorter side; the coarser levels keep the ones that
  // are too large for the finer.
  while (shorter * scales.back() > kMaxFace) scales.push_back(scales.back() / 2);
  return scales;
}

struct RfbFaceDetector::Impl {
  ObjectPool<cv::dnn::Net> nets;
  std::vector<cv::String> heads;  // the cut graph's outputs: class and box heads
};

RfbFaceDetector::RfbFaceDetector(const RfbOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  const std::string what = "RFB detector model '" + options.model.string() + "'";
  if (!std::filesystem::exists(options.model)) {
    throw Error(
        ErrorCode::kFailedPrecondition,
        what + " is missing: run scripts/setup.sh (or models/fetch.sh), or pass --models DIR");
  }
  if (!(options.min_score >= 0 && options.min_score <= 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                "detector min_score must be in [0,1], got " + std::to_string(options.min_score));
  }
  if (!(options.nms_iou >= 0 && options.nms_iou <= 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                "detector nms_iou must be in [0,1], got " + std::to_string(options.nms_iou));
  }
  if (options.min_face_px < 0) {
    throw Error(ErrorCode::kInvalidArgument, "detector min_face_px must be >= 0");
  }
  if (options.max_input_side < 64 || options.max_input_side > 8192) {
    throw Error(ErrorCode::kInvalidArgument, "detector max_input_side must be in 64..8192, got " +
                                                 std::to_string(options.max_input_side));
  }
  std::ifstream file(options.model, std::ios::binary);
  std::ostringstream bytes;
  bytes << file.rdbuf();
  // The shipped graph ends by decoding boxes with priors for 320x240 baked in; every head is
  // read by a Transpose (NCHW -> NHWC) on the way there, so the graph is cut before those.
  std::pair<std::string, std::vector<std::string>> cut;
  try {
    cut = cut_onnx_before(bytes.str(), "Transpose");
  } catch (const Error& e) {
    throw Error(ErrorCode::kFailedPrecondition,
                what + " is not fr_detect.onnx (re-run models/fetch.sh): " + e.what());
  }
  if (cut.second.size() != 2 * kSteps.size()) {
    throw Error(ErrorCode::kFailedPrecondition,
                what + " has " + std::to_string(cut.second.size()) +
                    " heads where fr_detect.onnx has 8: re-run models/fetch.sh");
  }
  impl_->heads.assign(cut.second.begin(), cut.second.end());
  for (int i = 0; i < std::max(1, options.instances); ++i) {
    try {
      impl_->nets.add(std::make_unique<cv::dnn::Net>(
          cv::dnn::readNetFromONNX(cut.first.data(), cut.first.size())));
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kFailedPrecondition,
                  what + " cannot be loaded (corrupt? re-run models/fetch.sh): " + e.err);
    }
  }
}

RfbFaceDetector::~RfbFaceDetector() = default;

std::vector<Detection> RfbFaceDetector::detect_input(const cv::Mat& bgr_input) {
  if (bgr_input.empty() || bgr_input.type() != CV_8UC3) {
    throw Error(ErrorCode::kInvalidArgument, "detector needs a non-empty 8-bit BGR image");
  }
  const cv::Size size = bgr_input.size();
  // RGB (v - 127) / 128, NCHW: what the model was trained on (BGR is worse).
  const cv::Mat blob = cv::dnn::blobFromImage(bgr_input, 1.0 / 128, size, cv::Scalar::all(127),
                                              /*swapRB=*/true, false);
  std::vector<cv::Mat> outputs;
  {
    auto net = impl_->nets.acquire();
    try {
      net->setInput(blob);
      net->forward(outputs, impl_->heads);
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kInternal, std::string("RFB detector inference failed: ") + e.err);
    }
  }
  // Pair the heads by feature map: finest first; the class head has 2 channels per prior,
  // the box head 4.
  std::map<int, std::vector<const cv::Mat*>, std::greater<>> by_area;
  for (const cv::Mat& o : outputs) {
    if (o.dims != 4) throw Error(ErrorCode::kInternal, "RFB head is not 4-D");
    by_area[o.size[2] * o.size[3]].push_back(&o);
  }
  const auto unexpected = [] {
    return Error(ErrorCode::kFailedPrecondition,
                 "RFB detector heads are not those of fr_detect.onnx: re-run models/fetch.sh");
  };
  if (by_area.size() != kSteps.size()) throw unexpected();
  std::vector<Detection> found;
  const float min_logit_gap =
      std::log(std::max(1e-6f, options_.min_score) / std::max(1e-6f, 1 - options_.min_score));
  std::size_t level = 0;
  for (const auto& [area, heads] : by_area) {
    const std::vector<float>& min_sizes = kMinSizes[level];
    const int priors = static_cast<int>(min_sizes.size());
    const cv::Mat* classes = nullptr;
    const cv::Mat* boxes = nullptr;
    for (const cv::Mat* h : heads) {
      if (h->size[1] == 2 * priors) classes = h;
      if (h->size[1] == 4 * priors) boxes = h;
    }
    if (heads.size() != 2 || !classes || !boxes) throw unexpected();
    const int rows = classes->size[2], cols = classes->size[3];
    const float step = static_cast<float>(kSteps[level]);
    const float* c = classes->ptr<float>();
    const float* b = boxes->ptr<float>();
    const std::size_t plane = static_cast<std::size_t>(rows) * cols;
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < cols; ++x) {
        const std::size_t at = static_cast<std::size_t>(y) * cols + x;
        for (int p = 0; p < priors; ++p) {
          // Face probability = softmax of (background, face) = sigmoid of their difference.
          const float gap = c[(2 * p + 1) * plane + at] - c[(2 * p) * plane + at];
          if (!(gap >= min_logit_gap)) continue;
          // Priors in [0,1] of the input, centred where the convolutions put each cell: at
          // (i + 0.5) strides. The shipped graph centres them at (i + 0.5) / map size
          // instead, which is the same where a side is a multiple of 64 and drifts by up to
          // half a cell where it is not (its own 240-pixel height): RFB-to-HOG box centres
          // were 0.08 widths apart that way, 0.02 this way (bench_alignment_calibration).
          const float pcx = std::min(1.0f, (x + 0.5f) * step / size.width);
          const float pcy = std::min(1.0f, (y + 0.5f) * step / size.height);
          const float pw = std::min(1.0f, min_sizes[p] / size.width);
          const float ph = std::min(1.0f, min_sizes[p] / size.height);
          const float* r[4] = {b + (4 * p) * plane + at, b + (4 * p + 1) * plane + at,
                               b + (4 * p + 2) * plane + at, b + (4 * p + 3) * plane + at};
          const float cx = pcx + *r[0] * kCentreVariance * pw;
          const float cy = pcy + *r[1] * kCentreVariance * ph;
          const float w = pw * std::exp(std::clamp(*r[2] * kSizeVariance, -10.0f, 10.0f));
          const float h = ph * std::exp(std::clamp(*r[3] * kSizeVariance, -10.0f, 10.0f));
          Detection d;
          d.score = 1.0f / (1.0f + std::exp(-std::clamp(gap, -80.0f, 80.0f)));
          d.box = cv::Rect2f((cx - w / 2) * size.width, (cy - h / 2) * size.height, w * size.width,
                             h * size.height);
          found.push_back(std::move(d));
        }
      }
    }
    ++level;
  }
  return found;
}

std::vector<Detection> RfbFaceDetector::detect(const cv::Mat& bgr, const Cancellation& cancel) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw Error(ErrorCode::kInvalidArgument, "detector needs a non-empty 8-bit BGR image");
  }
  const std::vector<double> scales = plan_rfb_scales(bgr.size(), options_);
  std::vector<Detection> all;
  for (std::size_t level = 0; level < scales.size(); ++level) {
    cancel.check();
    const double scale = scales[level];
    const cv::Size scaled(std::max(1, static_cast<int>(std::lround(bgr.cols * scale))),
                          std::max(1, static_cast<int>(std::lround(bgr.rows * scale))));
    // The coarsest feature map is 1/64 of the input: smaller inputs are padded to it.
    cv::Mat input(std::max(scaled.height, kSteps.back()), std::max(scaled.width, kSteps.back()),
                  CV_8UC3, cv::Scalar::all(0));
    cv::resize(bgr, input(cv::Rect(cv::Point(0, 0), scaled)), scaled, 0, 0,
               scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const bool coarsest = level + 1 == scales.size();
    const double sx = static_cast<double>(scaled.width) / bgr.cols;
    const double sy = static_cast<double>(scaled.height) / bgr.rows;
    for (Detection& d : detect_input(input)) {
      // Larger faces come apart at this scale; the coarser level finds them whole.
      if (!coarsest && std::max(d.box.width, d.box.height) > kMaxFace) continue;
      d.box =
          cv::Rect2f(static_cast<float>(d.box.x / sx), static_cast<float>(d.box.y / sy),
                     static_cast<float>(d.box.width / sx), static_cast<float>(d.box.height / sy));
      all.push_back(std::move(d));
    }
  }
  std::vector<Detection> faces = suppress_overlaps(std::move(all), options_.nms_iou);
  for (Detection& d : faces) {
    const float side = kLandmarkSide * d.box.width;
    const float cx = d.box.x + d.box.width * (0.5f + kLandmarkDx);
    const float cy = d.box.y + d.box.height * (0.5f + kLandmarkDy);
    d.landmark_box = cv::Rect2f(cx - side / 2, cy - side / 2, side, side);
  }
  return faces;
}

}  // namespace frs
