#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include "model_fixture.h"

namespace frs::testing {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

CliRun run_cli(const std::string& args) {
  const auto err_file =
      std::filesystem::temp_directory_path() / ("frs_cli_err_" + std::to_string(::getpid()));
  const std::string command = std::string(FRS_CLI) + " " + args + " 2>" + err_file.string();
  CliRun r;
  FILE* pipe = ::popen(command.c_str(), "r");
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    r.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove(err_file);
  return r;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::string quoted(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

TEST(Cli, DetectJsonHasOneLinePerImageInInputOrder) {
  const auto a = face_path("obama.jpg"),
             b = testdata_dir() / "faces" / "knn" / "test" / "obama_and_biden.jpg";
  const CliRun r = run_cli("detect --json " + quoted(a) + " " + quoted(b));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["image"], a.string());
  EXPECT_EQ(lines[1]["image"], b.string());
  ASSERT_EQ(lines[0]["faces"].size(), 1u);
  EXPECT_GE(lines[1]["faces"].size(), 2u);
  const auto& face = lines[0]["faces"][0];
  for (const char* key : {"x", "y", "width", "height"}) EXPECT_TRUE(face["box"][key].is_number());
  EXPECT_GT(face["box"]["width"].get<int>(), 200);
  EXPECT_GT(face["score"].get<double>(), 0.5);
  EXPECT_GT(face["quality"].get<double>(), 0.0);
  EXPECT_FALSE(face.contains("embedding"));
}

TEST(Cli, EmbedJsonCarries128Floats) {
  const CliRun r = run_cli("embed --json " + quoted(face_path("obama.jpg")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["faces"][0]["embedding"].size(), 128u);
}

TEST(Cli, CompareSaysSamePersonOrNot) {
  CliRun r = run_cli("compare --json " + quoted(face_path("obama.jpg")) + " " +
                     quoted(face_path("obama2.jpg")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["distance"].get<double>(), 0.369, 0.02);
  EXPECT_TRUE(j["same_person"].get<bool>());

  r = run_cli("compare --json " + quoted(face_path("obama.jpg")) + " " +
              quoted(face_path("biden.jpg")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["distance"].get<double>(), 0.6);
  EXPECT_FALSE(j["same_person"].get<bool>());
}

TEST(Cli, AnnotateWritesAnImage) {
  const auto out = std::filesystem::temp_directory_path() /
                   ("frs_annotated_" + std::to_string(::getpid()) + ".jpg");
  const CliRun r =
      run_cli("detect --annotate " + quoted(out) + " " + quoted(face_path("obama.jpg")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const cv::Mat written = load_image(out);
  EXPECT_EQ(written.size(), load_image(face_path("obama.jpg")).size());
  std::filesystem::remove(out);
}

TEST(Cli, BadInputsExitNonZeroWithOneLineReasons) {
  const auto not_image = std::filesystem::temp_directory_path() /
                         ("frs_not_image_" + std::to_string(::getpid()) + ".jpg");
  std::ofstream(not_image) << "this is text, not a photo";

  CliRun r = run_cli("detect /nonexistent/face.jpg");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/face.jpg"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // A bad image among good ones: reported, skipped, and the run still exits non-zero.
  r = run_cli("detect --json " + quoted(not_image) + " " + quoted(face_path("obama.jpg")));
  EXPECT_EQ(r.exit_code, 1);
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0]["error"].get<std::string>().find("not a JPEG"), std::string::npos);
  EXPECT_EQ(lines[1]["faces"].size(), 1u);

  const auto blank =
      std::filesystem::temp_directory_path() / ("frs_blank_" + std::to_string(::getpid()) + ".png");
  cv::imwrite(blank.string(), cv::Mat(300, 300, CV_8UC3, cv::Scalar(90, 140, 200)));
  r = run_cli("compare " + quoted(face_path("obama.jpg")) + " " + quoted(blank));
  std::filesystem::remove(blank);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no face found"), std::string::npos) << r.err;

  r = run_cli("detect --models /nonexistent " + quoted(face_path("obama.jpg")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("scripts/setup.sh"), std::string::npos) << r.err;

  r = run_cli("detect --max-pixels 1000 " + quoted(face_path("obama.jpg")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("over the limit"), std::string::npos) << r.err;
  std::filesystem::remove(not_image);
}

}  // namespace
}  // namespace frs::testing
