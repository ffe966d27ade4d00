// The "changes" projection: one row per event of the log in a table of a PostgreSQL database
// that applications query with SQL ("who changed order 42", "everything alice changed last
// week"), kept in step with the log exactly once (docs/projections.md).
//
// Each batch of events is one target transaction: its rows (COPY) and the projection's
// checkpoint in timetrail.projection_checkpoints. A restart resumes after the checkpoint, so
// no event is written twice or skipped, whatever moment the projector was stopped or killed.
#ifndef TIMETRAIL_PROJECT_CHANGES_PROJECTOR_H_
#define TIMETRAIL_PROJECT_CHANGES_PROJECTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "timetrail/store.h"

namespace timetrail::project {

// Intentionally copyable.
struct ProjectorOptions {
  // libpq URL of the target database.
  std::string target_url;
  // The projection's name: its checkpoint's key, and its table's name unless "table" is set.
  std::string name = "changes";
  // The schema of the projection's table (created if missing).
  std::string schema = "timetrail";
  std::string table;  // empty: "name"
  // Events per target transaction.
  std::size_t batch_events = 5000;
  // Keep following the log once caught up, until "stop"; otherwise return when caught up.
  bool follow = false;
  // Receives progress lines (events projected, position, events behind). May be empty.
  std::function<void(const std::string&)> log;
};

struct ProjectorStats {
  std::uint64_t events = 0;    // projected by this run
  std::uint64_t position = 0;  // the checkpoint: every event up to it is in the table
};

// Projects "store"'s log into the target until caught up (or, with follow, until "stop").
// kInvalidArgument for a target that refuses the schema or a name that is not an identifier;
// kUnavailable when the target cannot be reached.
Result<ProjectorStats> RunChangesProjection(EventStore& store, const ProjectorOptions& options,
                                            const std::atomic<bool>& stop);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_CHANGES_PROJECTOR_H_
