// Revert captured rows in the source database: compute a row's state at an earlier time from
// its captured history and apply it to PostgreSQL (UPDATE, INSERT or DELETE) in one transaction
// that carries a context message saying it is a revert. The capture then records the revert
// like any other change; history is never rewritten.
//
//   SourceRevertOptions o;
//   o.source_url = "postgresql://app@db/shop";
//   o.to = *ParseTimestamp("2026-11-22T13:00:00Z");
//   auto r = RevertInSource(*store, {"public.orders/42"}, o);   // r->statements: the SQL run
#ifndef TIMETRAIL_CAPTURE_SOURCE_REVERT_H_
#define TIMETRAIL_CAPTURE_SOURCE_REVERT_H_

#include <optional>
#include <string>
#include <vector>

#include "timetrail/status.h"
#include "timetrail/store.h"
#include "timetrail/time.h"

namespace timetrail::capture {

// Intentionally copyable.
struct SourceRevertOptions {
  std::string source_url;
  std::string prefix;  // the capture's --prefix
  // Each row goes back to its state at this source time (the rows' valid time is the source
  // commit time). Ignored for rows chosen by RowFilter, which go back to their state just
  // before their first matching change.
  Timestamp to;
  // Print, do not run.
  bool dry_run = false;
  // Put into the revert's context message (and so into the captured events' metadata).
  std::string actor;
  std::string reason;
};

// Intentionally copyable.
struct SourceRevertResult {
  std::vector<std::string> statements;  // the SQL, in order, BEGIN..COMMIT included
  std::size_t rows_changed = 0;         // rows whose source state differed from the target
};

// Reverts the rows named by "streams" ("<prefix><schema>.<table>/<key>").
// Errors: kInvalidArgument for a name that is not a captured row's stream or a table the source
// no longer has; kNotFound for a stream with no events; kUnavailable when the source cannot be
// reached. On any error nothing in the source is changed.
Result<SourceRevertResult> RevertInSource(const EventStore& store,
                                          const std::vector<std::string>& streams,
                                          const SourceRevertOptions& options);

// Chooses captured changes: of one table, within a source time range, by an actor, from one
// source transaction. Unset fields match everything. Intentionally copyable.
struct RowFilter {
  std::string table;                 // "schema.table" (required)
  std::optional<Timestamp> from;     // source commit time >= from
  std::optional<Timestamp> until;    // source commit time < until
  std::optional<std::string> actor;  // metadata "actor"
  std::optional<std::uint64_t> xid;  // metadata source.xid
};

// Selective point-in-time recovery: every row of the table with a matching change goes back to
// its state just before its first matching change.
Result<SourceRevertResult> RevertFilteredInSource(const EventStore& store, const RowFilter& filter,
                                                  const SourceRevertOptions& options);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_SOURCE_REVERT_H_
