// `timetrail backup` and `timetrail restore`: copies of a closed data directory.
#ifndef TIMETRAIL_CLI_BACKUP_H_
#define TIMETRAIL_CLI_BACKUP_H_

#include <CLI/CLI.hpp>

namespace timetrail::cli {

void AddBackupCommands(CLI::App& app);

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_BACKUP_H_
