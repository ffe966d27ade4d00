// The temporal layer's storage side: the records it keeps beside the log (state snapshots in
// kSnapshots, the actor index in kIndex), the IndexHook that writes them in the same atomic batch
// as the events, and the reads that load a stream's state near a revision. The folding itself is
// in src/query (pure functions). Key layout: docs/temporal.md, "How queries are answered".
#ifndef TIMETRAIL_STORE_TEMPORAL_INDEX_H_
#define TIMETRAIL_STORE_TEMPORAL_INDEX_H_

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "query/document.h"
#include "storage/kv_engine.h"
#include "store/write_path.h"
#include "timetrail/event.h"

namespace timetrail::temporal {

// kSnapshots: stream, 0x00, big-endian revision -> the state after that revision.
std::string SnapshotKey(std::string_view stream, Revision r);

// kIndex, actor index: 'a', big-endian 32-bit length of the actor, the actor's bytes,
// big-endian position -> empty. One key per event whose metadata.actor is a string.
std::string ActorPrefix(std::string_view actor);
std::string ActorKey(std::string_view actor, Position p);

// A stream's folded state after some revision. Intentionally copyable.
struct FoldedState {
  query::Document doc;
  std::optional<Revision> last_document_revision;  // the last $put/$patch/$delete folded in
};

// The event stored at position "p" (no visibility check: callers bound positions themselves).
Result<RecordedEvent> ReadEvent(const KvEngine& engine, Position p);

// The state of "stream" after revision "r": the nearest snapshot at or before "r" plus the
// events after it. REQUIRES: revision "r" is stored.
Result<FoldedState> StateAtRevision(const KvEngine& engine, std::string_view stream, Revision r);

// Writes snapshots every "interval" events of a stream and the actor index. Runs on the writer
// thread only. Keeps the folded state of recently written streams so that a snapshot costs one
// merge per event rather than a read; entries not yet durable are never evicted, because the
// engine cannot give them back.
class TemporalIndexHook final : public IndexHook {
 public:
  // "durable_position" returns the last position the engine holds.
  TemporalIndexHook(const KvEngine* engine, std::uint32_t interval,
                    std::function<Position()> durable_position);
  TemporalIndexHook(const TemporalIndexHook&) = delete;
  TemporalIndexHook& operator=(const TemporalIndexHook&) = delete;

  Status OnTransaction(std::span<const RecordedEvent> events, KvWriteBatch& batch) override;
  void OnBatchAborted() override;

 private:
  struct Entry {
    Revision revision = 0;  // the last revision folded in
    Position position = 0;  // its position
    FoldedState state;
  };
  void EvictDurable();

  const KvEngine* engine_;
  const std::uint32_t interval_;
  std::function<Position()> durable_position_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace timetrail::temporal

#endif  // TIMETRAIL_STORE_TEMPORAL_INDEX_H_
