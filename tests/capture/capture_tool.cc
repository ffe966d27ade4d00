// "timetrail capture" as a standalone process, so tests can kill it with SIGKILL.
#include <CLI/CLI.hpp>

#include "capture/capture_command.h"

int main(int argc, char** argv) {
  CLI::App app("capture tool for tests");
  app.require_subcommand(1);
  timetrail::capture::AddCaptureCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
