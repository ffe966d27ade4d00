// The "timetrail capture" and "timetrail revert-source" commands: see docs/capture.md.
#ifndef TIMETRAIL_CAPTURE_CAPTURE_COMMAND_H_
#define TIMETRAIL_CAPTURE_CAPTURE_COMMAND_H_

#include <CLI/CLI.hpp>

namespace timetrail::capture {

// Adds "capture" and "revert-source" as subcommands of "app".
//   capture        streams changes until SIGINT or SIGTERM and exits 0, or exits 1 with the
//                  error on stderr.
//   revert-source  puts captured rows back in the source; --dry-run prints the SQL. Exits 2 for
//                  bad input (nothing changed), 1 for other failures.
void AddCaptureCommand(CLI::App& app);

// Only "revert-source" (AddCaptureCommand adds it too).
void AddRevertSourceCommand(CLI::App& app);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_CAPTURE_COMMAND_H_
