// What fusing a track's chips does on real video: the shared clip (Lin-Manuel Miranda on
// stage for frames 0-210, then the audience) at 5 analysed frames a second, every face
// tracked, aligned and embedded; a gallery of him and 12 other people (obama, biden, the
// first photo of each lfw10 person). Each track is searched after each of its chips as the
// live path would, with three ways of turning the chips so far into one search:
//   any:      the newest chip alone (the live path before fusion; an alert on any chip),
//   mean:     the plain mean of the best 5 chips so far,
//   quality:  their mean weighted by measured quality (the live path's default).
// For his tracks: the distance to him at the first search and the lowest over the track,
// and after how many searches it is first under 0.5. For the audience's tracks (never
// enrolled): the lowest distance any search came to any enrolled person (an alert at
// max_distance 0.5 if under it).
// Tracks are cut at the clip's scene cut (frame 211), where the tracker can carry his
// track onto someone in the audience.
//   bench_track_fusion

#include <cstdio>
#include <map>
#include <opencv2/videoio.hpp>
#include <set>

#include "bench_util.h"
#include "frs/video/tracker.h"
#include "frs/vision/face_engine.h"
#include "testdata.h"

using namespace frs;

namespace {

struct Chip {
  int frame = 0;
  bool largest = false;  // the largest face of its frame
  Embedding descriptor{};
  float quality = 0;
};

struct Identity {
  std::string name;
  Embedding descriptor{};
};

Embedding photo_descriptor(const FaceEngine& engine, const std::filesystem::path& path) {
  return *engine.analyze_portrait(load_image(path), true).at(0).embedding;
}

// The searched descriptor after chip `k` of `chips`, for `how`.
Embedding query_after(const std::vector<Chip>& chips, std::size_t k, const std::string& how) {
  if (how == "any") return chips[k].descriptor;
  std::vector<const Chip*> so_far;
  for (std::size_t i = 0; i <= k; ++i) so_far.push_back(&chips[i]);
  std::stable_sort(so_far.begin(), so_far.end(),
                   [](const Chip* a, const Chip* b) { return a->quality > b->quality; });
  if (so_far.size() > 5) so_far.resize(5);
  std::vector<Embedding> descriptors;
  std::vector<float> weights;
  for (const Chip* c : so_far) {
    descriptors.push_back(c->descriptor);
    weights.push_back(how == "quality" ? std::max(0.05f, c->quality) : 1.0f);
  }
  return weighted_mean_embedding(descriptors, weights);
}

}  // namespace

int main() {
  FaceEngineOptions options;
  const FaceEngine engine(options);
  std::vector<Identity> gallery;
  gallery.push_back(
      {"Lin-Manuel Miranda",
       photo_descriptor(engine, testing::testdata_dir() / "faces" / "lin-manuel-miranda.png")});
  gallery.push_back(
      {"obama", photo_descriptor(engine, testing::testdata_dir() / "faces" / "obama.jpg")});
  gallery.push_back(
      {"biden", photo_descriptor(engine, testing::testdata_dir() / "faces" / "biden.jpg")});
  std::set<std::string> seen;
  for (const auto& p : testing::read_identity_tree(testing::testdata_dir() / "lfw10")) {
    if (seen.insert(p.identity).second)
      gallery.push_back({p.identity, photo_descriptor(engine, p.file)});
  }

  cv::VideoCapture capture(
      (testing::testdata_dir() / "video" / "short_hamilton_clip.mp4").string());
  FaceTracker tracker;
  std::map<std::uint64_t, std::vector<Chip>> tracks;
  cv::Mat frame;
  for (int index = 0; capture.read(frame); ++index) {
    if (index % 6 != 0) continue;  // 30 fps -> 5 analysed frames a second
    const auto at_ms = static_cast<std::int64_t>(index * 1001.0 / 30);
    const auto detections = engine.detect(frame);  // largest first
    std::vector<cv::Rect2f> boxes;
    for (const Detection& d : detections) boxes.push_back(d.box);
    const auto ids = tracker.update(at_ms, boxes);
    for (std::size_t i = 0; i < detections.size(); ++i) {
      std::vector<Face> one = {engine.align(frame, detections[i])};
      engine.embed(one);
      // The tracker can carry a track across the clip's cut to the audience (frame 211) onto
      // another face; split there, so each part is one person.
      const std::uint64_t key = ids[i] * 2 + (index >= 211 ? 1 : 0);
      tracks[key].push_back({index, i == 0, *one[0].embedding, one[0].quality.score});
    }
  }

  if (std::getenv("FRS_BENCH_VERBOSE")) {
    for (const auto& [id, chips] : tracks) {
      std::printf("track %llu:", static_cast<unsigned long long>(id));
      for (const Chip& c : chips) {
        std::printf(" f%d%s %.3f q%.2f", c.frame, c.largest ? "*" : "",
                    distance(c.descriptor, gallery[0].descriptor), c.quality);
      }
      std::printf("\n");
    }
  }
  const std::vector<std::string> ways = {"any", "mean", "quality"};
  std::printf(
      "| way | his tracks | first search: median distance | lowest: median | searches to "
      "first < 0.5: median | his searches under 0.5 | audience tracks | audience: lowest "
      "distance to anyone | audience tracks under 0.55 / 0.5 |\n"
      "|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& how : ways) {
    std::vector<double> first, lowest, to_match, stranger_lowest;
    int his = 0, strangers = 0, under_055 = 0, under_05 = 0, his_searches = 0, his_matches = 0;
    for (const auto& [id, chips] : tracks) {
      const bool on_stage = chips.back().frame < 211;
      const bool audience = chips.front().frame >= 211;
      int largest = 0;
      for (const Chip& c : chips) largest += c.largest ? 1 : 0;
      if (on_stage && 2 * largest > static_cast<int>(chips.size()) && chips.size() >= 3) {
        ++his;
        double low = 10;
        int first_match = -1;
        for (std::size_t k = 0; k < chips.size(); ++k) {
          const double d = distance(query_after(chips, k, how), gallery[0].descriptor);
          if (k == 0) first.push_back(d);
          ++his_searches;
          his_matches += d < 0.5 ? 1 : 0;
          low = std::min(low, d);
          if (first_match < 0 && d < 0.5) first_match = static_cast<int>(k) + 1;
        }
        lowest.push_back(low);
        if (first_match > 0) to_match.push_back(first_match);
      } else if (audience) {
        ++strangers;
        double low = 10;
        for (std::size_t k = 0; k < chips.size(); ++k) {
          const Embedding q = query_after(chips, k, how);
          for (const Identity& g : gallery) low = std::min<double>(low, distance(q, g.descriptor));
        }
        stranger_lowest.push_back(low);
        under_055 += low < 0.55 ? 1 : 0;
        under_05 += low < 0.5 ? 1 : 0;
      }
    }
    std::sort(stranger_lowest.begin(), stranger_lowest.end());
    std::printf(
        "| %s | %d | %.3f | %.3f | %.0f (%zu of %d reach it) | %d of %d | %d | %.3f | "
        "%d / %d |\n",
        how.c_str(), his, bench::median(first), bench::median(lowest), bench::median(to_match),
        to_match.size(), his, his_matches, his_searches, strangers,
        stranger_lowest.empty() ? 0.0 : stranger_lowest.front(), under_055, under_05);
  }
}
