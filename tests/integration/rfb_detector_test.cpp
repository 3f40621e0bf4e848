// The RFB detector (fr_detect.onnx): the graph cut and our priors against the shipped
// graph's own decoding, the scan at several scales, and inputs that must not hurt it.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "error_code.h"
#include "model_fixture.h"

namespace frs::testing {
namespace {

std::filesystem::path rfb_model() {
  return default_models_dir() / kRfbModelFile;
}

RfbFaceDetector& shared_rfb() {
  static RfbFaceDetector detector([] {
    RfbOptions o;
    o.model = rfb_model();
    return o;
  }());
  return detector;
}

// The shipped graph decodes boxes itself, with priors for a 320x240 input baked in. At that
// size, our cut graph and our own priors must give the same candidates, scores and boxes,
// except the vertical centre on the two coarsest maps: 240 is not a multiple of their
// strides (32, 64), and the shipped priors sit at cell centres of 240/rows pixels where
// ours sit at (i + 0.5) strides, as the convolutions place them (rfb_detector.cpp).
TEST(RfbDetector, CutGraphAndOurPriorsEqualTheShippedDecodingAt320x240) {
  cv::Mat input;
  cv::resize(load_image(testdata_dir() / "groups" / "bbt1.jpg"), input, cv::Size(320, 240));
  cv::dnn::Net shipped = cv::dnn::readNetFromONNX(rfb_model().string());
  shipped.setInput(
      cv::dnn::blobFromImage(input, 1.0 / 128, input.size(), cv::Scalar::all(127), true, false));
  std::vector<cv::Mat> out;
  shipped.forward(out, std::vector<cv::String>{"scores", "boxes"});
  ASSERT_EQ(out[0].total(), 4420u * 2);
  ASSERT_EQ(out[1].total(), 4420u * 4);
  constexpr float kMinScore = 0.02f;
  // Priors of the maps of strides 8 and 16 come first: 40x30x3 + 20x15x2.
  constexpr int kFinePriors = 40 * 30 * 3 + 20 * 15 * 2;
  // Where our prior centre lies below the shipped one, in pixels: (row + 0.5) x (stride -
  // 240 / rows) on the maps of strides 32 (10x8 cells, 2 priors) and 64 (5x4, 3 priors).
  const auto y_shift = [](int prior) {
    if (prior < kFinePriors) return 0.0f;
    const int k = prior - kFinePriors;
    if (k < 10 * 8 * 2) return (static_cast<float>(k / 20) + 0.5f) * (32 - 240.0f / 8);
    return (static_cast<float>((k - 160) / 15) + 0.5f) * (64 - 240.0f / 4);
  };
  std::vector<Detection> expected;
  std::vector<float> shift;
  std::vector<bool> fine;
  for (int i = 0; i < 4420; ++i) {
    const float score = out[0].ptr<float>()[2 * i + 1];
    if (score < kMinScore) continue;
    const float* b = out[1].ptr<float>() + 4 * i;
    Detection d;
    d.score = score;
    d.box = cv::Rect2f(b[0] * 320, b[1] * 240, (b[2] - b[0]) * 320, (b[3] - b[1]) * 240);
    expected.push_back(d);
    fine.push_back(i < kFinePriors);
    shift.push_back(y_shift(i));
  }
  RfbOptions o;
  o.model = rfb_model();
  o.min_score = kMinScore;
  RfbFaceDetector ours(o);
  const std::vector<Detection> got = ours.detect_input(input);
  ASSERT_GE(expected.size(), 20u) << "the photo should give many candidate priors";
  // Both are in prior order; a score right at the threshold may fall either side of it.
  ASSERT_NEAR(static_cast<double>(got.size()), static_cast<double>(expected.size()), 1);
  std::size_t matched = 0;
  std::size_t fine_matched = 0, fine_expected = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Detection& e = expected[i];
    fine_expected += fine[i];
    for (const Detection& g : got) {
      if (std::abs(g.box.x - e.box.x) < 0.01f && std::abs(g.box.y - e.box.y - shift[i]) < 0.01f &&
          std::abs(g.box.width - e.box.width) < 0.01f &&
          std::abs(g.box.height - e.box.height) < 0.01f && std::abs(g.score - e.score) < 1e-4f) {
        ++matched;
        fine_matched += fine[i];
        break;
      }
    }
  }
  EXPECT_GE(matched + 1, expected.size()) << matched << " of " << expected.size() << " matched";
  EXPECT_GE(fine_matched + 1, fine_expected);
  EXPECT_GT(fine_expected, expected.size() / 2);
}

TEST(RfbDetector, CutRefusesWhatIsNotAModelOrHasNoSuchNode) {
  EXPECT_EQ(code_of([] { cut_onnx_before("", "Transpose"); }), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([] { cut_onnx_before(std::string("\xff\xff\xff\xff", 4), "Transpose"); }),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([] { cut_onnx_before(bytes_of(rfb_model()), "NoSuchOp"); }),
            ErrorCode::kFailedPrecondition);
  const auto [cut, heads] = cut_onnx_before(bytes_of(rfb_model()), "Transpose");
  EXPECT_EQ(heads.size(), 8u);
  EXPECT_LT(cut.size(), bytes_of(rfb_model()).size());
  // Another model is refused by the detector with the fix in the message.
  RfbOptions o;
  o.model = default_models_dir() / kBlazeFaceModelFile;
  EXPECT_EQ(code_of([&] { RfbFaceDetector detector(o); }), ErrorCode::kFailedPrecondition);
  o.model = default_models_dir() / "no-such-file.onnx";
  EXPECT_EQ(code_of([&] { RfbFaceDetector detector(o); }), ErrorCode::kFailedPrecondition);
  // A download cut short (fetch.sh's checksum would catch it; a copied directory might not).
  const auto truncated = std::filesystem::temp_directory_path() / "frs_truncated_fr_detect.onnx";
  {
    const std::string bytes = bytes_of(rfb_model());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  o.model = truncated;
  EXPECT_EQ(code_of([&] { RfbFaceDetector detector(o); }), ErrorCode::kFailedPrecondition);
  std::filesystem::remove(truncated);
  o.model = rfb_model();
  o.max_input_side = 10;
  EXPECT_EQ(code_of([&] { RfbFaceDetector detector(o); }), ErrorCode::kInvalidArgument);
  o.max_input_side = 1920;
  o.min_score = 1.5f;
  EXPECT_EQ(code_of([&] { RfbFaceDetector detector(o); }), ErrorCode::kInvalidArgument);
}

TEST(RfbDetector, ConcurrentCallsGiveTheSameFacesAsOne) {
  RfbOptions o;
  o.model = rfb_model();
  o.instances = 2;
  RfbFaceDetector detector(o);
  const cv::Mat photo = load_image(testdata_dir() / "groups" / "bbt1.jpg");
  const auto alone = detector.detect(photo);
  ASSERT_GE(alone.size(), 4u);
  std::vector<std::thread> threads;
  std::vector<std::vector<Detection>> results(6);
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = detector.detect(photo); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), alone.size());
    for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i].box, alone[i].box);
  }
}

TEST(RfbDetector, ScansFinerForSmallFacesAndCoarserForLargeOnes) {
  RfbOptions o;
  // 40-px faces become 24 input pixels: the 640x360 frame is scanned at 0.6, which is
  // small enough that a face the frame's height is whole (216 px): one level.
  EXPECT_EQ(plan_rfb_scales({640, 360}, o), std::vector<double>({0.6}));
  // 1080p at 0.6: 648-px-high input, so levels at 0.3 and 0.15 too for faces up to 1080 px.
  EXPECT_EQ(plan_rfb_scales({1920, 1080}, o), std::vector<double>({0.6, 0.3, 0.15}));
  o.min_face_px = 20;  // 1.2x, capped by max_input_side 1920 for 1080p: 1.0
  EXPECT_EQ(plan_rfb_scales({1920, 1080}, o), std::vector<double>({1.0, 0.5, 0.25}));
  o.min_face_px = 0;  // only a level at which any face fits
  EXPECT_EQ(plan_rfb_scales({1000, 600}, o), std::vector<double>({0.5}));
  EXPECT_TRUE(plan_rfb_scales({0, 100}, o).empty());
  o.min_face_px = 40;
  o.max_input_side = 1920;
  const auto wide = plan_rfb_scales({100000, 2}, o);  // any shape costs a bounded scan
  ASSERT_EQ(wide.size(), 1u);
  EXPECT_LE(wide[0] * 100000, 1920.0);
}

TEST(RfbDetector, FindsTheFaceOfAPortraitAtEverySizeWithItsLandmarkBox) {
  const cv::Mat photo = load_image(face_path("obama.jpg"));
  const auto reference = shared_dlib_engine().detect(photo);
  ASSERT_EQ(reference.size(), 1u);
  for (double zoom : {0.25, 0.5, 1.0, 2.0, 4.0}) {
    cv::Mat scaled;
    cv::resize(photo, scaled, cv::Size(), zoom, zoom, zoom < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const auto found = shared_rfb().detect(scaled);
    // The strongest is the face; the model also fires, at high scores, on parts of the
    // shirt and hands of the upscaled photo (why its default threshold is 0.85).
    ASSERT_GE(found.size(), 1u) << "zoom " << zoom;
    EXPECT_LE(found.size(), 4u) << "zoom " << zoom;  // measured: 4 at zoom 2
    const cv::Rect2f want(reference[0].box.x * static_cast<float>(zoom),
                          reference[0].box.y * static_cast<float>(zoom),
                          reference[0].box.width * static_cast<float>(zoom),
                          reference[0].box.height * static_cast<float>(zoom));
    EXPECT_GT(iou(found[0].box, want), 0.5f) << "zoom " << zoom;
    EXPECT_GE(found[0].score, 0.85f);
    EXPECT_FALSE(found[0].landmark_box.empty());
  }
}

TEST(RfbDetector, TinyBlankAndOddlyShapedImagesGiveNoFaceAndNoError) {
  for (const cv::Size size :
       {cv::Size(1, 1), cv::Size(7, 3), cv::Size(64, 64), cv::Size(5000, 2), cv::Size(2, 5000)}) {
    const cv::Mat blank(size, CV_8UC3, cv::Scalar(90, 120, 200));
    EXPECT_TRUE(shared_rfb().detect(blank).empty()) << size;
  }
  EXPECT_EQ(code_of([] { shared_rfb().detect(cv::Mat()); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([] { shared_rfb().detect(cv::Mat(10, 10, CV_8UC1, cv::Scalar(0))); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([] { shared_rfb().detect_input(cv::Mat()); }), ErrorCode::kInvalidArgument);
}

// An engine that is not given a threshold runs its detector at that detector's own: one
// default for all would run RFB at BlazeFace's 0.5, where it fires on hands. A threshold
// given is kept, HOG's negative margins included.
TEST(RfbDetector, AnEngineRunsEachDetectorAtItsOwnDefaultThresholdUnlessGivenOne) {
  const auto resolved = [](DetectorKind kind, std::optional<float> min_score) {
    FaceEngineOptions options;
    options.detector = kind;
    options.min_score = min_score;
    options.threads = 1;
    return FaceEngine(options).options().min_score;
  };
  EXPECT_EQ(resolved(DetectorKind::kRfb, std::nullopt), 0.85f);
  EXPECT_EQ(resolved(DetectorKind::kBlazeFace, std::nullopt), 0.5f);
  EXPECT_EQ(resolved(DetectorKind::kHog, std::nullopt), 0.0f);
  EXPECT_EQ(resolved(DetectorKind::kRfb, 0.7f), 0.7f);
  EXPECT_EQ(resolved(DetectorKind::kHog, -0.3f), -0.3f);
  // And the threshold reaches the detector: at 0.5 RFB finds more boxes in the street
  // photos than at its default.
  FaceEngineOptions loose;
  loose.detector = DetectorKind::kRfb;
  loose.min_score = 0.5f;
  loose.threads = 1;
  FaceEngineOptions at_default = loose;
  at_default.min_score.reset();
  const FaceEngine loose_engine(loose), default_engine(at_default);
  std::size_t loose_boxes = 0, default_boxes = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(testdata_dir() / "detection" / "voc" / "images")) {
    const cv::Mat image = load_image(entry.path());
    loose_boxes += loose_engine.detect(image).size();
    default_boxes += default_engine.detect(image).size();
  }
  std::printf("voc photos, RFB boxes: %zu at 0.5, %zu at its default\n", loose_boxes,
              default_boxes);
  EXPECT_GT(loose_boxes, default_boxes + default_boxes / 10);
}

TEST(RfbDetector, AnEngineWithItEmbedsAsWellAsWithBlazeFaceOnTheSamePerson) {
  FaceEngineOptions options;
  options.detector = DetectorKind::kRfb;
  options.threads = 1;
  const FaceEngine engine(options);
  const auto a = engine.analyze(load_image(face_path("obama.jpg")));
  const auto b = engine.analyze(load_image(face_path("obama2.jpg")));
  const auto c = engine.analyze(load_image(face_path("biden.jpg")));
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  ASSERT_FALSE(c.empty());
  const double same = distance(*a[0].embedding, *b[0].embedding);
  const double other = distance(*a[0].embedding, *c[0].embedding);
  std::printf("rfb engine: obama-obama2 %.3f, obama-biden %.3f\n", same, other);
  EXPECT_LT(same, 0.5);
  EXPECT_GT(other, 0.6);
  // The same face found by BlazeFace gives nearly the same descriptor: the landmark box
  // calibration puts dlib's landmarks where they belong.
  const Face blaze = largest_face(face_path("obama.jpg"));
  EXPECT_LT(distance(*a[0].embedding, *blaze.embedding), 0.1);
}

}  // namespace
}  // namespace frs::testing
