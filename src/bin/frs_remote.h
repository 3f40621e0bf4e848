#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace frs::cli {
// Registers the server subcommands; the chosen one stores its work in `action`.
void add_remote_commands(CLI::App& app, std::function<int()>& action);
}  // namespace frs::cli
