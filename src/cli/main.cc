// The `timetrail` command: one binary for the server, change capture and the client commands.
#include <CLI/CLI.hpp>

#include "capture/capture_command.h"
#include "cli/backup.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/serve_command.h"

int main(int argc, char** argv) {
  CLI::App app{"timetrail: an immutable temporal event store"};
  app.require_subcommand(1);
  app.footer(
      "Client commands work against a running server (--server URL, default "
      "http://127.0.0.1:7070,\nenv TIMETRAIL_SERVER) or directly on a data directory (--data "
      "DIR): commands that only\nread open it read-only, also while a server or capture holds "
      "it; commands that write need it\nfree.\nRun `timetrail COMMAND --help` for a command's "
      "options and examples. "
      "Exit codes: 0 ok,\n1 other failure, 2 bad input or usage, 3 not found, 4 conflict, "
      "5 server unreachable, 6 not authorized (docs/security.md).");
  timetrail::cli::AddServeCommand(app);
  timetrail::capture::AddCaptureCommand(app);
  timetrail::cli::AddProjectCommand(app);
  timetrail::cli::AddStreamCommands(app);
  timetrail::cli::AddTemporalCommands(app);
  timetrail::cli::AddImportExportCommands(app);
  timetrail::cli::AddBackupCommands(app);
  timetrail::cli::AddTokenCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command already said what went wrong
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    // Usage mistakes share one exit code, so scripts can tell them from failures.
    return code == 0 ? 0 : timetrail::cli::kExitBadInput;
  }
  return 0;
}
