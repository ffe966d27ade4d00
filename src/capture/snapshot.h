// The initial snapshot (CaptureOptions::snapshot): the captured tables' rows as they were where
// a new replication slot starts, recorded before streaming begins so that the history of every
// row starts from its state then rather than from its first change.
#ifndef TIMETRAIL_CAPTURE_SNAPSHOT_H_
#define TIMETRAIL_CAPTURE_SNAPSHOT_H_

#include <functional>
#include <string>

#include <libpq-fe.h>

#include "capture/pgoutput.h"
#include "capture/row_mapping.h"
#include "timetrail/status.h"
#include "timetrail/store.h"

namespace timetrail::capture {

// Intentionally copyable.
struct SnapshotRequest {
  std::string publication;
  std::string prefix;           // put in front of every stream name
  std::string checkpoint_name;  // "capture/<slot>"
  // The snapshot CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT exported; the replication
  // connection that created the slot keeps it alive, so it must stay open until this returns.
  std::string snapshot_name;
  Lsn consistent_point = 0;  // where the slot starts
  // The rows' valid time: the source's clock read before the slot was created, so that it is
  // no later than the commit time of any change streamed after the snapshot.
  Timestamp valid_from;
};

// Reads every table of the publication inside the exported snapshot, through "sql", and
// stores one $put per row, in batches. Until the last batch is stored the checkpoint says the
// snapshot is incomplete, so a capture restarted after a crash refuses to stream on top of half
// a snapshot. "on_row" receives each row's stream and document; "log" a line per table.
Status SnapshotTables(PGconn* sql, EventStore* store, const SnapshotRequest& request,
                      const std::function<void(const std::string& stream, RowDocument row)>& on_row,
                      const std::function<void(const std::string&)>& log);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_SNAPSHOT_H_
