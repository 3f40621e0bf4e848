// Where the enrollment gate's limits come from: how much a blurred, turned or eye-covered
// enrollment photo moves the descriptor away from the person's other photos.
//  1. Real photos (lfw10, crops): each photo's mean distance to the same person's other
//     photos, by |yaw|, sharpness and eye brightness; the lowest eye brightness seen.
//  2. lfw10 blurred (Gaussian, sigma 1..4): sharpness and the rise of that mean distance.
//  3. lfw10 with dark glasses drawn on (two near-black ellipses and a bridge): eye
//     brightness before and after, and the rise of the mean distance.
//   bench_enrollment_gate

#include <cstdio>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "bench_util.h"
#include "frs/gallery/enrollment.h"
#include "testdata.h"

using namespace frs;

namespace {

struct Photo {
  std::string identity;
  cv::Mat bgr;
  Face face;
};

std::optional<Face> largest_face(const FaceEngine& engine, const cv::Mat& bgr) {
  auto faces = engine.analyze_portrait(bgr, true);
  if (faces.empty()) return std::nullopt;
  return faces.front();
}

// Mean distance from `descriptor` to the other photos of `identity` (not photo `self`).
double mean_genuine(const std::vector<Photo>& photos, std::size_t self,
                    const Embedding& descriptor) {
  double sum = 0;
  int n = 0;
  for (std::size_t j = 0; j < photos.size(); ++j) {
    if (j == self || photos[j].identity != photos[self].identity) continue;
    sum += distance(descriptor, *photos[j].face.embedding);
    ++n;
  }
  return n ? sum / n : 0;
}

std::vector<Photo> load(const FaceEngine& engine, const std::string& set, bool named_files) {
  std::vector<Photo> photos;
  std::vector<std::pair<std::string, std::filesystem::path>> files;
  if (named_files) {
    for (const auto& entry : std::filesystem::directory_iterator(testing::testdata_dir() / set)) {
      const std::string name = entry.path().filename().string();
      files.emplace_back(name.substr(0, name.find('_')), entry.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    for (const auto& p : testing::read_identity_tree(testing::testdata_dir() / set)) {
      files.emplace_back(p.identity, p.file);
    }
  }
  for (const auto& [identity, file] : files) {
    cv::Mat bgr = cv::imread(file.string());
    if (auto face = largest_face(engine, bgr)) photos.push_back({identity, bgr, *face});
  }
  return photos;
}

void table_by(const char* title, const std::vector<std::pair<double, double>>& value_and_mean,
              const std::vector<double>& edges) {
  std::printf("\n| %s | photos | median of mean same-person distance |\n|---|---|---|\n", title);
  for (std::size_t b = 0; b + 1 < edges.size(); ++b) {
    std::vector<double> in;
    for (const auto& [v, m] : value_and_mean) {
      if (v >= edges[b] && v < edges[b + 1]) in.push_back(m);
    }
    std::printf("| %.2f-%.2f | %zu | %.3f |\n", edges[b], edges[b + 1], in.size(),
                bench::median(in));
  }
}

}  // namespace

int main() {
  FaceEngineOptions options;
  options.portrait_detector = true;
  const FaceEngine engine(options);

  for (const auto& [set, named] : {std::pair{"lfw10", false}, std::pair{"crops", true}}) {
    const auto photos = load(engine, set, named);
    std::vector<std::pair<double, double>> by_yaw, by_sharpness, by_eyes;
    double lowest_eyes = 10;
    for (std::size_t i = 0; i < photos.size(); ++i) {
      const double m = mean_genuine(photos, i, *photos[i].face.embedding);
      by_yaw.emplace_back(std::abs(photos[i].face.quality.yaw), m);
      by_sharpness.emplace_back(photos[i].face.quality.sharpness, m);
      const double eyes = eye_brightness(photos[i].bgr, photos[i].face);
      by_eyes.emplace_back(eyes, m);
      lowest_eyes = std::min(lowest_eyes, eyes);
    }
    std::printf("\n## %s: %zu photos with a face\n", set, photos.size());
    table_by("abs(yaw)", by_yaw, {0, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0});
    table_by("sharpness", by_sharpness, {0, 20, 40, 80, 160, 320, 10000});
    table_by("eye brightness", by_eyes, {0, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 3.0});
    std::printf("\nlowest eye brightness: %.3f\n", lowest_eyes);
  }

  const auto photos = load(engine, "lfw10", false);
  std::printf(
      "\n## lfw10 blurred\n\n| sigma | median sharpness | faces found | median rise of mean "
      "same-person distance |\n|---|---|---|---|\n");
  for (const double sigma : {0.0, 1.0, 1.5, 2.0, 3.0, 4.0}) {
    std::vector<double> sharpness, rise;
    for (std::size_t i = 0; i < photos.size(); ++i) {
      cv::Mat blurred = photos[i].bgr.clone();
      if (sigma > 0) cv::GaussianBlur(photos[i].bgr, blurred, {0, 0}, sigma);
      const auto face = largest_face(engine, blurred);
      if (!face) continue;
      sharpness.push_back(face->quality.sharpness);
      rise.push_back(mean_genuine(photos, i, *face->embedding) -
                     mean_genuine(photos, i, *photos[i].face.embedding));
    }
    std::printf("| %.1f | %.1f | %zu | %+.3f |\n", sigma, bench::median(sharpness),
                sharpness.size(), bench::median(rise));
  }

  std::printf(
      "\n## lfw10 with dark glasses drawn on\n\n| | median eye brightness | lowest | highest | "
      "faces found | median rise of mean same-person distance |\n|---|---|---|---|---|---|\n");
  std::vector<double> before, after, rise;
  for (std::size_t i = 0; i < photos.size(); ++i) {
    before.push_back(eye_brightness(photos[i].bgr, photos[i].face));
    cv::Mat covered = photos[i].bgr.clone();
    const auto& l = photos[i].face.landmarks;
    cv::Point2f centres[2];
    for (int e = 0; e < 2; ++e) {
      cv::Point2f sum(0, 0);
      for (int k = 36 + 6 * e; k < 42 + 6 * e; ++k) sum += l[static_cast<std::size_t>(k)];
      centres[e] = sum * (1.0f / 6);
    }
    const float width = static_cast<float>(cv::norm(l[39] - l[36]));
    for (const cv::Point2f& c : centres) {
      cv::ellipse(covered, cv::Point(c), cv::Size(cv::Size2f(0.8f * width, 0.55f * width)), 0, 0,
                  360, cv::Scalar(22, 20, 18), cv::FILLED, cv::LINE_AA);
    }
    cv::line(covered, cv::Point(centres[0]), cv::Point(centres[1]), cv::Scalar(30, 30, 30),
             std::max(1, static_cast<int>(width / 8)), cv::LINE_AA);
    const auto face = largest_face(engine, covered);
    if (!face) continue;
    after.push_back(eye_brightness(covered, *face));
    rise.push_back(mean_genuine(photos, i, *face->embedding) -
                   mean_genuine(photos, i, *photos[i].face.embedding));
  }
  auto row = [](const char* name, std::vector<double> v, const char* extra) {
    std::sort(v.begin(), v.end());
    std::printf("| %s | %.3f | %.3f | %.3f | %s |\n", name, bench::median(v), v.front(), v.back(),
                extra);
  };
  row("photos as they are", before, "- | -");
  char extra[64];
  std::snprintf(extra, sizeof extra, "%zu | %+.3f", after.size(), bench::median(rise));
  row("dark glasses drawn on", after, extra);
}
