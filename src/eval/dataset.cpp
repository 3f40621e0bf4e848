#include "frs/eval/dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "frs/core/error.h"

namespace frs {

namespace {

// An image to describe: who it shows and where it is.
EvalImage listed(std::string identity, std::filesystem::path file) {
  EvalImage image;
  image.identity = std::move(identity);
  image.file = std::move(file);
  return image;
}

}  // namespace
namespace {

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, ',');) fields.push_back(trimmed(f));
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::optional<bool> parse_same(std::string value) {
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (value == "1" || value == "true" || value == "yes") return true;
  if (value == "0" || value == "false" || value == "no") return false;
  return std::nullopt;
}

std::ifstream open_csv(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  if (!in) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot read '" + csv.string() + "': check the path and its permissions");
  }
  return in;
}

}  // namespace

std::vector<EvalImage> read_identity_folders(const std::filesystem::path& root) {
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + root.string() +
                    "' is not a folder: give a folder with one sub-folder "
                    "per identity");
  }
  std::vector<EvalImage> images;
  std::size_t identities = 0;
  for (const auto& person : std::filesystem::directory_iterator(root)) {
    if (!person.is_directory()) continue;
    ++identities;
    for (const auto& file : std::filesystem::directory_iterator(person.path())) {
      if (file.is_regular_file()) {
        images.push_back(listed(person.path().filename().string(), file.path()));
      }
    }
  }
  if (identities == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + root.string() +
                    "' has no sub-folders: put each identity's images in a folder named "
                    "after it");
  }
  std::sort(images.begin(), images.end(),
            [](const EvalImage& a, const EvalImage& b) { return a.file < b.file; });
  return images;
}

std::vector<EvalImage> read_named_files(const std::filesystem::path& root,
                                        std::vector<std::string>& skipped) {
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) {
    throw Error(ErrorCode::kInvalidArgument, "'" + root.string() + "' is not a folder");
  }
  std::vector<EvalImage> images;
  for (const auto& file : std::filesystem::directory_iterator(root)) {
    if (!file.is_regular_file()) continue;
    const std::string stem = file.path().stem().string();
    const auto underscore = stem.rfind('_');
    if (underscore == std::string::npos || underscore == 0) {
      skipped.push_back(file.path().string() + ": no identity in the name (want NAME_N.ext)");
      continue;
    }
    images.push_back(listed(stem.substr(0, underscore), file.path()));
  }
  if (images.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + root.string() + "' has no file named IDENTITY_N.ext");
  }
  std::sort(images.begin(), images.end(),
            [](const EvalImage& a, const EvalImage& b) { return a.file < b.file; });
  return images;
}

PairsFile read_pairs_csv(const std::filesystem::path& csv) {
  std::ifstream in = open_csv(csv);
  PairsFile out;
  std::map<std::filesystem::path, std::size_t> index_of;
  auto image_index = [&](const std::string& name) {
    std::filesystem::path p(name);
    if (p.is_relative()) p = csv.parent_path() / p;
    p = p.lexically_normal();
    const auto [it, added] = index_of.try_emplace(p, out.images.size());
    if (added) out.images.push_back(listed("", p));
    return it->second;
  };
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (trimmed(line).empty()) continue;
    const auto fields = csv_fields(line);
    const std::string where = "line " + std::to_string(number) + ": ";
    if (fields.size() != 3) {
      out.skipped.push_back(where + "expected file_a,file_b,same, got " +
                            std::to_string(fields.size()) + " fields");
      continue;
    }
    const auto same = parse_same(fields[2]);
    if (!same) {
      if (number > 1 || out.pairs.size() > 0) {
        out.skipped.push_back(where + "'same' must be 1/0, true/false or yes/no, got '" +
                              fields[2] + "'");
      }
      continue;  // the first line may be a header
    }
    if (fields[0].empty() || fields[1].empty()) {
      out.skipped.push_back(where + "an empty file name");
      continue;
    }
    out.pairs.push_back({image_index(fields[0]), image_index(fields[1]), *same});
  }
  return out;
}

GroupsFile read_groups_csv(const std::filesystem::path& csv) {
  std::ifstream in = open_csv(csv);
  GroupsFile out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (trimmed(line).empty()) continue;
    const auto fields = csv_fields(line);
    if (number == 1 && fields.size() == 2 && fields[0] == "identity") continue;  // header
    if (fields.size() != 2 || fields[0].empty() || fields[1].empty()) {
      out.skipped.push_back("line " + std::to_string(number) +
                            ": expected identity,group with both filled in");
      continue;
    }
    auto& groups = out.groups_of[fields[0]];
    if (std::find(groups.begin(), groups.end(), fields[1]) == groups.end()) {
      groups.push_back(fields[1]);
    }
  }
  return out;
}

ImagesFile read_images_csv(const std::filesystem::path& csv, const std::string& group_by) {
  std::ifstream in = open_csv(csv);
  ImagesFile out;
  std::string line;
  int number = 1;
  std::vector<std::string> header;
  for (; std::getline(in, line); ++number) {
    if (!trimmed(line).empty()) {
      header = csv_fields(line);
      break;
    }
  }
  const auto column = [&](const std::string& name) -> std::optional<std::size_t> {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) return std::nullopt;
    return static_cast<std::size_t>(it - header.begin());
  };
  const auto file_column = column("file");
  if (!file_column) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + csv.string() +
                    "' needs a header line naming its columns, one of them 'file' (e.g. "
                    "file,identity,group)");
  }
  const auto identity_column = column("identity");
  out.identities_given = identity_column.has_value();
  std::optional<std::size_t> group_column;
  if (!group_by.empty()) {
    group_column = column(group_by);
    if (!group_column) {
      std::string columns;
      for (const std::string& h : header) columns += (columns.empty() ? "" : ", ") + h;
      throw Error(ErrorCode::kInvalidArgument, "'" + csv.string() + "' has no column '" + group_by +
                                                   "' (its columns: " + columns + ")");
    }
  }
  std::set<std::filesystem::path> seen;
  for (++number; std::getline(in, line); ++number) {
    if (trimmed(line).empty()) continue;
    const auto fields = csv_fields(line);
    const std::string where = "line " + std::to_string(number) + ": ";
    if (fields.size() != header.size()) {
      out.skipped.push_back(where + "expected " + std::to_string(header.size()) +
                            " fields as the header says, got " + std::to_string(fields.size()));
      continue;
    }
    if (fields[*file_column].empty()) {
      out.skipped.push_back(where + "an empty file name");
      continue;
    }
    std::filesystem::path file(fields[*file_column]);
    if (file.is_relative()) file = csv.parent_path() / file;
    file = file.lexically_normal();
    if (!seen.insert(file).second) {
      out.skipped.push_back(where + "'" + fields[*file_column] + "' is listed twice");
      continue;
    }
    // Without identities every file is its own person: the file's path names them.
    std::string identity = identity_column ? fields[*identity_column] : file.string();
    if (identity.empty()) {
      out.skipped.push_back(where + "an empty identity");
      continue;
    }
    if (out.images.size() == kMaxListedImages) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + csv.string() + "' lists more than " + std::to_string(kMaxListedImages) +
                      " photos: evaluate a sample of them (every pair is compared)");
    }
    if (group_column) {
      const std::string& group = fields[*group_column];
      if (group.empty()) {
        out.skipped.push_back(where + "no " + group_by + ": the photo is in no group");
      } else {
        auto& groups = out.groups.groups_of[identity];
        if (std::find(groups.begin(), groups.end(), group) == groups.end()) groups.push_back(group);
      }
    }
    out.images.push_back(listed(std::move(identity), std::move(file)));
  }
  if (out.images.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + csv.string() + "' lists no photo (a header, then one file per line)");
  }
  return out;
}

std::string ImageDegradation::text() const {
  std::string out;
  const auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  char number[32];
  if (scale < 1) {
    std::snprintf(number, sizeof number, "%g", scale);
    add(std::string("scale ") + number);
  }
  if (blur_sigma > 0) {
    std::snprintf(number, sizeof number, "%g", blur_sigma);
    add(std::string("blur ") + number + " px");
  }
  if (jpeg_quality > 0) add("JPEG quality " + std::to_string(jpeg_quality));
  return out.empty() ? "none" : out;
}

ImageDegradation parse_degradation(const std::string& spec) {
  ImageDegradation out;
  std::stringstream in(spec);
  for (std::string part; std::getline(in, part, ',');) {
    part = trimmed(part);
    const auto equals = part.find('=');
    const std::string key = trimmed(part.substr(0, equals));
    const std::string value = equals == std::string::npos ? "" : trimmed(part.substr(equals + 1));
    const auto refuse = [&](const std::string& want) {
      return Error(ErrorCode::kInvalidArgument,
                   "--degrade: '" + part + "': " + want + " (e.g. scale=0.4,blur=1.5,jpeg=30)");
    };
    double number = 0;
    std::size_t used = 0;
    try {
      number = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != value.size() || !std::isfinite(number)) {
      throw refuse("want KEY=NUMBER");
    }
    if (key == "scale") {
      if (!(number > 0 && number <= 1)) throw refuse("scale must be in (0, 1]");
      out.scale = number;
    } else if (key == "blur") {
      if (!(number >= 0 && number <= 20)) throw refuse("blur must be 0..20 pixels");
      out.blur_sigma = number;
    } else if (key == "jpeg") {
      if (!(number >= 1 && number <= 100) || number != std::floor(number)) {
        throw refuse("jpeg must be a quality of 1..100");
      }
      out.jpeg_quality = static_cast<int>(number);
    } else {
      throw refuse("the keys are scale, blur and jpeg");
    }
  }
  return out;
}

cv::Mat degraded(const cv::Mat& bgr, const ImageDegradation& d) {
  cv::Mat out = bgr;
  if (d.scale < 1) {
    cv::Mat smaller;
    const cv::Size size(std::max(1, static_cast<int>(std::lround(bgr.cols * d.scale))),
                        std::max(1, static_cast<int>(std::lround(bgr.rows * d.scale))));
    cv::resize(out, smaller, size, 0, 0, cv::INTER_AREA);
    out = smaller;
  }
  if (d.blur_sigma > 0) {
    cv::Mat blurred;
    cv::GaussianBlur(out, blurred, cv::Size(0, 0), d.blur_sigma);
    out = blurred;
  }
  if (d.jpeg_quality > 0) {
    std::vector<std::uint8_t> bytes;
    cv::imencode(".jpg", out, bytes, {cv::IMWRITE_JPEG_QUALITY, d.jpeg_quality});
    out = cv::imdecode(bytes, cv::IMREAD_COLOR);
  }
  return out;
}

void describe_images(const FaceEngine& engine, std::vector<EvalImage>& images,
                     const std::function<void(std::size_t, std::size_t)>& progress,
                     const EnrollmentRules& rules, const Cancellation& cancel, Admission* slots,
                     const ImageDegradation& degradation) {
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::mutex progress_mutex;
  std::exception_ptr failure;  // models missing: every image would fail the same way
  auto describe_next = [&] {
    for (std::size_t i = next++; i < images.size(); i = next++) {
      EvalImage& image = images[i];
      try {
        std::optional<Admission::Slot> slot;
        if (slots != nullptr) slot.emplace(slots->acquire(cancel, Admission::kUntilCancelled));
        const cv::Mat loaded =
            image.bytes.empty()
                ? load_image(image.file, engine.options().limits)
                : decode_image({reinterpret_cast<const std::uint8_t*>(image.bytes.data()),
                                image.bytes.size()},
                               engine.options().limits);
        const cv::Mat bgr = degradation.any() ? degraded(loaded, degradation) : loaded;
        const auto faces = engine.analyze(bgr, true, cancel);
        if (faces.empty()) {
          image.problem = "no face found";
        } else {
          image.descriptor = faces.front().embedding;  // the largest face
          image.quality = faces.front().quality.score;
          image.enrollment_problem = enrollment_problem(bgr, faces.front(), rules);
        }
      } catch (const Error& e) {
        // Models missing, or the caller gone: every image would fail the same way.
        if (e.code() != ErrorCode::kFailedPrecondition && e.code() != ErrorCode::kCancelled) {
          image.problem = e.what();
        } else {
          std::lock_guard lock(progress_mutex);
          if (!failure) failure = std::current_exception();
          next = images.size();
          return;
        }
      }
      std::lock_guard lock(progress_mutex);
      ++done;
      if (progress) progress(done, images.size());
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < engine.options().threads; ++t) workers.emplace_back(describe_next);
  describe_next();
  for (std::thread& w : workers) w.join();
  if (failure) std::rethrow_exception(failure);
}

namespace {

// Each described image's shift under `normaliser` (0 without one): computed once, not a
// centroid search per pair.
std::vector<float> half_offsets(const std::vector<EvalImage>& images,
                                const ScoreNormaliser* normaliser) {
  std::vector<float> out(images.size(), 0.0f);
  if (normaliser == nullptr || normaliser->empty()) return out;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].descriptor) out[i] = normaliser->half_offset(*images[i].descriptor);
  }
  return out;
}

}  // namespace

std::vector<LabelledDistance> all_pairs(const std::vector<EvalImage>& images,
                                        const ScoreNormaliser* normaliser) {
  const std::vector<float> shift = half_offsets(images, normaliser);
  std::vector<LabelledDistance> pairs;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (!images[i].descriptor) continue;
    for (std::size_t j = i + 1; j < images.size(); ++j) {
      if (!images[j].descriptor) continue;
      pairs.push_back({distance(*images[i].descriptor, *images[j].descriptor) + shift[i] + shift[j],
                       images[i].identity == images[j].identity});
    }
  }
  return pairs;
}

GroupedComparisons grouped_comparisons(const std::vector<EvalImage>& images,
                                       const GroupsFile& groups,
                                       const ScoreNormaliser* normaliser) {
  GroupedComparisons out;
  std::map<std::string, std::size_t> index_of;  // group name -> index
  for (const auto& [identity, names] : groups.groups_of) {
    for (const std::string& name : names) index_of.emplace(name, 0);
  }
  for (auto& [name, index] : index_of) {
    index = out.names.size();
    out.names.push_back(name);
  }
  out.impostor.resize(out.names.size());
  out.genuine.resize(out.names.size());
  // Each image's group indices, sorted, once (not a map look-up per pair).
  std::vector<std::vector<std::size_t>> groups_of(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto it = groups.groups_of.find(images[i].identity);
    if (it == groups.groups_of.end() || !images[i].descriptor) continue;
    for (const std::string& name : it->second) groups_of[i].push_back(index_of.at(name));
    std::sort(groups_of[i].begin(), groups_of[i].end());
  }
  const std::vector<float> half_offset = half_offsets(images, normaliser);
  std::vector<std::size_t> shared;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (groups_of[i].empty()) continue;
    for (std::size_t j = i + 1; j < images.size(); ++j) {
      if (groups_of[j].empty()) continue;
      const float d =
          distance(*images[i].descriptor, *images[j].descriptor) + half_offset[i] + half_offset[j];
      const bool same = images[i].identity == images[j].identity;
      shared.clear();
      std::set_intersection(groups_of[i].begin(), groups_of[i].end(), groups_of[j].begin(),
                            groups_of[j].end(), std::back_inserter(shared));
      for (const std::size_t g : shared) (same ? out.genuine : out.impostor)[g].push_back(d);
      if (shared.empty() && !same) out.across_impostor.push_back(d);
    }
  }
  return out;
}

std::vector<LabelledDistance> listed_pairs(const PairsFile& file,
                                           const ScoreNormaliser* normaliser) {
  const std::vector<float> shift = half_offsets(file.images, normaliser);
  std::vector<LabelledDistance> pairs;
  for (const PairsFile::Pair& p : file.pairs) {
    const auto& a = file.images[p.a].descriptor;
    const auto& b = file.images[p.b].descriptor;
    if (a && b) pairs.push_back({distance(*a, *b) + shift[p.a] + shift[p.b], p.same});
  }
  return pairs;
}

void check_open_set_options(const OpenSetOptions& options) {
  if (options.enroll_per_identity < 1 || options.enroll_per_identity > 100) {
    throw Error(ErrorCode::kInvalidArgument, "photos enrolled per identity must be in 1..100");
  }
  if (options.probe_chips < 1 || options.probe_chips > 32) {
    throw Error(ErrorCode::kInvalidArgument, "chips per search must be in 1..32");
  }
  if (options.cohort_k < 0 || options.cohort_k > 1000) {
    throw Error(ErrorCode::kInvalidArgument, "the cohort size must be in 0..1000 (0 = off)");
  }
  if (!(options.holdout > 0 && options.holdout <= 0.5)) {
    throw Error(ErrorCode::kInvalidArgument,
                "the held-out share of identities must be in (0, 0.5], e.g. 0.3");
  }
}

std::vector<SearchOutcome> open_set_searches(const std::vector<EvalImage>& images,
                                             const OpenSetOptions& options) {
  check_open_set_options(options);
  // Each identity's described images, in path order, or best first with enroll_best (the
  // enrolled ones are taken from the front).
  std::map<std::string, std::vector<const EvalImage*>> described;
  for (const EvalImage& image : images) {
    if (image.descriptor) described[image.identity].push_back(&image);
  }
  std::map<std::string, std::vector<const Embedding*>> by_identity;
  std::map<std::string, std::vector<float>> qualities;  // in the same order
  for (auto& [identity, list] : described) {
    if (options.enroll_best) {
      std::stable_sort(list.begin(), list.end(), [](const EvalImage* a, const EvalImage* b) {
        return a->quality > b->quality;
      });
    }
    if (options.enroll_gated) {
      std::stable_partition(list.begin(), list.end(),
                            [](const EvalImage* a) { return a->enrollment_problem.empty(); });
    }
    for (const EvalImage* image : list) {
      by_identity[identity].push_back(&*image->descriptor);
      qualities[identity].push_back(image->quality);
    }
  }
  if (by_identity.size() < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "open-set identification needs at least 2 identities with a face found");
  }
  std::vector<std::string> order;
  for (const auto& [identity, faces] : by_identity) order.push_back(identity);
  std::mt19937 rng(options.seed);
  for (std::size_t i = order.size() - 1; i > 0; --i) {  // Fisher-Yates: same on every platform
    std::swap(order[i], order[rng() % (i + 1)]);
  }
  const auto folds = static_cast<std::size_t>(std::max(2L, std::lround(1.0 / options.holdout)));
  const auto enrolled_count = static_cast<std::size_t>(options.enroll_per_identity);

  struct Template {
    const std::string* identity;
    std::vector<Embedding> faces;  // one entry (the mean) for kCentroid
  };
  auto template_of = [&](const std::string& identity) {
    const auto& faces = by_identity.at(identity);
    Template t{&identity, {}};
    const std::size_t n = std::min(enrolled_count, faces.size());
    for (std::size_t i = 0; i < n; ++i) t.faces.push_back(*faces[i]);
    if (options.score == TemplateScore::kCentroid) {
      Embedding centroid = mean_embedding(t.faces);
      if (options.unit_length) normalize(centroid);
      t.faces = {std::move(centroid)};
    }
    return t;
  };
  std::vector<SearchOutcome> searches;
  for (std::size_t fold = 0; fold < folds; ++fold) {
    std::vector<Template> gallery;
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i % folds != fold) gallery.push_back(template_of(order[i]));
    }
    // The cohort: photos of this fold's never-enrolled identities, other than the probe's own.
    std::vector<std::pair<const std::string*, const Embedding*>> cohort;
    if (options.cohort_k > 0) {
      for (std::size_t i = 0; i < order.size(); ++i) {
        if (i % folds != fold) continue;
        for (const Embedding* face : by_identity.at(order[i])) cohort.emplace_back(&order[i], face);
      }
    }
    auto score = [&](const Embedding& probe, const Embedding& face) {
      const float d = distance(probe, face);
      return options.normaliser ? options.normaliser->normalised(d, probe, face) : d;
    };
    auto search = [&](const Embedding& probe, const std::string& probe_identity,
                      const std::string* truth) {
      SearchOutcome out;
      out.mated = truth != nullptr;
      const Template* nearest = nullptr;
      for (const Template& t : gallery) {
        for (const Embedding& face : t.faces) {
          const float d = score(probe, face);
          if (!out.nearest_distance || d < *out.nearest_distance) {
            out.nearest_distance = d;
            nearest = &t;
          }
        }
      }
      out.nearest_right = truth && nearest && *nearest->identity == *truth;
      if (options.cohort_k > 0 && out.nearest_distance) {
        std::vector<float> to_cohort;
        for (const auto& [identity, face] : cohort) {
          if (*identity != probe_identity) to_cohort.push_back(score(probe, *face));
        }
        const std::size_t k =
            std::min<std::size_t>(static_cast<std::size_t>(options.cohort_k), to_cohort.size());
        if (k > 0) {
          std::partial_sort(to_cohort.begin(), to_cohort.begin() + static_cast<long>(k),
                            to_cohort.end());
          double mean = 0;
          for (std::size_t c = 0; c < k; ++c) mean += to_cohort[c] / static_cast<double>(k);
          out.nearest_distance = static_cast<float>(*out.nearest_distance - mean);
        }
      }
      return out;
    };
    // One search per `probe_chips` consecutive faces from `first` on.
    auto search_chips = [&](const std::string& identity, std::size_t first,
                            const std::string* truth) {
      const auto& faces = by_identity.at(identity);
      const auto& weights = qualities.at(identity);
      const auto chips = static_cast<std::size_t>(options.probe_chips);
      for (std::size_t begin = first; begin + chips <= faces.size(); begin += chips) {
        std::vector<Embedding> descriptors;
        for (std::size_t c = begin; c < begin + chips; ++c) descriptors.push_back(*faces[c]);
        if (chips == 1) {
          searches.push_back(search(descriptors[0], identity, truth));
        } else if (options.fusion == ProbeFusion::kAnyChip) {
          SearchOutcome nearest;
          for (const Embedding& d : descriptors) {
            const SearchOutcome o = search(d, identity, truth);
            if (!nearest.nearest_distance ||
                (o.nearest_distance && *o.nearest_distance < *nearest.nearest_distance)) {
              nearest = o;
            }
          }
          searches.push_back(nearest);
        } else {
          // A chip's weight: its quality, floored so that a poor chip still counts a little.
          std::vector<float> w(chips, 1.0f);
          if (options.fusion == ProbeFusion::kQualityWeighted) {
            for (std::size_t c = 0; c < chips; ++c) w[c] = std::max(0.05f, weights[begin + c]);
          }
          Embedding fused = weighted_mean_embedding(descriptors, w);
          if (options.unit_length) normalize(fused);
          searches.push_back(search(fused, identity, truth));
        }
      }
    };
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i % folds == fold) {
        search_chips(order[i], 0, nullptr);
      } else {
        search_chips(order[i], enrolled_count, &order[i]);
      }
    }
  }
  return searches;
}

}  // namespace frs
