// What fusing a track's chips does on real video, for every descriptor model: the shared
// clip (Lin-Manuel Miranda on stage for frames 0-210, then the audience) at 5 analysed
// frames a second, every face tracked, aligned and described with each model; a gallery of
// him and 12 other people (obama, biden, the first photo of each lfw10 person). Each track
// is searched after each of its chips as the live path would, with three ways of turning
// the chips so far into one search:
//   any:      the newest chip alone (the live path before fusion; an alert on any chip),
//   mean:     the plain mean of the best 5 chips so far,
//   quality:  their mean weighted by measured quality (the live path's default).
// Each model is judged at its own threshold: what a watchlist of 1,000 identities gets by
// default (its built-in calibration at FPIR 0.01), and at the server's default ceiling
// for the model (that plus kCeilingMargin).
// For his tracks: the distance to him at the first search and the lowest over the track,
// and after how many searches it is first under the threshold. For the audience's tracks
// (never enrolled): the lowest distance any search came to any enrolled person (an alert
// if under the threshold), and how far that is above the threshold in standard deviations
// of the model's impostor tail (a margin comparable across models).
// Tracks are cut at the clip's scene cut (frame 211), where the tracker can carry his
// track onto someone in the audience.
// Then a rejection: his first alert (quality fusion, the model's default threshold) is
// rejected by a dispatcher, its chip and fused descriptor kept as suppressions, and the
// clip is replayed 5 times with other frames analysed (frames 1, 7, 13... then 2, 8, 14...:
// what a live loop of the clip gives); each pass counts his tracks that would still alert
// as him under the old rule (within 0.3 of a rejected descriptor) and under the rule the
// server applies now (no nearer the identity than 1 / (1 + --suppression-margin) of the
// nearest rejected descriptor: Gallery::suppressed).
//   bench_track_fusion [--models "dlib-resnet-v1,faceplugin-v1,fused-v1"] [--passes 5]
//                      [--margin M (default: the server's --suppression-margin)]
//                      [--threshold MODEL=T ... (default: each model's watchlist default)]

#include <algorithm>
#include <cstdio>
#include <map>
#include <opencv2/videoio.hpp>
#include <set>

#include "bench_util.h"
#include "frs/eval/metrics.h"
#include "frs/gallery/gallery.h"
#include "frs/service/services.h"
#include "frs/video/tracker.h"
#include "frs/vision/face_engine.h"
#include "testdata.h"

using namespace frs;

namespace {

struct Chip {
  int frame = 0;
  bool largest = false;                          // the largest face of its frame
  std::map<std::string, Embedding> descriptors;  // by model id
  float quality = 0;
};

struct Enrolled {
  std::string name;
  std::map<std::string, Embedding> descriptors;  // by model id
};

// `face` described with each of `models`.
std::map<std::string, Embedding> describe(const FaceEngine& engine, const Face& face,
                                          const std::vector<const DescriptorModel*>& models) {
  std::map<std::string, Embedding> out;
  for (const DescriptorModel* model : models) {
    std::vector<Face> one = {face};
    engine.embed(one, *model);
    out[std::string(model->id)] = *one[0].embedding;
  }
  return out;
}

Enrolled photo_identity(const FaceEngine& engine, const std::string& name,
                        const std::filesystem::path& path,
                        const std::vector<const DescriptorModel*>& models) {
  return {name, describe(engine, engine.analyze_portrait(load_image(path), false).at(0), models)};
}

// The searched descriptor of `model` after chip `k` of `chips`, for `how`.
Embedding query_after(const FaceEngine& engine, const DescriptorModel& model,
                      const std::vector<Chip>& chips, std::size_t k, const std::string& how) {
  const std::string id(model.id);
  if (how == "any") return chips[k].descriptors.at(id);
  std::vector<const Chip*> so_far;
  for (std::size_t i = 0; i <= k; ++i) so_far.push_back(&chips[i]);
  std::stable_sort(so_far.begin(), so_far.end(),
                   [](const Chip* a, const Chip* b) { return a->quality > b->quality; });
  if (so_far.size() > 5) so_far.resize(5);
  std::vector<Embedding> descriptors;
  std::vector<float> weights;
  for (const Chip* c : so_far) {
    descriptors.push_back(c->descriptors.at(id));
    weights.push_back(how == "quality" ? std::max(0.05f, c->quality) : 1.0f);
  }
  Embedding mean = weighted_mean_embedding(descriptors, weights);
  engine.finish(mean, &model);  // as the live path does: unit length for cosine models
  return mean;
}

using Tracks = std::map<std::uint64_t, std::vector<Chip>>;

// --threshold MODEL=T overrides (e.g. a calibration that holds for every group); the model's
// default watchlist threshold otherwise.
std::map<std::string, double> threshold_overrides;

double threshold_of(const DescriptorModel& model) {
  const auto it = threshold_overrides.find(std::string(model.id));
  return it != threshold_overrides.end() ? it->second : default_watchlist_threshold(model);
}

// The clip at 5 analysed frames a second, starting at frame `phase` (0..5): every face
// tracked and described with each model.
Tracks collect_tracks(const FaceEngine& engine, const std::vector<const DescriptorModel*>& models,
                      int phase) {
  cv::VideoCapture capture(
      (testing::testdata_dir() / "video" / "short_hamilton_clip.mp4").string());
  FaceTracker tracker;
  Tracks tracks;
  cv::Mat frame;
  for (int index = 0; capture.read(frame); ++index) {
    if (index % 6 != phase) continue;  // 30 fps -> 5 analysed frames a second
    const auto at_ms = static_cast<std::int64_t>(index * 1001.0 / 30);
    const auto detections = engine.detect(frame);  // largest first
    std::vector<cv::Rect2f> boxes;
    for (const Detection& d : detections) boxes.push_back(d.box);
    const auto ids = tracker.update(at_ms, boxes);
    for (std::size_t i = 0; i < detections.size(); ++i) {
      const Face face = engine.align(frame, detections[i]);
      // The tracker can carry a track across the clip's cut to the audience (frame 211) onto
      // another face; split there, so each part is one person.
      const std::uint64_t key = ids[i] * 2 + (index >= 211 ? 1 : 0);
      tracks[key].push_back({index, i == 0, describe(engine, face, models), face.quality.score});
    }
  }
  return tracks;
}

// His tracks: on stage, mostly the largest face, 3 chips or more.
bool is_his(const std::vector<Chip>& chips) {
  int largest = 0;
  for (const Chip& c : chips) largest += c.largest ? 1 : 0;
  return chips.back().frame < 211 && 2 * largest > static_cast<int>(chips.size()) &&
         chips.size() >= 3;
}

// After his first alert is rejected: his tracks in the replays that would alert as him with
// no suppression, under the old radius rule, and under the current rule.
void rejection_study(const FaceEngine& engine, const Tracks& first_pass,
                     const std::vector<Tracks>& replays, const Embedding& him_of_model,
                     const DescriptorModel& model, float margin) {
  const std::string id(model.id);
  const double t = threshold_of(model);
  std::vector<Embedding> rejected;
  for (const auto& [track, chips] : first_pass) {
    if (!is_his(chips)) continue;
    for (std::size_t k = 0; k < chips.size() && rejected.empty(); ++k) {
      const Embedding q = query_after(engine, model, chips, k, "quality");
      if (distance(q, him_of_model) < t) rejected = {chips[k].descriptors.at(id), q};
    }
    if (!rejected.empty()) break;
  }
  if (rejected.empty()) {
    std::printf("| %s | %.3f | no alert to reject | | | |\n", id.c_str(), t);
    return;
  }
  int tracks = 0, alerting = 0, old_rule = 0, new_rule = 0;
  double nearest_rejected = 10;  // over his matching searches
  for (const Tracks& pass : replays) {
    for (const auto& [track, chips] : pass) {
      if (!is_his(chips)) continue;
      ++tracks;
      bool alerts = false, alerts_old = false, alerts_new = false;
      for (std::size_t k = 0; k < chips.size(); ++k) {
        const Embedding q = query_after(engine, model, chips, k, "quality");
        const double d = distance(q, him_of_model);
        if (!(d < t)) continue;
        alerts = true;
        double to_rejected = 10;
        for (const Embedding& r : rejected)
          to_rejected = std::min<double>(to_rejected, distance(q, r));
        nearest_rejected = std::min(nearest_rejected, to_rejected);
        alerts_old = alerts_old || to_rejected > 0.3;
        alerts_new = alerts_new || to_rejected > d * (1 + margin);
      }
      alerting += alerts;
      old_rule += alerts_old;
      new_rule += alerts_new;
    }
  }
  std::printf("| %s | %.3f | %d | %d | %d | %d | %.3f |\n", id.c_str(), t, tracks, alerting,
              old_rule, new_rule, nearest_rejected);
}

}  // namespace

int main(int argc, char** argv) {
  frs::bench::send_logs_to_stderr();
  std::vector<const DescriptorModel*> models;
  for (const DescriptorModel& m : descriptor_models()) models.push_back(&m);
  int passes = 5;
  float margin = GalleryOptions().suppression_margin;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--margin") margin = std::stof(argv[i + 1]);
    if (std::string(argv[i]) == "--threshold") {
      const std::string value = argv[i + 1];
      const auto equals = value.find('=');
      if (equals == std::string::npos) {
        std::fprintf(stderr, "--threshold wants MODEL=T, e.g. faceplugin-v1=0.865\n");
        return 2;
      }
      descriptor_model(value.substr(0, equals));  // an unknown model is refused
      threshold_overrides[value.substr(0, equals)] = std::stod(value.substr(equals + 1));
    }
    if (std::string(argv[i]) == "--passes") passes = std::clamp(std::atoi(argv[i + 1]), 0, 5);
    if (std::string(argv[i]) == "--models") {
      models.clear();
      for (const std::string& id : bench::split(argv[i + 1], ','))
        models.push_back(&descriptor_model(id));
    }
  }
  FaceEngineOptions options;
  options.descriptor = std::string(models.at(0)->id);
  for (std::size_t i = 1; i < models.size(); ++i)
    options.more_descriptors.push_back(std::string(models[i]->id));
  const FaceEngine engine(options);
  const auto faces = testing::testdata_dir() / "faces";
  std::vector<Enrolled> gallery;
  gallery.push_back(
      photo_identity(engine, "Lin-Manuel Miranda", faces / "lin-manuel-miranda.png", models));
  gallery.push_back(photo_identity(engine, "obama", faces / "obama.jpg", models));
  gallery.push_back(photo_identity(engine, "biden", faces / "biden.jpg", models));
  std::set<std::string> seen;
  for (const auto& p : testing::read_identity_tree(testing::testdata_dir() / "lfw10")) {
    if (seen.insert(p.identity).second)
      gallery.push_back(photo_identity(engine, p.identity, p.file, models));
  }

  const Tracks tracks = collect_tracks(engine, models, 0);

  if (std::getenv("FRS_BENCH_VERBOSE")) {
    for (const auto& [id, chips] : tracks) {
      std::printf("track %llu:", static_cast<unsigned long long>(id));
      for (const Chip& c : chips) {
        for (const DescriptorModel* model : models) {
          const std::string model_id(model->id);
          std::printf(" f%d%s %s %.3f q%.2f", c.frame, c.largest ? "*" : "", model_id.c_str(),
                      distance(c.descriptors.at(model_id), gallery[0].descriptors.at(model_id)),
                      c.quality);
        }
      }
      std::printf("\n");
    }
  }
  const std::vector<std::string> ways = {"any", "mean", "quality"};
  std::printf(
      "| model | way | threshold t | his tracks | first search: median distance | lowest: "
      "median | searches to first < t: median | his searches under t | audience tracks | "
      "audience: lowest distance to anyone (who) | its margin over t, impostor sd | audience "
      "tracks "
      "under the ceiling / t |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const DescriptorModel* model : models) {
    const std::string model_id(model->id);
    const double t = threshold_of(*model);
    const double ceiling = service::default_max_distance_ceiling(*model);
    for (const std::string& how : ways) {
      std::vector<double> first, lowest, to_match;
      double audience_low = 10;  // the nearest any audience search came to anyone enrolled
      std::string nearest_to;    // ... who that was
      int his = 0, strangers = 0, under_ceiling = 0, under_t = 0, his_searches = 0, his_matches = 0;
      for (const auto& [track, chips] : tracks) {
        const bool audience = chips.front().frame >= 211;
        if (is_his(chips)) {
          ++his;
          double low = 10;
          int first_match = -1;
          for (std::size_t k = 0; k < chips.size(); ++k) {
            const double d = distance(query_after(engine, *model, chips, k, how),
                                      gallery[0].descriptors.at(model_id));
            if (k == 0) first.push_back(d);
            ++his_searches;
            his_matches += d < t ? 1 : 0;
            low = std::min(low, d);
            if (first_match < 0 && d < t) first_match = static_cast<int>(k) + 1;
          }
          lowest.push_back(low);
          if (first_match > 0) to_match.push_back(first_match);
        } else if (audience) {
          ++strangers;
          double low = 10;
          for (std::size_t k = 0; k < chips.size(); ++k) {
            const Embedding q = query_after(engine, *model, chips, k, how);
            for (const Enrolled& g : gallery) {
              const double d = distance(q, g.descriptors.at(model_id));
              low = std::min(low, d);
              if (d < audience_low) {
                audience_low = d;
                nearest_to = g.name;
              }
            }
          }
          under_ceiling += low < ceiling ? 1 : 0;
          under_t += low < t ? 1 : 0;
        }
      }
      std::printf(
          "| %s | %s | %.3f | %d | %.3f | %.3f | %.0f (%zu of %d reach it) | %d of %d | %d | "
          "%.3f (%s) | %+.1f | %d / %d |\n",
          model_id.c_str(), how.c_str(), t, his, bench::median(first), bench::median(lowest),
          bench::median(to_match), to_match.size(), his, his_matches, his_searches, strangers,
          audience_low, nearest_to.c_str(),
          (audience_low - t) / model->calibration.impostor_tail_sd, under_ceiling, under_t);
    }
  }

  if (passes == 0) return 0;
  std::vector<Tracks> replays;
  for (int phase = 1; phase <= passes; ++phase)
    replays.push_back(collect_tracks(engine, models, phase));
  std::printf(
      "\nHis first alert rejected, then %d replays with other frames: his tracks, those that "
      "would alert as him with no suppression, under the old rule (0.3 from a rejected "
      "descriptor) and under the current rule (margin %.2f)\n"
      "| model | threshold t | his tracks | alerting, no suppression | old rule | current rule | "
      "nearest rejected descriptor |\n|---|---|---|---|---|---|---|\n",
      passes, margin);
  for (const DescriptorModel* model : models) {
    rejection_study(engine, tracks, replays, gallery[0].descriptors.at(std::string(model->id)),
                    *model, margin);
  }
}
