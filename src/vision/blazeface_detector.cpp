#include <algorithm>
#include <cmath>
#include <future>
#include <opencv2/imgproc.hpp>

#include "frs/core/error.h"
#include "frs/vision/detector.h"

namespace frs {
namespace {

constexpr int kInput = BlazeFaceDetector::kInputSize;
// Smallest face side, in model-input pixels, that the back-camera model finds reliably.
// Measured with bench/ on faces/obama.jpg scaled down inside a 256-pixel canvas.
constexpr int kModelMinFace = 16;
// Tiles never get smaller than this: below it the model would see an upscaled blur.
constexpr int kMinTile = 128;

struct AnchorLayer {
  int cells;    // the grid is cells x cells
  int anchors;  // per cell
};
// 16x16x2 + 8x8x6 = 896 anchors, in output order.
constexpr AnchorLayer kLayers[2] = {{16, 2}, {8, 6}};

std::vector<int> tile_positions(int length, int tile, int step) {
  std::vector<int> positions;
  if (length <= tile) return {0};
  for (int p = 0;; p += step) {
    if (p + tile >= length) {
      positions.push_back(length - tile);
      break;
    }
    positions.push_back(p);
  }
  return positions;
}

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-std::clamp(x, -80.0f, 80.0f)));
}

}  // namespace

namespace {

std::vector<DetectionView> plan_views_for(cv::Size size, int min_face_px) {
  std::vector<DetectionView> views;
  const int side = std::max(size.width, size.height);
  if (side <= 0) return views;
  // The whole image, centred in a square large enough that no face fills more than two
  // thirds of the model input: the back-camera model misses or splits faces that fill it
  // (tight square crops: 91 of 100 found with the crop as the view, 98 with a quarter of its
  // side of margin all round). A face is at most as large as the image's shorter side, so a
  // wide frame needs no margin: 640x360 is one 640-pixel view, not a 960-pixel one that
  // would shrink every face by a third more.
  const int shorter = std::min(size.width, size.height);
  const int whole = std::max(side, shorter + 2 * (shorter / 4));
  views.push_back({cv::Rect((size.width - whole) / 2, (size.height - whole) / 2, whole, whole)});
  if (min_face_px <= 0) return views;
  // Each level of tiles is as coarse as it can be: the fewest views that still reach
  // min_face_px, or, when one level cannot bridge the gap to it, a level whose tiles still
  // keep every face the level above misses. (Halving the tile at each level instead
  // scanned a 640x360 frame with 7 views where 2 do, and 1080p with 22 where 9 do.)
  int found_from = whole * kModelMinFace / kInput;  // smallest face the levels so far find
  while (found_from > min_face_px) {
    // A tile keeps faces up to a quarter of its side, or up to a third when the level
    // above needs that (the model knows faces that size; larger ones in a tile are mostly
    // texture and belong to the level above).
    const int tile = std::max({min_face_px * kInput / kModelMinFace, 3 * found_from, kMinTile});
    const int keep = std::max(tile / 4, found_from);
    // Neighbouring tiles overlap by `keep`, so a face a tile edge cuts is whole in the
    // neighbour.
    const int step = tile - keep;
    const auto xs = tile_positions(size.width, tile, step);
    const auto ys = tile_positions(size.height, tile, step);
    for (int y : ys) {
      for (int x : xs) {
        DetectionView v{cv::Rect(x, y, tile, tile)};
        v.max_face = static_cast<float>(keep);
        v.interior_left = x > 0;
        v.interior_top = y > 0;
        v.interior_right = x + tile < size.width;
        v.interior_bottom = y + tile < size.height;
        views.push_back(v);
      }
    }
    if (tile == kMinTile) break;  // finer tiles would show the model an upscaled blur
    found_from = tile * kModelMinFace / kInput;
  }
  return views;
}

}  // namespace

std::vector<DetectionView> plan_detection_views(cv::Size size, int min_face_px, int max_views) {
  std::vector<DetectionView> views = plan_views_for(size, min_face_px);
  // Too many: look for larger faces, a quarter larger at a time (about 40 steps from 40 px
  // to a million). The whole-image view alone is always within any limit.
  while (max_views > 0 && views.size() > static_cast<std::size_t>(max_views) && min_face_px > 0) {
    min_face_px = std::max(min_face_px + 1, min_face_px * 5 / 4);
    if (min_face_px >= std::max(size.width, size.height)) min_face_px = 0;
    views = plan_views_for(size, min_face_px);
  }
  return views;
}

float iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

std::vector<Detection> merge_detections(std::vector<Detection> detections, float iou_threshold) {
  std::sort(detections.begin(), detections.end(),
            [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> merged;
  std::vector<bool> used(detections.size(), false);
  for (std::size_t i = 0; i < detections.size(); ++i) {
    if (used[i]) continue;
    const Detection& best = detections[i];
    double weight = 0, x = 0, y = 0, w = 0, h = 0;
    std::vector<cv::Point2d> keypoints(best.keypoints.size());
    for (std::size_t j = i; j < detections.size(); ++j) {
      if (used[j] || (j != i && iou(best.box, detections[j].box) <= iou_threshold)) continue;
      used[j] = true;
      const Detection& d = detections[j];
      const double s = d.score;
      weight += s;
      x += s * d.box.x;
      y += s * d.box.y;
      w += s * d.box.width;
      h += s * d.box.height;
      if (d.keypoints.size() == keypoints.size()) {
        for (std::size_t k = 0; k < keypoints.size(); ++k) {
          keypoints[k] += s * cv::Point2d(d.keypoints[k]);
        }
      }
    }
    Detection out;
    out.score = best.score;
    if (weight <= 0) weight = 1;
    out.box = cv::Rect2f(static_cast<float>(x / weight), static_cast<float>(y / weight),
                         static_cast<float>(w / weight), static_cast<float>(h / weight));
    for (const auto& k : keypoints) out.keypoints.emplace_back(k / weight);
    merged.push_back(std::move(out));
  }
  return drop_parts_of_stronger(std::move(merged));
}

std::vector<Detection> drop_parts_of_stronger(std::vector<Detection> detections) {
  std::stable_sort(detections.begin(), detections.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  // A weaker box mostly inside a stronger one is a part of that face (detectors fire on
  // half-faces when a face fills the view), not a second face: two real faces never
  // overlap by half the smaller one.
  std::vector<Detection> kept;
  for (Detection& d : detections) {
    const bool inside_stronger = std::any_of(kept.begin(), kept.end(), [&](const Detection& k) {
      const float smaller = std::min(k.box.area(), d.box.area());
      return smaller > 0 && (k.box & d.box).area() >= 0.5f * smaller;
    });
    if (!inside_stronger) kept.push_back(std::move(d));
  }
  return kept;
}

BlazeFaceDetector::BlazeFaceDetector(const BlazeFaceOptions& options) : options_(options) {
  if (!std::filesystem::exists(options.model)) {
    throw Error(
        ErrorCode::kFailedPrecondition,
        "BlazeFace model '" + options.model.string() +
            "' is missing: run scripts/setup.sh (or models/fetch.sh), or pass --models DIR");
  }
  if (options.input_size != 256 && options.input_size != 128) {
    throw Error(ErrorCode::kInvalidArgument, "BlazeFace input_size must be 256 or 128");
  }
  if (options.min_score < 0 || options.min_score > 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "detector min_score must be in [0,1], got " + std::to_string(options.min_score));
  }
  if (options.max_views < 1 || options.max_views > 4096) {
    throw Error(ErrorCode::kInvalidArgument,
                "detector max_views must be in 1..4096, got " + std::to_string(options.max_views));
  }
  const int instances = std::max(1, options.instances);
  for (int i = 0; i < instances; ++i) {
    try {
      auto net = std::make_unique<cv::dnn::Net>(cv::dnn::readNetFromONNX(options.model.string()));
      if (output_names_.empty()) output_names_ = net->getUnconnectedOutLayersNames();
      nets_.add(std::move(net));
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "BlazeFace model '" + options.model.string() +
                      "' cannot be loaded (corrupt? re-run models/fetch.sh): " + e.err);
    }
  }
}

BlazeFaceDetector::~BlazeFaceDetector() = default;

std::vector<Detection> BlazeFaceDetector::detect_view(cv::dnn::Net& net, const cv::Mat& bgr,
                                                      const DetectionView& view) const {
  const cv::Rect& region = view.region;
  const int input = options_.input_size;
  const double scale = static_cast<double>(input) / region.width;  // model px per source px
  const cv::Rect inside = region & cv::Rect(0, 0, bgr.cols, bgr.rows);

  cv::Mat canvas(input, input, CV_8UC3, cv::Scalar::all(0));
  const cv::Rect target(static_cast<int>(std::lround((inside.x - region.x) * scale)),
                        static_cast<int>(std::lround((inside.y - region.y) * scale)),
                        std::max(1, static_cast<int>(std::lround(inside.width * scale))),
                        std::max(1, static_cast<int>(std::lround(inside.height * scale))));
  const cv::Rect clipped = target & cv::Rect(0, 0, input, input);
  cv::resize(bgr(inside), canvas(clipped), clipped.size(), 0, 0,
             scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);

  cv::Mat rgb;
  cv::cvtColor(canvas, rgb, cv::COLOR_BGR2RGB);
  cv::Mat tensor;
  rgb.convertTo(tensor, CV_32FC3, 2.0 / 255.0, -1.0);  // the model reads RGB in [-1,1]
  const int shape[] = {1, input, input, 3};            // NHWC
  net.setInput(cv::Mat(4, shape, CV_32F, tensor.data));

  std::vector<cv::Mat> outputs;
  net.forward(outputs, output_names_);
  // Outputs: scores and boxes of the 16x16 grid (512 anchors), then of the 8x8 grid (384).
  const cv::Mat* scores[2] = {nullptr, nullptr};
  const cv::Mat* boxes[2] = {nullptr, nullptr};
  for (const cv::Mat& o : outputs) {
    const int anchors = o.size[1];
    const bool is_box = o.dims == 3 && o.size[2] == 16;
    const int layer = anchors == 512 ? 0 : anchors == 384 ? 1 : -1;
    if (layer < 0) continue;
    (is_box ? boxes : scores)[layer] = &o;
  }
  if (!scores[0] || !scores[1] || !boxes[0] || !boxes[1]) {
    throw Error(ErrorCode::kFailedPrecondition,
                "BlazeFace model '" + options_.model.string() +
                    "' has unexpected outputs: is it face_detection_back_256x256_barracuda.onnx "
                    "or face_detection_front_128x128_barracuda.onnx?");
  }

  const float min_logit = std::log(options_.min_score / std::max(1e-6f, 1 - options_.min_score));
  std::vector<Detection> found;
  for (int l = 0; l < 2; ++l) {
    const float* s = scores[l]->ptr<float>();
    const float* b = boxes[l]->ptr<float>();
    const AnchorLayer& layer = kLayers[l];
    for (int cy = 0; cy < layer.cells; ++cy) {
      for (int cx = 0; cx < layer.cells; ++cx) {
        for (int a = 0; a < layer.anchors; ++a) {
          const int index = (cy * layer.cells + cx) * layer.anchors + a;
          if (s[index] < min_logit) continue;
          const float* r = b + index * 16;
          const float ax =
              (cx + 0.5f) * static_cast<float>(input) / static_cast<float>(layer.cells);
          const float ay =
              (cy + 0.5f) * static_cast<float>(input) / static_cast<float>(layer.cells);
          auto to_source = [&](float mx, float my) {
            return cv::Point2f(static_cast<float>(region.x + mx / scale),
                               static_cast<float>(region.y + my / scale));
          };
          const float w = r[2], h = r[3];
          Detection d;
          d.score = sigmoid(s[index]);
          const cv::Point2f tl = to_source(ax + r[0] - w / 2, ay + r[1] - h / 2);
          d.box =
              cv::Rect2f(tl.x, tl.y, static_cast<float>(w / scale), static_cast<float>(h / scale));
          for (int k = 0; k < 6; ++k)
            d.keypoints.push_back(to_source(ax + r[4 + 2 * k], ay + r[5 + 2 * k]));
          // Larger faces belong to the level above, which sees them whole and at a scale the
          // model knows better; here they are mostly texture.
          if (view.max_face > 0 && std::max(d.box.width, d.box.height) > view.max_face) continue;
          // A face that touches a tile edge lying inside the image is cut; it is whole in
          // the neighbouring tile or large enough for the level above.
          if ((view.interior_left && d.box.x <= region.x) ||
              (view.interior_top && d.box.y <= region.y) ||
              (view.interior_right && d.box.x + d.box.width >= region.x + region.width) ||
              (view.interior_bottom && d.box.y + d.box.height >= region.y + region.height)) {
            continue;
          }
          found.push_back(std::move(d));
        }
      }
    }
  }
  return found;
}

std::vector<Detection> BlazeFaceDetector::detect(const cv::Mat& bgr, const Cancellation& cancel) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw Error(ErrorCode::kInvalidArgument, "detector needs a non-empty 8-bit BGR image");
  }
  const std::vector<DetectionView> views =
      plan_detection_views(bgr.size(), options_.min_face_px, options_.max_views);
  // Views are independent: spread them over the nets so a tiled 1080p frame takes about
  // 1/instances of the time. View i goes to share i % shares.
  const std::size_t shares = std::min(views.size(), nets_.size());
  auto run_share = [&](std::size_t share) {
    std::vector<Detection> found;
    auto lease = nets_.acquire();
    try {
      for (std::size_t i = share; i < views.size(); i += shares) {
        cancel.check();
        auto part = detect_view(*lease, bgr, views[i]);
        found.insert(found.end(), std::make_move_iterator(part.begin()),
                     std::make_move_iterator(part.end()));
      }
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kInternal, std::string("BlazeFace inference failed: ") + e.err);
    }
    return found;
  };
  std::vector<Detection> all;
  if (shares <= 1) {
    all = run_share(0);
  } else {
    std::vector<std::future<std::vector<Detection>>> jobs;
    for (std::size_t share = 1; share < shares; ++share) {
      jobs.push_back(std::async(std::launch::async, run_share, share));
    }
    all = run_share(0);
    for (auto& job : jobs) {
      auto part = job.get();
      all.insert(all.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
    }
  }
  return merge_detections(std::move(all), options_.merge_iou);
}

}  // namespace frs
