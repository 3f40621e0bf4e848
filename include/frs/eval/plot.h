#pragma once
// PNG plots of an evaluation, drawn by gnuplot (Debian's gnuplot-nox): the error trade-off
// (DET) curves and the same-person vs different-people distance histograms. The data files
// and the gnuplot script are written beside the PNGs, so a plot can be redrawn or restyled.

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

}  // namespace frs
