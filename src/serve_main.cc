// berth-serve: the registry server alone, without the client's libraries. `berth serve`
// execs it (see cli/serve.h); it takes the same options.
#include "cli/serve.h"

int main(int argc, char** argv) { return berth::cli::ServeMain(argc, argv); }
