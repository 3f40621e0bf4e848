// Detector recall and precision on the annotated sets of ../shared/testdata, for several
// thresholds and tiling settings, with ms per image. Prints one table row per setting.
//   bench_detection_accuracy [--quick]

#include <chrono>
#include <cstdio>
#include <cstring>

#include "frs/vision/face_engine.h"
#include "testdata.h"

using namespace frs;
using namespace frs::testing;

struct Set {
  const char* name;
  std::vector<AnnotatedImage> images;
  std::vector<std::string> wanted;
  float min_face_px = 0;  // boxes smaller than this are not counted
};

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const auto data = testdata_dir();
  std::vector<Set> sets;
  sets.push_back({"dlib-testing", read_imglab(data / "detection/dlib/testing.xml"), {"face"}});
  sets.push_back({"dlib-training", read_imglab(data / "detection/dlib/training.xml"), {"face"}});
  sets.push_back({"voc-bare",
                  read_voc(data / "detection/voc/annotations", data / "detection/voc/images"),
                  {"sin_mascarilla"}});
  sets.push_back({"voc-bare>=40px", sets.back().images, {"sin_mascarilla"}, 40});
  sets.push_back({"voc-bare>=24px", sets.back().images, {"sin_mascarilla"}, 24});

  struct Setting {
    DetectorKind kind;
    float min_score;
    int min_face_px;
  };
  std::vector<Setting> settings = {
      {DetectorKind::kBlazeFace, 0.5f, 0},  {DetectorKind::kBlazeFace, 0.5f, 40},
      {DetectorKind::kBlazeFace, 0.6f, 40}, {DetectorKind::kBlazeFace, 0.5f, 20},
      {DetectorKind::kBlazeFace, 0.6f, 20}, {DetectorKind::kRfb, 0.85f, 40},
      {DetectorKind::kRfb, 0.85f, 24},      {DetectorKind::kRfb, 0.7f, 24}};
  if (!quick) settings.push_back({DetectorKind::kHog, 0.0f, 0});

  std::printf("%-10s %-9s %-8s %-14s %-8s %-9s %-10s %s\n", "detector", "min_score", "min_face",
              "set", "recall", "precision", "found", "ms_per_image");
  for (const Setting& s : settings) {
    FaceEngineOptions options;
    options.detector = s.kind;
    options.min_score = s.min_score;
    options.min_face_px = s.min_face_px;
    options.threads = 1;
    const FaceEngine engine(options);
    for (const Set& set : sets) {
      DetectionScore score;
      double ms = 0;
      for (const AnnotatedImage& image : set.images) {
        const cv::Mat bgr = load_image(image.file);
        const auto start = std::chrono::steady_clock::now();
        const auto found = engine.detect(bgr);
        ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
        score_detections(image.boxes, found, set.wanted, 0.3f, score, set.min_face_px);
      }
      std::printf("%-10s %-9.2f %-8d %-14s %-8.3f %-9.3f %4d/%-5d %.1f\n",
                  s.kind == DetectorKind::kHog ? "hog-up1" : detector_name(s.kind).data(),
                  s.min_score, s.min_face_px, set.name, score.recall(), score.precision(),
                  score.found, score.expected, ms / static_cast<double>(set.images.size()));
    }
  }
  return 0;
}
