// berth: the registry server and its command-line client in one binary.
#include <CLI/CLI.hpp>

#include "cli/serve.h"

int main(int argc, char** argv) {
  CLI::App app{"Berth: an OCI / Amazon ECR compatible container registry and client"};
  app.set_version_flag("--version", "berth 0.1.0");
  app.require_subcommand(1);
  berth::cli::AddServeCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
