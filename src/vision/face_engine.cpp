#include "frs/vision/face_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <future>
#include <opencv2/core/utility.hpp>
#include <thread>

#include "frs/core/blas.h"
#include "frs/core/error.h"

#ifndef FRS_DEFAULT_MODELS_DIR
#define FRS_DEFAULT_MODELS_DIR "models/data"
#endif

namespace frs {

std::filesystem::path default_models_dir() {
  if (const char* env = std::getenv("FRS_MODELS"); env != nullptr && *env != '\0') return env;
  return FRS_DEFAULT_MODELS_DIR;
}

float default_min_score(DetectorKind detector) {
  switch (detector) {
    case DetectorKind::kBlazeFace:
      return 0.5f;
    case DetectorKind::kRfb:
      return RfbOptions{}.min_score;
    case DetectorKind::kHog:
      return 0.0f;
  }
  return 0.5f;
}

namespace {
constexpr DetectorKind kDetectors[] = {DetectorKind::kBlazeFace, DetectorKind::kRfb,
                                       DetectorKind::kHog};
}  // namespace

std::vector<std::string> detector_names() {
  std::vector<std::string> names;
  for (DetectorKind kind : kDetectors) names.emplace_back(detector_name(kind));
  return names;
}

DetectorKind detector_kind(std::string_view name) {
  for (DetectorKind kind : kDetectors) {
    if (name == detector_name(kind)) return kind;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "unknown detector '" + std::string(name) + "': choose blazeface, rfb or hog");
}

std::string_view detector_name(DetectorKind detector) {
  switch (detector) {
    case DetectorKind::kBlazeFace:
      return "blazeface";
    case DetectorKind::kRfb:
      return "rfb";
    case DetectorKind::kHog:
      return "hog";
  }
  return "blazeface";
}

namespace {

int resolve_threads(int requested) {
  if (requested < 0 || requested > 64) {
    throw Error(ErrorCode::kInvalidArgument,
                "threads must be in 0..64 (0 = one per core), got " + std::to_string(requested));
  }
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

FaceEngine::FaceEngine(const FaceEngineOptions& options)
    : options_(options), model_(&frs::descriptor_model(options.descriptor)) {
  if (options.max_faces < 1 || options.max_faces > 10000) {
    throw Error(ErrorCode::kInvalidArgument,
                "max_faces must be in 1..10000, got " + std::to_string(options.max_faces));
  }
  if (options.min_face_px < 0) {
    throw Error(ErrorCode::kInvalidArgument, "min_face_px must be >= 0");
  }
  const int threads = resolve_threads(options.threads);
  options_.threads = threads;
  const float min_score = options.min_score.value_or(default_min_score(options.detector));
  options_.min_score = min_score;
  require_thread_safe_blas();  // the descriptor's products run on several threads at once
  // Parallelism comes from running several images/chips at once, one net per thread;
  // OpenCV's own intra-op threads would fight those for the same cores.
  cv::setNumThreads(1);

  if (options.detector == DetectorKind::kBlazeFace) {
    BlazeFaceOptions o;
    o.model = options.models_dir / kBlazeFaceModelFile;
    o.min_score = min_score;
    o.min_face_px = options.min_face_px;
    o.max_views = options.max_detector_views;
    o.instances = threads;
    detector_ = std::make_unique<BlazeFaceDetector>(o);
    if (options.portrait_detector) {
      BlazeFaceOptions front = o;
      front.model = options.models_dir / kBlazeFaceFrontModelFile;
      front.input_size = 128;
      front.min_face_px = 0;  // one view: the front model is for faces near the camera
      portrait_detector_ = std::make_unique<BlazeFaceDetector>(front);
    }
  } else if (options.detector == DetectorKind::kRfb) {
    RfbOptions o;
    o.model = options.models_dir / kRfbModelFile;
    o.min_score = min_score;
    o.min_face_px = options.min_face_px;
    o.instances = threads;
    detector_ = std::make_unique<RfbFaceDetector>(o);
  } else {
    HogOptions o;
    o.upsample = options.hog_upsample;
    o.adjust_threshold = min_score;
    o.instances = threads;
    detector_ = std::make_unique<HogFaceDetector>(o);
  }
  aligner_ = std::make_unique<FaceAligner>(options.models_dir / kLandmarkModelFile);
  models_.push_back(model_);
  for (const std::string& id : options.more_descriptors) {
    const DescriptorModel* more = &frs::descriptor_model(id);
    if (std::find(models_.begin(), models_.end(), more) == models_.end()) models_.push_back(more);
  }
  bool dlib_network = false;
  for (const DescriptorModel* m : models_) {
    dlib_network = dlib_network || m->chip != DescriptorChip::kArcFace;
    arcface_chips_ = arcface_chips_ || m->chip != DescriptorChip::kDlib;
  }
  if (dlib_network) {
    EmbedderOptions e;
    e.model = options.models_dir / kDescriptorModelFile;
    e.threads = threads;
    e.batch_size = options.batch_size;
    e.flip_average = options.flip_average;
    e.jitter = options.jitter;
    embedder_ = std::make_unique<FaceEmbedder>(e);
  }
  if (model_->chip == DescriptorChip::kArcFace && options.jitter > 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "jitter is dlib's augmentation and works with dlib-resnet-v1 or fused-v1 only, "
                "not " +
                    options.descriptor);
  }
  if (arcface_chips_) {
    OnnxEmbedderOptions o;
    o.model = options.models_dir / kFacepluginModelFile;
    o.threads = threads;
    o.flip_average = options.flip_average;
    onnx_embedder_ = std::make_unique<OnnxFaceEmbedder>(o);
  }
  for (const DescriptorModel* m : models_) {
    const std::size_t dimension =
        (m->chip != DescriptorChip::kArcFace ? frs::descriptor_model(kDlibDescriptorId).dimension
                                             : 0) +
        (m->chip != DescriptorChip::kDlib ? onnx_embedder_->dimension() : 0);
    if (dimension != m->dimension) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "the model files give " + std::to_string(dimension) + "-value descriptors, but " +
                      std::string(m->id) + " has " + std::to_string(m->dimension) +
                      ": re-run models/fetch.sh");
    }
  }
}

bool FaceEngine::describes(std::string_view model) const {
  return std::any_of(models_.begin(), models_.end(),
                     [&](const DescriptorModel* m) { return m->id == model; });
}

FaceEngine::~FaceEngine() = default;

std::vector<Detection> FaceEngine::detect(const cv::Mat& bgr, const Cancellation& cancel) const {
  return largest_first(detector_->detect(bgr, cancel));
}

std::vector<Detection> FaceEngine::largest_first(std::vector<Detection> detections) const {
  // Largest first: the largest face is the subject of an enrollment photo, and when an
  // image holds more faces than max_faces the smallest carry the least identity.
  std::stable_sort(
      detections.begin(), detections.end(),
      [](const Detection& a, const Detection& b) { return a.box.area() > b.box.area(); });
  if (detections.size() > static_cast<std::size_t>(options_.max_faces)) {
    detections.resize(static_cast<std::size_t>(options_.max_faces));
  }
  return detections;
}

Face FaceEngine::align(const cv::Mat& bgr, const Detection& detection) const {
  Face face = aligner_->align(bgr, detection);
  // 0.15 ms a face (bench_face_engine), made only when a model reads it.
  if (arcface_chips_) face.arcface_chip = arcface_chip(bgr, face.landmarks);
  return face;
}

Face FaceEngine::align_to(const cv::Mat& bgr,
                          const std::array<cv::Point2f, kLandmarkCount>& landmarks) const {
  Face face = aligner_->align_to(bgr, landmarks);
  if (arcface_chips_) face.arcface_chip = arcface_chip(bgr, face.landmarks);
  return face;
}

std::vector<Face> FaceEngine::analyze(const cv::Mat& bgr, bool embed_faces,
                                      const Cancellation& cancel) const {
  return align_all(bgr, detect(bgr, cancel), embed_faces, cancel);
}

std::vector<Face> FaceEngine::analyze_portrait(const cv::Mat& bgr, bool embed_faces,
                                               const Cancellation& cancel) const {
  if (!portrait_detector_) return analyze(bgr, embed_faces, cancel);
  std::vector<Detection> detections = largest_first(portrait_detector_->detect(bgr, cancel));
  if (detections.empty()) detections = detect(bgr, cancel);
  return align_all(bgr, detections, embed_faces, cancel);
}

std::vector<Face> FaceEngine::align_all(const cv::Mat& bgr,
                                        const std::vector<Detection>& detections, bool embed_faces,
                                        const Cancellation& cancel) const {
  std::vector<Face> faces(detections.size());
  // Landmarks cost ~1 ms a face; split them over the threads only when there are many.
  const std::size_t shares = std::min<std::size_t>(static_cast<std::size_t>(options_.threads),
                                                   std::max<std::size_t>(1, faces.size() / 16));
  auto align_range = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      cancel.check();
      faces[i] = align(bgr, detections[i]);
    }
  };
  if (shares <= 1) {
    align_range(0, faces.size());
  } else {
    std::vector<std::future<void>> jobs;
    const std::size_t per = (faces.size() + shares - 1) / shares;
    for (std::size_t b = 0; b < faces.size(); b += per) {
      jobs.push_back(
          std::async(std::launch::async, align_range, b, std::min(faces.size(), b + per)));
    }
    for (auto& j : jobs) j.get();
  }
  if (embed_faces) embed(faces, cancel);
  return faces;
}

void FaceEngine::embed(std::vector<Face>& faces, const Cancellation& cancel) const {
  embed(faces, *model_, cancel);
}

void FaceEngine::embed(std::vector<Face>& faces, const DescriptorModel& model,
                       const Cancellation& cancel) const {
  std::vector<cv::Mat> dlib_chips, arcface_chips;
  dlib_chips.reserve(faces.size());
  arcface_chips.reserve(faces.size());
  for (const Face& f : faces) {
    dlib_chips.push_back(f.chip);
    arcface_chips.push_back(f.arcface_chip);
  }
  const std::vector<Embedding> embeddings = embed_chips(dlib_chips, arcface_chips, cancel, &model);
  for (std::size_t i = 0; i < faces.size(); ++i) faces[i].embedding = embeddings[i];
}

std::vector<Embedding> FaceEngine::embed_chips(const std::vector<cv::Mat>& dlib_chips,
                                               const std::vector<cv::Mat>& arcface_chips,
                                               const Cancellation& cancel,
                                               const DescriptorModel* model) const {
  if (model == nullptr) model = model_;
  if (std::find(models_.begin(), models_.end(), model) == models_.end()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "this engine does not describe faces with " + std::string(model->id) +
                    " (frs-server loads every model; offline commands: --descriptor " +
                    std::string(model->id) + ")");
  }
  switch (model->chip) {
    case DescriptorChip::kDlib:
      return embedder_->embed(dlib_chips, cancel);
    case DescriptorChip::kArcFace:
      return onnx_embedder_->embed(arcface_chips, cancel);
    case DescriptorChip::kBoth:
      break;
  }
  if (dlib_chips.size() != arcface_chips.size()) {
    throw Error(ErrorCode::kInvalidArgument, "fused-v1 needs both chips of every face");
  }
  const std::vector<Embedding> dlib = embedder_->embed(dlib_chips, cancel);
  const std::vector<Embedding> arcface = onnx_embedder_->embed(arcface_chips, cancel);
  const auto dlib_scale = static_cast<float>(std::sqrt(kFusedDlibWeight));
  const auto arcface_scale = static_cast<float>(std::sqrt(1.0 - kFusedDlibWeight));
  std::vector<Embedding> fused;
  fused.reserve(dlib.size());
  for (std::size_t i = 0; i < dlib.size(); ++i) {
    Embedding d = dlib[i];
    normalize(d);
    Embedding f;
    f.reserve(d.size() + arcface[i].size());
    for (float v : d) f.push_back(v * dlib_scale);
    for (float v : arcface[i]) f.push_back(v * arcface_scale);  // already unit length
    fused.push_back(std::move(f));
  }
  return fused;
}

void FaceEngine::finish(Embedding& descriptor, const DescriptorModel* model) const {
  if ((model == nullptr ? model_ : model)->metric == DescriptorMetric::kCosine) {
    normalize(descriptor);
  }
}

}  // namespace frs
