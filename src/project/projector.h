// Runs projections: reads the log from a projection's checkpoint, folds each batch of events
// into its tables, and writes the batch and the checkpoint in one target transaction, so that
// every event is projected exactly once whatever moment the projector stops or is killed
// (docs/projections.md).
//
//   auto source = project::StoreLogSource(*store, "data directory ./data");
//   project::RunOptions o;
//   o.target_url = "postgresql://app@db/shop";
//   auto stats = project::RunProjection(*source, spec, o, stop);
#ifndef TIMETRAIL_PROJECT_PROJECTOR_H_
#define TIMETRAIL_PROJECT_PROJECTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "project/config.h"
#include "project/log_source.h"

namespace timetrail::project {

// What a running projection has done, for GET /v1/projections and /metrics. Thread-safe.
struct ProgressSnapshot {
  Position position = 0;       // the checkpoint: every event up to it is in the tables
  Position head = 0;           // the log's head when the last batch was read
  double lag_seconds = 0;      // age of the newest projected event while behind; 0 caught up
  std::uint64_t events = 0;    // events projected since start
  std::uint64_t failures = 0;  // batches that failed since start
  std::string error;           // why the last attempt failed; empty while it works
  bool running = false;
};

class ProjectionProgress {
 public:
  void Update(Position position, Position head, double lag_seconds, std::uint64_t events);
  void SetRunning(bool running);
  void Fail(const std::string& error);
  ProgressSnapshot Get() const;
  // Waits until the checkpoint reaches "position" or "timeout" passes; the position reached.
  Position WaitFor(Position position, std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable moved_;
  ProgressSnapshot s_;
};

// Intentionally copyable.
struct RunOptions {
  std::string target_url;           // libpq URL of the target database
  std::size_t batch_events = 5000;  // events per target transaction
  // Keep following the log once caught up, until "stop"; otherwise return when caught up.
  bool follow = false;
  // Receives what happens to the projection (a rebuild's swap, a checkpoint moved elsewhere)
  // and, with log_progress, a line about once a second with the lag. May be empty.
  std::function<void(const std::string&)> log;
  bool log_progress = true;
  ProjectionProgress* progress = nullptr;  // may be null
};

struct ProjectorStats {
  std::uint64_t events = 0;    // examined by this run (projected or not taken by the filter)
  std::uint64_t position = 0;  // the checkpoint
};

// Projects "source"'s log into the target until caught up (or, with follow, until "stop").
// kInvalidArgument for a target that refuses the tables, a checkpoint past the end of the log
// (the target was projected from another store), or an event the mapping does not fit (naming
// the event and the column; that batch is not written); kUnavailable / kIOError when the
// target cannot be reached or fails.
Result<ProjectorStats> RunProjection(LogSource& source, const ProjectionSpec& spec,
                                     const RunOptions& options, const std::atomic<bool>& stop);

// Fills new tables beside the projection's tables from the start of the log, catches up, and
// swaps them in one target transaction with the checkpoint: readers see the old tables or the
// new ones, never a mix, and a projector following the old tables goes on with the new ones.
// The new tables are built in schema "tt_rebuild_<name>", dropped after the swap.
Result<ProjectorStats> RebuildProjection(LogSource& source, const ProjectionSpec& spec,
                                         const RunOptions& options, const std::atomic<bool>& stop);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_PROJECTOR_H_
