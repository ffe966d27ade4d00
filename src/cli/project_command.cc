// `timetrail project postgresql://TARGET`: the log as a table of changes in a PostgreSQL
// database, kept in step exactly once (src/project/changes_projector.h, docs/projections.md).
#include <atomic>
#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "project/changes_projector.h"

namespace timetrail::cli {
namespace {

std::atomic<bool> g_stop_projecting{false};
extern "C" void OnStopProjecting(int) { g_stop_projecting.store(true); }

struct ProjectArgs {
  CommonOptions common;
  project::ProjectorOptions options;
  bool progress = false;
};

int RunProject(ProjectArgs& a) {
  if (a.common.target.data_dir.empty() && a.common.target.store_url.empty()) {
    return ReportStatus(
        "project", Status::InvalidArgument("give the store to project as --data DIR or --store URL "
                                           "(projecting through a server is not supported yet)"));
  }
  // Read-only: the projection works beside the server or capture that writes the store.
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kRead);
  if (!backend.ok()) return ReportStatus("project", backend.status());
  EventStore* store = (*backend)->store();
  if (store == nullptr) {
    return ReportStatus("project", Status::InvalidArgument("no store to project"));
  }
  if (a.progress) {
    a.options.log = [](const std::string& line) { std::cerr << "project: " << line << std::endl; };
  }
  std::signal(SIGINT, OnStopProjecting);
  std::signal(SIGTERM, OnStopProjecting);
  Result<project::ProjectorStats> stats =
      project::RunChangesProjection(*store, a.options, g_stop_projecting);
  if (!stats.ok()) return ReportStatus("project", stats.status());
  std::cerr << "project: " << stats->events << " events projected into " << a.options.schema << "."
            << (a.options.table.empty() ? a.options.name : a.options.table) << "; checkpoint '"
            << a.options.name << "' at position " << stats->position << std::endl;
  return kExitOk;
}

}  // namespace

void AddProjectCommand(CLI::App& app) {
  auto a = std::make_shared<ProjectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "project",
      "Keep a table of changes in a PostgreSQL database in step with the log, exactly once "
      "(docs/projections.md)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("target", a->options.target_url, "Target database, e.g. postgresql://app@db/shop")
      ->required();
  cmd->add_option("--name", a->options.name,
                  "Projection name: its checkpoint in timetrail.projection_checkpoints, and its "
                  "table unless --table")
      ->capture_default_str();
  cmd->add_option("--schema", a->options.schema, "Schema of the projection's table")
      ->capture_default_str();
  cmd->add_option("--table", a->options.table, "Table name (default: the projection's name)");
  cmd->add_option("--batch", a->options.batch_events, "Events per target transaction")
      ->capture_default_str();
  cmd->add_flag("--follow", a->options.follow,
                "Keep following the log once caught up, until Ctrl-C or SIGTERM");
  cmd->add_flag("--progress", a->progress, "Print the events projected and the lag every second");
  cmd->footer(
      "Examples:\n"
      "  timetrail project postgresql://app@db/shop --data ./timetrail-data\n"
      "  timetrail project postgresql://app@db/shop --data ./audit --follow --progress\n"
      "Each batch's rows and the checkpoint are one target transaction: a restart resumes "
      "after the checkpoint.\nExit codes: 0 ok, 2 bad input, 3 store not found, 5 unreachable.");
  SetAction(cmd, [a] { return RunProject(*a); });
}

}  // namespace timetrail::cli
