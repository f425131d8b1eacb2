// `berth admin`: manage access keys (DATA/identities.json) and the registry token key
// (DATA/token.key) of a data directory. A running server picks the changes up within a
// second; no restart needed.
//
//   berth admin create-key --name NAME [--account ID] [--policy FILE]... [--admin]
//   berth admin delete-key ACCESS_KEY_ID
//   berth admin list-keys
//   berth admin rotate-token-key
// Each takes --data DIR (default: $BERTH_DATA_DIR, else ./berth-data).
#pragma once

#include <CLI/CLI.hpp>
#include <iostream>

namespace berth::cli {

// Adds the `admin` subcommand tree to `app`. Output goes to `out`, errors to `err`
// (parameters for tests). Exit status: 0 on success, 1 on failure.
void AddAdminCommand(CLI::App& app, std::ostream& out = std::cout, std::ostream& err = std::cerr);

}  // namespace berth::cli
