// berth: the registry server and its command-line client in one binary.
#include <CLI/CLI.hpp>

#include <string_view>

#include "cli/admin.h"
#include "cli/bench.h"
#include "cli/client.h"
#include "cli/run_app.h"
#include "cli/serve.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "serve") berth::cli::ExecServerBinary(argv);
  CLI::App app{"Berth: an OCI / Amazon ECR compatible container registry and client"};
  app.set_version_flag("--version", "berth 0.1.0");
  app.require_subcommand(1);
  berth::cli::AddServeCommand(app);
  berth::cli::AddAdminCommand(app);
  berth::cli::AddBenchCommand(app);
  berth::cli::AddClientCommands(app);
  return berth::cli::RunApp(app, argc, argv);
}
