// The write path: validates transactions, checks expected revisions and idempotency, assigns
// positions, times and hashes, and commits many concurrent transactions with one durable write
// (group commit).
//
// Three stages, so that the disk and the CPU work at the same time:
//  1. The calling thread validates its transaction and encodes everything that does not depend
//     on the order of commits (ids, stream, type, data, metadata) before it queues.
//  2. The writer thread takes a group of queued transactions, checks them against the state so
//     far (including groups written but not yet durable), assigns positions, revisions, times
//     and the hash chain, and writes the group to the engine without waiting for the disk.
//  3. The sync thread fsyncs (KvEngine::SyncWal) everything written so far, and only then
//     publishes the new head and answers the group's callers, in group order. While it waits
//     for the disk, the writer builds and writes the next group (one group ahead at most, so
//     that appends arriving meanwhile gather into one group instead of many small writes).
// So nothing is acknowledged, and no reader or listener sees a position (the store caps reads at
// the published head), before a sync that covers it has completed.
#ifndef TIMETRAIL_STORE_WRITE_PATH_H_
#define TIMETRAIL_STORE_WRITE_PATH_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/kv_engine.h"
#include "store/keys.h"
#include "timetrail/event.h"
#include "timetrail/options.h"
#include "timetrail/store.h"

namespace timetrail {

// What the write path knew of an event's stream just before the event's transaction, for index
// hooks: what they would otherwise read from the engine. Intentionally copyable.
struct StreamBefore {
  bool max_valid_from_known = true;         // false for streams last written by layout 1
  std::optional<Timestamp> max_valid_from;  // the largest valid_from of its document events
};

// Lets a layer above the store (e.g. temporal indexes) add its own records to the same atomic
// write as the events it indexes.
class IndexHook {
 public:
  virtual ~IndexHook() = default;
  // Called on the appending thread before the transaction queues, for each event (its position,
  // revision and times not yet known): whatever part of the hook's records follows from the
  // event alone, so that the ordered stage does not compute it. The result comes back to
  // OnTransaction.
  virtual std::string PrepareEvent(const RecordedEvent& /*event*/) const { return {}; }
  // Called in the ordered stage for each accepted transaction, in position order, before the
  // batch is written. "events" are the transaction's events as they will be stored, "stored"
  // their log values (EncodeStoredEvent's bytes, already made: a hook that keeps copies of
  // events need not encode them again), "prepared" what PrepareEvent returned for each,
  // "before" what was known of each event's stream before the transaction. Returning an error
  // fails the whole batch (nothing of it is written).
  virtual Status OnTransaction(std::span<const RecordedEvent> events,
                               std::span<const std::string> stored,
                               std::span<const std::string> prepared,
                               std::span<const StreamBefore> before, KvWriteBatch& batch) = 0;
  // Called after the batch's write failed, so that any state the hook kept is dropped.
  virtual void OnBatchAborted() {}
  // Called in the ordered stage when another process (a node sharing the engine) has written
  // since this one last did: whatever the hook kept of the streams may be out of date.
  virtual void OnOtherWriters() {}
};

// Transactions queued with the same chain stop at the first that fails: none after it is
// written. Touched only by the ordered stage.
struct CommitChain {
  bool failed = false;
};

// Receives each new durable head, in order; called on the sync thread once a sync covering the
// groups up to that head has completed.
using PublishFn = std::function<void(const keys::HeadState&)>;

class WritePath {
 public:
  // "id_tag" makes the ids the store generates (keys::GeneratedId).
  WritePath(KvEngine* engine, const Options& options, const keys::HeadState& initial,
            const keys::IdTag& id_tag, PublishFn publish);
  WritePath(const WritePath&) = delete;
  WritePath& operator=(const WritePath&) = delete;
  // Commits and syncs everything queued, then stops both threads.
  ~WritePath();

  // Blocks until "tx" is durable or rejected. With "checkpoint" (name, value), the checkpoint is
  // written in the same atomic write.
  Result<Committed> Commit(const Transaction& tx,
                           const std::optional<std::pair<std::string, std::string>>& checkpoint);

  // Queues "tx" and returns at once; "done" receives the result once the transaction is durable
  // or rejected, on a store thread (or on this thread, for a transaction rejected before it is
  // queued). Transactions queued by one thread are committed in that order, many to an fsync.
  // With "expected_checkpoint", the transaction is rejected unless the checkpoint named in
  // "checkpoint" holds exactly that value when its turn comes (after every transaction queued
  // before it): a chain in which each names its predecessor's value stops at the first failure.
  // With "chain", the transaction is rejected when an earlier transaction of the same chain was
  // rejected or failed, and a failure of its own fails the chain.
  void CommitAsync(Transaction tx, std::optional<std::pair<std::string, std::string>> checkpoint,
                   std::optional<std::string> expected_checkpoint,
                   std::shared_ptr<CommitChain> chain, std::function<void(Result<Committed>)> done);

  // Durably sets a checkpoint, ordered with the writes around it.
  Status SetCheckpoint(std::string_view name, std::string_view value);

  // The durable value of checkpoint "name" (nullopt: never set). A value written by a group
  // whose sync has not completed is not returned yet: the one before it is.
  Result<std::optional<std::string>> DurableCheckpoint(std::string_view name) const;

  // Must be called before the first Commit, from the thread that opened the store.
  void AddIndexHook(IndexHook* hook) { hooks_.push_back(hook); }

  struct Counters {
    std::atomic<std::uint64_t> transactions{0}, events{0}, replays{0}, conflicts{0}, rejected{0},
        group_commits{0}, latency_micros{0}, syncs{0}, ordered_micros{0}, catch_ups{0};
  };
  const Counters& counters() const { return counters_; }

  // The last position this process has written or is writing (from the moment its write is
  // sent): the write path publishes it itself, once durable. A store that other processes
  // write too publishes only heads beyond it, so that a commit of its own is published once,
  // by the write path.
  Position WrittenPosition() const { return written_.load(std::memory_order_acquire); }

 private:
  // A transaction's events as far as the caller's thread can build them: everything but
  // position, revision, recorded_at, valid_from (when defaulted), tx and hash.
  struct Prepared {
    std::vector<RecordedEvent> events;  // all appends' events, in order
    // What each index hook prepared for each event: hook_data[hook][event].
    std::vector<std::vector<std::string>> hook_data;
    std::vector<StreamBefore> before;  // per event, filled in the ordered stage
    // Canonical encodings with zeros where the order-dependent fields go; the writer fills
    // them in at the offsets below and appends the hash.
    std::vector<std::string> encoded;
    std::vector<std::uint32_t> revision_offset, time_offset;  // the id follows the revision
    std::vector<bool> valid_from_given;
  };
  struct Pending {
    const Transaction* tx = nullptr;  // null: a checkpoint-only request
    // For CommitAsync: the transaction it owns, what it is answered with (instead of "done";
    // the answering thread deletes the Pending then), and the checkpoint value it requires.
    std::optional<Transaction> owned_tx;
    std::function<void(Result<Committed>)> callback;
    std::optional<std::string> expected_checkpoint;
    std::shared_ptr<CommitChain> chain;
    std::optional<Status> rejected;  // invalid, answered in queue order for its chain
    Prepared prepared;
    std::optional<std::pair<std::string, std::string>> checkpoint;
    std::size_t bytes = 0;
    std::int64_t enqueued_micros = 0;
    std::promise<Result<Committed>> done;
  };
  // What the batch being built has changed so far, on top of the stored state.
  struct BatchState;
  // A group the writer has finished with, waiting for the sync thread: its results are decided
  // but are delivered only once everything written up to and including it is durable.
  struct Group {
    std::vector<Pending*> members;
    std::vector<Result<Committed>> results;  // parallel to members
    bool wrote = false;                      // records of this group reached the engine
    // Decided on top of other processes' writes (sharing the engine), which may not be durable
    // yet: it is answered only once they are.
    bool followed = false;
    // Its sync failed as the database went away: answered with that error, never published.
    bool lost = false;
    keys::HeadState head;  // the head after this group (when wrote)
    std::uint64_t events = 0;
    std::uint64_t seq = 0;  // the writer's group number
  };

  // What the expectation stage decided for one transaction.
  enum class Verdict { kAccept, kAnswered, kDefer };

  void Prepare(const Transaction& tx, Prepared* out) const;
  Result<Committed> Enqueue(Pending& p);
  // Queues "p" without waiting; false (and "p" untouched) when the store takes no more writes,
  // with *refused saying why.
  bool Push(Pending* p, Status* refused);
  // Hands "r" to whoever waits for "p": its promise, or its callback (then deletes "p").
  static void Answer(Pending* p, Result<Committed> r);
  void Run();
  void RunSync();
  // One group, in four stages: CheckExpectations and AssignAndEncode for each transaction in
  // queue order, then WriteGroup (in BuildGroup), then HandToSync (the sync thread publishes
  // it once durable). Transactions that must wait for this group are queued again.
  void CommitBatch(std::vector<Pending*>& batch);
  Group BuildGroup(std::vector<Pending*>& batch, std::vector<Pending*>* deferred);
  // When nothing else is queued, ordered or being synced, commits "p" on the calling thread:
  // orders, writes, syncs and publishes it without handing it to the writer and sync threads,
  // so that one client appending one event at a time pays no thread hand-offs (the writer may
  // order the next group while this thread syncs). False (and nothing done) when another
  // transaction is in flight: then it queues as usual.
  bool CommitAlone(Pending& p);
  // Makes "groups" durable with one sync, then publishes and answers them in order.
  void SyncAndDeliver(std::deque<Group>& groups);
  // Decides whether "p" may be applied on top of the batch so far: kAccept with the heads of its
  // streams in "heads", kAnswered with its answer in "result" (a rejection or an idempotent
  // replay), or kDefer (its ids are being written by this very batch).
  Verdict CheckExpectations(Pending* p, std::uint64_t group_seq, BatchState& st,
                            std::vector<std::optional<keys::StreamHead>*>* heads,
                            Result<Committed>* result, Status* batch_error);
  // Assigns positions, revisions, the group's time, tx and the chain hash, and puts the records
  // of "p" into the batch. The index hooks add theirs; their error fails the batch.
  Result<Committed> AssignAndEncode(Pending* p,
                                    std::span<std::optional<keys::StreamHead>* const> heads,
                                    Timestamp now, BatchState& st);
  // Puts the changed stream heads, the time index entry and the store head, and writes the
  // batch (not synced).
  Status WriteGroup(BatchState& st, Timestamp now);
  void HandToSync(Group group);
  // Makes the store accept no more writes, every later one failing with "why".
  void Break(Status why);
  void Deliver(Group& group);
  // Classifies "tx" against ids already stored: nullopt when all ids are new, the original
  // result when "tx" repeats an earlier one, or an error.
  Result<std::optional<Committed>> CheckIdempotency(const Transaction& tx, BatchState& state,
                                                    bool* defer);
  // For an engine that other processes write too: begins the group's exclusive write and,
  // when another process has moved the store's head since this one's last group, takes the
  // head as stored and forgets what it cached of the streams (and sets *moved).
  Status CatchUpWithOtherWriters(bool* moved);
  // For a shared engine, where each read is a round trip made while holding the store's write
  // lock: reads the heads of the batch's streams that are not cached with one MultiGet into
  // st.heads (after another node wrote, none is cached).
  Status PrefetchHeads(const std::vector<Pending*>& batch, BatchState& st);
  // Reads the id index entries of the batch's client-chosen ids at once into st.stored_ids.
  Status PrefetchIds(const std::vector<Pending*>& batch, BatchState& st);
  // The position of the written event with client-chosen id "id" (nullopt: none).
  Result<std::optional<Position>> FindWrittenId(const Uuid& id, const BatchState& st);
  Result<std::optional<keys::StreamHead>*> LoadHead(const std::string& stream, BatchState& state);
  // Notes that group "seq" writes checkpoint "name", keeping its durable value for readers.
  Status NoteCheckpointWrite(const std::string& name, std::uint64_t seq);

  KvEngine* engine_;
  const Options options_;
  const keys::IdTag id_tag_;
  PublishFn publish_;
  std::vector<IndexHook*> hooks_;
  Counters counters_;

  // Writer-thread state: the head as written (possibly ahead of the durable head), and a cache
  // of stream heads (only the writer changes heads, so the cache is always right; it is
  // cleared when it grows too large, and when another process sharing the engine wrote).
  keys::HeadState head_;
  std::atomic<Position> written_{0};
  // The last position the sync stage confirmed and published.
  std::atomic<Position> delivered_{0};
  std::unordered_map<std::string, std::optional<keys::StreamHead>> head_cache_;
  std::uint64_t next_seq_ = 1;
  // Groups built since one found that another process had written (CatchUpWithOtherWriters);
  // the next group's exclusive write is chained to this one's only after this many alone.
  std::uint64_t groups_since_other_writer_ = 0;
  static constexpr std::uint64_t kGroupsAloneBeforeChaining = 16;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  // The ordered stage is taken, by the writer thread or by a caller committing alone.
  bool ordered_busy_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;

  // Between the writer and the sync thread.
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  // Written groups whose sync has not started; the writer waits for it to be empty before
  // it starts the next group. sync_cv_ wakes both threads.
  std::deque<Group> groups_;  // GUARDED_BY(sync_mu_)
  bool writer_done_ = false;  // GUARDED_BY(sync_mu_)
  // The sync stage is taken: by the sync thread while it syncs and answers the groups it took,
  // or by a caller committing alone.
  bool sync_busy_ = false;  // GUARDED_BY(sync_mu_)
  // Set by the sync thread when a sync failed: what was written since the last good sync may
  // or may not be on disk, so every later append fails until the store is reopened.
  std::atomic<bool> broken_{false};
  Status broken_status_;  // GUARDED_BY(sync_mu_); written once, before broken_ is set
  std::thread sync_thread_;

  // Checkpoints written by groups that are not durable yet: name -> (last group writing it,
  // durable value). Held while a reader reads the engine, so that the writer cannot write a
  // new value between a reader's look here and its read.
  mutable std::mutex checkpoint_mu_;
  std::unordered_map<std::string, std::pair<std::uint64_t, std::optional<std::string>>>
      unsynced_checkpoints_;  // GUARDED_BY(checkpoint_mu_)
};

}  // namespace timetrail

#endif  // TIMETRAIL_STORE_WRITE_PATH_H_
