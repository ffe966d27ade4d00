// The client commands of `timetrail`: each mirrors an HTTP API v1 call and runs against a
// server (--server) or a data directory (--data). See docs/cli.md.
#ifndef TIMETRAIL_CLI_COMMANDS_H_
#define TIMETRAIL_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

namespace timetrail::cli {

// append, read, info, event, log, tail, integrity, verify.
void AddStreamCommands(CLI::App& app);
// import, export.
void AddImportExportCommands(CLI::App& app);
// get, history, diff, activity, revert.
void AddTemporalCommands(CLI::App& app);
// token create, token list, token revoke.
void AddTokenCommands(CLI::App& app);
// project: the log as a table of changes in PostgreSQL.
void AddProjectCommand(CLI::App& app);

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_COMMANDS_H_
