#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "frs/eval/metrics.h"

namespace frs::cli {
// Registers the server subcommands; the chosen one stores its work in `action`.
void add_remote_commands(CLI::App& app, std::function<int()>& action);
// Sets a watchlist's max_distance from a calibration and records it as the threshold's
// basis (`data` says what photos it was measured on; `every_group`, when it was checked
// per group, which groups and which set it). `server` empty: $FRS_SERVER or the default
// address. Returns the exit code; errors are printed.
int apply_calibration(const std::string& server, const std::string& watchlist,
                      const Calibration& calibration, const std::string& data, bool json_output,
                      const CalibrationForEveryGroup* every_group = nullptr);
}  // namespace frs::cli
