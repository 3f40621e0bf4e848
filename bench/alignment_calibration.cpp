// Derives the constants of landmark_box() and box_from_landmarks() in
// src/vision/aligner.cpp: how dlib's HOG box (what the 68-point model was trained on)
// relates to BlazeFace's keypoints, to the RFB detector's box (kLandmarkDx/Dy/Side in
// src/vision/rfb_detector.cpp) and to the landmarks themselves. Medians over every face
// both detectors find in faces/, groups/, crops/ and detection/dlib/ (lfw10 is left out: it
// is the set the choice is judged on).

#include <dlib/image_processing.h>
#include <dlib/opencv/cv_image.h>

#include <cstdio>

#include "bench_util.h"
#include "frs/vision/face_engine.h"
#include "testdata.h"

using namespace frs;

int main() {
  const auto data = testing::testdata_dir();
  BlazeFaceOptions bo;
  bo.model = default_models_dir() / kBlazeFaceModelFile;
  bo.min_face_px = 0;
  BlazeFaceDetector blazeface(bo);
  RfbOptions ro;
  ro.model = default_models_dir() / kRfbModelFile;
  ro.min_face_px = 24;  // the image's own scale, where HOG sees them too
  RfbFaceDetector rfb(ro);
  HogFaceDetector hog(HogOptions{});
  dlib::shape_predictor predictor;
  dlib::deserialize((default_models_dir() / kLandmarkModelFile).string()) >> predictor;

  std::vector<double> kp_along, kp_across, kp_side, lm_x, lm_y, lm_side, rfb_dx, rfb_dy, rfb_side;
  for (const char* dir : {"faces", "groups", "crops", "detection/dlib"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(data / dir)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".jpg" && ext != ".png")) continue;
      const cv::Mat image = load_image(entry.path());
      const auto from_blazeface = blazeface.detect(image);
      const auto from_rfb = rfb.detect(image);
      for (const Detection& h : hog.detect(image)) {
        const cv::Point2d centre(h.box.x + h.box.width / 2.0, h.box.y + h.box.height / 2.0);
        // Keypoints -> HOG box, in the face's frame (down = eye midpoint to mouth).
        for (const Detection& b : from_blazeface) {
          if (iou(h.box, b.box) < 0.4f) continue;
          const cv::Point2d eyes =
              (cv::Point2d(b.keypoints[0]) + cv::Point2d(b.keypoints[1])) * 0.5;
          const cv::Point2d down = cv::Point2d(b.keypoints[3]) - eyes;
          const double length = std::sqrt(down.dot(down));
          const cv::Point2d unit = down / length, across(-unit.y, unit.x);
          kp_along.push_back((centre - eyes).dot(unit) / length);
          kp_across.push_back((centre - eyes).dot(across) / length);
          kp_side.push_back(h.box.width / length);
        }
        // RFB box -> HOG box, in fractions of the RFB box.
        for (const Detection& r : from_rfb) {
          if (iou(h.box, r.box) < 0.3f) continue;
          rfb_dx.push_back((centre.x - (r.box.x + r.box.width / 2.0)) / r.box.width);
          rfb_dy.push_back((centre.y - (r.box.y + r.box.height / 2.0)) / r.box.height);
          rfb_side.push_back(h.box.width / r.box.width);
        }
        // Landmarks (from the HOG box) -> HOG box, relative to their mean and RMS spread.
        const dlib::rectangle rect(std::lround(h.box.x), std::lround(h.box.y),
                                   std::lround(h.box.x + h.box.width - 1),
                                   std::lround(h.box.y + h.box.height - 1));
        const auto shape = predictor(dlib::cv_image<dlib::bgr_pixel>(image), rect);
        cv::Point2d mean(0, 0);
        for (unsigned long i = 0; i < shape.num_parts(); ++i)
          mean += cv::Point2d(static_cast<double>(shape.part(i).x()),
                              static_cast<double>(shape.part(i).y()));
        mean /= static_cast<double>(shape.num_parts());
        double spread = 0;
        for (unsigned long i = 0; i < shape.num_parts(); ++i) {
          const cv::Point2d d = cv::Point2d(static_cast<double>(shape.part(i).x()),
                                            static_cast<double>(shape.part(i).y())) -
                                mean;
          spread += d.dot(d);
        }
        spread = std::sqrt(spread / static_cast<double>(shape.num_parts()));
        lm_x.push_back((centre.x - mean.x) / spread);
        lm_y.push_back((centre.y - mean.y) / spread);
        lm_side.push_back(h.box.width / spread);
      }
    }
  }
  std::printf("keypoints -> HOG box (%zu faces): centre %.4f along, %.4f across, side %.4f\n",
              kp_side.size(), bench::median(kp_along), bench::median(kp_across),
              bench::median(kp_side));
  std::printf(
      "RFB box -> HOG box (%zu faces): centre dx %+.4f widths, dy %+.4f heights, side %.4f "
      "widths\n",
      rfb_side.size(), bench::median(rfb_dx), bench::median(rfb_dy), bench::median(rfb_side));
  std::printf("landmarks -> HOG box (%zu faces): centre x %+.4f, y %+.4f spreads, side %.4f\n",
              lm_side.size(), bench::median(lm_x), bench::median(lm_y), bench::median(lm_side));
  return 0;
}
