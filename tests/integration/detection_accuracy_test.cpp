#include <gtest/gtest.h>

#include <cstdio>

#include "model_fixture.h"

namespace frs::testing {
namespace {

DetectionScore score_set(const FaceEngine& engine, const std::vector<AnnotatedImage>& images,
                         const std::vector<std::string>& wanted) {
  DetectionScore score;
  for (const AnnotatedImage& image : images) {
    score_detections(image.boxes, engine.detect(load_image(image.file)), wanted, 0.3f, score);
  }
  return score;
}

void report(const char* name, const DetectionScore& s) {
  std::printf("%s: recall %d/%d = %.3f, precision %.3f (%d false of %d detections)\n", name,
              s.found, s.expected, s.recall(), s.precision(), s.false_positives, s.detections);
}

TEST(DetectionAccuracy, BlazeFaceOnDlibTestingSet) {
  const auto images = read_imglab(testdata_dir() / "detection" / "dlib" / "testing.xml");
  const DetectionScore s = score_set(shared_dlib_engine(), images, {"face"});
  report("dlib testing.xml, BlazeFace", s);
  EXPECT_EQ(s.expected, 25);
  EXPECT_EQ(s.found, 25);
  EXPECT_GE(s.precision(), 0.9);
}

TEST(DetectionAccuracy, BlazeFaceOnDlibTrainingSet) {
  const auto images = read_imglab(testdata_dir() / "detection" / "dlib" / "training.xml");
  const DetectionScore s = score_set(shared_dlib_engine(), images, {"face"});
  report("dlib training.xml, BlazeFace", s);
  EXPECT_GE(s.recall(), 0.9);
  EXPECT_GE(s.precision(), 0.9);
}

TEST(DetectionAccuracy, HogWithOneUpsamplingOnDlibTestingSet) {
  FaceEngineOptions options;
  options.detector = DetectorKind::kHog;
  options.min_score = 0;
  options.hog_upsample = 1;
  options.threads = 1;
  const FaceEngine hog(options);
  const auto images = read_imglab(testdata_dir() / "detection" / "dlib" / "testing.xml");
  const DetectionScore s = score_set(hog, images, {"face"});
  report("dlib testing.xml, HOG upsample 1", s);
  EXPECT_EQ(s.found, 25);
}

// The RFB detector at its defaults (min_score 0.85, scanned at 0.6 for 40-px faces).
const FaceEngine& rfb_engine() {
  static const FaceEngine engine([] {
    FaceEngineOptions options;
    options.detector = DetectorKind::kRfb;  // and so its threshold, 0.85
    options.threads = 1;
    return options;
  }());
  return engine;
}

TEST(DetectionAccuracy, RfbOnDlibSets) {
  const auto testing_set = read_imglab(testdata_dir() / "detection" / "dlib" / "testing.xml");
  const DetectionScore t = score_set(rfb_engine(), testing_set, {"face"});
  report("dlib testing.xml, RFB", t);
  EXPECT_EQ(t.found, 25);  // measured 25/25, no false detection
  EXPECT_GE(t.precision(), 0.9);
  const auto training_set = read_imglab(testdata_dir() / "detection" / "dlib" / "training.xml");
  const DetectionScore r = score_set(rfb_engine(), training_set, {"face"});
  report("dlib training.xml, RFB", r);
  EXPECT_EQ(r.found, r.expected);  // measured 18/18, 1 false
  EXPECT_GE(r.precision(), 0.9);
}

TEST(DetectionAccuracy, RfbOnStreetAndCrowdPhotos) {
  const auto dir = testdata_dir() / "detection" / "voc";
  const auto images = read_voc(dir / "annotations", dir / "images");
  const DetectionScore s = score_set(rfb_engine(), images, {"sin_mascarilla"});
  report("voc bare faces, RFB", s);
  // Measured 60/89 = 0.674 (BlazeFace 0.618), precision 0.943 (BlazeFace 0.948).
  EXPECT_GE(s.recall(), 0.64);
  EXPECT_GE(s.precision(), 0.9);
}

TEST(DetectionAccuracy, BlazeFaceOnStreetAndCrowdPhotos) {
  const auto dir = testdata_dir() / "detection" / "voc";
  const auto images = read_voc(dir / "annotations", dir / "images");
  ASSERT_EQ(images.size(), 120u);
  // Recall counts bare faces; a detection of a masked face is not held against precision.
  const DetectionScore s = score_set(shared_dlib_engine(), images, {"sin_mascarilla"});
  report("voc bare faces, BlazeFace", s);
  // Measured 52/89 = 0.584: most misses are faces under 24 pixels, below what the default
  // min_face_px (40) promises. Precision here is a lower bound: many background faces in
  // these street photos carry no label (maksssksksss115.jpg: 10 faces, 2 labelled).
  EXPECT_GE(s.recall(), 0.55);
  EXPECT_GE(s.precision(), 0.75);

  DetectionScore large;
  for (const AnnotatedImage& image : images) {
    score_detections(image.boxes, shared_dlib_engine().detect(load_image(image.file)),
                     {"sin_mascarilla"}, 0.3f, large, 40);
  }
  report("voc bare faces >= 40 px, BlazeFace", large);
  EXPECT_EQ(large.found, large.expected);
}

}  // namespace
}  // namespace frs::testing
