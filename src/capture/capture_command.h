// The "timetrail capture" command (and "timetrail revert --source" later): see docs/capture.md.
#ifndef TIMETRAIL_CAPTURE_CAPTURE_COMMAND_H_
#define TIMETRAIL_CAPTURE_CAPTURE_COMMAND_H_

#include <CLI/CLI.hpp>

namespace timetrail::capture {

// Adds "capture" as a subcommand of "app". Running it streams changes until SIGINT or SIGTERM
// and exits 0, or exits 1 with the error on stderr.
void AddCaptureCommand(CLI::App& app);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_CAPTURE_COMMAND_H_
