// `berth serve`: wires configuration, storage, the registry and the HTTP server.
//
// The server is also built as its own executable, `berth-serve`, linked without the
// client's libraries (libcurl, libarchive and the ~30 libraries they pull in: GnuTLS,
// Kerberos, LDAP, ICU…). Mapping those costs a serving process about 5 MiB of resident
// memory for code it never runs, so `berth serve` execs `berth-serve` when it sits next
// to the `berth` binary (same pid, same command line) and serves in-process otherwise.
#pragma once

#include <CLI/CLI.hpp>

namespace berth::cli {

// Adds the `serve` subcommand to `app`.
void AddServeCommand(CLI::App& app);

// Adds serve's options and callback to `cmd` (a subcommand or a top-level app).
void ConfigureServeCommand(CLI::App& cmd);

// main() of `berth-serve`: the serve options at top level; a leading `serve` word
// (as `berth serve` passes it on) is skipped.
int ServeMain(int argc, char** argv);

// If `berth-serve` sits next to this executable and BERTH_SERVE_IN_PROCESS is unset,
// replaces this process with it, passing argv (null-terminated, as main gets it)
// unchanged. Returns only if it did not.
void ExecServerBinary(char** argv);

}  // namespace berth::cli
