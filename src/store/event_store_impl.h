// The EventStore implementation over a KvEngine. Internal: layers inside timetrail (temporal
// queries, subscriptions) use engine() and AddIndexHook(); users see only timetrail/store.h.
#ifndef TIMETRAIL_STORE_EVENT_STORE_IMPL_H_
#define TIMETRAIL_STORE_EVENT_STORE_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "storage/kv_engine.h"
#include "store/keys.h"
#include "store/temporal_index.h"
#include "store/write_path.h"
#include "timetrail/store.h"

namespace timetrail {

class EventStoreImpl final : public EventStore {
 public:
  static Result<std::unique_ptr<EventStoreImpl>> Open(const Options& options,
                                                      std::string_view path);
  // For tests only: opens the store with the RocksDB Env "env" (e.g. one injecting I/O faults,
  // tests/support/fault_fs.h). "env" must outlive the store.
  static Result<std::unique_ptr<EventStoreImpl>> OpenWithEnv(const Options& options,
                                                             std::string_view path,
                                                             std::shared_ptr<rocksdb::Env> env);
  ~EventStoreImpl() override;

  Result<Committed> Transact(const Transaction& tx) override;
  void TransactAsync(Transaction tx, std::function<void(Result<Committed>)> done) override;
  std::vector<Result<Committed>> TransactMany(std::vector<Transaction> txs,
                                              bool stop_at_first_failure) override;
  void TransactWithCheckpointAsync(Transaction tx, std::string name, std::string value,
                                   std::optional<std::string> expected_previous,
                                   std::function<void(Result<Committed>)> done) override;
  Result<std::vector<RecordedEvent>> ReadStream(std::string_view stream,
                                                const ReadStreamOptions& options) const override;
  Result<LogPage> ReadLog(const ReadLogOptions& options) const override;
  Result<RecordedEvent> GetEvent(const Uuid& id) const override;
  Result<RecordedEvent> GetEventAt(Position position) const override;
  Result<Position> PositionAt(Timestamp t) const override;
  Result<StreamInfo> GetStreamInfo(std::string_view stream) const override;
  Position LastPosition() const override { return last_position_.load(std::memory_order_acquire); }
  Status WaitForPosition(Position position, std::chrono::milliseconds timeout) const override;
  std::uint64_t AddCommitListener(std::function<void(Position)> listener) override;
  void RemoveCommitListener(std::uint64_t id) override;
  IntegrityHead GetIntegrityHead() const override;
  Result<VerifyReport> Verify(const VerifyOptions& options) const override;
  Result<VerifyReport> Backup(std::string_view dir) override;
  Result<std::optional<std::string>> GetCheckpoint(std::string_view name) const override;
  Status SetCheckpoint(std::string_view name, std::string_view value) override;
  Result<Committed> TransactWithCheckpoint(const Transaction& tx, std::string_view name,
                                           std::string_view value) override;
  StoreStats GetStats() const override;
  Status WaitForBackgroundWork() const override { return engine_->WaitForBackgroundWork(); }
  bool IsReadOnly() const override { return options_.read_only; }
  Status Refresh() override;

  // Temporal queries (temporal_queries.cc).
  Result<EntityState> GetEntity(std::string_view stream, const EntityQuery& query) const override;
  Result<PropertyHistory> GetPropertyHistory(std::string_view stream, std::string_view path,
                                             const HistoryQuery& query) const override;
  Result<DiffResult> Diff(std::string_view stream, const DiffQuery& query) const override;
  Result<ActivityPage> QueryActivity(const ActivityQuery& query) const override;
  Result<RevertResult> Revert(const RevertRequest& request) override;

  // For layers inside timetrail: the engine every read goes to, the read replica when the
  // store has one (Options::postgres_read_replica). Reads are capped at LastPosition(), which
  // the replica always has. What must see the primary (the write path and its index hooks,
  // checkpoints) uses the store's own engine.
  const KvEngine& engine() const { return replica_ ? *replica_ : *engine_; }
  const Options& options() const { return options_; }
  // REQUIRES: called before any append, from the opening thread.
  void AddIndexHook(IndexHook* hook) { write_path_->AddIndexHook(hook); }
  // Position of revision "r" of "stream", if it is committed.
  Result<std::optional<Position>> FindRevision(std::string_view stream, Revision r) const;

 private:
  EventStoreImpl(const Options& options, std::unique_ptr<KvEngine> engine);
  // Makes "head" the visible head and wakes waiters and listeners; a head behind the one
  // published already (another node's, learned first) is ignored.
  void Publish(const keys::HeadState& head);
  // Takes a head known committed and durable on the primary: publishes it, or with a read
  // replica wants it (the watcher publishes it once the replica has it).
  void OnDurable(const keys::HeadState& head);
  // With a read replica: raises the wanted position to "p", and wakes the watcher if it was not
  // following the replica already.
  void Want(Position p);
  // With a read replica: publishes the head as the replica has it, when it is ahead.
  Status PublishFromReplica();
  // With a read replica: waits until reads see every position known committed on the primary,
  // for reads that decide a write (a revert) and for Refresh.
  Status AwaitReplica() const;
  // The last position known committed on the primary: the published one, or beyond it the
  // one wanted while the read replica has not replayed it.
  Position KnownPosition() const { return wanted_.load(std::memory_order_acquire); }
  // For a store other nodes write too: publishes the head as stored when it is ahead (with a
  // read replica: wants it).
  Status CatchUpWithStore();
  // The thread that waits for other nodes' writes (their notifications, or a poll every
  // second) and publishes them, so that subscriptions and WaitForPosition wake on every node.
  // With a read replica it also publishes what the replica has replayed, polling it often
  // while it is behind the wanted position.
  void WatchOtherWriters();
  Result<RecordedEvent> LoadEvent(Position p) const;
  // Temporal helpers (temporal_queries.cc).
  void RegisterTemporalIndex();
  // The last revision of "stream" (whose last revision is "last") at or before position "p".
  Result<std::optional<Revision>> LastRevisionAtOrBefore(std::string_view stream, Revision last,
                                                         Position p) const;
  // The state after revision "r" (nullopt: before the first event).
  Result<EntityState> StateAt(std::string_view stream, std::optional<Revision> r) const;
  // The state at position "p" of "stream", whose head is "info" (info.exists).
  Result<EntityState> StateAtPosition(std::string_view stream, const StreamInfo& info,
                                      Position p) const;
  // "folded" as an EntityState, with the event that produced it.
  Result<EntityState> WithEvent(std::string_view stream, const temporal::FoldedState& folded) const;
  // The last revision of "stream" (whose head is "info", info.exists) at or before position
  // "p", which may lie beyond the stream's last event.
  Result<std::optional<Revision>> RevisionAtCut(std::string_view stream, const StreamInfo& info,
                                                Position p) const;
  // One page of the events between a diff's two points (DiffResult::events and next_cursor),
  // from revision "cursor" on when set. "query" has no kLatest point.
  Status DiffEvents(std::string_view stream, const StreamInfo& info, const DiffQuery& query,
                    std::optional<Revision> cursor, DiffResult* d) const;
  // The last position known at "known_at" (nullopt: now).
  Result<Position> KnownCut(const std::optional<Timestamp>& known_at) const;

  const Options options_;
  std::string dir_;
  // The store's own engine (with a read replica: the primary). Reads use engine().
  std::unique_ptr<KvEngine> engine_;
  std::unique_ptr<KvEngine> replica_;  // Options::postgres_read_replica; null without
  keys::IdTag id_tag_{};               // the first bytes of every id this store generates
  // Events from this position on have type index entries (keys::kTypesSince). Changes only in
  // Refresh (of a read-only store).
  std::atomic<Position> types_since_{1};
  // Serializes Refresh calls.
  std::mutex refresh_mu_;
  // Declared before write_path_: the write path calls it until it stops.
  std::unique_ptr<temporal::TemporalIndexHook> temporal_index_;
  std::unique_ptr<WritePath> write_path_;
  std::thread watcher_;  // runs WatchOtherWriters, for a shared engine opened for writing

  std::atomic<Position> last_position_{0};
  // At least last_position_; beyond it with a read replica that has not replayed it yet.
  // Written under mu_.
  std::atomic<Position> wanted_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable published_;
  keys::HeadState head_;  // GUARDED_BY(mu_)
  bool closing_ = false;  // GUARDED_BY(mu_)
  // Held while listeners run, so that RemoveCommitListener waits for a call in progress.
  std::mutex listeners_mu_;
  std::map<std::uint64_t, std::function<void(Position)>> listeners_;  // GUARDED_BY(listeners_mu_)
  std::uint64_t next_listener_ = 1;                                   // GUARDED_BY(listeners_mu_)
};

}  // namespace timetrail

#endif  // TIMETRAIL_STORE_EVENT_STORE_IMPL_H_
