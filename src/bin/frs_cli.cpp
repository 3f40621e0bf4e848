// frs: the operator's command line. Offline subcommands run the face engine locally:
//   frs detect IMG...   frs embed IMG...   frs compare IMG_A IMG_B   frs eval FOLDER

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "frs/core/error.h"
#include "frs/vision/face_engine.h"
#include "frs_eval_cli.h"
#include "frs_remote.h"
#include "terminal_output.h"

namespace {

using nlohmann::json;

struct CommonOptions {
  bool json_output = false;
  std::string models_dir = frs::default_models_dir().string();
  std::string detector = "blazeface";
  std::optional<float> min_score;  // unset: the detector's default
  int min_face_px = 40;
  int threads = 0;
  std::uint64_t max_pixels = frs::ImageLimits{}.max_pixels;
  bool flip_average = false;
  int jitter = 0;
  std::string descriptor = std::string(frs::kDefaultDescriptorId);
};

std::vector<std::string> descriptor_ids() {
  std::vector<std::string> ids;
  for (const frs::DescriptorModel& m : frs::descriptor_models()) ids.emplace_back(m.id);
  return ids;
}

void add_common_options(CLI::App& cmd, CommonOptions& o) {
  cmd.add_flag("--json", o.json_output, "One JSON object per input image per line");
  cmd.add_option("--models", o.models_dir, "Directory holding the models (default: set-up's)")
      ->capture_default_str();
  cmd.add_option("--detector", o.detector,
                 "Face detector: blazeface, rfb or hog (docs/accuracy.md compares them)")
      ->check(CLI::IsMember(frs::detector_names()))
      ->capture_default_str();
  cmd.add_option(
         "--descriptor", o.descriptor,
         "Descriptor model: " + frs::descriptor_model_ids() + " (docs/accuracy.md compares them)")
      ->check(CLI::IsMember(descriptor_ids()))
      ->capture_default_str();
  cmd.add_option("--min-score", o.min_score,
                 "Detection threshold (BlazeFace probability, default 0.5; RFB probability, "
                 "default 0.85; HOG margin, default 0)");
  cmd.add_option("--min-face", o.min_face_px,
                 "Smallest face side to look for, in pixels (0 = one pass, fastest)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--threads", o.threads, "Worker threads (0 = one per core)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd.add_option("--max-pixels", o.max_pixels, "Reject images with more pixels than this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_flag("--flip-average", o.flip_average,
               "Descriptor = mean of the face's and its mirror image's (2x descriptor time)");
  cmd.add_option("--jitter", o.jitter,
                 "Descriptor = mean of N jittered copies of the face, as dlib's example (Nx "
                 "descriptor time; 0 = off)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
}

frs::FaceEngineOptions engine_options(const CommonOptions& o) {
  frs::FaceEngineOptions e;
  e.models_dir = o.models_dir;
  e.detector = frs::detector_kind(o.detector);
  e.min_score = o.min_score;
  e.min_face_px = o.min_face_px;
  e.threads = o.threads;
  e.limits.max_pixels = o.max_pixels;
  e.flip_average = o.flip_average;
  e.jitter = o.jitter;
  e.descriptor = o.descriptor;
  return e;
}

double round_to(double v, double step) {
  return std::round(v / step) * step;
}

json face_json(const frs::Face& f, bool with_embedding) {
  json j;
  j["box"] = {{"x", std::lround(f.box.x)},
              {"y", std::lround(f.box.y)},
              {"width", std::lround(f.box.width)},
              {"height", std::lround(f.box.height)}};
  j["score"] = round_to(f.score, 1e-4);
  j["quality"] = round_to(f.quality.score, 1e-4);
  j["quality_details"] = {{"face_px", round_to(f.quality.face_px, 0.1)},
                          {"sharpness", round_to(f.quality.sharpness, 0.1)},
                          {"yaw", round_to(f.quality.yaw, 1e-3)},
                          {"pitch", round_to(f.quality.pitch, 1e-3)}};
  if (with_embedding && f.embedding) j["embedding"] = *f.embedding;
  return j;
}

void print_text(const std::string& image, const std::vector<frs::Face>& faces,
                bool with_embedding) {
  std::cout << image << ": " << faces.size() << (faces.size() == 1 ? " face" : " faces") << "\n";
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const frs::Face& f = faces[i];
    std::cout << "  face " << i + 1 << ": box " << std::lround(f.box.x) << ","
              << std::lround(f.box.y) << " " << std::lround(f.box.width) << "x"
              << std::lround(f.box.height) << "  score " << round_to(f.score, 1e-3) << "  quality "
              << round_to(f.quality.score, 1e-3) << "\n";
    if (with_embedding && f.embedding) {
      std::cout << "    embedding";
      for (float v : *f.embedding) std::cout << " " << v;
      std::cout << "\n";
    }
  }
}

void annotate(const cv::Mat& bgr, const std::vector<frs::Face>& faces, const std::string& out) {
  cv::Mat canvas = bgr.clone();
  const int thickness = std::max(1, std::max(canvas.cols, canvas.rows) / 500);
  for (const frs::Face& f : faces) {
    cv::rectangle(canvas, cv::Rect(f.box), cv::Scalar(0, 255, 0), thickness);
    for (const cv::Point2f& p : f.landmarks) {
      cv::circle(canvas, p, thickness, cv::Scalar(0, 0, 255), cv::FILLED);
    }
    cv::putText(canvas, cv::format("%.2f", f.score), cv::Point(f.box.tl()) - cv::Point(0, 4),
                cv::FONT_HERSHEY_SIMPLEX, 0.4 * thickness, cv::Scalar(0, 255, 0), thickness);
  }
  if (!cv::imwrite(out, canvas)) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "cannot write '" + out +
                         "': check the directory exists and the extension "
                         "is .jpg or .png");
  }
}

// Runs detect or embed over every image; a bad image is reported and skipped, and makes the
// exit code 1.
int run_faces(const CommonOptions& o, const std::vector<std::string>& images, bool embed,
              const std::string& annotate_path) {
  if (!annotate_path.empty() && images.size() != 1) {
    std::cerr << "frs: --annotate takes one input image, got " << images.size() << "\n";
    return 2;
  }
  const frs::FaceEngine engine(engine_options(o));
  int status = 0;
  for (const std::string& path : images) {
    try {
      const cv::Mat bgr = frs::load_image(path, engine.options().limits);
      const std::vector<frs::Face> faces = engine.analyze(bgr, embed);
      if (o.json_output) {
        json line = {{"image", path}, {"faces", json::array()}};
        if (embed) line["descriptor"] = engine.descriptor_model().id;
        for (const frs::Face& f : faces) line["faces"].push_back(face_json(f, embed));
        std::cout << line.dump() << "\n";
      } else {
        print_text(path, faces, embed);
      }
      if (!annotate_path.empty()) annotate(bgr, faces, annotate_path);
    } catch (const frs::Error& e) {
      status = 1;
      if (o.json_output) {
        std::cout << json{{"image", path}, {"error", e.what()}}.dump() << "\n";
      }
      std::cerr << "frs: " << e.what() << "\n";
      if (e.code() == frs::ErrorCode::kFailedPrecondition) return 1;  // models: all would fail
    }
  }
  return status;
}

int run_compare(const CommonOptions& o, const std::string& a, const std::string& b,
                float max_distance) {
  const frs::FaceEngine engine(engine_options(o));
  if (max_distance == 0) max_distance = engine.descriptor_model().calibration.verify_max_distance;
  auto largest_face = [&](const std::string& path) {
    const cv::Mat bgr = frs::load_image(path, engine.options().limits);
    std::vector<frs::Face> faces = engine.analyze(bgr, true);
    if (faces.empty()) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "no face found in '" + path +
                           "': use a photo where the face is at least 40 pixels wide, or lower "
                           "--min-score");
    }
    return faces.front();  // the engine returns the largest first
  };
  const frs::Face face_a = largest_face(a);
  const frs::Face face_b = largest_face(b);
  const float d = frs::distance(*face_a.embedding, *face_b.embedding);
  const bool same = d < max_distance;
  if (o.json_output) {
    std::cout << json{{"image_a", a},
                      {"image_b", b},
                      {"distance", round_to(d, 1e-4)},
                      {"max_distance", round_to(max_distance, 1e-4)},
                      {"descriptor", engine.descriptor_model().id},
                      {"same_person", same},
                      {"face_a", face_json(face_a, false)},
                      {"face_b", face_json(face_b, false)}}
                     .dump()
              << "\n";
  } else {
    std::cout << "distance " << round_to(d, 1e-4) << " ("
              << (same ? "same person" : "different people") << " at max distance " << max_distance
              << ")\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const frs::cli::TerminalSafeBuffer safe_out(std::cout);
  const frs::cli::TerminalSafeBuffer safe_errors(std::cerr);
  CLI::App app{"frs: face recognition for live video"};
  app.require_subcommand(1);
  CommonOptions common;

  std::vector<std::string> images;
  std::string annotate_path;
  CLI::App* detect = app.add_subcommand("detect", "Find faces and report box, score and quality");
  detect->add_option("images", images, "Image files (JPEG, PNG, BMP, WebP)")->required();
  detect->add_option("--annotate", annotate_path, "Write the image with boxes drawn to this file");
  add_common_options(*detect, common);

  CLI::App* embed = app.add_subcommand(
      "embed", "Also compute each face's descriptor (128 values for dlib-resnet-v1), as matched");
  embed->add_option("images", images, "Image files")->required();
  add_common_options(*embed, common);

  std::string image_a, image_b;
  float max_distance = 0;  // the model's own verification threshold
  CLI::App* compare =
      app.add_subcommand("compare", "Distance between the largest faces of two images");
  compare->add_option("image_a", image_a, "First image")->required();
  compare->add_option("image_b", image_b, "Second image")->required();
  compare
      ->add_option("--max-distance", max_distance,
                   "same_person when distance is under this (default: the descriptor model's "
                   "1:1 threshold, 0.6 for dlib-resnet-v1; docs/accuracy.md)")
      ->check(CLI::Range(0.0f, 4.0f));
  add_common_options(*compare, common);

  frs::cli::EvalArgs eval_args;
  CLI::App* eval = app.add_subcommand(
      "eval",
      "Accuracy on your own labelled photos: verification, open-set identification, "
      "per-group rates, calibration");
  eval->add_option("folder", eval_args.folder, "Folder with one sub-folder of photos per identity");
  eval->add_flag("--named-files", eval_args.named_files,
                 "The folder holds IDENTITY_N.ext files instead of one sub-folder per identity");
  eval->add_option("--pairs", eval_args.pairs_csv,
                   "Instead of a folder: CSV of labelled pairs, file_a,file_b,same (1/0)");
  eval->add_option("--images", eval_args.images_csv,
                   "Instead of a folder: CSV listing the photos, with a header: file (required), "
                   "identity (optional; without it each file is a different person) and any "
                   "attribute columns");
  eval->add_option("--groups", eval_args.groups_csv,
                   "With a folder: CSV identity,group: FMR and FNMR per group (any attribute "
                   "you choose), and with --calibrate a threshold that holds for every group");
  eval->add_option("--group-by", eval_args.group_by,
                   "With --images: the column whose value is the photo's group (e.g. race), "
                   "as --groups");
  eval->add_option("--fair-clusters", eval_args.fair_clusters,
                   "With groups: measure fair score normalisation with K clusters of descriptor "
                   "space, fitted on half the identities and judged on the other half, group "
                   "rates before and after at one pooled false-match rate (0 = off; "
                   "docs/accuracy.md)")
      ->check(CLI::Range(0, 1000));
  eval->add_option("--fair-fmr", eval_args.fair_fmr,
                   "The pooled false-match rate --fair-clusters fits and judges at")
      ->check(CLI::Range(1e-6, 0.5))
      ->capture_default_str();
  eval->add_option("--degrade", eval_args.degrade,
                   "Degrade every photo before it is analysed, to measure poorer faces: "
                   "scale=F (0..1], blur=SIGMA px, jpeg=QUALITY, e.g. scale=0.4,blur=1.5,jpeg=30");
  eval->add_option("--fit-normaliser", eval_args.fit_normaliser_file,
                   "Fit a fair score normaliser on every described photo (--fair-clusters K, "
                   "default 25; --fair-fmr) and write it to FILE (JSON)");
  eval->add_option("--normaliser", eval_args.normaliser_file,
                   "Score every comparison with the normalised distance of this fitted "
                   "normaliser (of the same descriptor model): every figure, groups and "
                   "calibration included");
  eval->add_option("--max-distance", eval_args.max_distance,
                   "The operating threshold to report at (default: the threshold a new "
                   "watchlist of the model gets, for 1,000 identities at FPIR 0.01)")
      ->check(CLI::Range(0.0f, 4.0f));
  eval->add_option("--enroll", eval_args.open_set.enroll_per_identity,
                   "Photos enrolled per identity (the first ones, in file-name order)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  eval->add_flag("--enroll-best", eval_args.open_set.enroll_best,
                 "Enroll each identity's highest-quality photos instead of the first ones");
  eval->add_option("--probe-chips", eval_args.open_set.probe_chips,
                   "Photos of one person per search, fused as the live path fuses a track's "
                   "chips (the leftover fewer are dropped)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  eval->add_option("--probe-fusion", eval_args.probe_fusion,
                   "How --probe-chips are fused: quality (weighted mean), mean, or any (each "
                   "searched alone, nearest wins)")
      ->check(CLI::IsMember({"quality", "mean", "any"}))
      ->capture_default_str();
  eval->add_option("--cohort-k", eval_args.open_set.cohort_k,
                   "Cohort score normalisation: subtract the mean distance to the probe's K "
                   "nearest never-enrolled photos (0 = off; see docs/accuracy.md)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  eval->add_option("--plot", eval_args.plot_dir,
                   "Write PNG plots (DET curves, distance histograms) and their data to DIR");
  eval->add_flag("--enroll-gated", eval_args.open_set.enroll_gated,
                 "Enroll photos the enrollment gate accepts first (not blurred, turned or "
                 "with covered eyes), as an operator would");
  eval->add_option("--holdout", eval_args.open_set.holdout,
                   "Share of identities held out as never enrolled (in rotating folds)")
      ->check(CLI::Range(0.05, 0.5))
      ->capture_default_str();
  eval->add_option("--template", eval_args.template_score,
                   "How an identity with several photos scores: nearest or centroid")
      ->check(CLI::IsMember({"nearest", "centroid"}))
      ->capture_default_str();
  eval->add_option("--seed", eval_args.open_set.seed, "How identities are dealt into folds")
      ->capture_default_str();
  eval->add_flag("--calibrate", eval_args.calibrate,
                 "Also find the max_distance for --target-fpir at --gallery-size");
  eval->add_option("--target-fpir", eval_args.target_fpir,
                   "Calibration: expected share of never-enrolled people who alert")
      ->check(CLI::Range(1e-9, 0.5))
      ->capture_default_str();
  eval->add_option("--gallery-size", eval_args.gallery_size,
                   "Calibration: identities the watchlist will hold");
  eval->add_option("--apply-to", eval_args.apply_to,
                   "Calibration: set this watchlist's max_distance to it, recording how it was "
                   "found (frs watchlist show explains it)");
  eval->add_option("--server", eval_args.server, "frs-server for --apply-to (env FRS_SERVER)");
  eval->add_flag("--compare-descriptors", eval_args.compare_descriptors,
                 "Run every descriptor model (" + frs::descriptor_model_ids() +
                     ") on the same photos and print their figures side by side");
  eval->add_flag("!--no-progress", eval_args.progress, "No progress bar on stderr");
  add_common_options(*eval, common);

  std::function<int()> remote_action;
  frs::cli::add_remote_commands(app, remote_action);

  CLI11_PARSE(app, argc, argv);
  // Decoding failures are reported by frs in one line; OpenCV's own warnings would repeat
  // them less clearly.
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  try {
    if (detect->parsed()) return run_faces(common, images, false, annotate_path);
    if (embed->parsed()) return run_faces(common, images, true, "");
    if (compare->parsed()) return run_compare(common, image_a, image_b, max_distance);
    if (eval->parsed()) {
      eval_args.json_output = common.json_output;
      return frs::cli::run_eval(engine_options(common), eval_args);
    }
    if (remote_action) return remote_action();
  } catch (const frs::Error& e) {
    std::cerr << "frs: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "frs: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
