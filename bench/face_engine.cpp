// Speed of the face engine's stages on this machine, medians of several runs:
//   detection, ms per frame at 640x360, 1280x720 and 1920x1080 (BlazeFace with and without
//     small-face tiling; dlib HOG as the baseline in the same run);
//   landmarks + chip, and the ArcFace chip, ms per face; dlib's descriptor, ms per chip
//     (1 thread, batch 1 and 8; and 2 threads); every descriptor model, ms per face on 1
//     and 2 threads, with the ratio to dlib-resnet-v1's in the same run; end to end,
//     faces per second on a 100-face image.
//   bench_face_engine [--runs N]

#include "frs/vision/face_engine.h"

#include <cstdio>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "bench_util.h"
#include "testdata.h"

using namespace frs;

namespace {

FaceEngineOptions engine_options(DetectorKind kind, int min_face_px, int threads) {
  FaceEngineOptions o;
  o.detector = kind;
  o.min_score = kind == DetectorKind::kHog ? 0.0f : 0.5f;
  o.min_face_px = min_face_px;
  o.threads = threads;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 7;
  if (argc == 3 && std::strcmp(argv[1], "--runs") == 0) runs = std::max(1, std::atoi(argv[2]));
  const auto data = testing::testdata_dir();
  const cv::Mat scene = load_image(data / "groups" / "bbt1.jpg");

  std::printf("# frs face engine benchmark (%d runs per figure, median)\n\n", runs);
  std::printf("## Detection, ms per frame (1 thread; frames: groups/bbt1.jpg resized)\n\n");
  std::printf(
      "| frame | BlazeFace, one pass | BlazeFace, min face 40 px (views) | dlib HOG, upsample 1 | "
      "HOG / BlazeFace-40 |\n");
  std::printf("|---|---|---|---|---|\n");
  const FaceEngine one_pass(engine_options(DetectorKind::kBlazeFace, 0, 1));
  const FaceEngine tiled(engine_options(DetectorKind::kBlazeFace, 40, 1));
  const FaceEngine hog(engine_options(DetectorKind::kHog, 0, 1));
  for (const cv::Size size : {cv::Size(640, 360), cv::Size(1280, 720), cv::Size(1920, 1080)}) {
    cv::Mat frame;
    cv::resize(scene, frame, size, 0, 0, cv::INTER_AREA);
    const double a = bench::median_ms(runs, [&] { one_pass.detect(frame); });
    const double b = bench::median_ms(runs, [&] { tiled.detect(frame); });
    const double h = bench::median_ms(std::max(1, runs / 2), [&] { hog.detect(frame); });
    std::printf("| %dx%d | %.1f | %.1f (%zu) | %.1f | %.1fx |\n", size.width, size.height, a, b,
                plan_detection_views(size, 40).size(), h, h / b);
  }

  // A 100-face image: the 100 lfw10 photos as a 10x10 mosaic of 160-pixel tiles.
  const auto people = testing::read_identity_tree(data / "lfw10");
  cv::Mat mosaic(1600, 1600, CV_8UC3);
  for (std::size_t i = 0; i < people.size() && i < 100; ++i) {
    cv::Mat tile;
    cv::resize(load_image(people[i].file), tile, {160, 160}, 0, 0, cv::INTER_AREA);
    tile.copyTo(
        mosaic(cv::Rect(static_cast<int>(i % 10) * 160, static_cast<int>(i / 10) * 160, 160, 160)));
  }
  const auto detections = tiled.detect(mosaic);
  const FaceAligner aligner(default_models_dir() / kLandmarkModelFile);
  std::vector<Face> faces;
  const double align_ms = bench::median_ms(runs,
                                           [&] {
                                             faces.clear();
                                             for (const Detection& d : detections)
                                               faces.push_back(aligner.align(mosaic, d));
                                           }) /
                          static_cast<double>(detections.size());
  const double arcface_ms = bench::median_ms(runs,
                                             [&] {
                                               for (const Face& f : faces)
                                                 (void)arcface_chip(mosaic, f.landmarks);
                                             }) /
                            static_cast<double>(faces.size());
  std::vector<cv::Mat> chips, arcface_chips;
  for (const Face& f : faces) {
    chips.push_back(f.chip);
    arcface_chips.push_back(arcface_chip(mosaic, f.landmarks));
  }
  const std::size_t first = std::min<std::size_t>(16, chips.size());
  const std::vector<cv::Mat> sixteen(chips.begin(), chips.begin() + static_cast<long>(first));
  const std::vector<cv::Mat> sixteen_arcface(arcface_chips.begin(),
                                             arcface_chips.begin() + static_cast<long>(first));

  std::printf(
      "\n## Per face (faces of the 100-face mosaic)\n\n| stage | ms per face |\n|---|---|\n");
  std::printf("| landmarks (2 passes) + 150x150 dlib chip | %.2f |\n", align_ms);
  std::printf("| 112x112 ArcFace chip (faceplugin-v1, fused-v1 only) | %.2f |\n", arcface_ms);
  for (const auto& [threads, batch] : {std::pair{1, 1}, std::pair{1, 8}, std::pair{2, 8}}) {
    EmbedderOptions e;
    e.model = default_models_dir() / kDescriptorModelFile;
    e.threads = threads;
    e.batch_size = batch;
    const FaceEmbedder embedder(e);
    const double ms = bench::median_ms(runs, [&] { embedder.embed(sixteen); }) /
                      static_cast<double>(sixteen.size());
    std::printf("| descriptor, %d thread%s, batch %d | %.2f |\n", threads, threads > 1 ? "s" : "",
                batch, ms);
  }

  std::printf(
      "\n## Descriptor models, ms per face (16 faces of the mosaic; index bytes per face = 4 x "
      "values)\n\n| model | values | 1 thread | 2 threads | 1 thread, ratio to "
      "dlib-resnet-v1 |\n|---|---|---|---|---|\n");
  double dlib_ms = 0;
  for (const DescriptorModel& model : descriptor_models()) {
    double ms[2] = {0, 0};
    for (int threads : {1, 2}) {
      FaceEngineOptions o = engine_options(DetectorKind::kBlazeFace, 40, threads);
      o.descriptor = std::string(model.id);
      const FaceEngine engine(o);
      ms[threads - 1] =
          bench::median_ms(runs, [&] { engine.embed_chips(sixteen, sixteen_arcface); }) /
          static_cast<double>(first);
    }
    if (model.id == kDlibDescriptorId) dlib_ms = ms[0];
    std::printf("| %s | %zu | %.2f | %.2f | %.2fx |\n", std::string(model.id).c_str(),
                model.dimension, ms[0], ms[1], dlib_ms > 0 ? ms[0] / dlib_ms : 0.0);
  }

  std::printf("\n## End to end on the 100-face image (1600x1600, min face 40 px)\n\n");
  std::printf("| threads | faces found | ms per image | faces per second |\n|---|---|---|---|\n");
  for (int threads : {1, 2}) {
    const FaceEngine engine(engine_options(DetectorKind::kBlazeFace, 40, threads));
    std::size_t found = 0;
    const double ms =
        bench::median_ms(std::max(1, runs / 2), [&] { found = engine.analyze(mosaic).size(); });
    std::printf("| %d | %zu | %.0f | %.1f |\n", threads, found, ms,
                1000.0 * static_cast<double>(found) / ms);
  }
  return 0;
}
