// Projections running beside the server (`timetrail serve --project CONFIG`): one thread per
// projection follows the store's log into the target database, and starts again after a
// failure (an unreachable target, an event the mapping does not fit) with a growing pause, so
// the server keeps serving while the target is down. Their progress is what
// GET /v1/projections and /metrics report (projections_api.h).
#ifndef TIMETRAIL_PROJECT_PROJECTION_SERVICE_H_
#define TIMETRAIL_PROJECT_PROJECTION_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "project/config.h"
#include "project/log_source.h"
#include "project/projector.h"

namespace timetrail::project {

class ProjectionService {
 public:
  struct Running {
    ProjectionSpec spec;
    ProjectionProgress progress;
  };

  // Starts every projection of "config" on "store" (which must outlive the service).
  // kInvalidArgument when the configuration names no target.
  static Result<std::unique_ptr<ProjectionService>> Start(
      EventStore& store, ProjectorConfig config, std::function<void(const std::string&)> log);
  ~ProjectionService();
  ProjectionService(const ProjectionService&) = delete;
  ProjectionService& operator=(const ProjectionService&) = delete;

  // Stops every projection after its current batch and waits for them.
  void Stop();

  const std::vector<std::unique_ptr<Running>>& projections() const { return running_; }
  const Running* Find(std::string_view name) const;
  const EventStore& store() const { return store_; }

 private:
  ProjectionService(EventStore& store, ProjectorConfig config,
                    std::function<void(const std::string&)> log);
  void Follow(Running& r);

  EventStore& store_;
  ProjectorConfig config_;
  std::function<void(const std::string&)> log_;
  std::unique_ptr<LogSource> source_;
  std::vector<std::unique_ptr<Running>> running_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable stopping_;
};

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_PROJECTION_SERVICE_H_
