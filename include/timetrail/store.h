// EventStore: the embedded timetrail store.
//
//   auto store = timetrail::EventStore::Open(timetrail::Options{}, "./timetrail-data");
//   if (!store.ok()) { /* store.status().ToString() says why */ }
//   timetrail::ProposedEvent e;
//   e.type = "$put";
//   e.data = R"({"name": "Rachel", "location": "New York"})";
//   e.metadata = R"({"actor": "joey", "reason": "we met"})";
//   auto committed = (*store)->Append("friend-1", timetrail::ExpectedRevision::NoStream(), {e});
//   // committed->last_position is durable: it survives a crash from here on.
//
// Thread safety: an EventStore is safe for concurrent use from many threads without external
// synchronization. Concurrent appends share fsyncs (group commit).
#ifndef TIMETRAIL_STORE_H_
#define TIMETRAIL_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/event.h"
#include "timetrail/options.h"
#include "timetrail/status.h"
#include "timetrail/temporal.h"
#include "timetrail/time.h"

namespace timetrail {

enum class Direction : std::uint8_t { kForward, kBackward };

// Intentionally copyable.
struct ReadStreamOptions {
  // First revision to return. Forwards the default is 0; backwards the default is the last one.
  std::optional<Revision> from_revision;
  Direction direction = Direction::kForward;
  std::size_t max_count = 1000;
};

// Which events of the global log to return. An empty field matches everything.
// Intentionally copyable.
struct LogFilter {
  std::string stream_prefix;             // stream names starting with this
  std::vector<std::string> event_types;  // any of these types
  // Leave out system streams, whose names begin with '$' (such as the server's "$audit"):
  // readers without the admin scope never see them.
  bool skip_system_streams = false;
  bool Matches(std::string_view stream, std::string_view type) const;
  bool empty() const {
    return stream_prefix.empty() && event_types.empty() && !skip_system_streams;
  }
};

// Intentionally copyable.
struct ReadLogOptions {
  Position from_position = 1;  // inclusive
  std::size_t max_count = 1000;
  LogFilter filter;
  // With a filter, stop after examining this many events even if fewer than max_count matched,
  // so one call stays bounded; continue from LogPage::next_position. 0 means no bound.
  std::size_t max_scan = 0;
};

// Intentionally copyable.
struct LogPage {
  std::vector<RecordedEvent> events;
  // Where to continue reading: one past the last event examined.
  Position next_position = 1;
  // The last position visible when the page was read (the store's head).
  Position head_position = 0;
};

// Intentionally copyable.
struct IntegrityHead {
  Position position = 0;  // 0: the store is empty
  std::string hash_hex;   // 64 hex digits; all zeros for an empty store
};

// Intentionally copyable.
struct VerifyOptions {
  Position from_position = 1;  // verification starts at the chain link before this position
  Position to_position = 0;    // 0: up to the head
  // Called every few thousand events with (checked so far, last position to check).
  std::function<void(std::uint64_t, Position)> progress;
};

// Intentionally copyable.
struct VerifyReport {
  bool ok = true;
  std::uint64_t events_checked = 0;
  Position last_checked = 0;
  // When !ok: the first position whose stored event or hash does not match the chain.
  std::optional<Position> first_bad_position;
  std::string message;  // what did not match
  IntegrityHead head;   // the head as recomputed
};

// Counters since Open, for monitoring. Intentionally copyable.
struct StoreStats {
  std::uint64_t transactions_committed = 0;
  std::uint64_t events_committed = 0;
  std::uint64_t idempotent_replays = 0;
  std::uint64_t conflicts = 0;                    // kWrongExpectedRevision answers
  std::uint64_t rejected = 0;                     // invalid, too large, duplicate
  std::uint64_t group_commits = 0;                // durable writes (each one fsync)
  std::uint64_t commit_latency_micros_total = 0;  // queue + write, summed over transactions
  // CPU time the ordered stage of the write path (one thread, in commit order) spent on its
  // groups, summed: checking expectations, assigning and encoding, writing to the engine.
  // Divided by events_committed, the part of an event's cost that no second core can share.
  std::uint64_t ordered_stage_micros = 0;
  std::uint64_t disk_bytes = 0;  // live data files, approximate
  // With a read replica (Options::postgres_read_replica): positions known committed on the
  // primary that reads do not see yet, because the replica has not replayed them. Nullopt
  // without a replica.
  std::optional<std::uint64_t> read_replica_lag_positions;
};

class EventStore {
 public:
  // Opens (and with options.create_if_missing, creates) the store in directory "path". Fails
  // with kUnavailable if another process holds the directory, kCorruption if it does not hold a
  // readable timetrail store. With options.read_only the directory is not held: the store reads
  // beside the process that holds it and refuses every write (Options::read_only).
  static Result<std::unique_ptr<EventStore>> Open(const Options& options, std::string_view path);

  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  // Finishes queued appends and closes the store.
  virtual ~EventStore() = default;

  // --- Writing -------------------------------------------------------------------------------

  // Appends all of "tx" atomically, or nothing. Durable on return.
  // Errors (none of them change anything):
  //   kInvalidArgument / kTooLarge   the request breaks a rule or limit; the message names the
  //                                  field ("appends[0].events[2].type"), the rule and the limit.
  //   kWrongExpectedRevision         a stream's expectation does not hold; conflict() names the
  //                                  stream and its actual revision.
  //   kDuplicateEvent                event ids partly overlap events already written.
  //   kIOError / kUnavailable        the write could not be made durable, or the store closed.
  // If every event id was already written by the same request, returns the original result with
  // idempotent_replay set.
  virtual Result<Committed> Transact(const Transaction& tx) = 0;

  // Like Transact, but returns at once: "done" receives the result once the transaction is
  // durable or rejected. It runs on a store thread (or on the calling thread when the
  // transaction is rejected before it is queued), so it must be quick and must not wait on the
  // store. Transactions queued from one thread are committed in that order, many to one fsync:
  // a server answers appends this way without a thread waiting for the disk.
  virtual void TransactAsync(Transaction tx, std::function<void(Result<Committed>)> done) = 0;

  // Commits "txs" in order, pipelined: consecutive transactions share durable writes (one fsync
  // for many), and each keeps its own semantics (its expected revisions, idempotency by id).
  // Returns one result per transaction, once every one is durable or rejected. With
  // "stop_at_first_failure", no transaction after one that fails is stored (each says so with
  // kUnavailable), so what was stored is a prefix of "txs", also after a crash: this is how an
  // import loads a file many times faster than one durable transaction per line.
  virtual std::vector<Result<Committed>> TransactMany(std::vector<Transaction> txs,
                                                      bool stop_at_first_failure) = 0;

  // Transact with one stream.
  Result<Committed> Append(std::string_view stream, ExpectedRevision expected,
                           std::vector<ProposedEvent> events);

  // --- Reading -------------------------------------------------------------------------------
  // Reads see only committed, durable events, and never position p+1 without position p.

  // Events of one stream, from options.from_revision on, in the given direction, at most
  // options.max_count. kNotFound if the stream has no events.
  virtual Result<std::vector<RecordedEvent>> ReadStream(std::string_view stream,
                                                        const ReadStreamOptions& options) const = 0;

  // The global log in position order from options.from_position.
  virtual Result<LogPage> ReadLog(const ReadLogOptions& options) const = 0;

  // The event with this id, or kNotFound.
  virtual Result<RecordedEvent> GetEvent(const Uuid& id) const = 0;

  // The event at a global position, or kNotFound.
  virtual Result<RecordedEvent> GetEventAt(Position position) const = 0;

  // The last position whose recorded_at is at or before "t"; 0 if there is none.
  virtual Result<Position> PositionAt(Timestamp t) const = 0;

  virtual Result<StreamInfo> GetStreamInfo(std::string_view stream) const = 0;

  // The last committed position (0 for an empty store).
  virtual Position LastPosition() const = 0;

  // Waits until LastPosition() >= position. kTimeout if the timeout passes first;
  // kUnavailable if the store is closing.
  virtual Status WaitForPosition(Position position, std::chrono::milliseconds timeout) const = 0;

  // Calls "listener" with the new last position after every durable commit, on the store thread
  // that published it (or on the appending thread, when an append committed alone): it must be
  // quick and must not call into the store's write path. Returns an id for
  // RemoveCommitListener.
  virtual std::uint64_t AddCommitListener(std::function<void(Position)> listener) = 0;
  virtual void RemoveCommitListener(std::uint64_t id) = 0;

  // True when the store was opened with Options::read_only: every write fails.
  virtual bool IsReadOnly() const = 0;
  // For a read-only store: makes visible what the process writing the directory has written
  // since the store opened (or was last refreshed); LastPosition() moves on, and waiters and
  // commit listeners are told as after a commit. For a store opened for writing that other
  // processes write too (several nodes on a store kept in PostgreSQL): the same for their
  // commits, which the store otherwise learns of within a second. Does nothing for a store
  // opened for writing by its only writer (its reads always see every commit).
  virtual Status Refresh() = 0;

  // --- Integrity -----------------------------------------------------------------------------

  virtual IntegrityHead GetIntegrityHead() const = 0;

  // Recomputes the integrity chain. report.ok is false, with first_bad_position, when a stored
  // event was changed, lost or cannot be decoded. The Status is an error only when the store
  // could not be read at all.
  virtual Result<VerifyReport> Verify(const VerifyOptions& options) const = 0;

  // --- Online backup -------------------------------------------------------------------------

  // Writes a consistent copy of the store, as of one moment, into the new directory "dir"
  // while appends go on, then opens the copy and verifies its integrity chain; returns that
  // verification (report.head is where the copy ends: every event acknowledged before the call
  // is in it). On the same file system the copy's files are hard links, so it takes little
  // time and space until the store compacts. kInvalidArgument if "dir" exists or is relative;
  // the copy is removed again if it does not verify.
  virtual Result<VerifyReport> Backup(std::string_view dir) = 0;

  // --- Checkpoints ---------------------------------------------------------------------------
  // Small named values kept durably beside the log, e.g. a named consumer's acknowledged
  // position or a capture's source position.

  // nullopt if never set.
  virtual Result<std::optional<std::string>> GetCheckpoint(std::string_view name) const = 0;
  // Durable on return.
  virtual Status SetCheckpoint(std::string_view name, std::string_view value) = 0;
  // Like Transact, and also sets checkpoint "name" to "value" in the same atomic write: either
  // both the events and the checkpoint are stored, or neither.
  virtual Result<Committed> TransactWithCheckpoint(const Transaction& tx, std::string_view name,
                                                   std::string_view value) = 0;
  // Like TransactWithCheckpoint, but returns at once: "done" receives the result once the
  // transaction is durable or rejected. It runs on a store thread (or on the calling thread when
  // the transaction is rejected before it is queued), so it must be quick and must not wait on
  // the store. Transactions queued from one thread are committed in the order they were
  // queued, and many queued together share one fsync. With "expected_previous", the
  // transaction is rejected (kWrongExpectedRevision) unless checkpoint "name" holds exactly
  // that value when its turn comes, after every transaction queued before it: a chain in which
  // each transaction names the value its predecessor writes stops at the first that fails, so
  // none after it is stored. (This is how a capture keeps several source transactions in
  // flight without ever storing one past a gap.)
  virtual void TransactWithCheckpointAsync(Transaction tx, std::string name, std::string value,
                                           std::optional<std::string> expected_previous,
                                           std::function<void(Result<Committed>)> done) = 0;

  virtual StoreStats GetStats() const = 0;

  // Waits until the storage engine has finished the flushes and compactions that the writes so
  // far started (RocksDB reorganizes its files in the background after a large load). Only for
  // measurements, so that queries do not compete with that work; answers are the same either way.
  virtual Status WaitForBackgroundWork() const = 0;

  // --- Temporal queries (docs/temporal.md) -----------------------------------------------------
  // An entity's document state at a point. kNotFound if the stream has no events (at all, or
  // for kRevision, no event at that revision); kInvalidArgument for a malformed query. Cost:
  // a seek to the nearest state snapshot plus at most Options::snapshot_interval events (fewer
  // when they are big: Options::snapshot_bytes); for valid-time points also the corrections
  // recorded since that snapshot (docs/temporal.md).
  virtual Result<EntityState> GetEntity(std::string_view stream,
                                        const EntityQuery& query) const = 0;

  // The intervals during which the value at JSON pointer "path" (RFC 6901, "" is the whole
  // document) stayed the same. kInvalidArgument for a malformed pointer; kNotFound if the
  // stream has no events.
  virtual Result<PropertyHistory> GetPropertyHistory(std::string_view stream, std::string_view path,
                                                     const HistoryQuery& query) const = 0;

  // The states at query.from and query.to and the JSON Patch between them; with
  // query.include_events also one page of the events between. kNotFound as GetEntity;
  // kInvalidArgument for a bad cursor or limit, or a valid-time point paired with another kind.
  // Cost: two GetEntity folds, whatever the distance between the points; each page of events
  // adds a seek and a read per event of the page (for valid-time points, per event examined).
  virtual Result<DiffResult> Diff(std::string_view stream, const DiffQuery& query) const = 0;

  // Events across streams, newest first, filtered and paged. kInvalidArgument for a bad cursor
  // or limit. With an actor, the cost is proportional to that actor's events in range.
  virtual Result<ActivityPage> QueryActivity(const ActivityQuery& query) const = 0;

  // Appends a $put restoring the state at request.target (or a $delete when the entity did not
  // exist there), with metadata {"actor", "reason", "revert": {...}} saying what was restored
  // from where. Errors as Transact (kWrongExpectedRevision when request.expected does not hold,
  // and then nothing is appended), and kNotFound when the stream or target does not exist.
  virtual Result<RevertResult> Revert(const RevertRequest& request) = 0;

 protected:
  EventStore() = default;
};

}  // namespace timetrail

#endif  // TIMETRAIL_STORE_H_
