// The temporal layer's storage side: the records it keeps beside the log (state snapshots in
// kSnapshots; the actor, type, position and valid-time indexes in kIndex), the IndexHook that
// writes them in the same atomic batch as the events, and the reads that load a stream's state near
// a revision. The folding itself is in src/query (pure functions). Key layout: docs/temporal.md,
// "How queries are answered".
#ifndef TIMETRAIL_STORE_TEMPORAL_INDEX_H_
#define TIMETRAIL_STORE_TEMPORAL_INDEX_H_

#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/event_codec.h"
#include "query/document.h"
#include "storage/kv_engine.h"
#include "store/write_path.h"
#include "timetrail/event.h"

namespace timetrail::temporal {

// kSnapshots: stream, 0x00, big-endian revision -> the state after that revision.
std::string SnapshotKey(std::string_view stream, Revision r);

// kIndex, actor index: 'a', big-endian 32-bit length of the actor, the actor's bytes,
// big-endian position -> the event's log value (a covering index: an actor's events in a time
// window are adjacent keys, read with one seek instead of a random log read each). One key per
// event whose metadata.actor is a string. Releases before this one wrote an empty value: such
// an entry means "read the event from the log".
std::string ActorPrefix(std::string_view actor);
std::string ActorKey(std::string_view actor, Position p);

// kIndex, type index: 't', big-endian 32-bit length of the type, the type's bytes, big-endian
// position -> empty. One key per event, written since kTypesSince: a type's events in a window
// are adjacent keys, so activity by a rare type costs a seek and its answer instead of a scan of
// the window. Not covering (the actor index already doubles the bytes of most events): the
// reader takes the events from the log, one MultiGet per page.
std::string TypePrefix(std::string_view type);
std::string TypeKey(std::string_view type, Position p);

// kIndex, valid-time index: 'v', length, stream, ordered valid_from, big-endian position ->
// fixed64 revision, then the event's ChangeSignature. One key per document event: the stream's
// fold order in valid time.
std::string ValidPrefix(std::string_view stream);
std::string ValidKey(std::string_view stream, Timestamp valid_from, Position p);

// kIndex, corrections: 'c', length, stream, big-endian revision -> fixed64 ordered valid_from.
// One key per document event whose valid_from is earlier than that of an earlier document event
// of its stream: the events that insert themselves into the past of a valid-time snapshot.
std::string CorrectionPrefix(std::string_view stream);
std::string CorrectionKey(std::string_view stream, Revision r);

// kIndex, valid-time snapshots: 'w', length, stream, big-endian revision -> the fold of the
// document events of revisions 0..r in (valid_from, position) order, with its boundary (the
// largest (valid_from, position) folded in). And 'x', length, stream, ordered boundary
// valid_from, big-endian revision -> empty, to find the last snapshot whose boundary lies at or
// before a valid time with one seek (boundaries never decrease with the revision).
std::string ValidSnapshotKey(std::string_view stream, Revision r);
std::string ValidSnapshotByTimeKey(std::string_view stream, Timestamp boundary, Revision r);

// kIndex, position index: 'p', length, stream, big-endian position -> fixed64 revision, then the
// event's ChangeSignature (entries written before signatures existed end after the revision).
// One key per event (written since this index exists; older stores lack it for their earlier
// events, and RevisionAtPosition notices): the revision of a stream at a position in one seek.
std::string PositionPrefix(std::string_view stream);
std::string PositionKey(std::string_view stream, Position p);

// What an event may change in its stream's document, kept after the revision in the position
// and valid-time index entries, so that a property's history reads only the events that may
// have changed the property: the others are skipped on the index, without reading the log.
// Encoded as one byte (the kind), then for kPatch fixed64 "members". Intentionally copyable.
struct ChangeSignature {
  enum class Kind : std::uint8_t {
    kNone = 0,   // not a document event: changes nothing
    kReset = 1,  // $put or $delete: may change every member
    kPatch = 2,  // $patch: changes only the top-level members it names
  };
  Kind kind = Kind::kReset;
  // kPatch: the OR of MemberBit of each top-level member the patch names (all bits when its
  // names could not be read plainly, e.g. escaped ones).
  std::uint64_t members = 0;
};

// One of 64 bits, chosen by a hash of the member's name that never changes (it is stored).
std::uint64_t MemberBit(std::string_view name);
// The signature of an event of type "type" with data "data".
ChangeSignature SignatureOf(std::string_view type, std::string_view data);
void AppendSignature(const ChangeSignature& s, std::string* out);
// The signature after the fixed64 revision of an index value; nullopt when the entry has none
// (written before signatures existed) or it is damaged: then the event may change anything.
std::optional<ChangeSignature> DecodeSignature(std::string_view index_value);
// Whether an event with signature "s" may change the member with MemberBit "bit" (or, with
// bit 0, the whole document).
bool MayChange(const std::optional<ChangeSignature>& s, std::uint64_t bit);

// A stream's folded state after some revision. Intentionally copyable.
struct FoldedState {
  query::Document doc;
  std::optional<Revision> last_document_revision;  // the last $put/$patch/$delete folded in
  // That event's point, when the fold read it (not when it lies inside a snapshot); saves
  // reading it again to describe the state.
  std::optional<EventPoint> last_event;
};

// The answer of RevisionAtPosition. Intentionally copyable.
struct RevisionLookup {
  // False when the position index cannot answer (events written before it existed): the caller
  // must search the stream index instead.
  bool known = false;
  // When known: the last revision at or before the position, if any, provided that its own
  // position is at or before it too (which the caller checks, see RevisionAtPosition).
  std::optional<Revision> revision;
};

// The last revision of "stream" whose position is at or before "p" < the position of its last
// visible revision "last", from the position index: one forward seek to the first indexed
// event after "p", revision n; the answer is n - 1 once the caller has checked that revision
// n - 1 lies at or before "p" (it may not when the index misses older events, and then the
// caller searches the stream index). Forward seeks, because RocksDB's memtable finds a
// predecessor by searching again from the top.
Result<RevisionLookup> RevisionAtPosition(const KvEngine& engine, std::string_view stream,
                                          Revision last, Position p);

// An event of a stream found in the position index. Intentionally copyable.
struct IndexedEvent {
  Revision revision = 0;
  Position position = 0;
};

// The last event of "stream" at or before position "p", from the position index, where "last"
// is the stream's last visible revision and "p" is visible: one backward seek, and unless the
// entry found is "last", a step forward to prove that the next entry is the next revision. nullopt
// when the index cannot prove its answer: the stream has no event at or before "p", its events
// there predate the index, or the index misses an entry; RevisionAtPosition and the stream index
// answer then.
Result<std::optional<IndexedEvent>> LastIndexedAtOrBefore(const KvEngine& engine,
                                                          std::string_view stream, Revision last,
                                                          Position p);

// The state of "stream" at position "p" (as for LastIndexedAtOrBefore): a single read of the
// event found when that is a $put or $delete, else StateAtRevision's walk. nullopt when the
// position index cannot answer.
Result<std::optional<FoldedState>> StateAtIndexedPosition(const KvEngine& engine,
                                                          std::string_view stream, Revision last,
                                                          Position p);

// The state valid at "v" as known at position "known", found by walking the valid-time index
// back from "v" to the last $put or $delete (which replaces everything before it in the fold)
// and folding forward from there. Gives up (nullopt) after "max_steps" index entries without
// one; then ValidStateAt answers with its bounded cost.
Result<std::optional<FoldedState>> ValidStateFromLastReset(const KvEngine& engine,
                                                           std::string_view stream, Position known,
                                                           Timestamp v, std::size_t max_steps);

// The event stored at position "p" (no visibility check: callers bound positions themselves).
Result<RecordedEvent> ReadEvent(const KvEngine& engine, Position p);

// Calls "visit" with each event stored at "positions", in that order (no visibility check),
// decoded in place: the view is valid only during the call. Stops early when "visit" returns
// false. Ascending or descending positions that lie close together are read with one iterator
// stepping forward or back; others with MultiGet. Either way each table block is read once for
// all the events in it.
Status VisitEvents(const KvEngine& engine, std::span<const Position> positions,
                   const std::function<Result<bool>(const StoredEventView&)>& visit);

// The events stored at "positions", in that order, as VisitEvents reads them.
Result<std::vector<RecordedEvent>> ReadEvents(const KvEngine& engine,
                                              std::span<const Position> positions);

// The state of "stream" after revision "r": walks the stream back from "r" to the last $put or
// $delete (which replaces the whole document), or to the nearest snapshot when there is none
// before it, and folds the events after that. Reads at most Options::snapshot_interval events;
// usually one when the stream is written with $put. REQUIRES: revision "r" is stored.
Result<FoldedState> StateAtRevision(const KvEngine& engine, std::string_view stream, Revision r);

// StateAtRevision, or nullopt if revision "r" has a position after "at_or_before" (checked on
// the way, so that RevisionAtPosition's answer costs no extra read).
Result<std::optional<FoldedState>> StateAtRevisionAtOrBefore(const KvEngine& engine,
                                                             std::string_view stream, Revision r,
                                                             Position at_or_before);

// The state valid at "v" as known at position "known" (events with position <= known and
// valid_from <= v, in (valid_from, position) order), where "last" is the stream's last revision
// at or before "known". Starts from the latest valid-time snapshot at or before "last" whose
// boundary is at or before "v" and that no later correction (at or before "last") precedes, then
// reads the valid-time index from its boundary up to "v".
Result<FoldedState> ValidStateAt(const KvEngine& engine, std::string_view stream, Revision last,
                                 Position known, Timestamp v);

// Writes snapshots every "interval" events of a stream (and sooner once the document events since
// the last one hold "snapshot_bytes" of data) and the kIndex entries (actor, type, position,
// valid-time). Runs on the writer
// thread only. Keeps the folded state of recently written streams so that a snapshot costs one
// merge per event rather than a read; entries not yet durable are never evicted, because the
// engine cannot give them back.
class TemporalIndexHook final : public IndexHook {
 public:
  // "durable_position" returns the last position the engine holds.
  // "snapshot_bytes" 0: snapshots by count only.
  TemporalIndexHook(const KvEngine* engine, std::uint32_t interval, std::size_t snapshot_bytes,
                    std::function<Position()> durable_position);
  TemporalIndexHook(const TemporalIndexHook&) = delete;
  TemporalIndexHook& operator=(const TemporalIndexHook&) = delete;

  // The parts of the event's index entries that follow from the event alone: its
  // ChangeSignature (encoded), its type index key's prefix, and its actor index key's prefix
  // when its metadata names an actor. Built on the appending thread (JSON scanning, key
  // building), so that the ordered stage only appends positions.
  std::string PrepareEvent(const RecordedEvent& event) const override;
  Status OnTransaction(std::span<const RecordedEvent> events, std::span<const std::string> stored,
                       std::span<const std::string> prepared, std::span<const StreamBefore> before,
                       KvWriteBatch& batch) override;
  void OnBatchAborted() override;
  void OnOtherWriters() override;

 private:
  // What the hook knows of a stream it wrote recently. Nothing is folded while events arrive:
  // the document events since the last snapshot wait in "tail", and are folded (from the last
  // $put or $delete among them, when there is one) only when the next snapshot is due, so that
  // most events cost the ordered stage no JSON work at all.
  struct Entry {
    Revision revision = 0;  // the last revision seen
    Position position = 0;  // its position
    // The state after base_revision (nullopt: before revision 0), once loaded: a stream first
    // seen at a later revision is loaded from the engine only if a snapshot needs it.
    std::optional<Revision> base_revision;
    std::optional<FoldedState> base;
    std::vector<RecordedEvent> tail;  // document events after base_revision, in order
    // Data bytes of the document events since the last snapshot this hook wrote (or since the
    // entry was made: after an eviction or a restart the count starts over, so a byte-triggered
    // snapshot may come later; the count cadence holds regardless).
    std::size_t bytes_since_snapshot = 0;
    std::optional<Timestamp> max_valid_from;  // over the stream's document events
    // The valid-time fold of revisions 0..base_revision and its boundary (the last valid_from and
    // position folded in), kept while events arrive in valid-time order: then the tail simply
    // comes last in the valid-time fold too. A correction clears valid_current, and the next
    // valid-time snapshot refolds; a $put or $delete that comes last in valid-time order sets it
    // again (the fold starts over at it).
    bool valid_current = false;
    FoldedState valid_base;
    Timestamp valid_boundary = kMinTimestamp;
    Position valid_boundary_position = 0;
  };
  // Folds the entry's tail into its base (loading the base if the tail needs it), and into its
  // valid-time base while that is current; empties the tail. For a snapshot at entry.revision.
  Status FoldTail(const std::string& stream, Entry& entry);
  void EvictDurable();
  // Sets entry's valid-time fold to that of revisions 0..r of "stream", from the engine and the
  // not yet durable events in pending_.
  Status RefoldValid(const std::string& stream, Revision r, Entry& entry);
  Result<std::optional<Timestamp>> LoadMaxValidFrom(const std::string& stream, Revision r);
  // Whether a snapshot is due after event "e", the entry's latest; counts e's bytes.
  bool SnapshotDue(const RecordedEvent& e, Entry& entry) const;

  const KvEngine* engine_;
  const std::uint32_t interval_;
  const std::size_t snapshot_bytes_;
  std::function<Position()> durable_position_;
  std::unordered_map<std::string, Entry> cache_;
  // Document events of groups not yet durable (the engine may not return them yet).
  std::deque<RecordedEvent> pending_;   // in position order
  std::size_t next_eviction_size_ = 0;  // cache size at which EvictDurable runs next
};

}  // namespace timetrail::temporal

#endif  // TIMETRAIL_STORE_TEMPORAL_INDEX_H_
