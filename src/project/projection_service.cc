#include "project/projection_service.h"

#include <chrono>

namespace timetrail::project {

Result<std::unique_ptr<ProjectionService>> ProjectionService::Start(
    EventStore& store, ProjectorConfig config, std::function<void(const std::string&)> log) {
  if (config.target.empty()) {
    return Status::InvalidArgument(
        "the projection configuration needs \"target\": the database to project into");
  }
  std::unique_ptr<ProjectionService> service(
      new ProjectionService(store, std::move(config), std::move(log)));
  for (const ProjectionSpec& spec : service->config_.projections) {
    auto r = std::make_unique<Running>();
    r->spec = spec;
    service->running_.push_back(std::move(r));
  }
  for (auto& r : service->running_) {
    service->threads_.emplace_back([s = service.get(), p = r.get()] { s->Follow(*p); });
  }
  return service;
}

ProjectionService::ProjectionService(EventStore& store, ProjectorConfig config,
                                     std::function<void(const std::string&)> log)
    : store_(store),
      config_(std::move(config)),
      log_(std::move(log)),
      source_(StoreLogSource(store, "this server's store")) {}

ProjectionService::~ProjectionService() { Stop(); }

void ProjectionService::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
  }
  stopping_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

const ProjectionService::Running* ProjectionService::Find(std::string_view name) const {
  for (const auto& r : running_) {
    if (r->spec.name == name) return r.get();
  }
  return nullptr;
}

void ProjectionService::Follow(Running& r) {
  RunOptions o;
  o.target_url = config_.target;
  o.batch_events = config_.batch_events;
  o.follow = true;
  o.progress = &r.progress;
  auto pause = std::chrono::seconds(1);
  while (!stop_.load()) {
    r.progress.SetRunning(true);
    Result<ProjectorStats> stats = RunProjection(*source_, r.spec, o, stop_);
    r.progress.SetRunning(false);
    if (stats.ok()) {
      pause = std::chrono::seconds(1);
      continue;  // stopped, or the loop ended: the while condition decides
    }
    const std::string error = stats.status().ToString();
    r.progress.Fail(error);
    if (log_) {
      log_("projection '" + r.spec.name + "': " + error + "; trying again in " +
           std::to_string(pause.count()) + " s");
    }
    std::unique_lock lock(mu_);
    stopping_.wait_for(lock, pause, [this] { return stop_.load(); });
    pause = std::min(pause * 2, std::chrono::seconds(30));
  }
}

}  // namespace timetrail::project
