// The client commands of `berth` (registry client, no daemon). Each AddXCommand adds
// one command group to the app; AddClientCommands adds them all.
#pragma once

#include <CLI/CLI.hpp>

namespace berth::cli {

void AddLoginCommand(CLI::App& app);     // login, logout        (login.cc)
void AddManifestCommand(CLI::App& app);  // manifest create/…    (manifest.cc)
void AddCopyCommand(CLI::App& app);      // copy                 (copy.cc)
void AddPackCommand(CLI::App& app);      // pack                 (pack.cc)
void AddInspectCommand(CLI::App& app);   // inspect, tags, catalog, rm (inspect.cc)
void AddEcrCommand(CLI::App& app);       // ecr get-login-password|login, repo, images (ecr.cc)

void AddClientCommands(CLI::App& app);

}  // namespace berth::cli
