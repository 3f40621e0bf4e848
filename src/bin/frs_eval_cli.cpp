#include "frs_eval_cli.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "frs/core/error.h"
#include "frs/eval/evaluate.h"
#include "frs/eval/fairness.h"
#include "frs/eval/plot.h"
#include "frs_remote.h"
#include "progress.h"

namespace frs::cli {
namespace {

using nlohmann::json;

json rate_json(const Rate& r) {
  return {{"rate", r.value()}, {"errors", r.errors}, {"trials", r.trials}};
}

json threshold_json(const ThresholdAt& t) {
  json j = {
      {"target", t.target}, {"support", to_string(t.support)}, {"achieved", rate_json(t.achieved)}};
  if (t.achieved.trials > 0) j["threshold"] = t.threshold;
  return j;
}

json at_fmr_json(const Verification& v) {
  json points = json::array();
  for (const auto& at : v.at_fmr) {
    json point = threshold_json(at.point);
    point["fnmr"] = rate_json(at.fnmr);
    points.push_back(point);
  }
  return points;
}

json at_fpir_json(const Identification& id) {
  json points = json::array();
  for (const auto& at : id.at_fpir) {
    json point = threshold_json(at.point);
    point["fnir"] = rate_json(at.fnir);
    points.push_back(point);
  }
  return points;
}

json calibration_json(const Calibration& c) {
  json j = {{"target_fpir", c.target_fpir},
            {"gallery_size", c.gallery_size},
            {"per_comparison_fmr", c.per_comparison_fmr},
            {"max_distance", c.max_distance},
            {"impostor_comparisons", c.impostor_comparisons},
            {"extrapolated", c.extrapolated}};
  if (c.extrapolated) {
    j["tail_mean"] = c.tail_mean;
    j["tail_sd"] = c.tail_sd;
  }
  return j;
}

std::string rate_text(const Rate& r) {
  char text[96];
  std::snprintf(text, sizeof text, "%.4f (%zu/%zu)", r.value(), r.errors, r.trials);
  return text;
}

// Why a threshold for `target` is rough or missing, in words.
std::string support_note(const ThresholdAt& t, const char* what) {
  const auto needed = static_cast<std::size_t>(std::ceil(10 / t.target));
  switch (t.support) {
    case Support::kEnough:
      return "";
    case Support::kFew:
      return "  (rough: " + std::to_string(t.achieved.trials) + " " + what + ", " +
             std::to_string(needed) + " give a firm figure)";
    case Support::kTooFew:
      return "  (not supported: " + std::to_string(t.achieved.trials) + " " + what +
             " cannot show a rate this low; this is only the strictest threshold with no error)";
  }
  return "";
}

void print_verification(const Verification& v) {
  std::cout << "Verification: " << v.genuine + v.impostor << " comparisons (" << v.genuine
            << " same person, " << v.impostor << " different people)\n";
  std::printf("  at max_distance %.3f: FMR %s  FNMR %s  accuracy %.4f\n", v.threshold,
              rate_text(v.fmr).c_str(), rate_text(v.fnmr).c_str(), v.accuracy);
  if (v.genuine > 0 && v.impostor > 0) {
    std::printf("  equal error rate %.4f at max_distance %.3f\n", v.equal_error_rate,
                v.equal_error_threshold);
  }
  for (const auto& at : v.at_fmr) {
    if (at.point.achieved.trials == 0) continue;
    std::printf("  FMR %.0e: threshold %.3f  FNMR %s%s\n", at.point.target, at.point.threshold,
                rate_text(at.fnmr).c_str(),
                support_note(at.point, "different-people comparisons").c_str());
  }
}

void print_identification(const Identification& id, const OpenSetOptions& o) {
  std::printf(
      "Open-set identification (%d photo%s enrolled per identity, %ld folds each holding out "
      "1/%ld of the identities, %s face):\n",
      o.enroll_per_identity, o.enroll_per_identity == 1 ? "" : "s",
      std::max(2L, std::lround(1.0 / o.holdout)), std::max(2L, std::lround(1.0 / o.holdout)),
      o.score == TemplateScore::kNearest ? "nearest" : "centroid of the enrolled");
  if (o.probe_chips > 1) {
    std::printf("  each search: %d photos of one person, %s\n", o.probe_chips,
                o.fusion == ProbeFusion::kAnyChip ? "each searched alone, the nearest result kept"
                : o.fusion == ProbeFusion::kMean
                    ? "their descriptors averaged"
                    : "their descriptors averaged weighted by quality");
  }
  if (o.enroll_gated) std::printf("  enrolled: photos the enrollment gate accepts first\n");
  if (o.cohort_k > 0) {
    std::printf("  scores: nearest distance minus the mean to the %d nearest cohort photos\n",
                o.cohort_k);
  }
  if (id.mated == 0) {
    std::printf(
        "  %zu non-mated searches, no mated one (one photo per identity: rank-1 and "
        "FNIR need a second photo of a person)\n",
        id.non_mated);
  } else {
    std::printf("  %zu mated searches, %zu non-mated; rank-1 %.4f\n", id.mated, id.non_mated,
                id.rank1);
  }
  std::printf("  at max_distance %.3f: FNIR %s  FPIR %s\n", id.threshold,
              rate_text(id.fnir).c_str(), rate_text(id.fpir).c_str());
  for (const auto& at : id.at_fpir) {
    if (at.point.achieved.trials == 0) continue;
    std::printf("  FPIR %.2g: threshold %.3f  FNIR %s%s\n", at.point.target, at.point.threshold,
                rate_text(at.fnir).c_str(), support_note(at.point, "non-mated searches").c_str());
  }
}

// What frs eval reads: an identity set (a folder or a CSV listing the photos), or a pairs
// file with its images.
struct EvalInput {
  bool identity_set = true;
  std::vector<EvalImage> images;  // identity sets
  PairsFile pairs_file;           // pairs files
  std::optional<GroupsFile> groups;
  std::vector<std::string> skipped;
  std::string source;  // what was read, for the record
  std::vector<EvalImage>& described() { return identity_set ? images : pairs_file.images; }
};

EvalInput read_input(const EvalArgs& args) {
  EvalInput input;
  input.identity_set = args.pairs_csv.empty();
  if (!args.folder.empty()) {
    input.source = args.folder;
    input.images = args.named_files ? read_named_files(args.folder, input.skipped)
                                    : read_identity_folders(args.folder);
  } else if (!args.images_csv.empty()) {
    input.source = args.images_csv;
    ImagesFile file = read_images_csv(args.images_csv, args.group_by);
    input.images = std::move(file.images);
    input.skipped = std::move(file.skipped);
    if (!args.group_by.empty()) input.groups = std::move(file.groups);
  } else {
    input.source = args.pairs_csv;
    input.pairs_file = read_pairs_csv(args.pairs_csv);
    input.skipped = input.pairs_file.skipped;
    if (input.pairs_file.pairs.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + args.pairs_csv + "' has no usable pair (file_a,file_b,same per line)");
    }
  }
  if (!args.groups_csv.empty()) {
    input.groups = read_groups_csv(args.groups_csv);
    for (const std::string& s : input.groups->skipped) {
      input.skipped.push_back(args.groups_csv + " " + s);
    }
  }
  return input;
}

// Describes the images with a progress bar on stderr; returns the seconds it took.
double describe_with_progress(const FaceEngine& engine, std::vector<EvalImage>& images,
                              bool progress, const std::string& what,
                              const ImageDegradation& degradation) {
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  describe_images(
      engine, images,
      [&](std::size_t done, std::size_t total) {
        if (progress) print_progress(done, total, seconds(), what.c_str());
      },
      {}, {}, nullptr, degradation);
  if (progress) std::fprintf(stderr, "\n");
  return seconds();
}

Evaluation evaluate_input(EvalInput& input, const EvalArgs& args, const DescriptorModel& model,
                          const ScoreNormaliser* normaliser = nullptr) {
  EvaluationOptions options;
  options.normaliser = normaliser;
  options.max_distance = args.max_distance;
  options.open_set = args.open_set;
  if (args.calibrate) {
    options.target_fpir = args.target_fpir;
    options.gallery_size = args.gallery_size;
  }
  options.groups = input.groups;
  // The built-in calibration speaks of raw distances; normalised ones have no stated rate.
  if (normaliser == nullptr) options.stated_fmr = built_in_fmr_at(model, args.max_distance);
  static const std::vector<EvalImage> kNoIdentities;  // a pairs file: verification only
  return evaluate(input.identity_set ? all_pairs(input.images, normaliser)
                                     : listed_pairs(input.pairs_file, normaliser),
                  input.identity_set ? input.images : kNoIdentities, options);
}

json optional_json(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

json group_json(const GroupRates& g) {
  return {{"group", g.group},
          {"fmr", rate_json(g.fmr)},
          {"fnmr", rate_json(g.fnmr)},
          {"fmr_ratio", optional_json(g.fmr_ratio)},
          {"fnmr_ratio", optional_json(g.fnmr_ratio)},
          {"fmr_to_stated", optional_json(g.fmr_to_stated)}};
}

json group_summary_json(const GroupFigures& f) {
  return {{"max_distance", f.threshold},
          {"stated_fmr", optional_json(f.stated_fmr)},
          {"worst_group", f.worst_group},
          {"best_group", f.best_group},
          {"fmr_differential", optional_json(f.fmr_differential)},
          {"across_groups_fmr", rate_json(f.across_groups_fmr)}};
}

// A rate small enough to need an exponent: "5.8e-02 (1154/19900)".
std::string small_rate_text(const Rate& r) {
  if (r.trials == 0) return "-";
  char text[96];
  std::snprintf(text, sizeof text, "%.1e (%zu/%zu)", r.value(), r.errors, r.trials);
  return text;
}

std::string ratio_text(const std::optional<double>& ratio) {
  if (!ratio) return "-";
  char text[32];
  std::snprintf(text, sizeof text, *ratio < 10 ? "%.1fx" : "%.0fx", *ratio);
  return text;
}

void print_groups(const GroupFigures& f) {
  std::printf("Per group, at max_distance %.3f (comparisons within a group)", f.threshold);
  if (f.stated_fmr) std::printf("; the threshold states FMR %.1e per comparison", *f.stated_fmr);
  std::printf(":\n  %-16s %-26s %8s %9s  %s\n", "group", "FMR", "x best", "x stated", "FNMR");
  for (const GroupRates& g : f.groups) {
    std::printf("  %-16s %-26s %8s %9s  %s\n", g.group.c_str(), small_rate_text(g.fmr).c_str(),
                ratio_text(g.fmr_ratio).c_str(), ratio_text(g.fmr_to_stated).c_str(),
                small_rate_text(g.fnmr).c_str());
  }
  std::printf("  %-16s %-26s\n", "across groups", small_rate_text(f.across_groups_fmr).c_str());
  if (f.worst_group.empty()) return;
  if (f.fmr_differential) {
    std::printf("  FMR differential: %s (worst %s / best %s)\n",
                ratio_text(f.fmr_differential).c_str(), f.worst_group.c_str(),
                f.best_group.c_str());
  } else {
    std::printf(
        "  FMR differential: unknown (the best group, %s, had no false match: compare "
        "more of its people)\n",
        f.best_group.c_str());
  }
}

void print_fair_normalisation(const FairNormalisationTrial& t) {
  std::printf(
      "Fair score normalisation, %d clusters fitted on half the identities and judged on the "
      "other half (both ways),\n  thresholds where every judged comparison of different "
      "people together falsely matches at %.1e:\n",
      t.clusters, t.pooled_fmr);
  std::printf("  %-16s %-26s %9s   %-26s %9s\n", "group", "FMR before", "x pooled", "FMR after",
              "x pooled");
  for (std::size_t i = 0; i < t.before.groups.size() && i < t.after.groups.size(); ++i) {
    const GroupRates& b = t.before.groups[i];
    const GroupRates& a = t.after.groups[i];
    std::printf("  %-16s %-26s %9s   %-26s %9s\n", b.group.c_str(), small_rate_text(b.fmr).c_str(),
                ratio_text(b.fmr_to_stated).c_str(), small_rate_text(a.fmr).c_str(),
                ratio_text(a.fmr_to_stated).c_str());
  }
  std::printf("  FMR differential: %s -> %s; FNMR at those thresholds: %s -> %s\n",
              ratio_text(t.before.fmr_differential).c_str(),
              ratio_text(t.after.fmr_differential).c_str(), small_rate_text(t.fnmr_before).c_str(),
              small_rate_text(t.fnmr_after).c_str());
  if (t.unsupported_clusters > 0) {
    std::printf("  %zu cluster%s had too few comparisons to be shifted (left as they were)\n",
                t.unsupported_clusters, t.unsupported_clusters == 1 ? "" : "s");
  }
}

void print_group_calibration(const CalibrationForEveryGroup& every) {
  std::printf("  per group, the max_distance for the same rate:");
  for (const GroupCalibration& g : every.groups) {
    if (g.calibration) {
      std::printf(" %s %.3f%s", g.group.c_str(), g.calibration->max_distance,
                  g.calibration->extrapolated ? "*" : "");
    } else {
      std::printf(" %s - (%s)", g.group.c_str(), g.problem.c_str());
    }
  }
  std::printf("; all pooled %.3f (* = extrapolated)\n", every.pooled.max_distance);
  if (every.bound_by.empty()) {
    std::printf("  the pooled threshold is the strictest: it holds for every group\n");
  } else {
    std::printf("  max_distance %.3f is the one that holds for every group: %s sets it\n",
                every.binding.max_distance, every.bound_by.c_str());
  }
}

ScoreNormaliser read_normaliser(const std::string& file, const std::string& model) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot read normaliser '" + file + "': check the path and its permissions");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ScoreNormaliser n;
  try {
    n = ScoreNormaliser::from_json(text);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, "'" + file + "': " + e.what());
  }
  if (n.descriptor_model != model) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + file + "' normalises " + n.descriptor_model + " distances, these are " +
                    model + "'s: fit one for it (--fit-normaliser) or give --descriptor " +
                    n.descriptor_model);
  }
  return n;
}

// Fits on every described photo of the input and writes the file whole (a temporary file
// renamed), so an interrupted run leaves the old file or none.
void write_normaliser(const EvalArgs& args, const EvalInput& input, const DescriptorModel& model) {
  std::vector<Embedding> descriptors;
  std::vector<std::string> identities;
  for (const EvalImage& image : input.images) {
    if (!image.descriptor) continue;
    descriptors.push_back(*image.descriptor);
    identities.push_back(image.identity);
  }
  ScoreNormaliser::FitOptions fit;
  fit.clusters = args.fair_clusters > 0 ? args.fair_clusters : 25;
  fit.false_match_rate = args.fair_fmr;
  fit.seed = args.open_set.seed;
  fit.max_descriptors = std::min<std::size_t>(descriptors.size(), 20000);
  ScoreNormaliser n = ScoreNormaliser::fit(descriptors, identities, fit);
  n.descriptor_model = std::string(model.id);
  n.fitted_on = input.source + ": " + std::to_string(descriptors.size()) + " described photos";
  const std::string tmp = args.fit_normaliser_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << n.to_json() << "\n";
    if (!out.flush()) {
      throw Error(ErrorCode::kInvalidArgument, "cannot write '" + tmp + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, args.fit_normaliser_file, ec);
  if (ec) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot write '" + args.fit_normaliser_file + "': " + ec.message());
  }
}

// The figure at `target` of a list of operating points, as text ("-" when not reached).
template <typename Points, typename Pick>
std::string figure_at(const Points& points, double target, Pick rate_of) {
  for (const auto& at : points) {
    if (at.point.target == target && at.point.achieved.trials > 0) {
      char text[32];
      std::snprintf(text, sizeof text, "%.4f%s", rate_of(at).value(),
                    at.point.support == Support::kEnough ? "" : "*");
      return text;
    }
  }
  return "-";
}

// `frs eval --compare-descriptors`: the same images through every descriptor model (the
// detector and landmarks are the same for all), each model's figures at its own
// thresholds, side by side.
int run_compare_descriptors(const FaceEngineOptions& engine_options, EvalArgs args) {
  struct Row {
    const DescriptorModel* model = nullptr;
    std::size_t described = 0;
    double seconds = 0;
    Evaluation evaluation;
  };
  std::vector<Row> rows;
  std::size_t image_count = 0, identity_count = 0;
  for (const DescriptorModel& model : descriptor_models()) {
    FaceEngineOptions options = engine_options;
    options.descriptor = std::string(model.id);
    const FaceEngine engine(options);
    EvalArgs model_args = args;
    model_args.open_set.unit_length = model.metric == DescriptorMetric::kCosine;
    if (model_args.max_distance == 0) model_args.max_distance = default_watchlist_threshold(model);
    EvalInput input = read_input(model_args);
    Row row;
    row.model = &model;
    row.seconds =
        describe_with_progress(engine, input.described(), args.progress,
                               "images, " + std::string(model.id), parse_degradation(args.degrade));
    std::set<std::string> identities;
    for (const EvalImage& image : input.described()) {
      if (image.descriptor) ++row.described;
      if (!image.identity.empty()) identities.insert(image.identity);
    }
    image_count = input.described().size();
    identity_count = identities.size();
    row.evaluation = evaluate_input(input, model_args, model);
    rows.push_back(std::move(row));
  }

  if (args.json_output) {
    json out = {{"images", image_count}, {"models", json::array()}};
    if (identity_count > 0) out["identities"] = identity_count;
    for (const Row& row : rows) {
      const Verification& v = row.evaluation.verification;
      json m = {{"descriptor", row.model->id},
                {"dimension", row.model->dimension},
                {"index_bytes_per_face", row.model->dimension * sizeof(float)},
                {"described", row.described},
                {"seconds", row.seconds},
                {"verification",
                 {{"equal_error_rate", v.equal_error_rate},
                  {"equal_error_threshold", v.equal_error_threshold},
                  {"at_fmr", at_fmr_json(v)}}}};
      if (row.evaluation.identification) {
        const Identification& id = *row.evaluation.identification;
        m["identification"] = {{"mated", id.mated},
                               {"non_mated", id.non_mated},
                               {"rank1", id.rank1},
                               {"at_fpir", at_fpir_json(id)}};
      }
      if (const auto& c = row.evaluation.calibration) m["calibration"] = calibration_json(*c);
      out["models"].push_back(m);
    }
    std::cout << out.dump() << "\n";
    return 0;
  }

  std::cout << "frs eval --compare-descriptors: " << image_count << " images";
  if (identity_count > 0) std::cout << " of " << identity_count << " identities";
  std::cout << ", every model at its own thresholds (* = rough: too few comparisons for a "
               "firm figure)\n";
  std::printf("%-15s %6s %8s %9s %8s %7s %9s %9s %7s %9s %9s", "model", "values", "bytes",
              "described", "seconds", "EER", "EER at", "FNMR@1e-3", "rank-1", "FNIR@0.1",
              "FNIR@0.01");
  if (args.calibrate) std::printf(" %9s", "threshold");
  std::printf("\n");
  for (const Row& row : rows) {
    const Verification& v = row.evaluation.verification;
    const auto& id = row.evaluation.identification;
    std::printf(
        "%-15s %6zu %8zu %9zu %8.1f %7.4f %9.3f %9s %7s %9s %9s",
        std::string(row.model->id).c_str(), row.model->dimension,
        row.model->dimension * sizeof(float), row.described, row.seconds, v.equal_error_rate,
        v.equal_error_threshold,
        figure_at(v.at_fmr, 1e-3, [](const auto& at) { return at.fnmr; }).c_str(),
        id ? cv::format("%.4f", id->rank1).c_str() : "-",
        id ? figure_at(id->at_fpir, 0.1, [](const auto& at) { return at.fnir; }).c_str() : "-",
        id ? figure_at(id->at_fpir, 0.01, [](const auto& at) { return at.fnir; }).c_str() : "-");
    if (const auto& c = row.evaluation.calibration) std::printf(" %9.3f", c->max_distance);
    std::printf("\n");
  }
  if (args.calibrate) {
    std::printf("threshold: --calibrate's max_distance for FPIR %.3g at %zu identities\n",
                args.target_fpir, args.gallery_size);
  }
  return 0;
}

}  // namespace

int run_eval(const FaceEngineOptions& engine_options, EvalArgs args) {
  if (!args.folder.empty() + !args.pairs_csv.empty() + !args.images_csv.empty() != 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "give one of: a folder of identity sub-folders, --pairs CSV or --images CSV");
  }
  if (!args.group_by.empty() && args.images_csv.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--group-by names a column of --images CSV (with a folder, give --groups CSV)");
  }
  if (!args.groups_csv.empty() && !args.images_csv.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--images CSV carries its own groups: name the column with --group-by");
  }
  parse_degradation(args.degrade);  // a bad spec is refused before any model is loaded
  if (!args.fit_normaliser_file.empty() && !args.pairs_csv.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--fit-normaliser needs photos with identities (a folder or --images), not pairs");
  }
  if (args.fair_clusters == 1) {
    throw Error(ErrorCode::kInvalidArgument, "--fair-clusters needs 2 clusters or more (0 = off)");
  }
  if (args.fair_clusters > 0 && args.groups_csv.empty() && args.group_by.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--fair-clusters is judged per group: give --groups CSV (with a folder) or "
                "--group-by COLUMN (with --images)");
  }
  if (!args.groups_csv.empty() && !args.pairs_csv.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--groups needs a folder of identities (a pairs file has no identities)");
  }
  if (!args.apply_to.empty() && !args.calibrate) {
    throw Error(ErrorCode::kInvalidArgument, "--apply-to needs --calibrate");
  }
  if (args.calibrate && args.gallery_size == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "--calibrate needs --gallery-size N: the number of identities the watchlist "
                "will hold (the false-alert rate grows with it)");
  }
  args.open_set.score =
      args.template_score == "centroid" ? TemplateScore::kCentroid : TemplateScore::kNearest;
  args.open_set.fusion = args.probe_fusion == "any"    ? ProbeFusion::kAnyChip
                         : args.probe_fusion == "mean" ? ProbeFusion::kMean
                                                       : ProbeFusion::kQualityWeighted;
  if (args.compare_descriptors) {
    if (!args.apply_to.empty() || !args.plot_dir.empty() || !args.groups_csv.empty() ||
        !args.group_by.empty() || args.fair_clusters > 0 || !args.normaliser_file.empty() ||
        !args.fit_normaliser_file.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--compare-descriptors reports every model side by side; --apply-to, --plot, "
                  "--groups, --group-by, --fair-clusters and the normalisers work on one model: "
                  "run them with --descriptor ID");
    }
    return run_compare_descriptors(engine_options, args);
  }
  // The input first: a malformed file is reported before a second of model loading.
  EvalInput input = read_input(args);
  const ImageDegradation degradation = parse_degradation(args.degrade);
  std::optional<ScoreNormaliser> normaliser;
  if (!args.normaliser_file.empty()) {
    normaliser = read_normaliser(args.normaliser_file, engine_options.descriptor);
  }
  const FaceEngine engine(engine_options);
  args.open_set.unit_length = engine.descriptor_model().metric == DescriptorMetric::kCosine;
  if (args.max_distance == 0)
    args.max_distance = default_watchlist_threshold(engine.descriptor_model());

  std::vector<std::string>& skipped = input.skipped;
  std::vector<EvalImage>& described = input.described();
  describe_with_progress(engine, described, args.progress, "images", degradation);

  std::vector<std::pair<std::string, std::string>> problems;       // file, why
  std::vector<std::pair<std::string, std::string>> gate_refusals;  // file, why
  std::set<std::string> identities;
  for (const EvalImage& image : described) {
    if (!image.identity.empty()) identities.insert(image.identity);
    if (!image.descriptor) problems.emplace_back(image.file.string(), image.problem);
    if (!image.enrollment_problem.empty()) {
      gate_refusals.emplace_back(image.file.string(), image.enrollment_problem);
    }
  }

  const Evaluation evaluation =
      evaluate_input(input, args, engine.descriptor_model(), normaliser ? &*normaliser : nullptr);
  const auto& labelled = evaluation.pairs;
  const Verification& verification = evaluation.verification;
  const std::optional<Identification>& identification = evaluation.identification;
  const std::vector<SearchOutcome>& searches = evaluation.searches;
  const std::optional<Calibration>& calibration = evaluation.calibration;
  const std::optional<GroupFigures>& groups = evaluation.groups;
  if (!args.fit_normaliser_file.empty()) {
    write_normaliser(args, input, engine.descriptor_model());
  }
  std::optional<FairNormalisationTrial> fair;
  if (args.fair_clusters > 0) {
    ScoreNormaliser::FitOptions fit;
    fit.clusters = args.fair_clusters;
    fit.false_match_rate = args.fair_fmr;
    fit.seed = args.open_set.seed;
    fair = fair_normalisation_trial(input.images, *input.groups, fit);
  }

  // What the figures rest on, in words, for the watchlist's record.
  std::string data =
      "frs eval on " + input.source + ": " + std::to_string(described.size()) + " images";
  if (!identities.empty()) data += " of " + std::to_string(identities.size()) + " identities";
  std::vector<std::filesystem::path> plots;
  if (!args.plot_dir.empty()) {
    plots = write_plots(args.plot_dir, {labelled, searches, args.max_distance, data});
  }
  int exit_code = 0;
  if (calibration && !args.apply_to.empty()) {
    exit_code =
        apply_calibration(args.server, args.apply_to, *calibration, data, args.json_output,
                          evaluation.group_calibration ? &*evaluation.group_calibration : nullptr);
  }

  if (args.json_output) {
    json out;
    out["images"] = described.size();
    if (!identities.empty()) out["identities"] = identities.size();
    out["no_descriptor"] = json::array();
    for (const auto& [file, why] : problems)
      out["no_descriptor"].push_back({{"image", file}, {"reason", why}});
    out["enrollment_gate_refuses"] = json::array();
    for (const auto& [file, why] : gate_refusals)
      out["enrollment_gate_refuses"].push_back({{"image", file}, {"reason", why}});
    out["skipped_rows"] = skipped;
    if (!plots.empty()) {
      out["plots"] = json::array();
      for (const auto& p : plots) out["plots"].push_back(p.string());
    }
    json v = {{"genuine", verification.genuine},
              {"impostor", verification.impostor},
              {"max_distance", verification.threshold},
              {"fmr", rate_json(verification.fmr)},
              {"fnmr", rate_json(verification.fnmr)},
              {"accuracy", verification.accuracy},
              {"equal_error_rate", verification.equal_error_rate},
              {"equal_error_threshold", verification.equal_error_threshold},
              {"at_fmr", at_fmr_json(verification)}};
    out["verification"] = v;
    if (identification) {
      const Identification& id = *identification;
      json i = {{"enroll_per_identity", args.open_set.enroll_per_identity},
                {"holdout", args.open_set.holdout},
                {"template", args.template_score},
                {"enroll_gated", args.open_set.enroll_gated},
                {"probe_chips", args.open_set.probe_chips},
                {"probe_fusion", args.probe_fusion},
                {"mated", id.mated},
                {"non_mated", id.non_mated},
                {"rank1", id.rank1},
                {"max_distance", id.threshold},
                {"fnir", rate_json(id.fnir)},
                {"fpir", rate_json(id.fpir)},
                {"at_fpir", at_fpir_json(id)}};
      out["identification"] = i;
    }
    if (groups) {
      out["groups"] = json::array();
      for (const GroupRates& g : groups->groups) out["groups"].push_back(group_json(g));
      out["group_summary"] = group_summary_json(*groups);
    }
    if (degradation.any()) out["degradation"] = degradation.text();
    if (normaliser) {
      out["normaliser"] = {{"file", args.normaliser_file},
                           {"clusters", normaliser->clusters().size()},
                           {"fitted_on", normaliser->fitted_on}};
    }
    if (!args.fit_normaliser_file.empty()) out["fitted_normaliser"] = args.fit_normaliser_file;
    if (fair) {
      json before = group_summary_json(fair->before), after = group_summary_json(fair->after);
      before["groups"] = json::array();
      after["groups"] = json::array();
      for (const GroupRates& g : fair->before.groups) before["groups"].push_back(group_json(g));
      for (const GroupRates& g : fair->after.groups) after["groups"].push_back(group_json(g));
      before["fnmr"] = rate_json(fair->fnmr_before);
      after["fnmr"] = rate_json(fair->fnmr_after);
      out["fair_normalisation"] = {{"clusters", fair->clusters},
                                   {"pooled_fmr", fair->pooled_fmr},
                                   {"unsupported_clusters", fair->unsupported_clusters},
                                   {"before", before},
                                   {"after", after}};
    }
    if (calibration) out["calibration"] = calibration_json(*calibration);
    if (const auto& every = evaluation.group_calibration) {
      out["calibration"]["bound_by"] = every->bound_by;
      out["calibration"]["pooled"] = calibration_json(every->pooled);
      out["calibration"]["groups"] = json::array();
      for (const GroupCalibration& g : every->groups) {
        json j = {{"group", g.group}};
        if (g.calibration) j["calibration"] = calibration_json(*g.calibration);
        if (!g.problem.empty()) j["problem"] = g.problem;
        out["calibration"]["groups"].push_back(j);
      }
    }
    std::cout << out.dump() << "\n";
    return exit_code;
  }

  std::cout << "frs eval: " << described.size() << " images";
  if (!identities.empty()) std::cout << " of " << identities.size() << " identities";
  std::cout << "\n";
  if (!problems.empty()) {
    std::cout << "No descriptor for " << problems.size() << " image"
              << (problems.size() == 1 ? "" : "s") << " (left out of every figure):\n";
    for (const auto& [file, why] : problems) std::cout << "  " << file << ": " << why << "\n";
  }
  if (!gate_refusals.empty()) {
    std::cout << "The enrollment gate would refuse " << gate_refusals.size() << " image"
              << (gate_refusals.size() == 1 ? "" : "s")
              << " (still in the figures; --enroll-gated enrolls others first):\n";
    for (const auto& [file, why] : gate_refusals) std::cout << "  " << file << ": " << why << "\n";
  }
  if (!skipped.empty()) {
    std::cout << "Skipped " << skipped.size() << " malformed row"
              << (skipped.size() == 1 ? "" : "s") << " or file name"
              << (skipped.size() == 1 ? "" : "s") << ":\n";
    for (const std::string& s : skipped) std::cout << "  " << s << "\n";
  }
  if (degradation.any()) {
    std::printf("Every photo degraded before analysis: %s\n", degradation.text().c_str());
  }
  if (normaliser) {
    std::printf("Scores: distances normalised by %s (%zu regions; fitted on %s)\n",
                args.normaliser_file.c_str(), normaliser->clusters().size(),
                normaliser->fitted_on.c_str());
  }
  if (!args.fit_normaliser_file.empty()) {
    std::printf("Fitted a score normaliser on these photos: %s\n",
                args.fit_normaliser_file.c_str());
  }
  print_verification(verification);
  if (identification) print_identification(*identification, args.open_set);
  if (groups) print_groups(*groups);
  if (fair) print_fair_normalisation(*fair);
  if (calibration) {
    const Calibration& c = *calibration;
    std::printf(
        "Calibration: max_distance %.3f keeps the expected false-alert rate at %.3g for a "
        "watchlist of %zu identities\n  (each comparison may falsely match with probability "
        "%.3g; %s from %zu comparisons of different people)\n",
        c.max_distance, c.target_fpir, c.gallery_size, c.per_comparison_fmr,
        c.extrapolated ? "extrapolated with a normal fitted to the lower tail"
                       : "read off the distances",
        c.impostor_comparisons);
  }
  if (const auto& every = evaluation.group_calibration) print_group_calibration(*every);
  if (!plots.empty()) {
    std::cout << "Plots:";
    for (const auto& p : plots) std::cout << " " << p.string();
    std::cout << "\n";
  }
  return exit_code;
}

}  // namespace frs::cli
