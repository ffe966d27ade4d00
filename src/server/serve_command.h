// `timetrail serve`: runs the HTTP API v1 over a data directory.
#ifndef TIMETRAIL_SERVER_SERVE_COMMAND_H_
#define TIMETRAIL_SERVER_SERVE_COMMAND_H_

#include <CLI/CLI.hpp>

namespace timetrail::server {

// Adds the "serve" subcommand to "app". Its options come from flags, then environment
// variables (TIMETRAIL_DATA, TIMETRAIL_LISTEN, ...), then a config file (--config FILE with
// "key = value" lines, keys named like the long flags). The command runs until SIGTERM or
// SIGINT and then shuts down gracefully; a failure to start exits through CLI::RuntimeError
// with code 1 (2 for a bad option value).
void AddServeCommand(CLI::App& app);

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_SERVE_COMMAND_H_
