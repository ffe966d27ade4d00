// The capture's checkpoint: where in the source's write-ahead log the store's copy ends. It is
// written in the same atomic write as the events it covers, under "capture/<slot>", so a
// restart resumes exactly after the last stored source transaction.
#ifndef TIMETRAIL_CAPTURE_CHECKPOINT_H_
#define TIMETRAIL_CAPTURE_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "capture/pgoutput.h"
#include "timetrail/status.h"

namespace timetrail::capture {

// The end of the last whole source transaction stored, and, while a large transaction is being
// stored in parts, which one and how many parts. Intentionally copyable.
struct Checkpoint {
  Lsn lsn = 0;
  Lsn part_commit_lsn = 0;
  std::uint64_t parts = 0;
  // Set while the initial snapshot is being stored, cleared by its last batch.
  bool snapshot_incomplete = false;

  // JSON text: {"lsn":"0/16B3748","part":{"commit_lsn":...,"parts":2}}.
  std::string Encode() const;
  // kCorruption when "text" is not a checkpoint Encode wrote.
  static Result<Checkpoint> Decode(const std::string& text);
};

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_CHECKPOINT_H_
