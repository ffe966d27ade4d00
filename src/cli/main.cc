// The `timetrail` command: one binary for the server, change capture and the client commands.
#include <CLI/CLI.hpp>

#ifdef TIMETRAIL_HAVE_SERVER
#include "server/serve_command.h"
#endif
#ifdef TIMETRAIL_HAVE_CAPTURE
#include "capture/capture_command.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"timetrail: an immutable temporal event store"};
  app.require_subcommand(1);
#ifdef TIMETRAIL_HAVE_SERVER
  timetrail::server::AddServeCommand(app);
#endif
#ifdef TIMETRAIL_HAVE_CAPTURE
  timetrail::capture::AddCaptureCommand(app);
#endif
  CLI11_PARSE(app, argc, argv);
  return 0;
}
