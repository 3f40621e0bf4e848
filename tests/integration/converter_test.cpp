#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "frs/convert/tfjs_weights.h"
#include "frs/core/error.h"
#include "frs/facenet/network.h"
#include "model_fixture.h"
#include "reference_facenet.h"

namespace frs::testing {
namespace {

std::filesystem::path manifest_path() {
  return default_models_dir() / "face_recognition_model-weights_manifest.json";
}

dlib::matrix<dlib::rgb_pixel> to_dlib(const cv::Mat& chip) {
  dlib::matrix<dlib::rgb_pixel> m(chip.rows, chip.cols);
  for (int y = 0; y < chip.rows; ++y)
    for (int x = 0; x < chip.cols; ++x) {
      const auto p = chip.at<cv::Vec3b>(y, x);
      m(y, x) = dlib::rgb_pixel(p[2], p[1], p[0]);
    }
  return m;
}

TEST(ModelConverter, ReadsAllOfFaceApisTensors) {
  const auto tensors = convert::read_tfjs_weights(manifest_path());
  std::size_t parameters = 0;
  for (const auto& t : tensors) parameters += t.values.size();
  EXPECT_EQ(tensors.size(), 117u);
  EXPECT_EQ(parameters, 5'614'592u);
}

TEST(ModelConverter, CommandWritesTheCheckedInFileAndDlibLoadsIt) {
  const auto out = std::filesystem::temp_directory_path() /
                   ("frs_convert_" + std::to_string(::getpid()) + ".dat");
  const std::string command = std::string(FRS_CONVERT_CLI) + " '" + manifest_path().string() +
                              "' -o '" + out.string() + "' > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  // The conversion is deterministic: the same bytes as the set-up's (checksummed) file.
  EXPECT_EQ(bytes_of(out), bytes_of(default_models_dir() / kDescriptorModelFile));

  facenet::Network net;
  ASSERT_NO_THROW(net = facenet::Network::read(out));
  EXPECT_EQ(net.parameter_count(), 5'614'592u);
  std::filesystem::remove(out);
}

TEST(ModelConverter, SerialisedNetworkGivesTheSameDescriptorAfterRoundTrip) {
  const auto tensors = convert::read_tfjs_weights(manifest_path());
  facenet::Network built;
  convert::load_face_api_weights(tensors, built);
  facenet::Network loaded = facenet::Network::deserialised(built.serialised());

  const std::vector<dlib::matrix<dlib::rgb_pixel>> chip = {
      to_dlib(largest_face(face_path("obama.jpg")).chip)};
  const auto a = built.describe(chip);
  const auto b = loaded.describe(chip);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(dlib::max(dlib::abs(a[0] - b[0])), 0.0f);
}

// The views the converter fills may be taken of a network read from a file too: its values
// stay as they were read (giving a new network its shape resets its affine layers).
TEST(ModelConverter, ParameterViewsOfANetworkReadFromAFileLeaveItsValues) {
  facenet::Network net = facenet::Network::read(default_models_dir() / kDescriptorModelFile);
  const std::vector<dlib::matrix<dlib::rgb_pixel>> chip = {
      to_dlib(largest_face(face_path("obama.jpg")).chip)};
  const auto before = net.describe(chip);
  const facenet::NetworkParameters parameters = net.parameters();
  EXPECT_EQ(parameters.convolutions.size(), 29u);
  EXPECT_EQ(parameters.affines.size(), 29u);
  EXPECT_EQ(parameters.fully_connected_outputs, facenet::kDescriptorSize);
  const auto after = net.describe(chip);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(dlib::max(dlib::abs(before[0] - after[0])), 0.0f);
  EXPECT_GT(dlib::length(before[0]), 0.5f);
}

TEST(ModelConverter, DescriptorEqualsAnIndependentComputation) {
  const auto tensors = convert::read_tfjs_weights(manifest_path());
  for (const char* name : {"obama.jpg", "biden.jpg", "lin-manuel-miranda.png"}) {
    const Face face = largest_face(face_path(name));
    const Embedding reference = reference_descriptor(tensors, face.chip);
    const Embedding& ours = *face.embedding;
    ASSERT_EQ(reference.size(), 128u) << name;
    ASSERT_EQ(ours.size(), 128u) << name;
    float worst = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
      worst = std::max(worst, std::abs(reference[i] - ours[i]));
    }
    EXPECT_LT(worst, 1e-4f) << name;
    EXPECT_LT(distance(reference, ours), 1e-4f) << name;
    // And the descriptor is not trivially small: a real dlib descriptor's length is ~1.4-1.6.
    const Embedding zero(ours.size(), 0.0f);
    EXPECT_GT(distance(ours, zero), 1.0f) << name;
  }
}

// The loader names what is wrong with the tensors it is given.
TEST(LoadFaceApiWeights, NamesTheMissingTensor) {
  facenet::Network net;
  try {
    convert::load_face_api_weights({}, net);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv32_down/conv/filters"), std::string::npos)
        << e.what();
  }
}

TEST(LoadFaceApiWeights, NamesAWronglyShapedTensor) {
  facenet::Network net;
  std::vector<convert::TfjsTensor> tensors = {
      {"conv32_down/conv/filters", {3, 3, 3, 32}, std::vector<float>(3 * 3 * 3 * 32)}};
  try {
    convert::load_face_api_weights(tensors, net);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3,3,3,32]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[7,7,3,32]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace frs::testing
