// faceplugin-v1 checked against computations made another way: the five-point alignment
// as a closed-form least-squares fit sampled by hand, the input blob built by loops, the
// first layers as plain convolutions over the weights the ONNX file holds, and the whole
// network unfused, one chip at a time, against what the engine runs (fused layers,
// batches, several threads).

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>

#include "model_fixture.h"

namespace frs::testing {
namespace {

const FaceEngine& faceplugin_engine() {
  static const std::unique_ptr<FaceEngine> engine = [] {
    FaceEngineOptions options;
    options.threads = 2;
    options.descriptor = std::string(kFacepluginDescriptorId);
    return std::make_unique<FaceEngine>(options);
  }();
  return *engine;
}

std::filesystem::path onnx_path() {
  return default_models_dir() / kFacepluginModelFile;
}

Face faceplugin_face(const std::string& name) {
  std::vector<Face> faces = faceplugin_engine().analyze(load_image(face_path(name)));
  if (faces.empty()) throw std::runtime_error("no face in " + name);
  return faces.front();
}

// The similarity (scale, rotation, shift; no reflection) that maps `from` onto `to` with
// the least squared error, solved in closed form: with centred points, the rotation-scale
// is (a, b) = (sum x.u + y.v, sum x.v - y.u) / sum |p|^2.
cv::Matx23d least_squares_similarity(const std::array<cv::Point2f, 5>& from,
                                     const std::array<cv::Point2f, 5>& to) {
  cv::Point2d mean_from(0, 0), mean_to(0, 0);
  for (std::size_t i = 0; i < 5; ++i) {
    mean_from += cv::Point2d(from[i]) / 5.0;
    mean_to += cv::Point2d(to[i]) / 5.0;
  }
  double dot = 0, cross = 0, norm = 0;
  for (std::size_t i = 0; i < 5; ++i) {
    const cv::Point2d p = cv::Point2d(from[i]) - mean_from;
    const cv::Point2d q = cv::Point2d(to[i]) - mean_to;
    dot += p.x * q.x + p.y * q.y;
    cross += p.x * q.y - p.y * q.x;
    norm += p.x * p.x + p.y * p.y;
  }
  const double a = dot / norm, b = cross / norm;
  return {a, -b, mean_to.x - (a * mean_from.x - b * mean_from.y),
          b, a,  mean_to.y - (b * mean_from.x + a * mean_from.y)};
}

// Samples the chip by walking its pixels back into the photo (bilinear, black outside).
cv::Mat sample_chip(const cv::Mat& bgr, const cv::Matx23d& m) {
  const double det = m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0);
  cv::Mat chip(kArcFaceChipSize, kArcFaceChipSize, CV_8UC3);
  for (int y = 0; y < chip.rows; ++y) {
    for (int x = 0; x < chip.cols; ++x) {
      const double dx = x - m(0, 2), dy = y - m(1, 2);
      const double sx = (m(1, 1) * dx - m(0, 1) * dy) / det;
      const double sy = (-m(1, 0) * dx + m(0, 0) * dy) / det;
      const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
      const double fx = sx - x0, fy = sy - y0;
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int px, int py) -> double {
          if (px < 0 || py < 0 || px >= bgr.cols || py >= bgr.rows) return 0;
          return bgr.at<cv::Vec3b>(py, px)[c];
        };
        const double v = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
                         fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
        chip.at<cv::Vec3b>(y, x)[c] = cv::saturate_cast<uchar>(v);
      }
    }
  }
  return chip;
}

TEST(FacepluginDescriptor, AlignmentEqualsAClosedFormLeastSquaresFit) {
  for (const char* name : {"obama.jpg", "biden.jpg", "lin-manuel-miranda.png"}) {
    const cv::Mat bgr = load_image(face_path(name));
    const Face face = faceplugin_face(name);
    const cv::Mat expected =
        sample_chip(bgr, least_squares_similarity(five_points(face.landmarks), kArcFaceTemplate));
    ASSERT_EQ(face.arcface_chip.size(), expected.size());
    cv::Mat difference;
    cv::absdiff(face.arcface_chip, expected, difference);
    double worst = 0;
    cv::minMaxLoc(difference.reshape(1), nullptr, &worst);
    // OpenCV's warpAffine interpolates in fixed point (1/32 pixel, 15-bit weights): a level
    // or two, never a shifted or turned chip, which moves edges by tens of levels.
    EXPECT_LE(cv::mean(difference)[0], 0.6) << name;
    EXPECT_LE(worst, 6) << name;
  }
}

TEST(FacepluginDescriptor, FirstLayersEqualAPlainComputation) {
  const Face face = faceplugin_face("obama.jpg");
  // The blob by loops: BGR as decoded, (v - 127) / 128, channel planes.
  const cv::Mat& chip = face.arcface_chip;
  const int side = kArcFaceChipSize;
  std::vector<float> input(3 * side * side);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x)
        input[(c * side + y) * side + x] = (chip.at<cv::Vec3b>(y, x)[c] - 127.0f) / 128.0f;
  const int shape[] = {1, 3, side, side};
  cv::Mat blob(4, shape, CV_32F, input.data());

  cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx_path().string());
  net.enableFusion(false);  // each layer's own output, not a fused block's
  const std::vector<std::string> names = net.getLayerNames();
  ASSERT_GE(names.size(), 4u);
  const auto conv0 = net.getLayer(names[0]).dynamicCast<cv::dnn::BaseConvolutionLayer>();
  const auto prelu1 = net.getLayer(names[1]);
  const auto conv2 = net.getLayer(names[2]).dynamicCast<cv::dnn::BaseConvolutionLayer>();
  const auto prelu3 = net.getLayer(names[3]);
  ASSERT_TRUE(conv0 && conv2) << "the network no longer starts conv, prelu, conv, prelu";
  ASSERT_EQ(prelu1->type, "PReLU");
  ASSERT_EQ(prelu3->type, "PReLU");

  // A plain 2-D convolution (groups = input channels / weight channels) then PReLU.
  struct Plane {
    int channels, rows, cols;
    std::vector<float> v;
    float at(int c, int y, int x) const {
      if (y < 0 || x < 0 || y >= rows || x >= cols) return 0;
      return v[(static_cast<std::size_t>(c) * rows + y) * cols + x];
    }
  };
  auto conv_prelu = [](const Plane& in, const cv::dnn::BaseConvolutionLayer& conv,
                       const cv::dnn::Layer& prelu) {
    const cv::Mat& w = conv.blobs[0];  // out, in/groups, kh, kw
    const cv::Mat& bias = conv.blobs[1];
    const cv::Mat& slope = prelu.blobs[0];
    const int out_channels = w.size[0], per_group = w.size[1], kh = w.size[2], kw = w.size[3];
    const int groups = in.channels / per_group;
    const int stride = static_cast<int>(conv.strides[0]),
              pad = static_cast<int>(conv.pads_begin[0]);
    Plane out{out_channels,
              (in.rows + 2 * pad - kh) / stride + 1,
              (in.cols + 2 * pad - kw) / stride + 1,
              {}};
    out.v.resize(static_cast<std::size_t>(out.channels) * out.rows * out.cols);
    const float* weights = w.ptr<float>();
    for (int o = 0; o < out_channels; ++o) {
      const int first_in = (o / (out_channels / groups)) * per_group;
      for (int y = 0; y < out.rows; ++y) {
        for (int x = 0; x < out.cols; ++x) {
          double sum = bias.ptr<float>()[o];
          for (int i = 0; i < per_group; ++i)
            for (int ky = 0; ky < kh; ++ky)
              for (int kx = 0; kx < kw; ++kx)
                sum += weights[((o * per_group + i) * kh + ky) * kw + kx] *
                       in.at(first_in + i, y * stride - pad + ky, x * stride - pad + kx);
          const double a = slope.ptr<float>()[o];
          out.v[(static_cast<std::size_t>(o) * out.rows + y) * out.cols + x] =
              static_cast<float>(sum > 0 ? sum : a * sum);
        }
      }
    }
    return out;
  };
  const Plane first = conv_prelu({3, side, side, input}, *conv0, *prelu1);
  const Plane second = conv_prelu(first, *conv2, *prelu3);

  net.setInput(blob);
  const cv::Mat theirs = net.forward(names[3]);
  ASSERT_EQ(theirs.total(), second.v.size());
  EXPECT_EQ(theirs.size[1], second.channels);
  EXPECT_EQ(theirs.size[2], second.rows);
  double worst = 0, scale = 0;
  const float* t = theirs.ptr<float>();
  for (std::size_t i = 0; i < second.v.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(t[i]) - second.v[i]));
    scale = std::max(scale, std::abs(static_cast<double>(second.v[i])));
  }
  EXPECT_GT(scale, 0.1);  // the layers compute something
  EXPECT_LT(worst, 1e-4 * std::max(1.0, scale));

  // And the engine's own blob is the loops' blob.
  const cv::Mat engine_blob =
      cv::dnn::blobFromImage(chip, 1.0 / 128.0, cv::Size(), cv::Scalar::all(127), false, false);
  EXPECT_EQ(cv::norm(engine_blob.reshape(1, 1), blob.reshape(1, 1), cv::NORM_INF), 0.0);
}

TEST(FacepluginDescriptor, EngineEqualsTheUnfusedNetworkOneChipAtATime) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx_path().string());
  net.enableFusion(false);
  // The engine embeds a group photo's faces in batches on two threads.
  const cv::Mat group = load_image(testdata_dir() / "groups" / "bbt1.jpg");
  const std::vector<Face> faces = faceplugin_engine().analyze(group);
  ASSERT_GE(faces.size(), 3u);
  for (const Face& face : faces) {
    net.setInput(cv::dnn::blobFromImage(face.arcface_chip, 1.0 / 128.0, cv::Size(),
                                        cv::Scalar::all(127), false, false));
    const cv::Mat out = net.forward();
    Embedding reference(out.ptr<float>(), out.ptr<float>() + out.total());
    normalize(reference);
    ASSERT_EQ(face.embedding->size(), 512u);
    EXPECT_LT(distance(reference, *face.embedding), 1e-4f);
  }
}

TEST(FacepluginDescriptor, TellsPeopleApartAndTheFusedModelCombinesBoth) {
  const float threshold = descriptor_model(kFacepluginDescriptorId).calibration.verify_max_distance;
  const Face obama = faceplugin_face("obama.jpg"), obama2 = faceplugin_face("obama2.jpg"),
             biden = faceplugin_face("biden.jpg");
  EXPECT_LT(distance(*obama.embedding, *obama2.embedding), threshold);
  EXPECT_GT(distance(*obama.embedding, *biden.embedding), threshold);
  EXPECT_NEAR(distance(*obama.embedding, Embedding(512, 0.0f)), 1.0f, 1e-5f);  // unit length

  // fused-v1's squared distance is 0.7 x dlib's (normalised) squared + 0.3 x faceplugin's.
  FaceEngineOptions fused_options;
  fused_options.threads = 2;
  fused_options.descriptor = std::string(kFusedDescriptorId);
  const FaceEngine fused(fused_options);
  const cv::Mat a = load_image(face_path("obama.jpg")), b = load_image(face_path("biden.jpg"));
  const Face fa = fused.analyze(a).front(), fb = fused.analyze(b).front();
  Embedding da = *largest_face(face_path("obama.jpg")).embedding;
  Embedding db = *largest_face(face_path("biden.jpg")).embedding;
  normalize(da);
  normalize(db);
  const double expected =
      std::sqrt(0.7 * std::pow(distance(da, db), 2) +
                0.3 * std::pow(distance(*obama.embedding, *biden.embedding), 2));
  ASSERT_EQ(fa.embedding->size(), 640u);
  EXPECT_NEAR(distance(*fa.embedding, *fb.embedding), expected, 1e-4);
  // A descriptor of one model is never compared with one of another.
  EXPECT_THROW((void)distance(*fa.embedding, *obama.embedding), Error);
}

}  // namespace
}  // namespace frs::testing
