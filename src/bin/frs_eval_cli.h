#pragma once
// `frs eval`: accuracy of the face engine on the user's own labelled data, offline.

#include <optional>
#include <string>

#include "frs/eval/dataset.h"
#include "frs/vision/face_engine.h"

namespace frs::cli {

struct EvalArgs {
  std::string folder;        // identity tree; or
  bool named_files = false;  // folder: identities from IDENTITY_N.ext file names
  std::string pairs_csv;     // labelled pairs; or
  std::string images_csv;    // a CSV listing the photos (file[,identity][,attributes...])
  std::string groups_csv;    // optional identity,group (with a folder)
  std::string group_by;      // optional: the images_csv column that is the group
  // The operating threshold to report at; 0 (default) = the model's
  // default_watchlist_threshold (what a new watchlist of it gets).
  float max_distance = 0;
  OpenSetOptions open_set;  // identity trees only
  std::string template_score = "nearest";
  std::string probe_fusion = "quality";  // quality, mean or any
  bool calibrate = false;
  double target_fpir = 0.01;
  std::size_t gallery_size = 0;      // calibration: identities the watchlist will hold
  std::string apply_to;              // calibration: the watchlist to set it on
  std::string server;                // ... on this frs-server (empty: $FRS_SERVER or default)
  std::string plot_dir;              // write PNG plots here (empty: none)
  bool compare_descriptors = false;  // every descriptor model side by side
  // Fair score normalisation trial (fairness.h): k-means clusters, 0 = none; the pooled
  // false-match rate its clusters are fitted and judged at.
  int fair_clusters = 0;
  double fair_fmr = 1e-2;
  // Write a ScoreNormaliser fitted on every described photo here (fair_clusters, default
  // 25); and/or score every comparison with the one in `normaliser_file`.
  std::string fit_normaliser_file;
  // Degrade every photo before analysis (parse_degradation: "scale=0.4,blur=1.5,jpeg=30").
  std::string degrade;
  std::string normaliser_file;
  bool json_output = false;
  bool progress = true;
};

// Returns the process exit code; throws frs::Error for unusable input.
int run_eval(const FaceEngineOptions& engine_options, EvalArgs args);

}  // namespace frs::cli
