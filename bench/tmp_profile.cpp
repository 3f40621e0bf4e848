#include <dlib/image_processing.h>
#include <dlib/image_transforms.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/videoio.hpp>
#include <opencv2/imgproc.hpp>
#include <cstdio>
#include "frs/vision/face_engine.h"
#include "bench_util.h"
#include "testdata.h"
using namespace frs;
int main() {
  FaceEngineOptions o; o.threads = 1;
  const FaceEngine engine(o);
  dlib::shape_predictor sp;
  dlib::deserialize((default_models_dir() / kLandmarkModelFile).string()) >> sp;
  cv::VideoCapture cap((testing::testdata_dir() / "video" / "short_hamilton_clip.mp4").string());
  cv::Mat frame; int n = 0;
  std::vector<double> pred, chip, wrap;
  while (cap.read(frame)) {
    if (n++ % 9) continue;
    for (auto& x : engine.detect(frame)) {
      dlib::rectangle r(x.box.x, x.box.y, x.box.x + x.box.width, x.box.y + x.box.height);
      wrap.push_back(bench::median_ms(3, [&] { dlib::cv_image<dlib::bgr_pixel> im(frame); }));
      const dlib::cv_image<dlib::bgr_pixel> image(frame);
      dlib::full_object_detection s;
      pred.push_back(bench::median_ms(3, [&] { s = sp(image, r); }));
      dlib::matrix<dlib::bgr_pixel> c;
      chip.push_back(bench::median_ms(3, [&] { dlib::extract_image_chip(image, dlib::get_face_chip_details(s, 150, 0.25), c); }));
    }
  }
  std::printf("wrap %.3f ms, predictor %.2f ms, chip %.2f ms\n", bench::median(wrap), bench::median(pred), bench::median(chip));
}
