// Smallest face BlazeFace finds in its 256-pixel input: a real face (faces/obama.jpg) is
// scaled to each size and pasted at 20 positions into a 256x256 grey canvas, which the
// detector scans in one view; prints how many placements were found per size, and the size
// the face has in the model's input. This sets kModelMinFace in blazeface_detector.cpp.

#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "bench_util.h"
#include "frs/vision/face_engine.h"
#include "testdata.h"

int main() {
  using namespace frs;
  const cv::Mat photo = load_image(testing::testdata_dir() / "faces" / "obama.jpg");
  BlazeFaceOptions options;
  options.model = default_models_dir() / kBlazeFaceModelFile;
  options.min_face_px = 0;  // one view: the canvas is exactly the model input
  BlazeFaceDetector detector(options);
  const auto found = detector.detect(photo);
  if (found.empty()) {
    std::fprintf(stderr, "no face in obama.jpg\n");
    return 1;
  }
  // Crop the face with a margin so the context around it scales with it.
  const cv::Rect2f box = found.front().box;
  const float margin = box.width * 0.5f;
  const cv::Rect crop = cv::Rect(cv::Rect2f(box.x - margin, box.y - margin, box.width + 2 * margin,
                                            box.height + 2 * margin)) &
                        cv::Rect(0, 0, photo.cols, photo.rows);
  // The detector views a 256-pixel image with a margin, so the model sees it scaled.
  const double to_model = static_cast<double>(BlazeFaceDetector::kInputSize) /
                          plan_detection_views({256, 256}, 0)[0].region.width;
  std::printf("face_px_in_canvas face_px_in_model_input found_of_20\n");
  for (int face = 8; face <= 48; face += 2) {
    const double scale = face / box.width;
    cv::Mat small;
    cv::resize(photo(crop), small, cv::Size(), scale, scale, cv::INTER_AREA);
    int hits = 0;
    for (int i = 0; i < 20; ++i) {
      cv::Mat canvas(256, 256, CV_8UC3, cv::Scalar::all(128));
      const int x = (i * 37) % std::max(1, 256 - small.cols);
      const int y = (i * 53) % std::max(1, 256 - small.rows);
      const cv::Rect target = cv::Rect(x, y, small.cols, small.rows) & cv::Rect(0, 0, 256, 256);
      small(cv::Rect(0, 0, target.width, target.height)).copyTo(canvas(target));
      for (const auto& d : detector.detect(canvas)) {
        const cv::Rect2f expected(static_cast<float>(x + (box.x - crop.x) * scale),
                                  static_cast<float>(y + (box.y - crop.y) * scale),
                                  static_cast<float>(face), static_cast<float>(face));
        if (iou(d.box, expected) >= 0.3f) {
          ++hits;
          break;
        }
      }
    }
    std::printf("%d %.1f %d\n", face, face * to_model, hits);
  }
  return 0;
}
