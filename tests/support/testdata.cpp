#include "testdata.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <pugixml.hpp>
#include <stdexcept>

namespace frs::testing {
namespace {

// A server stopping sends its clients a GOAWAY with a PING and waits for the answer, which an
// idle client channel gives only when its backup poller runs: every 5 s by default. The
// tests hold idle channels to servers they stop, so each stop cost up to 5 s (most of the
// suite's server tests spent 5-10 s in start-up and stop alone). Set before gRPC starts.
[[maybe_unused]] const bool kQuickIdlePolling =
    ::setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100", /*overwrite=*/0) == 0;

}  // namespace

ScopedTempDir::ScopedTempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("frs_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string bytes_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::filesystem::path testdata_dir() {
  std::filesystem::path dir;
  if (const char* env = std::getenv("FRS_TESTDATA"); env && *env) {
    dir = env;
  } else {
    dir = std::filesystem::path(FRS_SOURCE_DIR).parent_path() / "shared" / "testdata";
  }
  if (!std::filesystem::is_directory(dir / "faces")) {
    throw std::runtime_error("test data not found at '" + dir.string() +
                             "': put the shared test data beside the repository "
                             "(../shared/testdata) or set FRS_TESTDATA");
  }
  return dir;
}

namespace {

pugi::xml_document load_xml(const std::filesystem::path& xml) {
  pugi::xml_document doc;
  const pugi::xml_parse_result result = doc.load_file(xml.c_str());
  if (!result) {
    throw std::runtime_error("cannot parse '" + xml.string() + "': " + result.description());
  }
  return doc;
}

}  // namespace

std::vector<AnnotatedImage> read_imglab(const std::filesystem::path& xml) {
  const pugi::xml_document doc = load_xml(xml);
  std::vector<AnnotatedImage> images;
  for (const pugi::xml_node image : doc.child("dataset").child("images").children("image")) {
    AnnotatedImage a;
    a.file = xml.parent_path() / image.attribute("file").as_string();
    for (const pugi::xml_node box : image.children("box")) {
      if (box.attribute("ignore").as_int() != 0) continue;
      a.boxes.push_back(
          {cv::Rect2f(box.attribute("left").as_float(), box.attribute("top").as_float(),
                      box.attribute("width").as_float(), box.attribute("height").as_float()),
           "face"});
    }
    images.push_back(std::move(a));
  }
  return images;
}

std::vector<AnnotatedImage> read_voc(const std::filesystem::path& annotations_dir,
                                     const std::filesystem::path& images_dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(annotations_dir)) {
    if (entry.path().extension() == ".xml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<AnnotatedImage> images;
  for (const auto& xml : files) {
    const pugi::xml_document doc = load_xml(xml);
    const pugi::xml_node root = doc.child("annotation");
    AnnotatedImage a;
    a.file = images_dir / root.child_value("filename");
    for (const pugi::xml_node object : root.children("object")) {
      const pugi::xml_node b = object.child("bndbox");
      const float x0 = b.child("xmin").text().as_float(), y0 = b.child("ymin").text().as_float();
      const float x1 = b.child("xmax").text().as_float(), y1 = b.child("ymax").text().as_float();
      a.boxes.push_back({cv::Rect2f(x0, y0, x1 - x0, y1 - y0), object.child_value("name")});
    }
    images.push_back(std::move(a));
  }
  return images;
}

void score_detections(const std::vector<AnnotatedBox>& truth, const std::vector<Detection>& found,
                      const std::vector<std::string>& wanted, float min_iou, DetectionScore& score,
                      float min_face_px) {
  auto is_wanted = [&](const AnnotatedBox& b) {
    return std::min(b.box.width, b.box.height) >= min_face_px &&
           std::find(wanted.begin(), wanted.end(), b.label) != wanted.end();
  };
  for (const AnnotatedBox& b : truth) score.expected += is_wanted(b) ? 1 : 0;
  score.detections += static_cast<int>(found.size());

  // All (detection, box) pairs over the IoU floor, best first, matched one-to-one.
  struct Pair {
    float iou;
    std::size_t detection, box;
  };
  std::vector<Pair> pairs;
  for (std::size_t d = 0; d < found.size(); ++d) {
    for (std::size_t t = 0; t < truth.size(); ++t) {
      const float o = iou(found[d].box, truth[t].box);
      if (o >= min_iou) pairs.push_back({o, d, t});
    }
  }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
  std::vector<bool> detection_used(found.size(), false), box_used(truth.size(), false);
  for (const Pair& p : pairs) {
    if (detection_used[p.detection] || box_used[p.box]) continue;
    detection_used[p.detection] = box_used[p.box] = true;
    if (is_wanted(truth[p.box])) ++score.found;
  }
  for (bool used : detection_used) score.false_positives += used ? 0 : 1;
}

std::vector<LabelledImage> read_identity_tree(const std::filesystem::path& root) {
  std::vector<LabelledImage> images;
  for (const auto& person : std::filesystem::directory_iterator(root)) {
    if (!person.is_directory()) continue;
    for (const auto& file : std::filesystem::directory_iterator(person.path())) {
      if (file.is_regular_file())
        images.push_back({person.path().filename().string(), file.path()});
    }
  }
  std::sort(images.begin(), images.end(),
            [](const LabelledImage& a, const LabelledImage& b) { return a.file < b.file; });
  return images;
}

}  // namespace frs::testing
