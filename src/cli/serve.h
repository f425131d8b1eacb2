// `berth serve`: wires configuration, storage, the registry and the HTTP server.
#pragma once

#include <CLI/CLI.hpp>

namespace berth::cli {

// Adds the `serve` subcommand to `app`.
void AddServeCommand(CLI::App& app);

}  // namespace berth::cli
