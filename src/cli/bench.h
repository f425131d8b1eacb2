// `berth bench`: a load generator for any OCI registry (see src/bench/).
#pragma once

#include <CLI/CLI.hpp>

namespace berth::cli {

void AddBenchCommand(CLI::App& app);

}  // namespace berth::cli
