// `timetrail serve`: runs the HTTP API v1 over a data directory, with `--capture` a PostgreSQL
// change capture beside it. It lives with the command rather than the server because it wires
// the two together (the server knows nothing of the capture; capture/capture_api.h adds its
// endpoints to the server's route table).
#ifndef TIMETRAIL_CLI_SERVE_COMMAND_H_
#define TIMETRAIL_CLI_SERVE_COMMAND_H_

#include <CLI/CLI.hpp>

namespace timetrail::cli {

// Adds the "serve" subcommand to "app". Its options come from flags, then environment
// variables (TIMETRAIL_DATA, TIMETRAIL_LISTEN, ...), then a config file (--config FILE with
// "key = value" lines, keys named like the long flags). The command runs until SIGTERM or
// SIGINT and then shuts down gracefully; a failure to start exits through CLI::RuntimeError
// with code 1 (2 for a bad option value).
void AddServeCommand(CLI::App& app);

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_SERVE_COMMAND_H_
