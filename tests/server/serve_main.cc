// A minimal `timetrail`-like binary with only the serve command, so the server tests run the
// same code as `timetrail serve` without depending on the rest of the CLI.
#include <CLI/CLI.hpp>

#include "server/serve_command.h"

int main(int argc, char** argv) {
  CLI::App app{"timetrail (server tests)"};
  app.require_subcommand(1);
  timetrail::server::AddServeCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
