#pragma once
// The one face engine: detect -> align -> (embed). Still images (search, enrollment) and
// video frames go through exactly this code.

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "frs/vision/aligner.h"
#include "frs/vision/descriptor_model.h"
#include "frs/vision/detector.h"
#include "frs/vision/embedder.h"
#include "frs/vision/face.h"
#include "frs/vision/image.h"

namespace frs {

enum class DetectorKind { kBlazeFace, kHog, kRfb };

// Model file names inside a models directory (see models/README.md).
inline constexpr const char* kBlazeFaceModelFile = "face_detection_back_256x256_barracuda.onnx";
inline constexpr const char* kBlazeFaceFrontModelFile =
    "face_detection_front_128x128_barracuda.onnx";
inline constexpr const char* kRfbModelFile = "fr_detect.onnx";
inline constexpr const char* kLandmarkModelFile = "shape_predictor_68_face_landmarks.dat";
inline constexpr const char* kDescriptorModelFile = "dlib_face_recognition_resnet_model_v1.dat";

// The detector's default min_score: BlazeFace 0.5, RFB 0.85, HOG 0.
float default_min_score(DetectorKind detector);
// "blazeface", "rfb", "hog" <-> DetectorKind; kInvalidArgument naming the choices otherwise.
DetectorKind detector_kind(std::string_view name);
std::string_view detector_name(DetectorKind detector);
// Every detector's name, for command-line choices.
std::vector<std::string> detector_names();

// $FRS_MODELS if set, else the directory the set-up script fills (fixed at build time).
std::filesystem::path default_models_dir();

struct FaceEngineOptions {
  std::filesystem::path models_dir = default_models_dir();
  DetectorKind detector = DetectorKind::kBlazeFace;
  // BlazeFace: minimum probability [0,1], default 0.5. RFB: the same, default 0.85. HOG:
  // added to dlib's SVM threshold (HogOptions::adjust_threshold, may be negative), default
  // 0. Unset = the chosen detector's default (default_min_score): one default for every
  // detector would run RFB at BlazeFace's threshold, where it fires on hands.
  std::optional<float> min_score;
  // Smallest face side to find, in source pixels (BlazeFace's tiling, RFB's scale). Default
  // 40; 0 = one pass over the whole image.
  int min_face_px = 40;
  // Most detector views per image (BlazeFaceOptions::max_views): bounds the work an image
  // of any size or shape costs. Default 128, range 1..4096.
  int max_detector_views = 128;
  int hog_upsample = 1;  // see HogOptions::upsample
  // Most faces analysed per image, keeping the largest. Default 256; range 1..10000.
  int max_faces = 256;
  // The descriptor model (descriptor_model.h): default dlib-resnet-v1; faceplugin-v1 or
  // fused-v1 also need fr_feature.onnx.
  std::string descriptor = std::string(kDefaultDescriptorId);
  // Other models the engine can describe faces with too (a server whose watchlists are of
  // several models); their networks are loaded at start. Default none.
  std::vector<std::string> more_descriptors;
  // Worker threads for detection and embedding. Default 0 = one per core.
  int threads = 0;
  int batch_size = 8;         // see EmbedderOptions::batch_size
  bool flip_average = false;  // see EmbedderOptions::flip_average
  int jitter = 0;             // see EmbedderOptions::jitter (dlib's network only)
  // analyze_portrait() uses BlazeFace's front model (default true); false: the back model,
  // as analyze() (for comparison, and for photos whose subject is far from the camera).
  bool portrait_detector = true;
  ImageLimits limits;
};

class FaceEngine {
 public:
  explicit FaceEngine(const FaceEngineOptions& options = {});
  ~FaceEngine();
  FaceEngine(const FaceEngine&) = delete;
  FaceEngine& operator=(const FaceEngine&) = delete;

  // All thread-safe. Those that take a Cancellation stop with Error(kCancelled) soon after
  // it fires (between detector views, faces and batches of descriptors).
  // The faces found, largest first (the subject of a portrait is the first), at most
  // max_faces.
  std::vector<Detection> detect(const cv::Mat& bgr, const Cancellation& cancel = {}) const;
  // Landmarks, chip and quality of one detected face (what analyze does for each face).
  Face align(const cv::Mat& bgr, const Detection& detection) const;
  // Chips and quality from landmarks found before (FaceAligner::align_to).
  Face align_to(const cv::Mat& bgr, const std::array<cv::Point2f, kLandmarkCount>& landmarks) const;
  // Detects, aligns and measures every face (largest first, at most max_faces); with
  // `embed` also computes each face's descriptor in one batch.
  std::vector<Face> analyze(const cv::Mat& bgr, bool embed = true,
                            const Cancellation& cancel = {}) const;
  // For a photo of one person near the camera (enrollment, booking photos): BlazeFace's
  // front model over the whole photo, a quarter of the back model's pixels; when it finds
  // no face, analyze() as usual. Faces far from the camera are not looked for. HOG engines:
  // analyze().
  std::vector<Face> analyze_portrait(const cv::Mat& bgr, bool embed = true,
                                     const Cancellation& cancel = {}) const;
  // Embeds faces already aligned (e.g. the best chips of a track), in place, with the
  // engine's model.
  void embed(std::vector<Face>& faces, const Cancellation& cancel = {}) const;
  // The same with another model it can describe (describes()); kFailedPrecondition if not.
  void embed(std::vector<Face>& faces, const DescriptorModel& model,
             const Cancellation& cancel = {}) const;

  // The descriptors of already aligned chips, of `model` (the engine's when null).
  std::vector<Embedding> embed_chips(const std::vector<cv::Mat>& dlib_chips,
                                     const std::vector<cv::Mat>& arcface_chips,
                                     const Cancellation& cancel = {},
                                     const DescriptorModel* model = nullptr) const;
  // Makes a mean of descriptors (a track's fusion) a descriptor of `model` again (the
  // engine's when null): unit length for cosine models, unchanged for dlib's.
  void finish(Embedding& descriptor, const DescriptorModel* model = nullptr) const;

  const FaceEngineOptions& options() const { return options_; }
  // The engine's own model: what it describes faces with unless told otherwise.
  const DescriptorModel& descriptor_model() const { return *model_; }
  // Whether it can describe faces with `model` (its own or one of more_descriptors).
  bool describes(std::string_view model) const;

 private:
  FaceEngineOptions options_;
  std::vector<Face> align_all(const cv::Mat& bgr, const std::vector<Detection>& detections,
                              bool embed, const Cancellation& cancel) const;
  std::vector<Detection> largest_first(std::vector<Detection> detections) const;

  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<FaceDetector> portrait_detector_;  // BlazeFace front model; null for HOG
  std::unique_ptr<FaceAligner> aligner_;
  const DescriptorModel* model_;
  std::vector<const DescriptorModel*> models_;       // model_ and more_descriptors
  bool arcface_chips_ = false;                       // some model reads Face::arcface_chip
  std::unique_ptr<FaceEmbedder> embedder_;           // dlib's network; null when not used
  std::unique_ptr<OnnxFaceEmbedder> onnx_embedder_;  // faceplugin's; null when not used
};

}  // namespace frs
