#pragma once
// The data `frs eval` measures on: labelled images (an identity tree or a CSV of pairs),
// optional group labels, each image's descriptor, and the comparisons and 1:N searches the
// metrics (metrics.h) are computed from.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "frs/core/admission.h"
#include "frs/core/embedding.h"
#include "frs/core/score_normaliser.h"
#include "frs/eval/metrics.h"
#include "frs/gallery/enrollment.h"
#include "frs/vision/face_engine.h"

namespace frs {

struct EvalImage {
  std::string identity;  // empty for images of a pairs file
  std::filesystem::path file;
  std::optional<Embedding> descriptor;  // of the largest face; none: see `problem`
  float quality = 0;                    // that face's quality score, [0,1]
  std::string problem;                  // why there is no descriptor
  // Why the enrollment gate would refuse this photo (enrollment_problem), "" if it would not.
  std::string enrollment_problem;
  // The image's bytes when it came without a file (the Evaluate RPC); `file` then only
  // names it.
  std::string bytes;
};

// One sub-folder per identity, its images directly inside (any file; ones that are not
// images are listed as problems later). Sorted by path. Throws frs::Error(kInvalidArgument)
// for a missing folder or one without identity sub-folders.
std::vector<EvalImage> read_identity_folders(const std::filesystem::path& root);

// A flat folder whose file names carry the identity: `<identity>_<anything>.<ext>` (the
// identity is the name up to its last underscore, as in testdata/crops: howard_12.png).
// Files without an underscore are skipped and listed in `skipped`.
std::vector<EvalImage> read_named_files(const std::filesystem::path& root,
                                        std::vector<std::string>& skipped);

// A CSV of labelled pairs, one per line: file_a,file_b,same, where same is 1/0, true/false
// or yes/no; relative paths are relative to the CSV's folder; an optional header line.
// Malformed rows are skipped and listed ("line 7: ..."), never fatal.
struct PairsFile {
  struct Pair {
    std::size_t a = 0, b = 0;  // indices into images
    bool same = false;
  };
  std::vector<EvalImage> images;  // each file once
  std::vector<Pair> pairs;
  std::vector<std::string> skipped;
};
// Throws frs::Error(kInvalidArgument) when the file cannot be read.
PairsFile read_pairs_csv(const std::filesystem::path& csv);

// identity,group per line (an identity may have several rows, one per group it belongs
// to; an optional header). Malformed rows are skipped and listed.
struct GroupsFile {
  std::map<std::string, std::vector<std::string>> groups_of;
  std::vector<std::string> skipped;
};
GroupsFile read_groups_csv(const std::filesystem::path& csv);

// A CSV listing the photos, with a header naming its columns: `file` (required; relative
// paths are relative to the CSV's folder), `identity` (optional: without it every file is
// a different person, as in a demographics set of one photo per person), and any other
// columns, attributes of the photo. `group_by` (optional) names the attribute whose value
// is the photo's group (e.g. race in UTKFace's labels.csv). Malformed rows and rows with
// no value in `group_by` are listed in `skipped` (the latter still count, in no group).
// Throws frs::Error(kInvalidArgument) for a file that cannot be read, a header without
// `file`, a `group_by` that is not a column, no usable row, or more than kMaxListedImages
// rows.
inline constexpr std::size_t kMaxListedImages = 20000;  // 200 million comparisons
struct ImagesFile {
  std::vector<EvalImage> images;  // in file order
  GroupsFile groups;              // identity -> its group, with group_by
  std::vector<std::string> skipped;
  bool identities_given = false;  // the file has an identity column
};
ImagesFile read_images_csv(const std::filesystem::path& csv, const std::string& group_by = "");

// What `frs eval --degrade` does to each photo before it is analysed, to measure how the
// figures hold on the poorer faces cameras see: smaller, softer, more compressed.
struct ImageDegradation {
  double scale = 1;       // resize by this, (0, 1] (area averaging, as a distant face)
  double blur_sigma = 0;  // Gaussian blur of this sigma in pixels after resizing, 0..20
  int jpeg_quality = 0;   // then re-encoded as JPEG at this quality, 1..100; 0 = not
  bool any() const { return scale < 1 || blur_sigma > 0 || jpeg_quality > 0; }
  std::string text() const;  // "scale 0.4, blur 1.5 px, JPEG quality 30"
};
// "scale=0.4,blur=1.5,jpeg=30", any of them in any order. Throws Error(kInvalidArgument)
// naming the part that is wrong.
ImageDegradation parse_degradation(const std::string& spec);
cv::Mat degraded(const cv::Mat& bgr, const ImageDegradation& degradation);

// Fills each image's descriptor (the largest face), as many images at once as the engine
// has threads; an image with no face, or one that cannot be read, gets a `problem` instead.
// The figures do not depend on the order or the threads (test
// CliEval.TheFiguresDoNotDependOnHowManyImagesAreAnalysedAtOnce).
// `progress(done, total)` is called after each image, from one thread at a time.
// With `slots`, each image is decoded and analysed holding one of them (a server shares
// its memory bound with other calls); `cancel` stops the whole run with Error(kCancelled).
void describe_images(const FaceEngine& engine, std::vector<EvalImage>& images,
                     const std::function<void(std::size_t, std::size_t)>& progress = {},
                     const EnrollmentRules& rules = {}, const Cancellation& cancel = {},
                     Admission* slots = nullptr, const ImageDegradation& degradation = {});

// Every pair of described images of an identity tree: same = same identity. With
// `normaliser`, each distance is its normalised one (as in every function below).
std::vector<LabelledDistance> all_pairs(const std::vector<EvalImage>& images,
                                        const ScoreNormaliser* normaliser = nullptr);
// The same pairs by group (metrics.h): a pair counts in each group both identities belong
// to; an impostor pair of grouped identities that share none counts across groups.
GroupedComparisons grouped_comparisons(const std::vector<EvalImage>& images,
                                       const GroupsFile& groups,
                                       const ScoreNormaliser* normaliser = nullptr);
// The pairs of a pairs file whose two images were described.
std::vector<LabelledDistance> listed_pairs(const PairsFile& file,
                                           const ScoreNormaliser* normaliser = nullptr);

// How an identity with several enrolled faces is compared with a probe.
enum class TemplateScore {
  kNearest,   // the distance to its nearest face (what the gallery's search does)
  kCentroid,  // the distance to the mean of its faces' descriptors
};

// How the descriptors of several chips of one person (a track's, in live video) become one
// search result.
enum class ProbeFusion {
  kAnyChip,          // each chip searched alone; the nearest result wins (alert on any chip)
  kMean,             // the chips' descriptors averaged, searched once
  kQualityWeighted,  // averaged weighted by each chip's quality score, searched once
};

struct OpenSetOptions {
  // Images enrolled per identity, 1..100: the first N described ones in path order, or
  // with `enroll_best` the N of highest quality (an operator with several photos of a
  // person enrolls the best ones).
  int enroll_per_identity = 1;
  bool enroll_best = false;
  // Enroll photos the enrollment gate accepts before the ones it refuses (as an operator
  // told "blurred" would pick another photo of the person, or force this one).
  bool enroll_gated = false;
  // Share of identities held out as never enrolled, (0, 0.5]: every identity is held out
  // in one of round(1/holdout) folds, so that every image serves as a non-mated search.
  double holdout = 0.3;
  unsigned seed = 1;  // the order identities are dealt into folds
  TemplateScore score = TemplateScore::kNearest;
  // Chips per search, 1..32: each search uses this many photos of one person (in path
  // order, the leftover fewer dropped), as the live path sees several chips of a track.
  int probe_chips = 1;
  ProbeFusion fusion = ProbeFusion::kQualityWeighted;
  // Cohort score normalisation, 0 = off (default), else 1..1000: a search's score is its
  // nearest distance minus the mean distance from the probe to its `cohort_k` nearest
  // cohort photos (the fold's never-enrolled identities, the probe's own excepted). The
  // score is then relative (it can be negative): only the thresholds at FPIR targets mean
  // anything, not max_distance.
  int cohort_k = 0;
  // The descriptors are of a cosine model (unit length): a mean of them (a centroid, fused
  // chips) is scaled back to unit length, as the live path and the gallery do. Set from
  // the engine's model by frs eval.
  bool unit_length = false;
  // Scores are normalised distances (score_normaliser.h) when given; not owned.
  const ScoreNormaliser* normaliser = nullptr;
};

// The open-set protocol: in each fold the other folds' identities are enrolled; the rest
// of their images are mated searches, every image of the fold's identities a non-mated
// one. Throws frs::Error(kInvalidArgument) for options out of range or fewer than 2
// identities with a described image.
// Throws Error(kInvalidArgument) for options out of range (open_set_searches checks them
// too; a caller about to analyse photos checks them first).
void check_open_set_options(const OpenSetOptions& options);
std::vector<SearchOutcome> open_set_searches(const std::vector<EvalImage>& images,
                                             const OpenSetOptions& options);

}  // namespace frs
