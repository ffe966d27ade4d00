// `timetrail project postgresql://TARGET`: tables in a PostgreSQL database kept in step with
// the log, exactly once (src/project/projector.h, docs/projections.md).
#include <atomic>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/http_log_source.h"
#include "cli/output.h"
#include "cli/progress.h"
#include "project/projector.h"

namespace timetrail::cli {
namespace {

std::atomic<bool> g_stop_projecting{false};
extern "C" void OnStopProjecting(int) { g_stop_projecting.store(true); }

struct ProjectArgs {
  CommonOptions common;
  std::string target;
  std::string config_path;
  std::vector<std::string> only;
  project::ProjectionSpec single{.name = "changes"};  // without --config: one of changes
  std::size_t batch = 0;                              // 0: the configuration's (5000 by default)
  bool follow = false;
  bool rebuild = false;
  bool progress = false;
};

// Where the projections read the log: one store opened here, or one connection per
// projection to a server (a connection serves one thread).
class Sources {
 public:
  static Result<Sources> Open(const TargetOptions& target, std::size_t count) {
    Sources s;
    const bool server = target.data_dir.empty() && target.store_url.empty();
    for (std::size_t i = 0; i < (server ? count : 1); ++i) {
      // Read-only: the projection works beside the server or capture that writes the store.
      TT_ASSIGN_OR_RETURN(std::unique_ptr<Backend> b, OpenBackend(target, Access::kRead));
      s.sources_.push_back(b->store() != nullptr
                               ? project::StoreLogSource(*b->store(), b->Describe())
                               : HttpLogSource(*b, {}));
      s.backends_.push_back(std::move(b));
    }
    return s;
  }
  project::LogSource& For(std::size_t i) { return *sources_[std::min(i, sources_.size() - 1)]; }

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<project::LogSource>> sources_;
};

Result<project::ProjectorConfig> LoadConfig(ProjectArgs& a) {
  project::ProjectorConfig config;
  if (a.config_path.empty()) {
    config.projections.push_back(a.single);
  } else {
    TT_ASSIGN_OR_RETURN(config, project::LoadProjectorConfig(a.config_path));
  }
  if (!a.target.empty()) config.target = a.target;
  if (config.target.empty()) {
    return Status::InvalidArgument(
        "give the target database, e.g. postgresql://app@db/shop, on the command line or as "
        "\"target\" in the configuration");
  }
  if (a.batch != 0) config.batch_events = a.batch;
  if (!a.only.empty()) {
    std::vector<project::ProjectionSpec> chosen;
    for (const std::string& name : a.only) {
      auto it = std::find_if(config.projections.begin(), config.projections.end(),
                             [&](const project::ProjectionSpec& p) { return p.name == name; });
      if (it == config.projections.end()) {
        return Status::InvalidArgument("--only: no projection named '" + name +
                                       "' in the configuration");
      }
      chosen.push_back(*it);
    }
    config.projections = std::move(chosen);
  }
  return config;
}

int RunProject(ProjectArgs& a) {
  Result<project::ProjectorConfig> config = LoadConfig(a);
  if (!config.ok()) return ReportStatus("project", config.status());
  Result<Sources> sources = Sources::Open(a.common.target, config->projections.size());
  if (!sources.ok()) return ReportStatus("project", sources.status());
  std::signal(SIGINT, OnStopProjecting);
  std::signal(SIGTERM, OnStopProjecting);

  std::mutex mu;  // one line at a time on stderr, and the first failure
  Status failed;
  std::vector<project::ProjectionProgress> progress(config->projections.size());
  std::atomic<std::size_t> running{config->projections.size()};
  auto run = [&](std::size_t i) {
    const project::ProjectionSpec& spec = config->projections[i];
    project::RunOptions o;
    o.target_url = config->target;
    o.batch_events = config->batch_events;
    o.follow = a.follow;
    o.progress = &progress[i];
    // Following, a line a second says how far behind it is; a run that ends has a bar.
    o.log_progress = a.follow && a.progress;
    o.log = [&mu, name = spec.name](const std::string& line) {
      std::lock_guard lock(mu);
      std::cerr << "project " << name << ": " << line << std::endl;
    };
    Result<project::ProjectorStats> stats = project::ProjectorStats{};
    if (a.rebuild) {
      stats = project::RebuildProjection(sources->For(i), spec, o, g_stop_projecting);
    }
    if (stats.ok() && (!a.rebuild || a.follow)) {
      stats = project::RunProjection(sources->For(i), spec, o, g_stop_projecting);
    }
    --running;
    std::lock_guard lock(mu);
    if (!stats.ok()) {
      if (failed.ok()) failed = stats.status();
      g_stop_projecting.store(true);  // one failure stops the others: exit and say why
      return;
    }
    std::cerr << "project: '" << spec.name << "' (" << project::KindName(spec.kind)
              << ") at position " << stats->position << " in " << spec.schema << "."
              << spec.table_name() << (spec.kind == project::ProjectionKind::kHistory ? "_*" : "")
              << "; " << stats->events << " events read" << std::endl;
  };
  // Each projection on its own thread, with its own connection to the target.
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < config->projections.size(); ++i) threads.emplace_back(run, i);
  if (!a.follow) {
    // The bar: events read of those between each projection's checkpoint and the head.
    Progress bar("projected", a.progress);
    auto read = [&] {
      std::uint64_t events = 0;
      std::uint64_t total = 0;
      for (const project::ProjectionProgress& p : progress) {
        const project::ProgressSnapshot s = p.Get();
        events += s.events;
        total += s.head - std::min(s.head, s.position - std::min(s.position, s.events));
      }
      bar.set_total(total);
      return events;
    };
    while (running.load() > 0) {
      bar.Update(read());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (failed.ok()) bar.Finish(read());
  }
  for (std::thread& t : threads) t.join();
  if (!failed.ok()) return ReportStatus("project", failed);
  return kExitOk;
}

}  // namespace

void AddProjectCommand(CLI::App& app) {
  auto a = std::make_shared<ProjectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "project",
      "Keep tables in a PostgreSQL database in step with the log, exactly once: a table of "
      "changes, current states, per-property histories (docs/projections.md)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("target", a->target,
                  "Target database, e.g. postgresql://app@db/shop (or \"target\" in --config)");
  cmd->add_option("--config", a->config_path,
                  "JSON file naming the projections (changes, state, history) and their streams "
                  "and columns; without it, one changes projection of every stream")
      ->check(CLI::ExistingFile);
  cmd->add_option("--only", a->only, "Run only these projections of the configuration");
  cmd->add_option("--name", a->single.name,
                  "Without --config: the projection's name (its checkpoint in "
                  "timetrail.projection_checkpoints, and its table unless --table)")
      ->capture_default_str();
  cmd->add_option("--schema", a->single.schema, "Without --config: the table's schema")
      ->capture_default_str();
  cmd->add_option("--table", a->single.table,
                  "Without --config: the table (default: the projection's name)");
  cmd->add_option("--batch", a->batch, "Events per target transaction (default 5000)");
  cmd->add_flag("--follow", a->follow,
                "Keep following the log once caught up, until Ctrl-C or SIGTERM");
  cmd->add_flag("--rebuild", a->rebuild,
                "Fill new tables beside the live ones from the start of the log, then swap them "
                "in atomically (with --follow, go on following)");
  cmd->add_flag(
      "--progress", a->progress,
      "A progress bar on stderr even when it is not a terminal (where it is always shown); with "
      "--follow, a line a second with the events projected and the lag in events and "
      "seconds");
  cmd->footer(
      "Examples:\n"
      "  timetrail project postgresql://app@db/shop --data ./timetrail-data\n"
      "  timetrail project --config projections.json --data ./audit --follow --progress\n"
      "  timetrail project --config projections.json --server http://tt:7070 --token $T\n"
      "  timetrail project --config projections.json --data ./audit --rebuild --only orders\n"
      "Each batch's rows and the checkpoint are one target transaction: a restart resumes "
      "after the checkpoint.\nExit codes: 0 ok, 2 bad input or an event the mapping does not "
      "fit, 3 store not found, 5 unreachable.");
  SetAction(cmd, [a] { return RunProject(*a); });
}

}  // namespace timetrail::cli
