#pragma once
// PNG plots of an evaluation, drawn by gnuplot (Debian's gnuplot-nox): the error trade-off
// (DET) curves and the same-person vs different-people distance histograms. The data files
// and the gnuplot script are written beside the PNGs, so a plot can be redrawn or restyled.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "frs/eval/metrics.h"

namespace frs {

struct PlotInputs {
  std::span<const LabelledDistance> pairs;  // verification comparisons
  std::span<const SearchOutcome> searches;  // open-set searches; may be empty
  float threshold = 0.5f;                   // the operating max_distance, marked on the plots
  std::string caption;                      // what the data are, e.g. "lfw10: 100 images"
};

// Writes `dir`/det.png and `dir`/distances.png (with det_verification.dat,
// det_identification.dat, distances.dat and plots.gp) and returns the PNGs' paths. Throws
// frs::Error: kFailedPrecondition when gnuplot is not installed, kInvalidArgument when `dir`
// cannot be written, kInternal (with gnuplot's message) when gnuplot fails.
std::vector<std::filesystem::path> write_plots(const std::filesystem::path& dir,
                                               const PlotInputs& inputs);

// The accountability report's plots (frs audit report --plot).
struct AlertDayCounts {
  std::string day;  // YYYY-MM-DD
  std::int64_t confirmed = 0, rejected = 0, pending = 0;
};
// Writes `dir`/alerts_per_day.png (stacked by outcome) and `dir`/review_delay.png (the
// share of decided alerts reviewed within a delay), with alerts_per_day.dat,
// review_delay.dat and report.gp; errors as write_plots.
std::vector<std::filesystem::path> write_report_plots(const std::filesystem::path& dir,
                                                      const std::vector<AlertDayCounts>& days,
                                                      std::vector<double> review_delays_s,
                                                      const std::string& caption);

}  // namespace frs
