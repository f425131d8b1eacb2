// The one way `berth` and `berth-serve` turn a CLI11 app and argv into an exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace berth::cli {

// Parses argv and runs the chosen command, whose callback reports its exit code by
// throwing CLI::RuntimeError(code). CLI11's own usage errors (codes 100+) exit 2, see
// docs/client.md.
inline int RunApp(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc >= 100 ? 2 : rc;
  }
  return 0;
}

}  // namespace berth::cli
